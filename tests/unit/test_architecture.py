"""The collection's layering, checked on the import statements of every plugin file.

- Target side (``plugins/modules``, ``plugins/module_utils``): the standard library, ``ansible.module_utils``
  and this collection's ``module_utils`` only. Never ``plugin_utils`` or ``action``: those run on the
  controller, and crossplane is never needed on a managed node.
- The engine (``plugins/plugin_utils/_engine/``): pure Python. The standard library, crossplane, other
  engine modules and the ``nginx_file`` wire protocol (``module_utils/_nginx_file_protocol``, standard
  library only: it defines the ``nginx -T`` dump marker once for both sides); no ``ansible`` import anywhere
  below it, and nothing from the Ansible glue.
- The glue (``plugins/plugin_utils/`` outside the engine, ``plugins/action``): may import the engine.
- The diagnosis (``_engine/diagnosis/``): ``facts`` (what the configuration says) and ``observations``
  (what was seen on the host) import neither each other nor ``checks``; ``checks`` (the verdicts) reads both.
  Its ``__init__`` re-exports nothing: a name is imported from the module it lives in.

Every module of ``plugins/plugin_utils`` is either below the engine or named in ``GLUE``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Set, Tuple

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
PLUGIN_UTILS = PLUGINS / "plugin_utils"
ENGINE = PLUGIN_UTILS / "_engine"
COLLECTION = "ansible_collections.agaii.nginx.plugins"

# The Ansible glue in plugin_utils: the action plugins' base and the controller side of the target protocol.
GLUE = {"_action_base.py", "_target_io.py"}
THIRD_PARTY_ENGINE = {"crossplane"}
PROTOCOL = f"{COLLECTION}.module_utils._nginx_file_protocol"


def imported_modules(path: Path) -> Iterator[Tuple[int, str]]:
    """``(line, dotted name)`` of every import in ``path``, at any depth (imports inside functions count)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def is_stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def engine_files() -> List[Path]:
    return sorted(ENGINE.rglob("*.py"))


def glue_module_names() -> Set[str]:
    return {f"{COLLECTION}.plugin_utils.{Path(name).stem}" for name in GLUE}


def violations(files: List[Path], allowed: Callable[[str], bool]) -> List[str]:
    found = []
    for path in files:
        for line, name in imported_modules(path):
            if not allowed(name):
                found.append(f"{path.relative_to(PLUGINS.parent)}:{line} imports {name}")
    return found


def test_target_side_imports_only_the_standard_library_and_module_utils() -> None:
    files = sorted((PLUGINS / "modules").glob("*.py")) + sorted((PLUGINS / "module_utils").glob("*.py"))

    def allowed(name: str) -> bool:
        return is_stdlib(name) or name.startswith(("ansible.module_utils", f"{COLLECTION}.module_utils"))

    assert violations(files, allowed) == []


def test_the_engine_imports_no_ansible_and_nothing_from_the_glue() -> None:
    engine_prefix = f"{COLLECTION}.plugin_utils."
    glue = glue_module_names()

    def allowed(name: str) -> bool:
        if name in glue:
            return False
        if name == PROTOCOL:
            return True
        return is_stdlib(name) or name.split(".")[0] in THIRD_PARTY_ENGINE or name.startswith(engine_prefix)

    assert violations(engine_files(), allowed) == []


def test_the_nginx_file_protocol_is_standard_library_only() -> None:
    path = PLUGINS / "module_utils" / "_nginx_file_protocol.py"
    assert violations([path], is_stdlib) == []


def test_every_plugin_utils_file_is_glue_or_engine() -> None:
    flat = {p.name for p in PLUGIN_UTILS.glob("*.py") if p.name != "__init__.py"}
    assert flat == GLUE, "a new plugin_utils module belongs under _engine/ (pure) or in GLUE (Ansible glue)"
    assert len(engine_files()) > 10, "the engine is under plugins/plugin_utils/_engine/"


def test_the_glue_is_imported_only_by_action_plugins_and_glue() -> None:
    glue = glue_module_names()
    files = sorted(PLUGINS.rglob("*.py"))
    importers = {
        str(path.relative_to(PLUGINS)) for path in files for _line, name in imported_modules(path) if name in glue
    }
    assert all(name.startswith(("action/", "plugin_utils/_")) and "/_engine/" not in name for name in importers)


def test_docs_architecture_names_every_plugin_file() -> None:
    """docs/architecture.md matches the tree: every Python file under plugins/ is named in its layer map."""
    text = (PLUGINS.parent / "docs" / "architecture.md").read_text()
    layer_map = text.split("```", 2)[1]
    named = set(re.findall(r"[\w.]+\.py", layer_map))
    files = {path.name for path in PLUGINS.rglob("*.py") if path.name != "__init__.py"}
    assert sorted(files - named) == [], "docs/architecture.md does not name these plugin files"
    assert sorted(named - files) == [], "docs/architecture.md names files that do not exist"


def test_the_diagnosis_facts_and_observations_do_not_import_the_verdicts() -> None:
    diagnosis = f"{COLLECTION}.plugin_utils._engine.diagnosis"
    forbidden = {
        "facts.py": {f"{diagnosis}.observations", f"{diagnosis}.checks", diagnosis},
        "observations.py": {f"{diagnosis}.facts", f"{diagnosis}.checks", diagnosis},
        "checks.py": {diagnosis},
    }
    found = [
        f"{name} imports {module}"
        for name, modules in forbidden.items()
        for _line, module in imported_modules(ENGINE / "diagnosis" / name)
        if module in modules
    ]
    assert found == []
    assert (ENGINE / "diagnosis" / "__init__.py").read_text() == ""
