# Copyright: contributors to agaii.nginx
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small WebSocket opening-handshake client (RFC 6455), standard library only (Python 3.9+).

``handshake(url)`` connects to the URL's host and port, sends the upgrade request (optionally with
another ``Host``, extra headers and subprotocols), checks ``101 Switching Protocols`` and
``Sec-WebSocket-Accept`` (and, when subprotocols are offered, that the server selected one of them),
optionally echoes one masked text frame, optionally sends one message and waits for a first message
that matches a regex (for applications that speak first or answer a greeting), and ends with a close
frame. ``handshake_with_retries`` repeats a handshake that got no 101 for a bounded time (nginx still
reloading), within one total time budget.

Protocol outcomes never raise: a refused connection, a timeout, a non-101 status (its body is kept,
up to 4 KiB) or a bad accept value are reported in ``HandshakeResult.error``. Only invalid arguments
(a malformed URL, a header with a line break) raise ``ValueError``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import ssl
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple, Union
from urllib.parse import urlencode, urlsplit, urlunsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024
CLOSE_GRACE_SECONDS = 2.0

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
CLOSE_NORMAL = 1000

# Where a handshake failed (HandshakeResult.stage): the layers a proof names.
STAGE_CONNECT = "connect"  # no TCP/TLS connection, or no HTTP response at all
STAGE_STATUS = "status"  # an HTTP response other than 101
STAGE_UPGRADE = "upgrade"  # 101 without a valid Sec-WebSocket-Accept, Upgrade or Connection
STAGE_SUBPROTOCOL = "subprotocol"  # none of the offered subprotocols selected (or one never offered)
STAGE_ECHO = "echo"
STAGE_MESSAGE = "message"  # the expected first message did not arrive or did not match
# Stages a reloading nginx can cause (old workers still answer with the old configuration).
RETRIED_STAGES = (STAGE_CONNECT, STAGE_STATUS)
RETRY_INTERVAL_SECONDS = 0.5

HeaderList = List[Tuple[str, str]]
HeadersArg = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]


class ProtocolViolation(Exception):
    """The peer's bytes are not what RFC 6455 / HTTP allow (reported in the result, never raised)."""


@dataclass
class HandshakeResult:
    """Everything observed during one handshake; ``error`` is None when all went well."""

    url: str
    status: int = 0  # 0: no HTTP response was received
    reason: str = ""
    status_line: str = ""
    headers: HeaderList = field(default_factory=list)
    accept_ok: bool = False
    subprotocol: Optional[str] = None
    body: str = ""  # non-101 responses only, at most 4 KiB
    echo_sent: Optional[str] = None
    echo_received: Optional[str] = None
    message_sent: Optional[str] = None  # the message sent after the handshake (binary ones in hex)
    message_received: Optional[str] = None  # the first message received (binary ones in hex)
    message_binary: bool = False  # whether message_received came in a binary frame
    close_code: Optional[int] = None  # the server's close code, when it answered our close frame
    error: Optional[str] = None
    stage: Optional[str] = None  # where it failed (STAGE_*); None when all went well
    elapsed: float = 0.0
    attempts: int = 1
    request_headers: HeaderList = field(default_factory=list)

    def header_values(self, name: str) -> List[str]:
        """All values of response header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """Response header ``name`` (case-insensitive); repeated values joined with ", "."""
        values = self.header_values(name)
        return ", ".join(values) if values else default

    @property
    def upgraded(self) -> bool:
        """True when the server switched protocols with a valid accept value."""
        return self.status == 101 and self.accept_ok

    @property
    def ok(self) -> bool:
        """Upgraded, no error, the echo (if any) came back unchanged and the first message (if any) matched."""
        echoed = self.echo_sent is None or self.echo_received == self.echo_sent
        return self.upgraded and self.error is None and echoed


@dataclass
class Target:
    """Where to connect and what to ask for, parsed from a ws:// or wss:// URL."""

    secure: bool
    host: str
    port: int
    resource: str
    host_header: str


