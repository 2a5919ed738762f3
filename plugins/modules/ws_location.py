#!/usr/bin/python
# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the ws_location action plugin; the code is in plugins/action/ws_location.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ws_location
short_description: Make nginx proxy WebSocket connections for a path, safely, on a live server
version_added: 0.1.0
description:
  - Adds (or converges in place) the location that carries the WebSocket settings for O(location) in
    the server blocks of one site file, so that nginx really sends the WebSocket URI there.
  - The location gets C(proxy_pass) (copied from the O(before) location unless O(proxy_pass) is set),
    C(proxy_http_version 1.1), C(proxy_set_header Upgrade $http_upgrade),
    C(proxy_set_header Connection) with the upgrade map's variable, the timeouts, and every
    C(proxy_set_header) it would otherwise lose to nginx's inheritance rule (a location that sets any
    header inherits none from the server).
  - From the O(before) location it carries only what a proxied WebSocket needs - proxy settings, headers,
    variables, logging - and always its access control (C(allow)/C(deny), C(auth_basic), C(auth_request),
    C(satisfy), C(limit_req), C(limit_conn), C(internal), C(if) blocks that only refuse). It never carries what
    ends or diverts a request (C(return), C(rewrite), C(try_files), C(error_page) to a named location, other
    content handlers such as C(fastcgi_pass), C(root), C(alias), C(index)). Where that location hands its
    requests to a named location (C(try_files $uri @app), C(error_page 404 = @app)), the proxy settings come
    from the named location. RV(servers[].carried) and RV(servers[].left_out) list each directive.
  - A O(before) location that only returns or redirects (C(return 301 ...)) proxies nothing; the module
    refuses it and changes nothing.
  - The form is chosen by nginx's own location selection rules and proven before anything is written -
    the routing of a sample WebSocket URI is computed for the file before and after the edit. A regex
    location is placed ahead of every regex that would take the URI, or a C(^~) prefix location is used
    when a regex cannot win.
  - Everything else in the file is kept byte for byte (comments, CRLF line ends, tabs, non-UTF-8 bytes).
  - The module never adds a C(map $http_upgrade) block; that is the job of C(agaii.nginx.upgrade_map),
    which the C(agaii.nginx.ws_proxy) role runs first. Where no such map is loaded, the location sends
    C(Connection "upgrade") and the module warns; once a map exists, the next run switches the location
    to the map's variable.
  - This module runs on the controller. The target needs only Python and nginx - one call to
    M(agaii.nginx.nginx_file) returns the file, its stat and the C(nginx -T) dump; a second one writes
    (under a lock, refusing a file changed meanwhile), then runs C(nginx -t) and puts the original bytes
    back if the test fails.
  - A configuration that already fails C(nginx -t) is refused untouched, with nginx's message.
author:
  - agaii.nginx contributors (@agaii)
requirements:
  - crossplane (Python library, on the controller)
  - nginx and Python 3.9 or newer on the managed node
