#!/usr/bin/python
# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the route_info action plugin; the code is in plugins/action/route_info.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: route_info
short_description: Tell which nginx server and location answer a host name and URI, and diagnose a WebSocket path
version_added: 0.1.0
description:
  - For a host name and a URI, tells which C(server) block nginx uses (C(listen) address and port, then
    C(server_name) - exact, longest C(*.) wildcard, longest C(.*) wildcard, first regex - then the port's
    C(default_server) or first server) and which C(location) (longest prefix, C(=), C(^~), regexes in file
    order, nested locations), with the chain of reasons.
  - Says whether that location carries what a WebSocket needs - C(proxy_pass), C(proxy_http_version 1.1),
    C(proxy_set_header Upgrade $http_upgrade), C(proxy_set_header Connection) with a variable defined by
    a loaded C(map $http_upgrade) - with inheritance applied (a location that declares any
    C(proxy_set_header) inherits none), the effective C(proxy_read_timeout), the addresses behind its
    C(proxy_pass), and the error log files.
  - With O(diagnose), it also checks the live path in order and stops at the first broken layer -
    nginx running and C(nginx -t) passing; the backend reachable directly (TCP, then a WebSocket handshake
    to the C(proxy_pass) target from the managed node); the location nginx picks for the path carrying the
    upgrade headers; the handshake through nginx (C(101) or the status); the idle timeout against the
    application's longest silence. The verdict (RV(verdict)) names the layer, the evidence (with the
    relevant lines of nginx's error log) and the fix.
  - Read-only. The managed node runs M(agaii.nginx.nginx_file) once (C(nginx -T)), and with O(diagnose)
    reads the pid file and the tail of the error log and runs M(agaii.nginx.ws_probe); the reasoning runs on
    the controller.
  - The C(ws_proxy) role's C(diagnose) entry point and the C(agaii.nginx.diagnose_websocket) playbook run
    the diagnosis across a fleet and summarize it.
author:
  - agaii.nginx contributors (@agaii)
requirements:
  - crossplane (Python library, on the controller)
  - nginx and Python 3.9 or newer on the managed node
