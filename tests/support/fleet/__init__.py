"""A fleet of look-alike Debian servers on one machine, reached over SSH. Used by ``molecule/fleet``.

Each host is a network namespace plus a mount namespace (and its own UTS name):

* ``ip netns add <prefix>-<host>``: its own loopback, so its nginx listens on port 80 and its sshd on
  port 22 exactly like a real server, and nothing binds in the machine's network namespace;
* ``unshare --mount --uts --propagation private``: per-host directories are bind-mounted over
  ``/etc/nginx``, ``/var/log/nginx``, ``/var/lib/nginx``, ``/var/backups``, ``/run``, ``/home``,
  ``/etc/sudoers.d`` and ``/etc/{passwd,group,shadow,hosts}`` inside the namespace only, so the role runs
  with its defaults (``/etc/nginx/nginx.conf``, ``/etc/nginx/sites-enabled/default``, ``/run/nginx.pid``)
  while the machine's own ``/etc/nginx`` and nginx are never touched;
* in it run the host's backend (the FastAPI app under uvicorn on 127.0.0.1:8000), Debian's nginx
  started with ``/usr/sbin/nginx`` (Debian's own ``nginx.conf``), and an ``sshd`` that accepts one
  user, ``deploy``, by a key generated for this run, with passwordless ``sudo`` (so ``become`` matters:
  ``deploy`` cannot write ``/etc/nginx``).

The controller reaches each sshd through ``ProxyCommand=ip netns exec %h nc 127.0.0.1 %p`` (a jump into
the namespace, like a bastion host), with strict host key checking against a ``known_hosts`` written
here. No address outside 127.0.0.0/8 is used.

Everything is stopped by PID (the pid files under each host's ``run/``, then whatever is still in the
host's network namespace: nginx workers, ssh sessions, the ``nc`` relays), the namespaces are deleted
and the root directory removed: ``python -m tests.support.fleet down <root>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

IP = "/usr/sbin/ip"
NC = "/usr/bin/nc"
SSHD = "/usr/sbin/sshd"
NGINX = "/usr/sbin/nginx"
USER = "deploy"
BACKEND_PORT = 8000
SYSTEM_NGINX = Path("/etc/nginx")
PID_FILES = ("sshd.pid", "nginx.pid", "agaii-backend.pid")
NEEDED = {IP: "iproute2", NC: "netcat-openbsd", SSHD: "openssh-server", "/usr/bin/sudo": "sudo", NGINX: "nginx"}

# Bind mounts inside each host's mount namespace: host directory (relative) -> path in the namespace.
MOUNTS = (
    ("etc-nginx", "/etc/nginx"),
    ("var-log-nginx", "/var/log/nginx"),
    ("var-lib-nginx", "/var/lib/nginx"),
    ("var-backups", "/var/backups"),
    ("run", "/run"),
    ("home", "/home"),
    ("etc/sudoers.d", "/etc/sudoers.d"),
    ("etc/passwd", "/etc/passwd"),
    ("etc/group", "/etc/group"),
    ("etc/shadow", "/etc/shadow"),
    ("etc/hosts", "/etc/hosts"),
)

SSHD_CONFIG = """\
# sshd of fleet host {name}: its own network namespace, key authentication for {user} only.
Port 22
ListenAddress 127.0.0.1
HostKey {host_dir}/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
UsePAM no
AllowUsers {user}
MaxStartups 50
MaxSessions 50
Subsystem sftp /usr/lib/openssh/sftp-server
"""

INIT_SCRIPT = """\
#!/bin/sh
# Runs inside the host's network, mount and UTS namespaces (see tests/support/fleet/__init__.py).
set -eu
host_dir={host_dir}
hostname {name}
{mounts}
cd {repo}
PYTHONPATH={repo} setsid {python} -m uvicorn tests.support.backends.asgi_app:app \\
    --host 127.0.0.1 --port {backend_port} --no-proxy-headers --log-level warning \\
    >"$host_dir/logs/backend.log" 2>&1 </dev/null &
echo $! >/run/agaii-backend.pid
i=0
until {nc} -z 127.0.0.1 {backend_port}; do
    i=$((i + 1)); [ "$i" -lt 300 ] || {{ echo "backend did not start" >&2; exit 1; }}
    sleep 0.1
