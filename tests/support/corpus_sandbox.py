"""Place a real-world corpus file in an :class:`NginxSandbox` so that ``nginx -t`` can judge it.

``prepare(corpus_file, sandbox)`` wraps the file in the smallest context it needs (the context
``SOURCES.tsv`` names: a site file inside ``http{}``, the main file itself, or a wrapper ``server{}``)
and stubs what the file expects from its environment, the way ``SOURCES.tsv``'s ``nginx_t_stubbed``
column was made:

- ``listen``: every address becomes ``127.0.0.1:<port>`` (one port per distinct address as written;
  the first is the sandbox's port). Servers without ``listen`` are left alone: only ``nginx -t`` runs.
- include targets: relative ones get a file where nginx looks (the prefix is the sandbox root);
  absolute ones are rewritten into the sandbox (``/etc/nginx/x`` -> ``<root>/x``, any other
  ``/p`` -> ``<root>/stub/p``). A stub is a copy of Debian's file of that name when there is one
  (``fastcgi_params``, ``mime.types``, ...), else empty. Globs are rewritten, never populated.
- certificates and keys: one self-signed certificate generated once with ``openssl`` (key and
  certificate in one PEM, so it serves either directive); ``ssl_dhparam`` gets ffdhe2048 parameters.
- logs, lock, temp and cache paths: absolute ones are moved under the sandbox root; a main file's ``pid``
  is the sandbox's pid file (added when the file has none), so that the sandbox can start and stop it.
- ``user``: ``nobody nogroup`` (nginx -t runs as root in CI and checks the account).
- upstream hosts: a host name (not an IP, ``localhost``, a variable, a unix socket or an upstream
  defined in the file) in ``*_pass`` or an upstream's ``server`` becomes ``127.0.0.1``, port and URI kept.
  With ``backend`` (``127.0.0.1:<port>`` of a real server), every ``proxy_pass`` address (name, IP,
  unix socket; ``https`` becomes ``http``), every upstream ``server`` and the ``set $upstream_app``/
  ``$upstream_port``/``$upstream_proto`` values of reverse-proxy bundles point at that server instead,
  so that requests through the placed file really reach it (the URI part is kept).
- with ``newer_syntax``: ``http2 on;`` (nginx 1.25.1) is blanked out, so that an older nginx can run the
  file (clients of the sandbox speak HTTP/1.1 anyway); without it such a file fails ``nginx -t``.
- main files without ``events{}`` get ``events {} `` in front of their first byte; main files get the
  sandbox's ``access_log``/temp paths (and a certificate when a ``listen ... ssl`` needs one) right
  after ``http {``, on the same line.

Every change is a :class:`Stub` (a byte range of the original and its replacement) that never adds or
removes a line feed, so line numbers of the placed file are the corpus file's. Directive names, the
``location`` lines and every byte outside the stubs are the corpus bytes. Tests plan against
``Prepared.data`` (the bytes as placed), write candidates with ``Prepared.place`` and judge them with
``Prepared.test``.
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Directive, parse_bytes, walk_directives
from tests.support.corpus import CORPUS_DIR
from tests.support.nginx_sandbox import SYSTEM_NGINX_DIR, TEMP_KINDS, NginxSandbox
from tests.support.processes import LOCALHOST, free_port

STUB_HOST = LOCALHOST
STUB_USER = "nobody nogroup"
DEBIAN_FILES = (
    "fastcgi.conf",
    "fastcgi_params",
    "koi-utf",
    "koi-win",
    "mime.types",
    "proxy_params",
    "scgi_params",
    "uwsgi_params",
    "win-utf",
)
CERT_DIRECTIVES = frozenset(
    f"{prefix}{name}"
    for prefix in ("", "proxy_", "grpc_", "uwsgi_")
    for name in ("ssl_certificate", "ssl_certificate_key", "ssl_trusted_certificate")
) | {"ssl_client_certificate"}
PASS_DIRECTIVES = frozenset({"proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "memcached_pass"})
LOG_DIRECTIVES = frozenset({"access_log", "error_log"})
TEMP_DIRECTIVES = frozenset(f"{kind}_temp_path" for kind in TEMP_KINDS)
CACHE_DIRECTIVES = frozenset(f"{kind}_cache_path" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
NON_HTTP_BLOCKS = frozenset({"stream", "mail", "events"})
# The upstream variables of linuxserver/SWAG proxy samples: (host, port, scheme) index of the backend stub.
BUNDLE_VARIABLES = {"$upstream_app": 0, "$upstream_port": 1, "$upstream_proto": 2}
MODULES_DIR = Path("/usr/lib/nginx/modules")
_CONTEXT = re.compile(r"\bctx=(\w+)")
_DUMP_MARKER = re.compile(rb"^# configuration file (.+):\r?\n", re.M)
_NEWLINE = b"\n"

# Modules a corpus file may need, by the directive nginx calls unknown: (module, Debian package, .so).
MODULES: Dict[str, Tuple[str, str, str]] = {
    "stream": ("stream", "libnginx-mod-stream", "ngx_stream_module.so"),
    "lua": ("lua", "libnginx-mod-http-lua", "ngx_http_lua_module.so"),
    "more_set_headers": (
        "headers-more",
        "libnginx-mod-http-headers-more-filter",
        "ngx_http_headers_more_filter_module.so",
    ),
    "echo": ("echo", "libnginx-mod-http-echo", "ngx_http_echo_module.so"),
}
_SKIP_CATEGORIES: Sequence[Tuple[str, str]] = (
    (r'"\$\{|"\$[A-Z_]+"', "unfilled template placeholder"),
    (r"unknown log format|unknown \"[a-z_]+\" variable|no port in upstream", "needs definitions from other files"),
    (r"invalid parameter \"resolve\"", "syntax newer than nginx 1.22"),
    (
        r"invalid number of arguments|is not allowed here|no servers are inside upstream",
        "invalid as a stand-alone file",
    ),
)


# ---------------------------------------------------------------------------------- SOURCES.tsv


@dataclass(frozen=True)
class SourceRow:
    """One line of the corpus's SOURCES.tsv: how the file was made to pass ``nginx -t``."""

    file: str
    note: str
    nginx_t: str
    nginx_t_stubbed: str
    nginx_t_stubbed_mods: str

    @property
    def context(self) -> str:
        match = _CONTEXT.search(self.nginx_t_stubbed) or _CONTEXT.search(self.nginx_t)
        return match.group(1) if match else "http"

    @property
    def stubbed_pass(self) -> bool:
        return self.nginx_t_stubbed.startswith("PASS")

    @property
    def mods_pass(self) -> bool:
        return self.nginx_t_stubbed_mods.startswith("PASS")

    @property
    def failure(self) -> str:
        """nginx's message for the stubbed file ('' when it passes)."""
        return "" if self.stubbed_pass else self.nginx_t_stubbed.split(": ", 1)[-1]


