"""Debian's mosquitto with one MQTT-over-WebSocket listener on 127.0.0.1, started and stopped by PID."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import LOCALHOST, ManagedProcess, free_port, wait_for_port

START_TIMEOUT = 30.0
# socket_domain ipv4: without it mosquitto 2.0's libwebsockets binds [::] (every address) and ignores 127.0.0.1.
# The plain MQTT listener is there because mosquitto 2.0.11 exits ("Unable to start any listening sockets") when
# its only listener is a WebSocket one bound to an address; brokers usually have both anyway.
CONFIG = """\
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
listener {mqtt_port} {host}
listener {port} {host}
socket_domain ipv4
protocol websockets
"""
# MQTT 3.1.1 CONNECT, clean session, keep alive 60 s, client id "agaii-probe"; the broker answers CONNACK 20020000.
CONNECT_HEX = "101700044d5154540402003c000b61676169692d70726f6265"
CONNACK_ACCEPTED = "^20020000$"


class Mosquitto:
    """A broker we own: ``upstream`` is its WebSocket listener (host:port); ``mqtt_port`` its plain MQTT one."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.mqtt_port = free_port()
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(CONFIG.format(port=self.port, mqtt_port=self.mqtt_port, host=LOCALHOST))
        self.process = ManagedProcess([binary, "-c", str(self.config)], workdir / "mosquitto.log")

    @property
    def upstream(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def start(self) -> Mosquitto:
        self.process.start()
        try:
            wait_for_port(LOCALHOST, self.port, START_TIMEOUT, process=self.process)
            wait_for_port(LOCALHOST, self.mqtt_port, START_TIMEOUT, process=self.process)
        except BaseException:
            self.process.stop()
            raise
        return self

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self) -> str:
        return self.process.log_tail()