done
{nginx}
{sshd} -f "$host_dir/ssh/sshd_config" -E "$host_dir/logs/sshd.log"
"""


class FleetError(RuntimeError):
    """The fleet could not be built; the message says what is missing."""


@dataclass
class Host:
    """One server: the files of its /etc/nginx, and the edits made after its nginx started."""

    name: str
    files: Dict[str, str] = field(default_factory=dict)
    files_after_start: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], base: Path) -> Host:
        """``files`` and ``files_after_start``: a directory (relative to ``base``) or a mapping path -> text."""
        return cls(
            str(data["name"]), read_files(data.get("files"), base), read_files(data.get("files_after_start"), base)
        )


def read_files(source: Any, base: Path) -> Dict[str, str]:
    if not source:
        return {}
    if isinstance(source, dict):
        return {str(path): str(text) for path, text in source.items()}
    directory = base / str(source)
    if not directory.is_dir():
        raise FleetError(f"{directory} is not a directory")
    return {
        str(path.relative_to(directory)): path.read_text()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


@dataclass
class Fleet:
    """Where the fleet lives, what it runs, and its hosts."""

    root: Path
    prefix: str
    repo: Path
    python: str
    hosts: List[Host]
    group: str = "fleet"
    host_vars: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    group_vars: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Dict[str, Any], base: Path) -> Fleet:
        """A fleet from its spec (see ``molecule/fleet/fleet.yml``); relative paths are relative to ``base``."""
        hosts = [Host.from_dict(item, base) for item in spec["hosts"]]
        return cls(
            root=Path(spec["root"]),
            prefix=str(spec.get("prefix", "agaii-fleet")),
            repo=Path(spec.get("repo") or Path(__file__).resolve().parents[3]),
            python=str(spec.get("python") or sys.executable),
            hosts=hosts,
            group=str(spec.get("group", "fleet")),
            group_vars=dict(spec.get("group_vars") or {}),
        )

    def netns(self, host: Host) -> str:
        return f"{self.prefix}-{host.name}"

    def host_dir(self, host: Host) -> Path:
        return self.root / "hosts" / host.name

    @property
    def client_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def system_digest(self) -> Path:
        return self.root / "system-etc-nginx.sha256"


def run(argv: List[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise FleetError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
    return result


def check_machine() -> None:
    if os.geteuid() != 0:
        raise FleetError("the fleet needs root (network and mount namespaces, sshd, nginx on port 80)")
    missing = sorted({package for path, package in NEEDED.items() if not os.access(path, os.X_OK)})
    if missing:
        raise FleetError(f"missing Debian packages: {' '.join(missing)} (the scenario's prepare installs them)")


def free_id(start: int = 2000) -> int:
    """A uid (and gid) that the machine's passwd and group do not use."""
    used = {entry.pw_uid for entry in pwd.getpwall()}
    used |= {int(line.split(":")[2]) for line in Path("/etc/group").read_text().splitlines() if line.count(":") >= 3}
    uid = start
    while uid in used:
        uid += 1
    return uid


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def layout_nginx(etc_nginx: Path, host: Host) -> None:
    """Debian's /etc/nginx as the package installs it, with the host's own sites and conf.d."""
    shutil.copytree(SYSTEM_NGINX, etc_nginx, symlinks=True)
    for sub in ("sites-available", "sites-enabled", "conf.d"):
        shutil.rmtree(etc_nginx / sub)
        (etc_nginx / sub).mkdir(mode=0o755)
    for relpath, text in host.files.items():
        write(etc_nginx / relpath, text)
    if (etc_nginx / "sites-available" / "default").exists() and "sites-enabled/default" not in host.files:
        (etc_nginx / "sites-enabled" / "default").symlink_to("/etc/nginx/sites-available/default")


