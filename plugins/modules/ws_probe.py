#!/usr/bin/python
# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prove a WebSocket endpoint works: an opening handshake (101) and an optional echo."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ws_probe
short_description: Prove that a WebSocket endpoint answers 101 Switching Protocols, and speaks as expected
version_added: 0.1.0
description:
  - Performs a WebSocket opening handshake (RFC 6455) to a C(ws://) or C(wss://) URL and checks
    C(101 Switching Protocols) and C(Sec-WebSocket-Accept). That is the whole proof by default, and it holds for
    every WebSocket application.
  - Describe the application to prove more - the subprotocols it needs (O(subprotocols); the server must select
    one of them), request headers it checks (O(headers), for example C(Origin), C(Cookie), C(Authorization)), a
    query string (O(query)), a message to send (O(send)) and the first message it answers or greets with
    (O(expect)), or an echo (O(echo)).
  - Fails with a clear message that names the layer (RV(stage)) - C(connect), C(status) (an HTTP status other
    than 101), C(upgrade), C(subprotocol), C(echo) or C(message). The status line, the response headers and,
    for a refused upgrade, the start of the response body are returned (a 404 or 403 from the application
    means the upgrade headers never reached it; 505 means nginx spoke HTTP/1.0 to an RFC-strict backend).
  - Standard library only; it runs on the managed node or, with C(delegate_to), on the controller.
author:
  - agaii.nginx contributors (@agaii)
options:
  url:
    description:
      - The WebSocket URL, for example V(ws://127.0.0.1/api/mqtt/ws/hints/probe).
    type: str
    required: true
  host:
    description:
      - The C(Host) header (and TLS server name) to send, when it differs from the URL's host.
      - Use it to reach a name-based virtual host through an IP address.
    type: str
  headers:
    description:
      - Extra request headers, for example C(Origin) for an application that checks it, C(Cookie) or
        C(Authorization). A header named like a handshake header replaces it.
    type: dict
    default: {}
  query:
    description:
      - A query string to add to the URL's, as a string (V(EIO=4&transport=websocket)) or a dictionary
        (encoded with C(urlencode)).
    type: raw
  subprotocols:
    description:
      - Subprotocols to offer in C(Sec-WebSocket-Protocol), in order of preference (V(mqtt) for MQTT brokers).
      - When set, the server must select one of them, as a browser requires; the selected one is returned
        in RV(subprotocol).
    type: list
    elements: str
    default: []
  echo:
    description:
      - A text message to send after the handshake; the probe fails unless the same text comes back.
      - Only for applications that echo. Leave unset to check the handshake only.
    type: str
  send:
    description:
      - A message to send after the handshake (and after the echo), for an application that answers a greeting,
        such as an MQTT CONNECT. O(send_format) says how it is written.
    type: str
  send_format:
    description:
      - V(text) sends O(send) as a text frame; V(hex) and V(base64) decode it and send the bytes as a binary
        frame.
    type: str
    choices: [text, hex, base64]
    default: text
  expect:
    description:
      - A regular expression (Python C(re.search)) the first message received after the handshake (and after
        O(send)) must match, for an application that speaks first (engine.io's open packet V(^0\\{)) or answers
        O(send). A binary message is matched as lowercase hex (V(^20020000) is an MQTT CONNACK that accepts).
      - The first message is returned in RV(message_received).
    type: str
  timeout:
    description:
      - Seconds for the whole probe, retries included (the time budget). Closing the connection after a
        success may take up to 2 seconds more.
    type: float
    default: 10
  retry_for:
    description:
      - Seconds during which a probe that got no C(101) (no connection, or another HTTP status) is repeated,
        every half second, within O(timeout). Use it right after a reload, while old nginx workers may still
        answer with the old configuration. V(0) makes one attempt.
      - A C(101) with a wrong subprotocol, echo or first message is never repeated.
    type: float
    default: 0
  validate_certs:
    description:
      - Verify the server certificate for C(wss://) URLs.
    type: bool
    default: true
  ca_file:
    description:
      - A PEM file of certificate authorities to trust for C(wss://) URLs (a private CA or a self-signed
        certificate), in addition to the system's.
    type: path
  expected_status:
    description:
      - The HTTP status that counts as success. Keep V(101) except to assert that an endpoint refuses.
    type: int
    default: 101
  validate_only:
    description:
      - Check every option as the probe would (the URL, the query, the headers, the subprotocols, the message to
        send and the O(expect) regex), then stop without connecting. The role uses it to refuse a bad proof
        before it writes anything.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The probe only reads; it runs in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - The probe opens one TCP connection per attempt and closes it with a WebSocket close frame.
  - The recipes in the collection's C(docs/recipes.md) give the options for common applications (MQTT brokers,
    Socket.IO, FastAPI, Django Channels, Home Assistant, Grafana Live, Jupyter).
seealso:
  - module: agaii.nginx.ws_location
  - module: agaii.nginx.route_info
"""

EXAMPLES = r"""
- name: Prove the WebSocket path works through nginx (the handshake)
  agaii.nginx.ws_probe:
    url: ws://127.0.0.1/api/mqtt/ws/hints/ansible-probe
    host: app.example.com

- name: Prove an echo service answers
  agaii.nginx.ws_probe:
    url: ws://127.0.0.1/api/mqtt/ws/hints/ansible-probe
    host: app.example.com
    echo: ping from ansible

- name: Prove an MQTT broker's WebSocket listener accepts a client (CONNECT, then CONNACK)
  agaii.nginx.ws_probe:
    url: ws://127.0.0.1/mqtt
    subprotocols: [mqtt]
    send: 101000044d5154540402003c0004616e7369  # MQTT 3.1.1 CONNECT, client id "ansi"
    send_format: hex
    expect: ^20020000$

- name: Prove a Socket.IO server opens an engine.io session
  agaii.nginx.ws_probe:
    url: wss://app.example.com/socket.io/
    query: EIO=4&transport=websocket
    headers:
      Origin: https://app.example.com
    expect: '^0\{"sid":'
    ca_file: /etc/ssl/private-ca.pem
"""

RETURN = r"""
validated:
  description: The options are valid; nothing was sent.
  returned: O(validate_only=true)
  type: bool
  sample: true
status:
  description: The HTTP status of the handshake response (0 when none was received).
  returned: unless O(validate_only=true)
  type: int
  sample: 101
status_line:
  description: The response status line.
  returned: unless O(validate_only=true)
  type: str
  sample: HTTP/1.1 101 Switching Protocols
headers:
  description: The response headers, as a list of name/value pairs.
  returned: unless O(validate_only=true)
  type: list
  elements: list
  sample: [["Upgrade", "websocket"], ["Connection", "upgrade"]]
accept_ok:
  description: Whether C(Sec-WebSocket-Accept) matched the key that was sent.
  returned: unless O(validate_only=true)
  type: bool
subprotocol:
  description: The subprotocol the server selected (C(Sec-WebSocket-Protocol)), if any.
  returned: unless O(validate_only=true)
  type: str
  sample: mqtt
url:
  description: The URL probed, with O(query) added.
  returned: always
  type: str
  sample: ws://127.0.0.1/socket.io/?EIO=4&transport=websocket
echo_received:
  description: The text that came back after O(echo) was sent.
  returned: when O(echo) is set and the handshake succeeded
  type: str
  sample: ping from ansible
message_received:
  description: The first message received after the handshake (and O(send)); a binary one in lowercase hex.
  returned: when O(expect) is set and a message arrived
  type: str
  sample: '0{"sid":"Lbo5JLzTotvW3g2LAAAA","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'
message_binary:
  description: Whether RV(message_received) arrived as a binary message.
  returned: when O(expect) is set and a message arrived
  type: bool
body:
  description: The start of the response body when the upgrade was refused.
  returned: when the status is not 101
  type: str
  sample: '{"detail":"Not Found"}'
stage:
  description:
    - The layer that failed - V(connect) (no connection or no HTTP response), V(status) (another HTTP status than
      101), V(upgrade) (a 101 that breaks RFC 6455), V(subprotocol), V(echo) or V(message) (the first message).
  returned: when the probe failed
  type: str
  sample: subprotocol
attempts:
  description: How many handshakes were made (more than one only with O(retry_for)).
  returned: unless O(validate_only=true)
  type: int
  sample: 1
elapsed:
  description: Seconds the probe took, retries included.
  returned: unless O(validate_only=true)
  type: float
error:
  description: What went wrong, with the phase it happened in (connecting, reading the response, the echo).
  returned: when something went wrong
  type: str
  sample: "connecting to 127.0.0.1:8000: connection refused"
"""

import base64
import binascii
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import (
    STAGE_ECHO,
    STAGE_MESSAGE,
    STAGE_SUBPROTOCOL,
    HandshakeResult,
    check_request,
    handshake_with_retries,
    with_query,
)

ARGUMENT_SPEC = dict(
    url=dict(type="str", required=True),
    host=dict(type="str"),
    headers=dict(type="dict", default={}),
    query=dict(type="raw"),
    subprotocols=dict(type="list", elements="str", default=[]),
    echo=dict(type="str"),
    send=dict(type="str"),
    send_format=dict(type="str", choices=["text", "hex", "base64"], default="text"),
    expect=dict(type="str"),
    timeout=dict(type="float", default=10.0),
    retry_for=dict(type="float", default=0.0),
    validate_certs=dict(type="bool", default=True),
    ca_file=dict(type="path"),
    expected_status=dict(type="int", default=101),
    validate_only=dict(type="bool", default=False),
)

# What a failure at each stage after the 101 means, as the first words of the message.
_STAGE_PREFIX = {
    STAGE_SUBPROTOCOL: "subprotocol refused",
    STAGE_MESSAGE: "no expected first message",
}


def verdict(result: HandshakeResult, expected_status: int, echo: object) -> object:
    """None when the probe succeeded, else the sentence to fail with."""
    if result.status != expected_status:
        got = result.status_line or "no HTTP response"
        detail = f" ({result.error})" if result.error and not result.status else ""
        return f"expected HTTP {expected_status} from {result.url}, got {got}{detail}"
    if expected_status != 101:
        return None
    if not result.accept_ok:
        return "the server answered 101 but Sec-WebSocket-Accept does not match the key sent"
    if echo is not None and result.stage == STAGE_ECHO:
        return f"the handshake succeeded but the echo failed: {result.error or 'different text came back'}"
    if result.error:
        prefix = _STAGE_PREFIX.get(result.stage or "", "the handshake succeeded but")
        return f"{prefix}: {result.error} ({result.url})"
    return None


def message_to_send(text: object, send_format: str) -> object:
    """The text, or the bytes that ``send_format`` says ``text`` encodes; ValueError when it does not."""
    if text is None or send_format == "text":
        return text
    try:
        if send_format == "hex":
            return bytes.fromhex(str(text))
        return base64.b64decode(str(text), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"send is not valid {send_format}: {exc}") from exc


def probe_url(params: dict) -> str:
    query = params["query"]
    if query is not None and not isinstance(query, (str, dict)):
        raise ValueError("query must be a string or a dictionary")
    return with_query(params["url"], query)


def check_probe(params: dict) -> None:
    """Every option of the probe checked as the probe would check it; ValueError for an invalid one. Nothing
    is sent."""
    message_to_send(params["send"], params["send_format"])
    if params["ca_file"] is not None and not os.access(params["ca_file"], os.R_OK):
        raise ValueError(f"ca_file {params['ca_file']!r} is not a readable file")
    headers = {str(k): str(v) for k, v in params["headers"].items()}
    check_request(probe_url(params), params["host"], headers, params["subprotocols"] or None, params["expect"])


def probe(params: dict) -> HandshakeResult:
    """Run the probe the parameters describe; ValueError for invalid ones."""
    return handshake_with_retries(
        probe_url(params),
        timeout=params["timeout"],
        retry_for=params["retry_for"],
        host=params["host"],
        headers={str(k): str(v) for k, v in params["headers"].items()},
        verify_tls=params["validate_certs"],
        ca_file=params["ca_file"],
        echo=params["echo"],
        subprotocols=params["subprotocols"] or None,
        send=message_to_send(params["send"], params["send_format"]),
        expect=params["expect"],
    )


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["validate_only"]:
        try:
            check_probe(params)
        except ValueError as exc:
            module.fail_json(msg=f"invalid probe arguments: {exc}")
        module.exit_json(changed=False, url=params["url"], validated=True)
    try:
        result = probe(params)
    except ValueError as exc:
        module.fail_json(msg=f"invalid probe arguments: {exc}")
    output = dict(
        changed=False,
        url=result.url,
        status=result.status,
        status_line=result.status_line,
        headers=[list(pair) for pair in result.headers],
        accept_ok=result.accept_ok,
        subprotocol=result.subprotocol,
        attempts=result.attempts,
        elapsed=result.elapsed,
    )
    if result.error:
        output["error"] = result.error
        output["stage"] = result.stage
    if params["echo"] is not None and result.status == 101:
        output["echo_received"] = result.echo_received
    if params["expect"] is not None and result.message_received is not None:
        output["message_received"] = result.message_received
        output["message_binary"] = result.message_binary
    if result.status != 101:
        output["body"] = result.body or ""
    failure = verdict(result, params["expected_status"], params["echo"])
    if failure:
        module.fail_json(msg=failure, **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
