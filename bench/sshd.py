"""A private sshd on 127.0.0.1 for the SSH figure: generated keys, a free port, stopped by PID.

When ``sshd`` is missing, :func:`ensure_sshd` installs Debian's openssh-server with a policy-rc.d
guard (so the system service is not started), or says why it cannot.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Optional, Tuple

from tests.support.processes import LOCALHOST, ManagedProcess, free_port, wait_for_port

SSHD = Path("/usr/sbin/sshd")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
SFTP_SERVERS = (Path("/usr/lib/openssh/sftp-server"), Path("/usr/libexec/openssh/sftp-server"))
PRIVSEP_DIR = Path("/run/sshd")

Log = Callable[[str], None]


def ensure_sshd(log: Log) -> Tuple[bool, str]:
    """(True, how) when /usr/sbin/sshd is there (installing it if needed), else (False, why not)."""
    if SSHD.exists():
        return True, "sshd present"
    if os.geteuid() != 0:
        return False, "sshd is not installed and installing openssh-server needs root"
    if shutil.which("apt-get") is None:
        return False, "sshd is not installed and there is no apt-get to install openssh-server"
    log("ssh: installing openssh-server (policy-rc.d keeps the system sshd from starting) ...")
    guard = not POLICY_RC_D.exists()
    try:
        if guard:
            POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n")
            POLICY_RC_D.chmod(0o755)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-server"]
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            return False, f"apt-get install openssh-server failed: {(done.stderr or done.stdout).strip()[-300:]}"
    finally:
        if guard:
            POLICY_RC_D.unlink(missing_ok=True)
    return (True, "openssh-server installed") if SSHD.exists() else (False, "openssh-server installed no sshd")


class LoopbackSshd:
    """``sshd -D`` on 127.0.0.1:<free port> that lets the current user in with a generated key."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.home = self.dir / "home"
        self.process: Optional[ManagedProcess] = None

    def _keygen(self, path: Path) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agaii-bench", "-f", str(path)],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )

    def _config(self) -> Path:
        sftp = next((p for p in SFTP_SERVERS if p.exists()), None)
        lines = [
            f"Port {self.port}",
            f"ListenAddress {LOCALHOST}",
            f"HostKey {self.dir / 'host_ed25519'}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            f"AllowUsers {self.user}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "LogLevel ERROR",
            # A home of its own: the login shell must not source the real ~/.bashrc (on the development
            # machine it runs `pyenv init`, 0.36 s on every one of the SSH commands of each task).
            f"SetEnv HOME={self.home}",
        ]
        if sftp is not None:
            lines.append(f"Subsystem sftp {sftp}")
        config = self.dir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> LoopbackSshd:
        self._keygen(self.dir / "host_ed25519")
        self._keygen(self.key)
        authorized = self.dir / "authorized_keys"
        authorized.write_text((self.dir / "id_ed25519.pub").read_text())
        authorized.chmod(0o600)
        self.home.mkdir(mode=0o700, exist_ok=True)
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        config = self._config()
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True, capture_output=True, timeout=30)
        self.process = ManagedProcess([str(SSHD), "-D", "-e", "-f", str(config)], self.dir / "sshd.log").start()
        wait_for_port(LOCALHOST, self.port, timeout=20, process=self.process)
        return self

    def host_vars(self) -> dict:
        return {
            "ansible_connection": "ssh",
            "ansible_host": LOCALHOST,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=no",
        }

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