def layout_accounts(host_dir: Path, host: Host, uid: int, public_key: str) -> None:
    """passwd/group/shadow of the machine plus ``deploy``; its home with the run's key; sudo for it."""
    etc = host_dir / "etc"
    write(etc / "passwd", Path("/etc/passwd").read_text() + f"{USER}:x:{uid}:{uid}::/home/{USER}:/bin/sh\n")
    write(etc / "group", Path("/etc/group").read_text() + f"{USER}:x:{uid}:\n")
    shadow = Path("/etc/shadow")
    write(etc / "shadow", shadow.read_text() + f"{USER}:*:19000:0:99999:7:::\n", 0o640)
    shutil.copymode(shadow, etc / "shadow")
    with contextlib.suppress(KeyError, OSError):
        os.chown(etc / "shadow", 0, shadow.stat().st_gid)
    write(etc / "hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    write(etc / "sudoers.d" / USER, f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    (etc / "sudoers.d").chmod(0o755)
    home = host_dir / "home" / USER
    write(home / ".ssh" / "authorized_keys", public_key, 0o600)
    for path in (home, home / ".ssh", home / ".ssh" / "authorized_keys"):
        os.chown(path, uid, uid)
    home.chmod(0o750)
    (home / ".ssh").chmod(0o700)


def init_script(fleet: Fleet, host: Host, host_dir: Path) -> str:
    mounts = "\n".join(f'mount --bind "$host_dir/{source}" {target}' for source, target in MOUNTS)
    return INIT_SCRIPT.format(
        host_dir=host_dir,
        name=host.name,
        mounts=mounts,
        repo=fleet.repo,
        python=fleet.python,
        backend_port=BACKEND_PORT,
        nc=NC,
        nginx=NGINX,
        sshd=SSHD,
    )


def prepare_host(fleet: Fleet, host: Host, uid: int, public_key: str) -> str:
    """Lay out the host's directories; return its known_hosts line."""
    host_dir = fleet.host_dir(host)
    for sub in ("var-log-nginx", "var-lib-nginx", "var-backups", "run/sshd", "home", "logs", "ssh"):
        (host_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o755)
    shutil.chown(host_dir / "var-log-nginx", "root", "adm")
    layout_nginx(host_dir / "etc-nginx", host)
    layout_accounts(host_dir, host, uid, public_key)
    key = host_dir / "ssh" / "ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)])
    write(host_dir / "ssh" / "sshd_config", SSHD_CONFIG.format(name=host.name, user=USER, host_dir=host_dir))
    write(host_dir / "init.sh", init_script(fleet, host, host_dir), 0o755)
    key_type, key_data = key.with_suffix(".pub").read_text().split()[:2]
    return f"{fleet.netns(host)} {key_type} {key_data}"


def launch_host(fleet: Fleet, host: Host) -> subprocess.Popen[bytes]:
    """Create the host's network namespace and run its init script in new mount and UTS namespaces."""
    netns = fleet.netns(host)
    host_dir = fleet.host_dir(host)
    run([IP, "netns", "add", netns])
    run([IP, "-n", netns, "link", "set", "lo", "up"])
    namespaces = ["unshare", "--mount", "--uts", "--propagation", "private", "--"]
    with (host_dir / "logs" / "init.log").open("wb") as log:
        return subprocess.Popen(
            [IP, "netns", "exec", netns, *namespaces, "/bin/sh", str(host_dir / "init.sh")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish_host(fleet: Fleet, host: Host, init: subprocess.Popen[bytes]) -> None:
    """Wait for the init script (backend, nginx and sshd started), then make the post-start edits."""
    host_dir = fleet.host_dir(host)
    try:
        returncode = init.wait(timeout=120)
    except subprocess.TimeoutExpired:
        init.kill()
        init.wait()
        returncode = -1
    if returncode != 0:
        raise FleetError(f"host {host.name} did not start (logs below; the fleet is taken down):\n{tail(host_dir)}")
    for relpath, text in host.files_after_start.items():
        write(host_dir / "etc-nginx" / relpath, text)


def tail(host_dir: Path) -> str:
    parts = []
    for name in ("init.log", "sshd.log", "backend.log"):
        with contextlib.suppress(OSError):
            parts.append(f"--- {name}\n" + (host_dir / "logs" / name).read_text()[-2000:])
    with contextlib.suppress(OSError):
        parts.append("--- nginx error.log\n" + (host_dir / "var-log-nginx" / "error.log").read_text()[-2000:])
    return "\n".join(parts)


def ssh_common_args(fleet: Fleet) -> str:
    return (
        f'-o ProxyCommand="{IP} netns exec %h {NC} 127.0.0.1 %p" '
        f"-o UserKnownHostsFile={fleet.known_hosts} -o StrictHostKeyChecking=yes"
    )


def inventory(fleet: Fleet) -> Dict[str, Any]:
    """An inventory like a user's: connection settings only, plus the group's variables."""
    group_vars: Dict[str, Any] = {
        "ansible_user": USER,
        "ansible_ssh_private_key_file": str(fleet.client_key),
        "ansible_ssh_common_args": ssh_common_args(fleet),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_pipelining": True,
        **fleet.group_vars,
    }
    hosts = {host.name: {"ansible_host": fleet.netns(host)} for host in fleet.hosts}
    return {"all": {"children": {fleet.group: {"hosts": hosts, "vars": group_vars}}}}


def up(fleet: Fleet) -> None:
    """Build and start every host; on any failure, take down what was started and re-raise."""
    check_machine()
    if fleet.root.exists():
        down(fleet.root)
    (fleet.root / "ssh").mkdir(parents=True, mode=0o755)
    fleet.root.chmod(0o755)
    (fleet.root / "fleet.json").write_text(json.dumps(state(fleet), indent=2))
    # The machine's own /etc/nginx, before anything runs: the scenario proves it unchanged at the end.
    write(fleet.system_digest, tree_digest(SYSTEM_NGINX) + "\n")
    try:
        run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agaii-fleet-controller", "-f", str(fleet.client_key)]
        )
        public_key = fleet.client_key.with_suffix(".pub").read_text()
        uid = free_id()
        known = [prepare_host(fleet, host, uid, public_key) for host in fleet.hosts]
        write(fleet.known_hosts, "\n".join(known) + "\n")
        inits = [(host, launch_host(fleet, host)) for host in fleet.hosts]  # the hosts boot side by side
        for host, init in inits:
            finish_host(fleet, host, init)
        write(fleet.inventory, json.dumps(inventory(fleet), indent=2) + "\n")
        wait_for_ssh(fleet)
    except BaseException:
        down(fleet.root)
        raise


def wait_for_ssh(fleet: Fleet, timeout: float = 30.0) -> None:
    """Each host answers ``ssh deploy@host sudo -n true``: the key, the jump and sudo all work."""
    for host in fleet.hosts:
        argv = ["ssh", "-i", str(fleet.client_key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        argv += ["-o", f"ProxyCommand={IP} netns exec %h {NC} 127.0.0.1 %p"]
        argv += ["-o", f"UserKnownHostsFile={fleet.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        argv += [f"{USER}@{fleet.netns(host)}", "sudo", "-n", "true"]
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise FleetError(f"ssh to {host.name} failed: {result.stderr.strip()}\n{tail(fleet.host_dir(host))}")
            time.sleep(0.2)


def state(fleet: Fleet) -> Dict[str, Any]:
    return {"root": str(fleet.root), "hosts": {host.name: fleet.netns(host) for host in fleet.hosts}}


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def netns_pids(netns: str) -> List[int]:
    result = subprocess.run([IP, "netns", "pids", netns], capture_output=True, text=True, check=False)
    return [int(word) for word in result.stdout.split()] if result.returncode == 0 else []


def stop_pids(pids: List[int], timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not any(pid_alive(pid) for pid in pids):
            return


def read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def down(root: Path) -> List[str]:
    """Stop every process the fleet started, by PID; delete its namespaces; remove ``root``.

    Safe to run again and after a partial start. Returns what it did, for the log.
    """
    done: List[str] = []
    hosts: Dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        hosts = json.loads((root / "fleet.json").read_text())["hosts"]
    for name, netns in hosts.items():
        run_dir = root / "hosts" / name / "run"
        pids = [pid for pid in (read_pid(run_dir / pid_file) for pid_file in PID_FILES) if pid]
        stop_pids(pids)
        leftovers = netns_pids(netns)  # nginx workers, ssh sessions, the controller's nc relays
        stop_pids(leftovers)
        done.append(f"{name}: stopped {len(pids)} daemons and {len(leftovers)} other processes")
        if Path(f"/run/netns/{netns}").exists():
            subprocess.run([IP, "netns", "del", netns], capture_output=True, check=False)
            done.append(f"{name}: deleted network namespace {netns}")
    if root.exists():
        shutil.rmtree(root)
        done.append(f"removed {root}")
    return done


def tree_digest(path: Path) -> str:
    """SHA-256 over every path, link target and file content under ``path`` (to prove it untouched)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(path)):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            item = Path(dirpath) / name
            digest.update(str(item).encode() + b"\0")
            if item.is_symlink():
                digest.update(os.readlink(item).encode())
            elif item.is_file():
                digest.update(item.read_bytes())
    return digest.hexdigest()
