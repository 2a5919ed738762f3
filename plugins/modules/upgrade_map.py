#!/usr/bin/python
# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the upgrade_map action plugin; the code is in plugins/action/upgrade_map.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_map
short_description: Ensure exactly one C(map $http_upgrade $var) in nginx's http context
version_added: 0.1.0
description:
  - WebSocket locations send C(proxy_set_header Connection $connection_upgrade), which needs a
    C(map $http_upgrade $connection_upgrade) block in C(http{}). Without it nginx refuses to start with
    C(unknown "connection_upgrade" variable) (and names no file or line).
  - nginx accepts the same map twice without a word (the last one wins), so this module makes sure there
    is exactly one. It looks at every file nginx loads (from C(nginx -T)); any loaded
    C(map $http_upgrade $<name>) is reused whatever its variable name, and its variable is returned.
  - Otherwise it writes one map - into O(map_file) when given, else into a new file in the C(conf.d/)
    directory that C(http{}) includes, else into the main configuration's C(http{}) block - then runs
    C(nginx -t) and undoes the write if the test fails.
  - This module runs on the controller; the target needs only Python and nginx (see
    M(agaii.nginx.nginx_file)).
author:
  - agaii.nginx contributors (@agaii)
requirements:
  - crossplane (Python library, on the controller)
  - nginx and Python 3.9 or newer on the managed node
options:
  variable:
    description:
      - The variable name for a new map (without C($)).
      - Ignored, with a warning, when a map on C($http_upgrade) is already loaded under another name.
    type: str
    default: connection_upgrade
  map_file:
    description:
      - Where a new map goes. An existing file must be loaded in C(http) context; a new file must be
        matched by an C(include) inside C(http{}). A relative path is relative to the directory of
        O(nginx_conf).
      - Default is discovered - a new C(websocket-upgrade-map.conf) in the included C(conf.d/), else the
        C(http{}) block of O(nginx_conf).
    type: path
extends_documentation_fragment:
  - agaii.nginx.nginx
  - agaii.nginx.nginx.edit
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
seealso:
  - module: agaii.nginx.ws_location
  - module: agaii.nginx.nginx_file
"""

EXAMPLES = r"""
- name: Ensure the upgrade map exists exactly once
  agaii.nginx.upgrade_map:
  register: upgrade_map

- name: Use its variable in the WebSocket location
  agaii.nginx.ws_location:
    path: /etc/nginx/sites-enabled/app
    map_variable: "{{ upgrade_map.variable }}"
"""

RETURN = r"""
variable:
  description: The map's variable, without C($), whether it was reused or added.
  returned: success
  type: str
  sample: connection_upgrade
reused:
  description: Where the reused map is (file:line); null when a map was added.
  returned: success
  type: str
  sample: /etc/nginx/conf.d/gitlab.conf:1
file:
  description: The file that got the new map.
  returned: when a map was added (or would be, in check mode)
  type: str
  sample: /etc/nginx/conf.d/websocket-upgrade-map.conf
created:
  description: Whether a new file was (or would be) created for the map.
  returned: success
  type: bool
backup_file:
  description: The backup of the changed file.
  returned: when O(backup=true) and an existing file changed
  type: str
"""