options:
  host:
    description:
      - The host name the clients send (the C(Host) header), matched against C(server_name) like nginx does.
    type: str
    required: true
  uri:
    description:
      - The request URI, for example V(/api/mqtt/ws/hints/session-1). It is normalized like nginx does
        before locations are matched (query dropped, C(%XX) decoded, slashes merged, dot segments resolved).
      - With O(diagnose), the handshakes use this URI, so it must be a WebSocket endpoint of the application.
    type: str
    required: true
  port:
    description:
      - The port the clients connect to. Default - the only port nginx listens on, else the only port with a
        C(server_name) matching O(host); otherwise the task fails and asks for it.
    type: int
  address:
    description:
      - The address the clients connect to. A server block listening on exactly this address takes the
        request away from the wildcard address. Default - the wildcard address of the port (or its only
        address).
      - With O(diagnose), the handshake through nginx connects here (default - the listen address, or
        V(127.0.0.1) for a wildcard listen).
    type: str
  listen:
    description:
      - The port, or address and port, the clients connect to, written as nginx's C(listen) reads it - V(443),
        V(*:80), V([::]:443), V(127.0.0.1:8443), V(443 ssl) - the same value as the C(listen) option of
        M(agaii.nginx.ws_location). Use it instead of O(port) and O(address) (giving both fails).
      - Flags such as C(ssl) are accepted and do not change the choice - nginx picks the server by address and port.
    type: str
  diagnose:
    description:
      - Run the layered diagnosis and return RV(verdict). Give V({}) for the defaults.
      - When nginx is not running or C(nginx -t) fails, the verdict says so (the task does not fail).
    type: dict
    suboptions:
      url:
        description:
          - The WebSocket URL of the handshake through nginx. Default - built from the selected server's
            C(listen) (C(wss://) for an C(ssl) listen) and O(uri); the C(Host) header is O(host).
        type: str
      app_silence:
        description:
          - The longest time the application may stay silent on an open WebSocket (no message and no ping
            either way), as an nginx time (V(300), V(300s), V(5m)). The verdict is broken when the
            effective C(proxy_read_timeout) is not longer. V(0) skips this layer.
        type: str
        default: "0"
      backend:
        description:
          - The backend to probe directly (V(host:port) or a URL) when C(proxy_pass) uses variables.
            Default - the addresses behind the chosen location's C(proxy_pass) (an C(upstream) block is
            followed).
        type: str
      error_log:
        description: The error log to read. Default - the C(error_log) files of the configuration.
        type: path
      pid_file:
        description: The nginx pid file. Default - the C(pid) directive of O(nginx_conf), else V(/run/nginx.pid).
        type: path
      timeout:
        description: Seconds for each handshake.
        type: float
        default: 5
      validate_certs:
        description: Verify the certificate of a C(wss://) handshake through nginx.
        type: bool
        default: true
      subprotocols:
        description:
          - Subprotocols the application needs in the handshake (V(mqtt) for MQTT brokers); both handshakes offer
            them. The ws_proxy role's proof passes its own.
        type: list
        elements: str
        default: []
      headers:
        description: Request headers the application checks (C(Origin), C(Cookie), C(Authorization)), in both probes.
        type: dict
        default: {}
extends_documentation_fragment:
  - agaii.nginx.nginx
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details:
      - The reasoning runs on the controller; the managed node runs M(agaii.nginx.nginx_file) and, with
        O(diagnose), M(agaii.nginx.ws_probe), C(cat) and C(tail).
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Read-only; it runs in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Routing rules are the engine's model of nginx (see C(docs/how-it-works.md)); regexes with PCRE-only
    syntax make the answer unknown (RV(known=false)) instead of a guess, and the diagnosis then relies on
    the handshake.
  - Relative C(pid) and C(error_log) paths are resolved against Debian's prefix C(/usr/share/nginx); set
    O(diagnose.pid_file) and O(diagnose.error_log) on other builds.
seealso:
  - module: agaii.nginx.ws_location
  - module: agaii.nginx.upgrade_map
  - module: agaii.nginx.ws_probe
"""

EXAMPLES = r"""
- name: Which location answers the WebSocket path?
  agaii.nginx.route_info:
    host: app.example.com
    uri: /api/mqtt/ws/hints/session-1
  register: route

- name: Show it
  ansible.builtin.debug:
    msg: "{{ route.location.name }} at {{ route.location.file }}:{{ route.location.line }}: {{ route.reasons }}"

- name: Diagnose the WebSocket path, layer by layer
  agaii.nginx.route_info:
    host: app.example.com
    uri: /api/mqtt/ws/hints/session-1
    port: 443
    diagnose:
      app_silence: 300s
  register: diagnosis

- name: Say what broke
  ansible.builtin.debug:
    msg: "{{ diagnosis.verdict.layer }}: {{ diagnosis.verdict.message }} - {{ diagnosis.verdict.fix }}"
  when: diagnosis.verdict.status == 'broken'
"""

RETURN = r"""
host:
  description: The host name, as given.
  returned: when nginx -t passes
  type: str
  sample: app.example.com
uri:
  description: The URI, as given.
  returned: when nginx -t passes
  type: str
path:
  description: The normalized URI that locations are matched against.
  returned: when nginx -t passes
  type: str
  sample: /api/mqtt/ws/hints/session-1
status:
  description:
    - V(400) when nginx refuses the request before any location (an invalid Host, or a URI with a malformed
      %-escape, V(%00) or a path above the root); V(301) when nginx answers with its automatic redirect (a
      prefix location that ends with V(/) and proxies, requested without the slash).
    - Null when the location's own handler answers. RV(reasons) says why.
  returned: when nginx -t passes
  type: int
  sample: 301
redirect:
  description: The path of nginx's automatic 301 redirect (the location's name); null without one.
  returned: when nginx -t passes
  type: str
  sample: /api/mqtt/ws/
server:
  description: The server block nginx uses; null when no server block listens on the port or address, or when
    nginx answers 400 to the Host.
  returned: when nginx -t passes
  type: dict
  contains:
    name:
      description: The server block, described.
      type: str
      sample: server app.example.com (listen 443 ssl) at /etc/nginx/sites-enabled/app:1
    file:
      description: Its file.
      type: str
    line:
      description: Its line.
      type: int
    names:
      description: Its C(server_name) entries.
      type: list
      elements: str
    listen:
      description: The address and port that selected it.
      type: str
      sample: "*:443"
    ssl:
      description: Whether that listen is C(ssl).
      type: bool
location:
  description: The location nginx uses; null when no location matches (or the answer is unknown).
  returned: when nginx -t passes
  type: dict
  contains:
    name:
      description: The location, as written.
      type: str
      sample: location ~ ^/api/mqtt/ws/
    file:
      description: Its file.
      type: str
    line:
      description: Its line.
      type: int
reasons:
  description: The chain of reasons, server selection first, then location matching.
  returned: when nginx -t passes
  type: list
  elements: str
  sample:
    - "1 server block listens on *:443"
    - "exact server_name app.example.com selects server app.example.com (listen 443 ssl) at /etc/nginx/app:1"
    - "longest matching prefix is location /api/ at /etc/nginx/sites-enabled/app:9"
    - "first matching regex in file order is location ~ ^/api/mqtt/ws/ at /etc/nginx/sites-enabled/app:5"
known:
  description: False when a regex the model does not emulate decides the answer (see RV(unknown)).
  returned: when nginx -t passes
  type: bool
unknown:
  description: Why the answer is unknown.
  returned: when nginx -t passes
  type: str
websocket:
  description: What the chosen location carries for a WebSocket, inheritance applied; null without a location.
  returned: when nginx -t passes
  type: dict
  contains:
    ready:
      description: Whether it carries everything (RV(websocket.gaps) is empty).
      type: bool
    gaps:
      description: What it lacks.
      type: list
      elements: str
      sample: ["proxy_http_version 1.1", "proxy_set_header Upgrade $http_upgrade"]
    proxy_pass:
      description: Its own C(proxy_pass) (never inherited).
      type: str
    proxy_http_version:
      description: The effective C(proxy_http_version) (V(1.0) is nginx's default up to 1.29.6).
      type: str
    proxy_http_version_at:
      description: Where it is set (file:line), or V(default).
      type: str
    upgrade:
      description: The effective C(Upgrade) header value.
      type: str
    connection:
      description: The effective C(Connection) header value.
      type: str
    map_variable:
      description: The C(map $http_upgrade) variable that C(Connection) uses, when one defines it.
      type: str
    map_at:
      description: Where that map is (file:line).
      type: str
shadowed:
  description: Locations carrying an C(Upgrade) header that match the path alone but lose to the chosen one.
  returned: when nginx -t passes
  type: list
  elements: str
backends:
  description: The addresses behind the location's C(proxy_pass), with the URL of a direct handshake.
  returned: when nginx -t passes
  type: list
  elements: dict
proxy_read_timeout:
  description: The effective C(proxy_read_timeout) (value, seconds, and where it is set or V(default)).
  returned: when nginx -t passes and a location matches
  type: dict
error_logs:
  description: The error log files of this request, then the main error log.
  returned: when nginx -t passes
  type: list
  elements: str
pid_file:
  description: The pid file of the nginx master.
  returned: when nginx -t passes
  type: str
verdict:
  description: The diagnosis.
  returned: with O(diagnose)
  type: dict
  contains:
    status:
      description: V(healthy) or V(broken).
      type: str
    layer:
      description: The first broken layer - V(nginx), V(backend), V(routing), V(handshake), V(timeout) - or V(none).
      type: str
    message:
      description: What is wrong (or that it works).
      type: str
      sample: "backend down on 127.0.0.1:8000"
    evidence:
      description: What was seen, including the relevant error log lines.
      type: list
      elements: str
    fix:
      description: What to do; null when healthy.
      type: str
    warnings:
      description: Findings that do not break this WebSocket.
      type: list
      elements: str
    checks:
      description: Every layer that was checked, in order (the diagnosis stops at the first broken one).
      type: list
      elements: dict
    url:
      description: The URL of the handshake through nginx, when it ran.
      type: str
    log_lines:
      description: The relevant error log lines that were read.
      type: list
      elements: str
"""
