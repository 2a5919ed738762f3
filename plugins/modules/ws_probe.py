#!/usr/bin/python
# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prove a WebSocket endpoint works: an opening handshake (101) and an optional echo."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ws_probe
short_description: Prove that a WebSocket endpoint answers 101 Switching Protocols, and echoes
version_added: 0.1.0
description:
  - Performs a WebSocket opening handshake (RFC 6455) to a C(ws://) or C(wss://) URL, checks
    C(101 Switching Protocols) and C(Sec-WebSocket-Accept), and optionally sends one text message and
    waits for the same text to come back.
  - Fails with a clear message on anything but a 101 (and, with O(echo), a matching echo). The status
    line, the response headers and, for a refused upgrade, the start of the response body are returned,
    which is usually enough to tell which layer broke (a 404 or 403 from the application means the
    upgrade headers never reached it; 505 means nginx spoke HTTP/1.0 to an RFC-strict backend).
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
      - Extra request headers.
    type: dict
    default: {}
  echo:
    description:
      - A text message to send after the handshake; the probe fails unless the same text comes back.
      - Leave unset to check the handshake only.
    type: str
  timeout:
    description:
      - Seconds for the whole exchange.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the server certificate for C(wss://) URLs.
    type: bool
    default: true
  expected_status:
    description:
      - The HTTP status that counts as success. Keep V(101) except to assert that an endpoint refuses.
    type: int
    default: 101
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
  - The probe opens one TCP connection and closes it with a WebSocket close frame.
seealso:
  - module: agaii.nginx.ws_location
"""

EXAMPLES = r"""
- name: Prove the WebSocket path works through nginx
  agaii.nginx.ws_probe:
    url: ws://127.0.0.1/api/mqtt/ws/hints/ansible-probe
    host: app.example.com
    echo: ping from ansible

- name: Check a TLS endpoint with a self-signed certificate
  agaii.nginx.ws_probe:
    url: wss://app.example.com/api/mqtt/ws/hints/ansible-probe
    validate_certs: false
"""

RETURN = r"""
status:
  description: The HTTP status of the handshake response (0 when none was received).
  returned: always
  type: int
  sample: 101
status_line:
  description: The response status line.
  returned: always
  type: str
  sample: HTTP/1.1 101 Switching Protocols
headers:
  description: The response headers, as a list of name/value pairs.
  returned: always
  type: list
  elements: list
  sample: [["Upgrade", "websocket"], ["Connection", "upgrade"]]
accept_ok:
  description: Whether C(Sec-WebSocket-Accept) matched the key that was sent.
  returned: always
  type: bool
echo_received:
  description: The text that came back after O(echo) was sent.
  returned: when O(echo) is set and the handshake succeeded
  type: str
  sample: ping from ansible
body:
  description: The start of the response body when the upgrade was refused.
  returned: when the status is not 101
  type: str
  sample: '{"detail":"Not Found"}'
elapsed:
  description: Seconds the probe took.
  returned: always
  type: float
error:
  description: What went wrong, with the phase it happened in (connecting, reading the response, the echo).
  returned: when something went wrong
  type: str
  sample: "connecting to 127.0.0.1:8000: connection refused"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import HandshakeResult, handshake


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
    if echo is not None and result.echo_received != echo:
        return f"the handshake succeeded but the echo failed: {result.error or 'different text came back'}"
    return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            host=dict(type="str"),
            headers=dict(type="dict", default={}),
            echo=dict(type="str"),
            timeout=dict(type="float", default=10.0),
            validate_certs=dict(type="bool", default=True),
            expected_status=dict(type="int", default=101),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = handshake(
            params["url"],
            host=params["host"],
            headers={str(k): str(v) for k, v in params["headers"].items()},
            timeout=params["timeout"],
            verify_tls=params["validate_certs"],
            echo=params["echo"],
        )
    except ValueError as exc:
        module.fail_json(msg=f"invalid probe arguments: {exc}")
    output = dict(
        changed=False,
        status=result.status,
        status_line=result.status_line,
        headers=[list(pair) for pair in result.headers],
        accept_ok=result.accept_ok,
        elapsed=result.elapsed,
    )
    if result.error:
        output["error"] = result.error
    if params["echo"] is not None and result.status == 101:
        output["echo_received"] = result.echo_received
    if result.status != 101:
        output["body"] = result.body or ""
    failure = verdict(result, params["expected_status"], params["echo"])
    if failure:
        module.fail_json(msg=failure, **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