def read_sources(corpus_dir: Path = CORPUS_DIR) -> Dict[str, SourceRow]:
    with (corpus_dir / "SOURCES.tsv").open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if "nginx_t_stubbed" not in (rows.fieldnames or ()):
            return {}  # a SOURCES.tsv without nginx -t columns (tests/data/field): contexts are guessed
        return {
            row["file"]: SourceRow(
                row["file"], row["note"], row["nginx_t"], row["nginx_t_stubbed"], row["nginx_t_stubbed_mods"]
            )
            for row in rows
        }


# ------------------------------------------------------------------------------ stub material


@dataclass(frozen=True)
class StubMaterial:
    """A self-signed key+certificate PEM and DH parameters, made once per test session."""

    pem: bytes
    dhparam: bytes


_MATERIAL: Dict[str, Optional[StubMaterial]] = {}


def stub_material() -> Optional[StubMaterial]:
    """The session's certificate material, or None when ``openssl`` is not installed."""
    if "material" not in _MATERIAL:
        _MATERIAL["material"] = _make_material()
    return _MATERIAL["material"]


def _make_material() -> Optional[StubMaterial]:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    with tempfile.TemporaryDirectory(prefix="corpus-cert-") as tmp:
        key, cert, dh = (Path(tmp) / name for name in ("key.pem", "cert.pem", "dh.pem"))
        request = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        files = ["-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=corpus.invalid"]
        subprocess.run([*request, *files], check=True, capture_output=True, timeout=60)
        dh_argv = [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"]
        subprocess.run([*dh_argv, "-out", str(dh)], check=True, capture_output=True, timeout=60)
        return StubMaterial(pem=key.read_bytes() + cert.read_bytes(), dhparam=dh.read_bytes())


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Stub:
    """``original[start:end]`` (on ``line``) became ``replacement`` in the placed file."""

    kind: str
    line: int
    start: int
    end: int
    original: bytes
    replacement: bytes


@dataclass
class Prepared:
    """A corpus file as placed in a sandbox, with the map from its original bytes to the placed ones."""

    name: str
    source: Path
    row: Optional[SourceRow]
    context: str
    sandbox: NginxSandbox
    original: bytes
    data: bytes
    path: Path
    stubs: List[Stub]
    skip_reason: Optional[str] = None
    baseline: Optional[subprocess.CompletedProcess] = None
    notes: List[str] = field(default_factory=list)

    @property
    def kinds(self) -> List[str]:
        return sorted({stub.kind for stub in self.stubs})

    @property
    def passes(self) -> bool:
        """Does ``nginx -t`` accept the placed, unedited file?"""
        return self.baseline is not None and self.baseline.returncode == 0

    @property
    def expected_to_pass(self) -> bool:
        """SOURCES.tsv says the stubbed file passes with Debian's nginx (no extra module)."""
        return self.row is not None and self.row.stubbed_pass

    @property
    def baseline_message(self) -> str:
        return _nginx_message(self.baseline.stderr) if self.baseline is not None else ""

    def to_placed(self, offset: int) -> int:
        """Where byte ``offset`` of the corpus file is in ``data`` (an offset inside a stub maps to its start)."""
        shift = 0
        for stub in self.stubs:
            if offset < stub.start:
                break
            if offset == stub.start or offset < stub.end:
                return stub.start + shift
            shift += len(stub.replacement) - (stub.end - stub.start)
        return offset + shift

    def to_original(self, offset: int) -> int:
        """The inverse of :meth:`to_placed` for offsets outside every stub."""
        shift = 0
        for stub in self.stubs:
            placed_start = stub.start + shift
            if offset < placed_start:
                break
            placed_end = placed_start + len(stub.replacement)
            if offset < placed_end:
                return stub.start
            shift += len(stub.replacement) - (stub.end - stub.start)
        return offset - shift

    def dump(self) -> bytes:
        """``nginx -T`` stdout as bytes (not decoded: corpus files may be Latin-1 or EUC-KR)."""
        sandbox = self.sandbox
        argv = [sandbox.nginx_bin, "-p", f"{sandbox.root}/", "-c", str(sandbox.conf), "-e", "stderr", "-T"]
        result = subprocess.run(argv, capture_output=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"nginx -T failed: {result.stderr.decode('utf-8', 'replace')}")
        return result.stdout

    def loaded_name(self, dump: bytes) -> str:
        """The name nginx loaded the placed file by (``sites-enabled/<name>`` for a site), from a dump."""
        wanted = os.path.realpath(self.path)
        for match in _DUMP_MARKER.finditer(dump):
            name = match.group(1).decode("utf-8", "surrogateescape")
            if os.path.realpath(name) == wanted:
                return name
        raise RuntimeError(f"nginx -T does not list {self.path}")

    def place(self, data: bytes) -> None:
        """Write ``data`` where the corpus file lives in the sandbox (in place: links are kept)."""
        self.path.write_bytes(data)

    def restore(self) -> None:
        self.place(self.data)

    def test(self, data: Optional[bytes] = None) -> subprocess.CompletedProcess:
        """``nginx -t`` with ``data`` in place of the file (the placed bytes are restored after)."""
        if data is None:
            return self.sandbox.test()
        self.place(data)
        try:
            return self.sandbox.test()
        finally:
            self.restore()


def _nginx_message(stderr: str) -> str:
    """The first [emerg]/[alert] text of nginx -t, with the sandbox root left in."""
    for line in stderr.splitlines():
        match = re.search(r"\[(emerg|alert|crit)\]\s+(?:\d+#\d+: )?(.*)", line)
        if match:
            return match.group(2)
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


# ------------------------------------------------------------------------------------ prepare


def prepare(
    corpus_file: Path,
    sandbox: NginxSandbox,
    row: Optional[SourceRow] = None,
    backend: Optional[str] = None,
    newer_syntax: bool = False,
) -> Prepared:
    """Place ``corpus_file`` in ``sandbox`` with its stubs and run ``nginx -t`` on it once.

    ``backend`` (``127.0.0.1:<port>``) sends every proxied request of the file to that server;
    ``newer_syntax`` blanks out ``http2 on;`` (nginx 1.25.1) for an older nginx.

    ``row`` defaults to the file's SOURCES.tsv line. The result says whether nginx accepts the placed
    file (``passes``) and, when it does not, why that is expected (``skip_reason``): a module that is
    not installed, a placeholder, definitions from other files, or a file that is invalid on purpose.
    Raises nothing for a file nginx rejects; the caller compares ``passes`` with ``expected_to_pass``.
    """
    if row is None:
        row = read_sources(corpus_file.parent).get(corpus_file.name)
    original = corpus_file.read_bytes()
    context = row.context if row is not None else _guess_context(original)
    modules = _installed_modules(row)
    stubber = _Stubber(sandbox, original, corpus_file.name, context, modules, backend, newer_syntax)
    data, stubs = stubber.run()
    path = _place(sandbox, corpus_file.name, data, context)
    prepared = Prepared(
        name=corpus_file.name,
        source=corpus_file,
        row=row,
        context=context,
        sandbox=sandbox,
        original=original,
        data=data,
        path=path,
        stubs=stubs,
        notes=stubber.notes,
    )
    if stubber.missing_material:
        prepared.skip_reason = "needs a stub certificate, but openssl is not installed"
        return prepared
    prepared.notes += [f"loaded module {so.name}" for so in modules]
    prepared.baseline = sandbox.test()
    if not prepared.passes:
        prepared.skip_reason = _skip_reason(row, prepared.baseline_message)
    return prepared


def _guess_context(data: bytes) -> str:
    tops = {d.name for d in parse_bytes(data, "<corpus>", check=False).directives}
    if tops & {"http", "events", "stream", "worker_processes", "user"}:
        return "main"
    if "server" in tops or "map" in tops or "upstream" in tops:
        return "http"
    return "server"


def skip_category(message: str) -> str:
    """The category of an ``nginx -t`` failure of a stubbed file (the categories SOURCES.tsv uses)."""
    module = _module_for(message)
    if module is not None:
        return f"needs module {module[0]} ({module[1]})"
    if 'unknown directive "http2"' in message:  # `http2 on;` came with nginx 1.25.1
        return "syntax newer than nginx 1.22"
    for pattern, category in _SKIP_CATEGORIES:
        if re.search(pattern, message):
            return category
    return "fails nginx -t even stubbed"


def _skip_reason(row: Optional[SourceRow], observed: str) -> Optional[str]:
    """Why nginx -t rejecting the placed file is expected (None: it is not, the harness is wrong)."""
    if row is None:
        return f"not in SOURCES.tsv; nginx -t says: {observed}"
    if row.stubbed_pass:
        return None
    failure = row.failure
    if row.mods_pass:
        module = _module_for(failure)
        return f"needs module {module[0]} ({module[1]}, not installed)" if module else f"needs a module: {failure}"
    module = _module_for(failure)
    if module is not None:  # it needs a module, and fails for another reason even with it
        failure = row.nginx_t_stubbed_mods.split(": ", 1)[-1]
    extra = f"; also needs module {module[0]} ({module[1]})" if module else ""
    for pattern, category in _SKIP_CATEGORIES:
        if re.search(pattern, failure):
            return f"{category}{extra}: {failure}"
    return f"fails nginx -t even stubbed{extra}: {failure}"


def _module_for(message: str) -> Optional[Tuple[str, str, str]]:
    match = re.search(r'unknown directive "([^"]+)"', message)
    if not match:
        return None
    directive = match.group(1)
    if "lua" in directive:
        return MODULES["lua"]
    return MODULES.get(directive)


def _installed_modules(row: Optional[SourceRow]) -> List[Path]:
    """Installed dynamic modules the file needs (SOURCES.tsv: it passes only with extra modules)."""
    if row is None or row.stubbed_pass or not row.mods_pass:
        return []
    module = _module_for(row.failure)
    so = MODULES_DIR / module[2] if module else None
    return [so] if so is not None and so.is_file() else []


def _place(sandbox: NginxSandbox, name: str, data: bytes, context: str) -> Path:
    if context == "main":
        sandbox.conf.write_bytes(data)
        return sandbox.conf
    if context == "http":
        return sandbox.write_site(name, data)
    fragment = sandbox.write(f"corpus/{name}", data)
    port = free_port()
    body = (
        f"    include {fragment};\n"
        if context == "server"
        else f"    location / {{\n        include {fragment};\n    }}\n"
    )
    sandbox.write_site("corpus-wrapper", f"server {{\n    listen {LOCALHOST}:{port};\n{body}}}\n")
    return fragment


# ------------------------------------------------------------------------------------ stubbing


def _ancestors(directive: Directive) -> List[str]:
    names, node = [], directive.parent
    while node is not None:
        names.append(node.name)
        node = node.parent
    return names


class _Stubber:
    """Compute the stubs of one file and create what they point at inside the sandbox."""

    def __init__(
        self,
        sandbox: NginxSandbox,
        data: bytes,
        name: str,
        context: str,
        modules: List[Path],
        backend: Optional[str] = None,
        newer_syntax: bool = False,
    ) -> None:
        self.modules = modules
        self.backend = backend
        self.newer_syntax = newer_syntax
        self.sandbox = sandbox
        self.root = sandbox.root
        self.data = data
        self.name = name
        self.context = context
        self.directives = parse_bytes(data, name, check=False).directives
        self.stubs: List[Stub] = []
        self.notes: List[str] = []
        self.missing_material = False
        self.ports: Dict[str, int] = {}
        self.moved: Dict[Tuple[str, str], str] = {}
        self.upstreams = {d.args[0] for d in walk_directives(self.directives) if d.name == "upstream" and d.args}

    def run(self) -> Tuple[bytes, List[Stub]]:
        for directive in walk_directives(self.directives):
            if not set(_ancestors(directive)) & NON_HTTP_BLOCKS or directive.name in ("user", "pid", "lock_file"):
                self._stub(directive)
        if self.context == "main":
            for so in self.modules:
                self._insert(0, "module", f"load_module {so}; ".encode())
            self._main_extras()
        else:
            for so in self.modules:
                self.sandbox.write(f"modules-enabled/50-corpus-{so.stem}.conf", f"load_module {so};\n")
            self._http_extras()
        self.stubs.sort(key=lambda s: (s.start, s.end))
        for before, after in zip(self.stubs, self.stubs[1:]):
            assert after.start >= before.end, f"overlapping stubs {before} and {after}"
        return _apply(self.data, self.stubs), self.stubs

    # -- one directive ---------------------------------------------------------------------

    def _stub(self, d: Directive) -> None:
        name = d.name
        if name == "listen" and d.args and "server" in _ancestors(d):
            self._replace_arg(d, 0, "listen", self._listen_address(d.args[0]))
        elif name == "include" and d.args:
            self._include(d)
        elif name in CERT_DIRECTIVES and d.args:
            self._material_file(d, "cert")
        elif name == "ssl_dhparam" and d.args:
            self._material_file(d, "dhparam")
        elif name in LOG_DIRECTIVES and d.args:
            self._log(d)
        elif name == "pid" and d.args and d.parent is None:
            self._replace_arg(d, 0, "pid", str(self.sandbox.pid_file))
        elif name in ("pid", "lock_file", "working_directory") and d.args:
            self._absolute_to_root(d, name, directory=name == "working_directory")
        elif name in TEMP_DIRECTIVES or name in CACHE_DIRECTIVES:
            self._absolute_to_root(d, "paths", directory=True)
        elif name == "user" and d.args:
            self._replace_args(d, "user", STUB_USER)
        elif name == "proxy_pass" and d.args and self.backend is not None:
            self._proxy_to_backend(d, self.backend)
        elif name in PASS_DIRECTIVES and d.args:
            self._host(d, with_scheme="://" in d.args[0], upstream_ok=True)
        elif name == "server" and d.args and d.parent is not None and d.parent.name == "upstream":
            if self.backend is not None:
                self._replace_arg(d, 0, "backend", self.backend)
            else:
                self._host(d, with_scheme=False, upstream_ok=False)
        elif name == "set" and len(d.args) == 2 and self.backend is not None:
            self._bundle_variable(d, self.backend)
        elif name == "http2" and d.args == ["on"] and self.newer_syntax:
            self._add("newer-syntax", d.line, d.start, d.end, b"")

    def _listen_address(self, address: str) -> str:
        if address not in self.ports:
            self.ports[address] = self.sandbox.port if not self.ports else free_port()
        return f"{LOCALHOST}:{self.ports[address]}"

    def _include(self, d: Directive) -> None:
        pattern = d.args[0]
        if "$" in pattern:
            return
        if posixpath.isabs(pattern):
            target = self._sandbox_path(pattern)
            self._replace_arg(d, 0, "include", target)
        else:
            target = str(self.root / pattern)
        self._ensure_include(target, pattern)

    def _sandbox_path(self, absolute: str) -> str:
        system = str(SYSTEM_NGINX_DIR) + "/"
        if absolute.startswith(system):
            return str(self.root / absolute[len(system) :])
        return str(self.root / "stub" / absolute.lstrip("/"))

    def _ensure_include(self, target: str, written: str, depth: int = 0) -> None:
        if any(ch in target for ch in "*?["):
            return
        path = Path(target)
        if path.exists() or depth > 3:
            return
        content = _debian_copy(written)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o644)
        for nested in parse_bytes(content, target, check=False).walk() if content else ():
            if nested.name == "include" and nested.args and not posixpath.isabs(nested.args[0]):
                self._ensure_include(str(self.root / nested.args[0]), nested.args[0], depth + 1)

    def _material_file(self, d: Directive, kind: str) -> None:
        value = d.args[0]
        if "$" in value or value.startswith("data:"):
            return
        material = stub_material()
        if material is None:
            self.missing_material = True
            return
        content = material.pem if kind == "cert" else material.dhparam
        if posixpath.isabs(value):
            target = str(self.root / "stub" / value.lstrip("/"))
            self._replace_arg(d, 0, "cert", target)
        else:
            target = str(self.root / value)
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    def _log(self, d: Directive) -> None:
        value = d.args[0]
        if value in ("off", "stderr") or value.startswith(("syslog:", "memory:", "/dev/")) or "$" in value:
            return
        if posixpath.isabs(value):
            self._replace_arg(d, 0, "logs", self._moved("logs", value, directory=False))
        else:
            (self.root / value).parent.mkdir(parents=True, exist_ok=True)

    def _absolute_to_root(self, d: Directive, kind: str, directory: bool) -> None:
        if not d.args or "$" in d.args[0]:
            return
        value = d.args[0]
        if posixpath.isabs(value):
            self._replace_arg(d, 0, kind, self._moved(d.name, value, directory))
        elif not directory:
            (self.root / value).parent.mkdir(parents=True, exist_ok=True)

    def _moved(self, kind: str, value: str, directory: bool) -> str:
        key = (kind, value)
        if key not in self.moved:
            flat = re.sub(r"[^A-Za-z0-9._-]+", "_", value.strip("/")) or "root"
            base = self.root / ("logs" if kind == "logs" else "stub-paths") / f"{len(self.moved)}-{flat}"
            base.parent.mkdir(parents=True, exist_ok=True)
            if directory and kind == "working_directory":
                base.mkdir(parents=True, exist_ok=True)
            self.moved[key] = str(base)
        return self.moved[key]

    def _host(self, d: Directive, with_scheme: bool, upstream_ok: bool) -> None:
        value = d.args[0]
        start = 0
        if with_scheme or "://" in value:
            scheme_end = value.find("://")
            if scheme_end < 0:
                return
            start = scheme_end + 3
        rest = value[start:]
        if rest.startswith("unix:") or "$" in rest:
            return
        end = len(rest)
        for stop in ("/", "?"):
            index = rest.find(stop)
            if index >= 0:
                end = min(end, index)
        hostport = rest[:end]
        if hostport.startswith("["):
            return  # an IPv6 literal
        host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
        if not host or host == "localhost" or _is_ip(host) or (upstream_ok and host in self.upstreams):
            return
        new_value = value[:start] + STUB_HOST + value[start + len(host) :]
        self._replace_arg(d, 0, "hosts", new_value)

    def _proxy_to_backend(self, d: Directive, backend: str) -> None:
        """``proxy_pass`` to ``backend``: the address (not an upstream of the file) is replaced, the URI kept."""
        value = d.args[0]
        _scheme, separator, rest = value.partition("://")
        if not separator or "$" in value:
            return  # variables: the bundle's `set` lines are stubbed instead
        if rest.startswith("unix:"):
            path_end = rest.find(":", len("unix:"))
            address, uri = (rest, "") if path_end < 0 else (rest[:path_end], rest[path_end + 1 :])
        else:
            cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
            address, uri = rest[:cut], rest[cut:]
        if address in self.upstreams:
            return
        self._replace_arg(d, 0, "backend", f"http://{backend}{uri}")

    def _bundle_variable(self, d: Directive, backend: str) -> None:
        """linuxserver/SWAG style ``set $upstream_app|port|proto`` lines, pointed at ``backend``."""
        which = BUNDLE_VARIABLES.get(d.args[0])
        if which is None:
            return
        host, port = backend.rsplit(":", 1)
        start, end = d.arg_spans[1]
        self._add("backend-set", d.line, start, end, (host, port, "http")[which].encode())

    # -- whole-file extras -----------------------------------------------------------------

    def _http_extras(self) -> None:
        """A certificate at http level for ``listen ... ssl`` without one (outside the file)."""
        material = stub_material()
        if material is None:
            if self._needs_http_certificate(self.directives):
                self.missing_material = True
            return
        pem = self.sandbox.write("stub/http-level.pem", material.pem)
        self.sandbox.write("conf.d/00-corpus-stub.conf", f"ssl_certificate {pem};\nssl_certificate_key {pem};\n")

    def _main_extras(self) -> None:
        tops = self.directives
        front = b"" if any(d.name == "events" for d in tops) else b"events {} "
        if not any(d.name == "pid" for d in tops):  # else nginx writes its compiled-in /run/nginx.pid
            front += f"pid {self.sandbox.pid_file}; ".encode()
        if front:  # one stub: two insertions at one offset would make to_placed ambiguous
            self._insert(0, "events" if front.startswith(b"events") else "pid", front)
        for http in (d for d in tops if d.name == "http" and d.block is not None):
            names = {d.name for d in http.block or ()}
            extra = []
            if "access_log" not in names:
                extra.append(f"access_log {self.root}/logs/access.log;")
            extra += [
                f"{kind}_temp_path {self.root}/temp/{kind};" for kind in TEMP_KINDS if f"{kind}_temp_path" not in names
            ]
            if "ssl_certificate" not in names and self._needs_http_certificate(http.block or ()):
                material = stub_material()
                if material is None:
                    self.missing_material = True
                else:
                    pem = self.sandbox.write("stub/http-level.pem", material.pem)
                    extra += [f"ssl_certificate {pem};", f"ssl_certificate_key {pem};"]
            self._insert(http.open_brace + 1, "http-level", (" " + " ".join(extra) + " ").encode())

    @staticmethod
    def _needs_http_certificate(directives: Iterable[Directive]) -> bool:
        for server in directives:
            if server.name != "server" or server.block is None:
                continue
            names = {d.name for d in server.block}
            ssl = any(d.name == "listen" and "ssl" in d.args for d in server.block)
            ssl = ssl or any(d.name == "ssl" and d.args == ["on"] for d in server.block)
            if ssl and "ssl_certificate" not in names:
                return True
        return False

    # -- byte edits ------------------------------------------------------------------------

    def _replace_arg(self, d: Directive, index: int, kind: str, value: str) -> None:
        start, end = d.arg_spans[index]
        self._add(kind, d.line, start, end, _quote(value))

    def _replace_args(self, d: Directive, kind: str, text: str) -> None:
        start, end = d.arg_spans[0][0], d.arg_spans[-1][1]
        self._add(kind, d.line, start, end, text.encode())

    def _insert(self, offset: int, kind: str, text: bytes) -> None:
        line = self.data.count(_NEWLINE, 0, offset) + 1
        self._add(kind, line, offset, offset, text)

    def _add(self, kind: str, line: int, start: int, end: int, replacement: bytes) -> None:
        original = self.data[start:end]
        if original == replacement:
            return
        assert _NEWLINE not in original and _NEWLINE not in replacement, f"a stub may not span lines: {original!r}"
        self.stubs.append(Stub(kind, line, start, end, original, replacement))


def _apply(data: bytes, stubs: Sequence[Stub]) -> bytes:
    pieces, cursor = [], 0
    for stub in stubs:
        pieces += [data[cursor : stub.start], stub.replacement]
        cursor = stub.end
    pieces.append(data[cursor:])
    return b"".join(pieces)


def _quote(value: str) -> bytes:
    if re.search(r"[\s;{}\"'#\\]", value):
        return ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()
    return value.encode()


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", host)) or host == "*"


def _debian_copy(written: str) -> bytes:
    """Debian's file for an include target written as ``written``, else empty bytes."""
    relative = written[len(str(SYSTEM_NGINX_DIR)) + 1 :] if written.startswith(f"{SYSTEM_NGINX_DIR}/") else written
    candidates = [] if posixpath.isabs(relative) else [SYSTEM_NGINX_DIR / relative]
    base = posixpath.basename(written)
    if base in DEBIAN_FILES:
        candidates.append(SYSTEM_NGINX_DIR / base)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_bytes()
    return b""
