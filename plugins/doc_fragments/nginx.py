# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the modules of agaii.nginx."""

from __future__ import annotations


class ModuleDocFragment:
    # The nginx installation on the managed node.
    DOCUMENTATION = r"""
options:
  nginx_binary:
    description:
      - The nginx executable on the managed node, a name looked up in E(PATH) and the sbin directories,
        or an absolute path.
    type: str
    default: nginx
  nginx_conf:
    description:
      - The main nginx configuration file on the managed node, used for C(nginx -T) and C(nginx -t).
    type: path
    default: /etc/nginx/nginx.conf
"""

    # Writing a configuration file transactionally.
    EDIT = r"""
options:
  backup:
    description:
      - Keep a copy of the file in O(backup_dir) before changing it.
    type: bool
    default: false
  backup_dir:
    description:
      - Where backups go, created with mode C(0700). It must be an absolute path outside every nginx
        include glob; a backup inside C(sites-enabled/) would be loaded by nginx.
      - The task fails, before writing anything, when an C(include) glob of any loaded file reaches
        O(backup_dir) (its directory, or the directory itself), even while it is empty.
      - Control characters (line feeds, NUL) are refused in every path option.
    type: path
    default: /var/backups/nginx
  validate:
    description:
      - Run C(nginx -t -c) O(nginx_conf) after writing, and restore the original bytes if it fails.
      - Only turn this off when a later step validates the whole configuration.
    type: bool
    default: true
"""