def parse_url(url: str) -> Target:
    """Parse a ws:// or wss:// URL; raise ValueError when it is malformed."""
    if not isinstance(url, str) or any(char in url for char in " \t\r\n\0"):
        raise ValueError(f"malformed WebSocket URL: {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported URL scheme in {url!r} (expected ws:// or wss://)")
    if not parts.hostname or parts.username is not None or parts.fragment:
        raise ValueError(f"malformed WebSocket URL (host required; no user info or fragment): {url!r}")
    try:
        explicit_port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid port in WebSocket URL {url!r}") from exc
    default_port = 443 if scheme == "wss" else 80
    port = explicit_port if explicit_port is not None else default_port
    resource = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    if not _encodable(resource, "ascii"):
        raise ValueError(f"non-ASCII path in WebSocket URL (percent-encode it): {url!r}")
    return Target(scheme == "wss", parts.hostname, port, resource, _host_header(parts.hostname, port, default_port))


def _host_header(hostname: str, port: int, default_port: int) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if port == default_port else f"{host}:{port}"


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value a server must return for ``key``."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _check_header(name: str, value: str) -> None:
    text = name + value
    valid_name = bool(name) and ":" not in name and name == name.strip()
    if not valid_name or any(char in text for char in "\r\n\0") or not _encodable(text, "latin-1"):
        raise ValueError(f"invalid request header {name!r}: {value!r}")


