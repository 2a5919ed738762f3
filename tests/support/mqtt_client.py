"""A paho-mqtt client over WebSockets, with what it saw kept for assertions (CONNACK, messages, disconnects)."""

from __future__ import annotations

import queue
import threading
from typing import Any, List, Optional, Tuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


class MqttOverWebSocket:
    """One MQTT 3.1.1 client connected to ``ws://host:port<path>``; its network loop runs in paho's thread."""

    def __init__(self, client_id: str, host: str, port: int, path: str, keepalive: int = 60) -> None:
        self.host, self.port, self.keepalive = host, port, keepalive
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            transport="websockets",
            reconnect_on_failure=False,
        )
        self.client.ws_set_options(path=path)
        self.connack: queue.Queue[Tuple[bool, int]] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subscribed: queue.Queue[List[Any]] = queue.Queue()
        self.disconnected = threading.Event()
        self.disconnect_reason: Optional[str] = None
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self.connack.put((bool(flags.session_present), int(reason.value)))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: List[Any], props: Any) -> None:
        self.subscribed.put([int(reason.value) for reason in reasons])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self.disconnect_reason = str(reason)
        self.disconnected.set()

    def connect(self, timeout: float = 10.0) -> Tuple[bool, int]:
        """Connect and wait for CONNACK: (session present, return code)."""
        self.client.connect(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        return self.connack.get(timeout=timeout)

    def subscribe(self, topic: str, qos: int, timeout: float = 10.0) -> List[int]:
        """Subscribe and wait for SUBACK: the granted QoS per topic."""
        self.client.subscribe(topic, qos)
        return self.subscribed.get(timeout=timeout)

    def publish(self, topic: str, payload: bytes, qos: int, timeout: float = 10.0) -> bool:
        """Publish and wait until it is acknowledged (PUBACK for QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=timeout)
        return info.is_published()

    def next_message(self, timeout: float = 10.0) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        if not self.disconnected.is_set():
            self.client.disconnect()
        self.client.loop_stop()