options:
  path:
    description:
      - The site file that holds the server block(s), for example C(/etc/nginx/sites-enabled/app).
      - A symlink is followed and stays a symlink; its target is edited.
      - nginx must load the file (or a symlink to it) from O(nginx_conf).
    type: path
    required: true
  server_name:
    description:
      - Edit only the server blocks of O(path) that answer this name (exact, wildcard or regex
        C(server_name) entries).
      - Needed when several server blocks with different names serve the O(before) location.
    type: str
  listen:
    description:
      - Edit only the server blocks of O(path) with this C(listen), read as nginx reads C(listen) - a port
        (V(8443)) selects every server listening on that port, whatever the address; an address and port
        (V(*:80), V([::]:443), V(127.0.0.1:8443)) selects the servers listening on exactly that address
        (C(0.0.0.0) is C(*), C(localhost) is C(127.0.0.1)); flags (V(443 ssl)) must all be on that listen.
      - Without it, among the selected server blocks only those whose answer for the O(before) path reaches a
        backend (C(proxy_pass) and its kin, also through C(try_files ... @name)) are edited; a server that only
        redirects or returns (the HTTP to HTTPS redirect server) is left alone, with a warning naming it. When
        none of them reaches a backend, the task fails and says why for each.
      - When several server blocks remain and their upstreams differ, the task fails and lists them
        (file:line, listen, upstream) unless O(proxy_pass) is set; set O(listen) or O(server_name) to choose.
      - With O(listen), the selected servers are edited even when they do not proxy the path (give
        O(proxy_pass) then).
    type: str
  location:
    description:
      - The WebSocket path as a regular expression, optionally with its modifier (C(~ ) or C(~* )).
      - It should start with C(^) and a literal path, which gives both the regex form
        C(location ~ ^/api/mqtt/ws/) and the prefix form C(location ^~ /api/mqtt/ws/).
      - An existing location for the same path (regex, plain prefix or C(^~) prefix) is converged in
        place rather than duplicated.
    type: str
    default: ^/api/mqtt/ws/
  before:
    description:
      - The location the WebSocket location sits beside (the one that serves the API today), as its path
        (C(/api/)) or with its modifier (C(^~ /api/), C(~ ^/api/)).
      - Its C(proxy_pass) and proxy settings are copied unless set here.
    type: str
    default: /api/
  proxy_pass:
    description:
      - The upstream of the WebSocket location, for example C(http://127.0.0.1:8000) or
        C(http://backend).
      - Default is the C(proxy_pass) of the O(before) location (without a URI part in the regex form).
    type: str
  read_timeout:
    description:
      - C(proxy_read_timeout) of the WebSocket location. nginx closes a tunnel after this long with no
        data in either direction.
      - An nginx time, read as nginx reads it (C(ngx_parse_time)) - C(3600), C(90s), C(2m), C(1h30m), C(1d),
        C(500ms); a plain number is seconds; units go from large to small. A value nginx refuses is refused.
    type: str
    default: 3600s
  send_timeout:
    description:
      - C(proxy_send_timeout) of the WebSocket location, an nginx time like O(read_timeout).
    type: str
    default: 3600s
  headers:
    description:
      - Extra C(proxy_set_header) lines for the WebSocket location, as a mapping of header name to value.
      - Values may use nginx variables (C($remote_addr)). Values are quoted as nginx needs; a value that
        could end the directive or open a block is refused.
    type: dict
    default: {}
  map_variable:
    description:
      - The variable of the C(map $http_upgrade $var) block to use in C(proxy_set_header Connection).
      - Default is the variable of the map that is already loaded (the last one when several are), else
        C(Connection "upgrade") with a warning.
      - When set, that map must be loaded; the task fails otherwise.
    type: str
  match:
    description:
      - Which form a new location takes.
      - V(auto) uses a regex location placed ahead of every regex that would take the WebSocket URI, and a
        C(^~) prefix location when a regex cannot win (for example behind C(location ^~ /api/)).
      - V(regex) insists on the regex form and fails when it cannot win.
      - V(prefix) uses the C(^~) prefix form.
    type: str
    choices: [auto, regex, prefix]
    default: auto
  include_conflicts:
    description:
      - What to do when an C(include) of the O(before) location sets one of this module's own settings to another
        value (a snippet with C(proxy_read_timeout 90s) while O(read_timeout) is C(3600s)); nginx refuses the
        same setting twice in one location.
      - V(refuse) fails with the file:line, both values and the fix, and changes nothing.
      - V(inline) leaves that include out of the new location and copies in, line by line, everything else it
        brings that the location carries; RV(servers[].left_out) names the include and the conflicting lines.
    type: str
    choices: [refuse, inline]
    default: refuse
  state:
    description:
      - V(present) makes the WebSocket location exist with the settings above.
      - V(absent) removes the location this module added (the one marked
        C(# managed by agaii.nginx.ws_location)), which gives back the file as it was.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - agaii.nginx.nginx
  - agaii.nginx.nginx.edit
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details:
      - The planning runs on the controller; the managed node runs M(agaii.nginx.nginx_file).
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Reports the change and the diff without writing.
  diff_mode:
    support: full
    details:
      - Unified before/after of the site file, with the file name as the header.
  platform:
    support: full
    platforms: posix
notes:
  - The module does not reload nginx. Notify a handler that runs C(systemctl reload nginx) (the
    C(agaii.nginx.ws_proxy) role does) when it reports C(changed=true).
  - nginx's C(nginx -t) cannot see a location that is shadowed by another one. The module therefore
    routes a sample WebSocket URI (RV(sample_uri)) through the server's locations before and after the
    edit and refuses a plan in which the WebSocket location would not answer it.
  - Two runs against the same file serialise on a lock on the managed node. A file changed between the
    read and the write is detected by its checksum and planned again, never overwritten.
seealso:
  - module: agaii.nginx.nginx_file
  - name: nginx WebSocket proxying
    description: How nginx proxies WebSocket connections.
    link: https://nginx.org/en/docs/http/websocket.html
  - name: nginx location selection
    description: How nginx chooses the location for a request.
    link: https://nginx.org/en/docs/http/ngx_http_core_module.html#location
"""

EXAMPLES = r"""
- name: Let WebSocket connections through the API site
  agaii.nginx.ws_location:
    path: /etc/nginx/sites-enabled/app
  notify: Reload nginx

- name: A prefix WebSocket location with its own upstream, keeping a backup
  agaii.nginx.ws_location:
    path: /etc/nginx/sites-available/app.conf
    server_name: app.example.com
    location: ^/ws/
    before: /
    match: prefix
    proxy_pass: http://127.0.0.1:9001
    read_timeout: 1h
    headers:
      X-Real-IP: $remote_addr
    backup: true
  notify: Reload nginx

- name: Only the HTTPS server of a name that also has an API server on another port
  agaii.nginx.ws_location:
    path: /etc/nginx/sites-enabled/app
    server_name: app.example.com
    listen: 443 ssl
  notify: Reload nginx

- name: Remove the WebSocket location again
  agaii.nginx.ws_location:
    path: /etc/nginx/sites-enabled/app
    state: absent
  notify: Reload nginx
"""

RETURN = r"""
diff:
  description: The change of the site file as text (undecodable bytes are shown escaped).
  type: list
  elements: dict
  returned: changed and diff mode
  contains:
    before:
      description: The file before.
      type: str
    after:
      description: The file after.
      type: str
    before_header:
      description: The file name.
      type: str
      sample: /etc/nginx/sites-enabled/app
    after_header:
      description: The file name.
      type: str
      sample: /etc/nginx/sites-enabled/app
backup_file:
  description: The backup of the file that was taken before the change.
  type: str
  returned: changed and O(backup=true) and not check mode
  sample: /var/backups/nginx/app.4242.2026-11-25@20:24:19~
path:
  description: The file as nginx loads it (the name in C(nginx -T)); for a symlink target this is the link.
  type: str
  returned: success
  sample: /etc/nginx/sites-enabled/app
realpath:
  description: The file that holds the bytes (symlinks resolved).
  type: str
  returned: success
  sample: /etc/nginx/sites-available/app
servers:
  description: What happened to each server block of the file that was considered.
  type: list
  elements: dict
  returned: success
  contains:
    server:
      description: The server block, with its names, listen and file:line.
      type: str
      sample: server example.com (listen 80) at /etc/nginx/sites-enabled/app:1
    file:
      description: The file of the server block.
      type: str
    line:
      description: The line of the server block.
      type: int
    names:
      description: Its C(server_name) entries.
      type: list
      elements: str
    listen:
      description: Its C(listen) values as written (V(80) when it has none).
      type: list
      elements: str
      sample: ["443 ssl", "[::]:443 ssl"]
    action:
      description: V(inserted), V(converged) (an existing location edited in place), V(removed) or V(unchanged).
      type: str
      sample: inserted
    form:
      description: V(regex) or V(prefix), for a new location.
      type: str
      sample: regex
    location:
      description: The WebSocket location.
      type: str
      sample: location ~ ^/api/mqtt/ws/
    reasons:
      description: Why this form and this place, in sentences.
      type: list
      elements: str
    route_before:
      description: Where nginx sends RV(sample_uri) before the change (C(location) and C(reason)).
      type: dict
    route_after:
      description: Where nginx sends RV(sample_uri) after the change (C(location) and C(reason)).
      type: dict
    carried:
      description:
        - For a new location, each directive it took from the anchor (or from the named location the anchor
          hands its requests to, such as C(try_files $uri @app)). Access control is always carried.
        - See the table in C(docs/how-it-works.md).
      type: list
      elements: dict
      contains:
        directive:
          description: The directive with its arguments.
          type: str
          sample: auth_basic API
        file:
          description: The file it is written in.
          type: str
        line:
          description: Its line.
          type: int
        family:
          description: Its family in the carry table.
          type: str
          sample: authentication and authorization
    left_out:
      description:
        - For a new location, each directive of the anchor (or its named location) it does not carry, such as
          C(return), C(try_files), C(rewrite), C(fastcgi_pass) or the anchor's own timeouts.
      type: list
      elements: dict
      contains:
        directive:
          description: The directive with its arguments.
          type: str
          sample: try_files $uri @app
        file:
          description: The file it is written in.
          type: str
        line:
          description: Its line.
          type: int
        family:
          description: Its family in the carry table.
          type: str
          sample: ends or diverts the request
        why:
          description: Why it is left out.
          type: str
edited:
  description: Each server block the task changed (or would change in check mode), with its names, listen and file:line.
  type: list
  elements: str
  returned: success
  sample: ["server app.example.com (listen 443 ssl) at /etc/nginx/sites-enabled/app:9"]
route_before:
  description: Where nginx sends RV(sample_uri) before the change, in the first edited server block.
  type: dict
  returned: success
  contains:
    location:
      description: The location with its file:line.
      type: str
      sample: location /api/ at /etc/nginx/sites-enabled/app:8
    reason:
      description: Why nginx picks it.
      type: str
      sample: longest matching prefix is location /api/ at /etc/nginx/sites-enabled/app:8
route_after:
  description: Where nginx sends RV(sample_uri) after the change, in the first edited server block.
  type: dict
  returned: success
  contains:
    location:
      description: The location with its file:line.
      type: str
      sample: location ~ ^/api/mqtt/ws/ at /etc/nginx/sites-enabled/app:8
    reason:
      description: Why nginx picks it.
      type: str
sample_uri:
  description: The WebSocket URI used to check the routing, derived from O(location).
  type: str
  returned: success
  sample: /api/mqtt/ws/agaii-probe/session-874q8t
map_variable:
  description: The upgrade map variable the location uses, without C($); null when there is no map.
  type: str
  returned: success
  sample: connection_upgrade
"""