# RFC 7230 token: what a subprotocol name may contain (RFC 6455 section 4.1)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def build_request_headers(
    target: Target,
    key: str,
    host: Optional[str] = None,
    headers: HeadersArg = None,
    subprotocols: Optional[Sequence[str]] = None,
) -> HeaderList:
    """Upgrade request headers; an entry in ``headers`` replaces the default of the same name."""
    extra = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    for name, value in extra:
        _check_header(name, value)
    defaults = [
        ("Host", host or target.host_header),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if subprotocols:
        for subprotocol in subprotocols:
            if not _TOKEN.match(subprotocol):
                raise ValueError(f"invalid subprotocol {subprotocol!r} (RFC 6455: an HTTP token, such as mqtt)")
        defaults.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    for name, value in defaults:
        _check_header(name, value)
    replaced = {name.lower() for name, _value in extra}
    return [pair for pair in defaults if pair[0].lower() not in replaced] + extra


def encode_request(resource: str, headers: HeaderList) -> bytes:
    lines = [f"GET {resource} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --------------------------------------------------------------------------- framing


def mask_bytes(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` (masking and unmasking are the same)."""
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (clients must mask every frame)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


def parse_close_payload(payload: bytes) -> Tuple[Optional[int], str]:
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


# ------------------------------------------------------------------------ connection


class _Connection:
    """A socket with a read buffer and a deadline shared by every operation."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = bytearray()
        self.eof = False

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        return remaining

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at end of stream."""
        if self.eof:
            return False
        self.sock.settimeout(self._remaining())
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            return False
        self.buffer.extend(chunk)
        return True

    def _take(self, count: int) -> bytes:
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read_until(self, marker: bytes, limit: int, what: str) -> bytes:
        """Bytes up to and including ``marker``; ProtocolViolation past ``limit`` or at EOF."""
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                return self._take(index + len(marker))
            if len(self.buffer) > limit:
                raise ProtocolViolation(f"{what} longer than {limit} bytes")
            if not self._fill():
                raise ProtocolViolation(f"connection closed by peer before the end of the {what}")

    def read_exact(self, count: int, what: str) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise ProtocolViolation(f"connection closed by peer in the middle of the {what}")
        return self._take(count)

    def read_up_to(self, count: int) -> bytes:
        """Up to ``count`` bytes, fewer at end of stream or when time runs out."""
        try:
            while len(self.buffer) < count and self._fill():
                pass
        except OSError:
            pass  # includes timeouts: keep what arrived
        return self._take(count)

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self._remaining())
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _tls_context(verify_tls: bool, ca_file: Optional[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if not verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


def _tls_server_name(target: Target, host: Optional[str]) -> str:
    """SNI and certificate name: the Host override's name when there is one."""
    if host:
        name = urlsplit("//" + host).hostname
        if name:
            return name
    return target.host


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ProtocolViolation) else f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------- session


@dataclass
class _Plan:
    target: Target
    host: Optional[str]
    request: bytes
    request_headers: HeaderList
    timeout: float
    verify_tls: bool
    echo: Optional[str]
    subprotocols: Optional[Sequence[str]]
    ca_file: Optional[str]
    send: Union[str, bytes, None] = None
    expect: Optional[re.Pattern] = None


class _Session:
    """One handshake attempt; every failure ends up in ``result.error``."""

    def __init__(self, plan: _Plan, result: HandshakeResult) -> None:
        self.plan = plan
        self.result = result
        self.phase = "connecting"
        self.stage = STAGE_CONNECT
        self.conn: Optional[_Connection] = None
        self.server_closed = False

    def run(self) -> None:
        try:
            self._connect()
            self._exchange()
        except (OSError, ProtocolViolation) as exc:
            self._fail(exc)
        finally:
            self._finish()

    def _fail(self, exc: BaseException) -> None:
        if self.result.error is None:
            self.result.error = f"{self.phase}: {_describe(exc)}"
            self.result.stage = self.stage

    def _connect(self) -> None:
        target = self.plan.target
        deadline = time.monotonic() + self.plan.timeout
        self.phase = f"connecting to {target.host}:{target.port}"
        sock = socket.create_connection((target.host, target.port), timeout=self.plan.timeout)
        if target.secure:
            self.phase = f"TLS handshake with {target.host}:{target.port}"
            sock = self._wrap_tls(sock)
        self.conn = _Connection(sock, deadline)

    def _wrap_tls(self, sock: socket.socket) -> socket.socket:
        context = _tls_context(self.plan.verify_tls, self.plan.ca_file)
        try:
            return context.wrap_socket(sock, server_hostname=_tls_server_name(self.plan.target, self.plan.host))
        except BaseException:
            sock.close()
            raise

    def _require_connection(self) -> None:
        if self.conn is None:
            raise ProtocolViolation("the connection is not open")

    def _exchange(self) -> None:
        self._require_connection()
        self.phase = "sending the upgrade request"
        self.conn.send(self.plan.request)
        self.phase = "reading the response"
        self._read_head()
        self.stage = STAGE_STATUS
        if self.result.status != 101:
            self._refused()
            return
        self.phase = "checking the 101 response"
        self.stage = STAGE_UPGRADE
        self._validate_upgrade()
        if self.result.error is None and self.plan.echo is not None:
            self.phase = self.stage = STAGE_ECHO
            self._echo(self.plan.echo)
        if self.result.error is None and (self.plan.send is not None or self.plan.expect is not None):
            self.stage = STAGE_MESSAGE
            self._converse()

    # ---------------------------------------------------------------- response head

    def _read_head(self) -> None:
        self._require_connection()
        head = self.conn.read_until(b"\r\n\r\n", MAX_HEAD_BYTES, "response head")
        lines = head.decode("latin-1").split("\r\n")
        while lines and not lines[0]:
            lines.pop(0)  # tolerate stray empty lines before the status line
        self._parse_status_line(lines[0] if lines else "")
        self.result.headers = _parse_header_lines(lines[1:])

    def _parse_status_line(self, line: str) -> None:
        self.result.status_line = line
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolViolation(f"malformed status line {line!r}")
        self.result.status = int(parts[1])
        self.result.reason = parts[2] if len(parts) > 2 else ""

    def _refused(self) -> None:
        self.result.error = f"expected 101 Switching Protocols, got {self.result.status_line}"
        self.result.stage = STAGE_STATUS
        self.phase = "reading the response body"
        self.result.body = _read_body(self.conn, self.result).decode("utf-8", "replace")

    def _validate_upgrade(self) -> None:
        result = self.result
        key = _request_header(self.plan.request_headers, "Sec-WebSocket-Key") or ""
        expected = accept_value(key)
        result.accept_ok = (result.header("Sec-WebSocket-Accept") or "").strip() == expected
        result.subprotocol = result.header("Sec-WebSocket-Protocol")
        problem = _upgrade_problem(result, expected, self.plan.subprotocols)
        if problem is not None:
            result.error, result.stage = problem

    # ------------------------------------------------------------------------- echo

    def _echo(self, text: str) -> None:
        self._require_connection()
        self.conn.send(encode_frame(OP_TEXT, text.encode("utf-8")))
        opcode, payload = self._read_message()
        self.result.echo_received = payload.decode("utf-8", "replace")
        if opcode != OP_TEXT:
            self.result.error = f"echo: expected a text frame, got opcode 0x{opcode:x}"
        elif self.result.echo_received != text:
            self.result.error = "echo: the server sent back a different text"
        if self.result.error is not None:
            self.result.stage = STAGE_ECHO

    # --------------------------------------------------------- greeting, first message

    def _converse(self) -> None:
        """Send the greeting (if any), then read the first message and match it (if expected)."""
        self._require_connection()
        send = self.plan.send
        if send is not None:
            self.phase = "sending the message"
            binary = isinstance(send, bytes)
            payload = send if isinstance(send, bytes) else send.encode("utf-8")
            self.result.message_sent = payload.hex() if binary else send
            self.conn.send(encode_frame(OP_BINARY if binary else OP_TEXT, payload))
        if self.plan.expect is None:
            return
        self.phase = "waiting for the first message"
        opcode, payload = self._read_message()
        binary = opcode == OP_BINARY
        received = payload.hex() if binary else payload.decode("utf-8", "replace")
        self.result.message_received, self.result.message_binary = received, binary
        if not self.plan.expect.search(received):
            kind = "binary message (hex)" if binary else "text message"
            self.result.error = (
                f"the first message does not match {self.plan.expect.pattern!r}: {kind} {_shorten(received)!r}"
            )
            self.result.stage = STAGE_MESSAGE

    def _read_message(self) -> Tuple[int, bytes]:
        """The next data message (fragments joined); answers pings, fails on close."""
        opcode: Optional[int] = None
        parts: List[bytes] = []
        while True:
            fin, frame_opcode, payload = self._read_frame()
            if frame_opcode >= OP_CLOSE:
                self._control_frame(frame_opcode, payload)
                continue
            opcode = frame_opcode if opcode is None else opcode
            parts.append(payload)
            if sum(len(part) for part in parts) > MAX_MESSAGE_BYTES:
                raise ProtocolViolation(f"message longer than {MAX_MESSAGE_BYTES} bytes")
            if fin:
                return opcode, b"".join(parts)

    def _control_frame(self, opcode: int, payload: bytes) -> None:
        self._require_connection()
        if opcode == OP_PING:
            self.conn.send(encode_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.server_closed = True
            code, reason = parse_close_payload(payload)
            self.result.close_code = code
            detail = f": {reason}" if reason else ""
            raise ProtocolViolation(f"server sent a close frame (code {code}{detail})")

    def _read_frame(self) -> Tuple[bool, int, bytes]:
        self._require_connection()
        first, second = self.conn.read_exact(2, "frame header")
        if first & 0x70:
            raise ProtocolViolation("frame with reserved bits set (unnegotiated extension?)")
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.conn.read_exact(2, "frame header"))[0]
        elif length == 127:
            length = struct.unpack("!Q", self.conn.read_exact(8, "frame header"))[0]
        if length > MAX_MESSAGE_BYTES:
            raise ProtocolViolation(f"frame longer than {MAX_MESSAGE_BYTES} bytes")
        key = self.conn.read_exact(4, "frame header") if second & 0x80 else b""
        payload = self.conn.read_exact(length, "frame payload")
        return bool(first & 0x80), first & 0x0F, mask_bytes(payload, key) if key else payload

    # ------------------------------------------------------------------------ close

    def _finish(self) -> None:
        if self.conn is None:
            return
        if self.result.upgraded:
            self._closing_handshake()
        self.conn.close()

    def _closing_handshake(self) -> None:
        """Send a close frame and wait briefly for the server's; problems here are not errors.

        The wait (at most CLOSE_GRACE_SECONDS) is skipped after an error such as an echo timeout.
        """
        self._require_connection()
        self.conn.deadline = time.monotonic() + min(CLOSE_GRACE_SECONDS, self.plan.timeout)
        try:
            self.conn.send(encode_frame(OP_CLOSE, close_payload(CLOSE_NORMAL)))
            while not self.server_closed and self.result.error is None:
                _fin, opcode, payload = self._read_frame()
                if opcode == OP_CLOSE:
                    self.server_closed = True
                    self.result.close_code = parse_close_payload(payload)[0]
        except (OSError, ProtocolViolation):
            pass


def _parse_header_lines(lines: Sequence[str]) -> HeaderList:
    headers: HeaderList = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip(), value.strip()))
    return headers


def _request_header(headers: HeaderList, name: str) -> Optional[str]:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _upgrade_problem(
    result: HandshakeResult, expected: str, offered: Optional[Sequence[str]]
) -> Optional[Tuple[str, str]]:
    """(error, stage) when the 101 response breaks RFC 6455 section 4.1's client requirements."""
    if not result.accept_ok:
        accept = result.header("Sec-WebSocket-Accept")
        return f"Sec-WebSocket-Accept is {accept!r}, expected {expected!r}", STAGE_UPGRADE
    if (result.header("Upgrade") or "").strip().lower() != "websocket":
        return "101 response without 'Upgrade: websocket' (got {!r})".format(result.header("Upgrade")), STAGE_UPGRADE
    connection = [token.strip().lower() for token in (result.header("Connection") or "").split(",")]
    if "upgrade" not in connection:
        return "101 response without 'Connection: upgrade' (got {!r})".format(
            result.header("Connection")
        ), STAGE_UPGRADE
    if result.subprotocol is not None and result.subprotocol not in (offered or ()):
        return f"server selected subprotocol {result.subprotocol!r}, which was not offered", STAGE_SUBPROTOCOL
    if offered and result.subprotocol is None:
        # A browser fails such a connection: it offered subprotocols and got none back.
        return (
            f"the server selected none of the subprotocols offered ({', '.join(offered)}): "
            "101 without Sec-WebSocket-Protocol",
            STAGE_SUBPROTOCOL,
        )
    return None


def _read_body(conn: Optional[_Connection], result: HandshakeResult) -> bytes:
    """Up to MAX_BODY_BYTES of a non-101 response body (Content-Length, chunked or until EOF)."""
    if conn is None or result.status < 200 or result.status in (204, 304):
        return b""
    length = (result.header("Content-Length") or "").strip()
    if length.isdigit():
        return conn.read_up_to(min(int(length), MAX_BODY_BYTES))
    if "chunked" in (result.header("Transfer-Encoding") or "").lower():
        return _read_chunked(conn)
    return conn.read_up_to(MAX_BODY_BYTES)


def _read_chunked(conn: _Connection) -> bytes:
    body = bytearray()
    try:
        while len(body) < MAX_BODY_BYTES:
            size_line = conn.read_until(b"\r\n", 1024, "chunk size line")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            wanted = min(size, MAX_BODY_BYTES - len(body))
            body.extend(conn.read_exact(wanted, "chunk"))
            if wanted < size:
                break
            conn.read_exact(2, "chunk")
    except (OSError, ValueError, ProtocolViolation):
        pass  # the body is diagnostic only: keep what arrived
    return bytes(body)


def handshake(
    url: str,
    host: Optional[str] = None,
    headers: HeadersArg = None,
    timeout: float = 10.0,
    verify_tls: bool = True,
    echo: Optional[str] = None,
    subprotocols: Optional[Sequence[str]] = None,
    ca_file: Optional[str] = None,
    send: Union[str, bytes, None] = None,
    expect: Optional[str] = None,
) -> HandshakeResult:
    """Perform a WebSocket opening handshake against ``url`` and report what happened.

    ``host`` replaces the Host header (and names the TLS server: SNI and certificate check) while
    the TCP connection still goes to the URL's host and port. ``headers`` (mapping or (name, value)
    pairs) are added to the request; one named like a default header (Host, Connection, ...)
    replaces it. ``timeout`` bounds the exchange (the closing handshake may add up to 2 s more).
    ``verify_tls=False`` accepts any certificate; ``ca_file`` (PEM) is trusted for wss://. With
    ``echo``, one masked text frame is sent after the 101 and the next data message is kept in
    ``echo_received``. ``subprotocols`` are offered, and the server must select one of them.
    ``send`` (text, or bytes for a binary frame) is sent after the handshake (and the echo); with
    ``expect`` (a regex), the next data message must match it (``re.search``; a binary message is
    matched as lowercase hex, so ``^20`` is an MQTT CONNACK). A close frame always ends an upgraded
    connection.

    Raises ValueError only for a malformed URL, header or regex; everything else is in the result.
    """
    target, pattern, request_headers = check_request(url, host, headers, subprotocols, expect)
    result = HandshakeResult(url=url, echo_sent=echo, request_headers=request_headers)
    request = encode_request(target.resource, request_headers)
    plan = _Plan(
        target=target,
        host=host,
        request=request,
        request_headers=request_headers,
        timeout=float(timeout),
        verify_tls=verify_tls,
        echo=echo,
        subprotocols=subprotocols,
        ca_file=ca_file,
        send=send,
        expect=pattern,
    )
    started = time.monotonic()
    try:
        _Session(plan, result).run()
    finally:
        result.elapsed = round(time.monotonic() - started, 3)
    return result


def check_request(
    url: str,
    host: Optional[str] = None,
    headers: HeadersArg = None,
    subprotocols: Optional[Sequence[str]] = None,
    expect: Optional[str] = None,
) -> Tuple[Target, Optional[re.Pattern], HeaderList]:
    """The parsed URL, the compiled ``expect`` and the request headers (with a fresh key) of a handshake;
    ValueError for a malformed URL, header or regex. Nothing is sent."""
    target = parse_url(url)
    pattern = _compile_expect(expect)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    return target, pattern, build_request_headers(target, key, host, headers, subprotocols)


def _compile_expect(expect: Optional[str]) -> Optional[re.Pattern]:
    if expect is None:
        return None
    try:
        return re.compile(expect)
    except re.error as exc:
        raise ValueError(f"invalid regex for the expected first message {expect!r}: {exc}") from exc


def handshake_with_retries(url: str, timeout: float = 10.0, retry_for: float = 0.0, **options: Any) -> HandshakeResult:
    """``handshake`` repeated while it gets no 101 (no connection, or another status) for up to ``retry_for``
    seconds, all within ``timeout`` seconds in total (the budget).

    Only a missing 101 is retried: right after ``nginx -s reload`` old workers may still answer with the
    old configuration. A 101 whose subprotocol, echo or first message is wrong is final at once.
    """
    started = time.monotonic()
    deadline = started + float(timeout)
    retry_until = min(started + max(float(retry_for), 0.0), deadline)
    attempts = 0
    while True:
        attempts += 1
        result = handshake(url, timeout=max(deadline - time.monotonic(), 0.001), **options)
        if result.ok or result.stage not in RETRIED_STAGES:
            break
        if time.monotonic() + RETRY_INTERVAL_SECONDS >= retry_until:
            break
        time.sleep(RETRY_INTERVAL_SECONDS)
    result.attempts = attempts
    result.elapsed = round(time.monotonic() - started, 3)
    return result


def with_query(url: str, query: Union[str, Mapping[str, Any], None]) -> str:
    """``url`` with ``query`` (a string, or a mapping encoded with urlencode) appended to its query string."""
    if not query:
        return url
    text = urlencode(query, doseq=True) if isinstance(query, Mapping) else str(query).lstrip("?")
    parts = urlsplit(url)
    joined = f"{parts.query}&{text}" if parts.query else text
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))
