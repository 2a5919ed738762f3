"""Encodings and file attributes through ``ansible-playbook``: what is not edited stays exactly as it was.

Site files in Latin-1 (non-UTF-8 bytes in comments and quoted values), CRLF with tabs, without a final
newline, and a mix of all three get the WebSocket location (state=present) and give it back
(state=absent): the result of the round trip is the original bytes, and the inserted lines follow the
file's own line ends. A file with a UTF-8 byte order mark fails ``nginx -t`` (nginx reads the BOM as part
of the first directive name), so it is refused untouched. Owner, group, mode, extended attributes (and
the SELinux context where SELinux runs) of the real file are kept; symlinks - absolute, relative, and a
chain of two - stay symlinks to the same targets.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.reliability.conftest import Figures
from tests.reliability.harness import Playbooks, converge, module_case
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

SELINUX_ENFORCE = Path("/sys/fs/selinux/enforce")
XATTR = "user.agaii-test"
OWNER = (4321, 4322)
MODE = 0o640
WS_HEAD = re.compile(rb"location ~ \^/api/mqtt/ws/ \{(\r?\n)")


def site_text(name: str, listen: str, newline: bytes = b"\n", indent: bytes = b"    ", final: bool = True) -> bytes:
    lines = [
        b"server {",
        indent + b"listen " + listen.encode() + b";",
        indent + b"server_name " + name.encode() + b";",
        indent + b"# r\xe9sum\xe9 of the site (Latin-1)" if "latin1" in name else indent + b"# the site",
        indent + b'add_header X-Owner "Fran\xe7ois";' if "latin1" in name else indent + b"# no owner",
        b"",
        indent + b"location /api/ {",
        indent * 2 + b"proxy_pass http://127.0.0.1:9;",
        indent + b"}",
        b"}",
    ]
    text = newline.join(lines)
    return text + newline if final else text


@dataclass
class Case:
    name: str
    data: bytes
    newline: bytes
    link: str = "absolute"  # absolute | relative | chain


def cases(listen: str) -> List[Case]:
    return [
        Case("latin1.test", site_text("latin1.test", listen), b"\n"),
        Case("crlf-tabs.test", site_text("crlf-tabs.test", listen, b"\r\n", b"\t"), b"\r\n", link="relative"),
        Case("no-final-newline.test", site_text("no-final-newline.test", listen, final=False), b"\n", link="chain"),
        Case("latin1-crlf-nofinal.test", site_text("latin1-crlf-nofinal.test", listen, b"\r\n", final=False), b"\r\n"),
    ]


def install(sandbox: NginxSandbox, case: Case) -> Path:
    """The real file in sites-available/, linked from sites-enabled/ the way ``case.link`` says."""
    real = sandbox.write(f"sites-available/{case.name}", case.data)
    enabled = sandbox.path(f"sites-enabled/{case.name}")
    if case.link == "absolute":
        enabled.symlink_to(real)
    elif case.link == "relative":
        enabled.symlink_to(Path("..") / "sites-available" / case.name)
    else:
        hop = sandbox.path(f"sites-available/{case.name}.hop")
        hop.symlink_to(case.name)
        enabled.symlink_to(hop)
    os.chown(real, *OWNER)
    real.chmod(MODE)
    os.setxattr(real, XATTR, b"kept")
    return real


def attributes(path: Path) -> Dict[str, object]:
    info = path.stat()
    found: Dict[str, object] = {"uid": info.st_uid, "gid": info.st_gid, "mode": oct(info.st_mode & 0o7777)}
    found["xattr"] = os.getxattr(path, XATTR)
    if SELINUX_ENFORCE.exists():
        found["selinux"] = os.getxattr(path, "security.selinux")
    return found


def links(sandbox: NginxSandbox) -> Dict[str, Optional[str]]:
    entries = [
        sandbox.path(f"{sub}/{name}")
        for sub in ("sites-enabled", "sites-available")
        for name in sorted(os.listdir(sandbox.path(sub)))
    ]
    return {str(path): os.readlink(path) if path.is_symlink() else None for path in entries}


def run_state(playbooks: Playbooks, sandbox: NginxSandbox, names: List[str], state: str) -> Dict[str, object]:
    args = [
        {"path": str(sandbox.path(f"sites-enabled/{name}")), "nginx_conf": str(sandbox.conf), "state": state}
        for name in names
    ]
    tasks = [
        module_case(index, "agaii.nginx.ws_location", ("path", "nginx_conf", "state")) for index in range(len(names))
    ]
    run = playbooks.run(tasks, {"cases": args}, [f"case_{index}" for index in range(len(names))])
    assert run.returncode == 0, run.output[-3000:]
    return run.results


def test_encodings_line_ends_and_attributes_survive_a_round_trip(
    nginx_sandbox: NginxSandbox, tmp_path: Path, figures: Figures
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the files another owner")
    all_cases = cases(nginx_sandbox.listen)
    reals = {case.name: install(nginx_sandbox, case) for case in all_cases}
    before_attrs = {name: attributes(path) for name, path in reals.items()}
    before_links = links(nginx_sandbox)
    playbooks, names = Playbooks(tmp_path), [case.name for case in all_cases]

    present = run_state(playbooks, nginx_sandbox, names, "present")
    edited = {name: path.read_bytes() for name, path in reals.items()}
    assert nginx_sandbox.test().returncode == 0
    absent = run_state(playbooks, nginx_sandbox, names, "absent")

    for index, case in enumerate(all_cases):
        added, removed = present[f"case_{index}"], absent[f"case_{index}"]
        assert (added["changed"], removed["changed"]) == (True, True), (case.name, added, removed)
        head = WS_HEAD.search(edited[case.name])
        assert head is not None and head.group(1) == case.newline, case.name
        assert edited[case.name].count(b"\r\n") == (edited[case.name].count(b"\n") if case.newline == b"\r\n" else 0)
        assert reals[case.name].read_bytes() == case.data, f"{case.name}: the round trip changed bytes"
        assert attributes(reals[case.name]) == before_attrs[case.name], case.name
    assert links(nginx_sandbox) == before_links
    section = "encoding and attributes"
    figures.record(section, "files edited and restored byte for byte", len(all_cases))
    figures.record(section, "kinds", [case.name.removesuffix(".test") for case in all_cases])
    figures.record(section, "owner, group, mode, user xattr kept", True)
    figures.record(
        section, "SELinux context", "kept" if SELINUX_ENFORCE.exists() else "not checked: SELinux is not running here"
    )
    figures.record(section, "symlinks (absolute, relative, chain of two) unchanged", True)


def test_a_byte_order_mark_is_refused_untouched(nginx_sandbox: NginxSandbox, figures: Figures) -> None:
    data = b"\xef\xbb\xbf" + site_text("bom.test", nginx_sandbox.listen)
    real = nginx_sandbox.write_site("bom", data)
    result = converge(
        "ws_location", {"path": str(nginx_sandbox.path("sites-enabled/bom")), "nginx_conf": str(nginx_sandbox.conf)}
    )
    assert result["failed"] and "already fails" in result["msg"] and "unknown directive" in result["msg"], result
    assert real.read_bytes() == data
    figures.record("encoding and attributes", "UTF-8 BOM", "refused untouched: " + result["msg"].split(": ", 1)[1][:80])
