"""The incident, reproduced and fixed on this machine: run by ``scripts/demo``.

A private nginx (127.0.0.1, its own prefix; the system nginx is never touched) proxies ``/api/`` to a
FastAPI app under uvicorn, exactly like the broken production site. The script shows the WebSocket
handshake failing, runs the ``agaii.nginx.ws_proxy`` role with ``--diff``, and proves the fix with a
``101 Switching Protocols`` and an echo. When Debian's ``chromium`` is installed, it also does what the
operator did in DevTools: headless Chromium loads a page served by the same nginx whose JavaScript opens the
WebSocket, before and after the fix, and the browser's own network events show the status (a screenshot is
kept under tests/output/demo/). Everything it starts is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".build" / "collections"))  # scripts/setup links the checkout there

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake  # noqa: E402
from tests.support.incident import INCIDENT_SITE  # noqa: E402
from tests.support.nginx_sandbox import NginxSandbox  # noqa: E402
from tests.support.processes import ManagedProcess, free_port, wait_for_port  # noqa: E402

WS_PATH = "/api/mqtt/ws/hints/session-874q8t"
ECHO = "hint for session-874q8t"
SCREENSHOTS = REPO / "tests" / "output" / "demo"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def start_backend(workdir: Path) -> ManagedProcess:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.support.backends.asgi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]
    process = ManagedProcess(argv, workdir / "uvicorn.log", cwd=REPO)
    process.start()
    wait_for_port("127.0.0.1", port, timeout=20, process=process)
    process.port = port  # type: ignore[attr-defined]
    return process


def probe(sandbox: NginxSandbox) -> bool:
    result = handshake(sandbox.ws_url(WS_PATH), host="app.example.com", echo=ECHO, timeout=5)
    print(f"   handshake to {WS_PATH}: {result.status_line or result.error}")
    if result.status == 101:
        print(f"   echo: sent {ECHO!r}, received {result.echo_received!r}")
        return result.echo_received == ECHO
    if result.body:
        print(f"   body: {result.body.strip()[:200]}")
    return False


def health(sandbox: NginxSandbox) -> int:
    request = urllib.request.Request(sandbox.url("/api/health"), headers={"Host": "app.example.com"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def run_role(sandbox: NginxSandbox, site: Path, workdir: Path) -> int:
    playbook = workdir / "fix.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Fix WebSocket proxying (the incident's fix-websocket.sh, as code)",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "roles": [
                        {
                            "role": "agaii.nginx.ws_proxy",
                            "vars": {
                                "ws_proxy_site": str(site),
                                "ws_proxy_nginx_conf": str(sandbox.conf),
                                "ws_proxy_reload_method": "signal",
                                "ws_proxy_verify_url": sandbox.ws_url(WS_PATH),
                                "ws_proxy_verify_host": "app.example.com",
                                "ws_proxy_verify_echo": True,
                            },
                        }
                    ],
                }
            ],
            indent=2,
        )
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"),
        ANSIBLE_NOCOLOR="0",
        ANSIBLE_FORCE_COLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "--diff",
        str(playbook),
    ]
    print(f"   $ ansible-playbook -i localhost, -c local --diff {playbook}", flush=True)
    return subprocess.run(command, env=env, check=False).returncode


class Browser:
    """Headless Chromium over the DevTools protocol, when Debian's chromium is installed."""

    def __init__(self, workdir: Path) -> None:
        self.chromium = None
        binary = shutil.which("chromium")
        if binary is None:
            print("   (no browser check: apt-get install chromium to see the DevTools view too)")
            return
        from tests.support.browser import Chromium

        self.chromium = Chromium(binary, workdir).start()

    def check(self, sandbox: NginxSandbox, name: str) -> bool:
        """Load the page from nginx; print the browser's own view of the WebSocket; True on a 101."""
        if self.chromium is None:
            return True
        from tests.support.browser import check_websocket_page

        result = check_websocket_page(self.chromium, sandbox.url("/"), SCREENSHOTS / f"{name}.png")
        for socket in result.sockets:
            status = f"{socket.status} {socket.status_text}" if socket.status else "no handshake response"
            print(f"   browser (Network.webSocketHandshakeResponseReceived): {socket.url} -> {status}")
            if socket.frames_received:
                print(f"   browser received: {socket.frames_received[0]!r}")
        print(f"   screenshot: {result.screenshot}")
        return any(socket.status == 101 for socket in result.sockets)

    def stop(self) -> None:
        if self.chromium is not None:
            self.chromium.stop()


def write_site(sandbox: NginxSandbox, backend_port: int) -> Path:
    """The incident's site; its static root serves the page whose JavaScript opens the WebSocket."""
    from tests.support.browser import websocket_page

    html = sandbox.write("html/index.html", websocket_page(WS_PATH, ECHO)).parent
    site = INCIDENT_SITE.format(listen=sandbox.listen, upstream=f"127.0.0.1:{backend_port}")
    return sandbox.write_site("app", site.replace("root /var/www/html;", f"root {html};"))


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="agaii-demo-"))
    backend = start_backend(workdir)
    sandbox = NginxSandbox()
    browser = None
    try:
        say(f"1. The incident: nginx on {sandbox.listen} proxies /api/ to FastAPI on 127.0.0.1:{backend.port}")
        site = write_site(sandbox, backend.port)
        sandbox.start()
        print(f"   site: {sandbox.root / 'sites-enabled' / 'app'} -> {site}")
        print(f"   /api/health through nginx: HTTP {health(sandbox)}")
        say("2. The WebSocket through nginx, before the fix")
        if probe(sandbox):
            print("   unexpected: the WebSocket already works")
            return 1
        print("   -> broken: nginx sends the upgrade request as a plain GET (no Upgrade/Connection headers)")
        browser = Browser(workdir)
        browser.check(sandbox, "browser-before-fix")
        say("3. The fix: ansible-playbook with the agaii.nginx.ws_proxy role")
        if run_role(sandbox, sandbox.root / "sites-enabled" / "app", workdir) != 0:
            print("   the role failed")
            return 1
        say("4. The proof, from outside Ansible")
        working = probe(sandbox)
        print(f"   /api/health through nginx: HTTP {health(sandbox)}")
        say("5. The browser's view, as in DevTools")
        working = browser.check(sandbox, "browser-after-fix") and working
        print("\n" + ("FIXED: 101 Switching Protocols and the echo came back." if working else "NOT FIXED"))
        return 0 if working else 1
    finally:
        if browser is not None:
            browser.stop()
        sandbox.stop()
        sandbox.cleanup()
        backend.stop()


if __name__ == "__main__":
    sys.exit(main())
