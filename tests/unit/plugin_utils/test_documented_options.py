"""Each editing action's argument spec is exactly what its module documentation says (types, choices,
defaults), doc fragments included."""

from __future__ import annotations

from typing import Any, Dict

import pytest
import yaml

from ansible_collections.agaii.nginx.plugins.action import route_info as route_info_action
from ansible_collections.agaii.nginx.plugins.action import ws_location as ws_location_action
from ansible_collections.agaii.nginx.plugins.doc_fragments.nginx import ModuleDocFragment
from ansible_collections.agaii.nginx.plugins.modules import route_info as route_info_doc
from ansible_collections.agaii.nginx.plugins.modules import ws_location as ws_location_doc

FRAGMENTS = {
    "agaii.nginx.nginx": ModuleDocFragment.DOCUMENTATION,
    "agaii.nginx.nginx.edit": ModuleDocFragment.EDIT,
}
KEYS = ("type", "choices", "default", "required", "elements")


def documented(doc_text: str) -> Dict[str, Any]:
    doc = yaml.safe_load(doc_text)
    options = dict(doc["options"])
    for fragment in doc.get("extends_documentation_fragment", []):
        if fragment in FRAGMENTS:
            options.update(yaml.safe_load(FRAGMENTS[fragment])["options"])
    return options


def comparable(spec: Dict[str, Any]) -> Dict[str, Any]:
    kept = {key: spec[key] for key in KEYS if key in spec and not (key == "required" and spec[key] is False)}
    if "options" in spec or "suboptions" in spec:
        kept["options"] = {name: comparable(sub) for name, sub in (spec.get("options") or spec["suboptions"]).items()}
    return kept


@pytest.mark.parametrize(
    ("action", "doc"), [(ws_location_action, ws_location_doc), (route_info_action, route_info_doc)], ids=str
)
def test_argument_spec_equals_the_documented_options(action: Any, doc: Any) -> None:
    options = documented(doc.DOCUMENTATION)
    assert {name: comparable(spec) for name, spec in action.ARGUMENT_SPEC.items()} == {
        name: comparable(spec) for name, spec in options.items()
    }
