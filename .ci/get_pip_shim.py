"""Stand-in for the pip bootstrap script ansible-test downloads from a host CI cannot reach.

ansible-test runs its get-pip script inside a fresh virtualenv with pip's options and the pinned
packages as arguments. This does the same from PyPI: pip from Python's own ensurepip, then the
requested versions. The machine's CA bundle is written into the virtualenv's own pip.conf, because
ansible-test runs pip there without the environment that normally points pip at it.
Installed into ~/.ansible/test/cache by scripts/sanity.
"""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


BUNDLE = os.environ.get("PIP_CERT") or next((p for p in CA_BUNDLES if os.path.exists(p)), None)


def write_venv_pip_conf() -> None:
    if BUNDLE:
        with open(os.path.join(sys.prefix, "pip.conf"), "w", encoding="utf-8") as handle:
            handle.write(f"[global]\ncert = {BUNDLE}\n")


write_venv_pip_conf()
ensurepip.bootstrap(upgrade=True)
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
cert = ["--cert", BUNDLE] if BUNDLE else []
environment = {k: v for k, v in os.environ.items() if k != "PIP_CONFIG_FILE"}
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *cert, *arguments], env=environment))
