"""The extractor's two definitions: meltano.yml's (this project) and the Meltano Hub file.

Shared by tests/test_plugin_definition.py (the files agree) and tests/test_meltano_add.py
(what `meltano add --from-ref` writes into a fresh project agrees with ours).
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB_FILE = REPO_ROOT / "meltano-hub" / "extractors" / "tap-hotjar" / "tap-hotjar.yml"
REPO_URL = "https://github.com/tap-hotjar/tap-hotjar"

# What a project's plugin entry and a Hub definition both carry, and must agree on. The
# rest differs by nature: pip_url (a checkout here, the repository on the Hub), the Hub's
# catalogue metadata (variant, docs, repo, keywords, ...).
COMPARED_KEYS = (
    "name",
    "namespace",
    "label",
    "description",
    "executable",
    "capabilities",
    "settings",
    "settings_group_validation",
    "commands",
)


def tap_settings_schema() -> dict[str, t.Any]:
    """tap_hotjar.settings.CONFIG_SCHEMA as a fresh interpreter has it.

    Not the imported dict: singer-sdk adds its built-in settings (stream maps,
    flattening, ...) to the tap class's config_jsonschema, which is that very dict,
    whenever a test in the same process asks the tap for --about or its settings.
    """
    code = "import json; from tap_hotjar.settings import CONFIG_SCHEMA; print(json.dumps(CONFIG_SCHEMA))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)


def hub_definition() -> dict[str, t.Any]:
    return yaml.safe_load(HUB_FILE.read_text())


def project_plugin(project_file: Path, name: str = "tap-hotjar", kind: str = "extractors") -> dict[str, t.Any]:
    project = yaml.safe_load(project_file.read_text())
    (plugin,) = (p for p in project["plugins"][kind] if p["name"] == name)
    return plugin


def comparable(definition: dict[str, t.Any]) -> dict[str, t.Any]:
    """The compared part of a definition, in a form where order does not matter.

    Settings by name, each with every key it has (kind, label, description, value,
    sensitive, ...; `sensitive` false when absent); capabilities as a set; each group
    of settings_group_validation as a set.
    """
    out: dict[str, t.Any] = {key: definition.get(key) for key in COMPARED_KEYS}
    out["capabilities"] = set(definition.get("capabilities") or [])
    out["settings_group_validation"] = {frozenset(g) for g in definition.get("settings_group_validation") or []}
    settings = {}
    for setting in definition.get("settings") or []:
        entry = {"sensitive": False, **setting}
        settings[entry.pop("name")] = entry
    out["settings"] = settings
    return out


def differences(ours: dict[str, t.Any], theirs: dict[str, t.Any]) -> dict[str, tuple[t.Any, t.Any]]:
    """{what: (ours, theirs)} for every compared key or setting that differs."""
    a, b = comparable(ours), comparable(theirs)
    found: dict[str, tuple[t.Any, t.Any]] = {}
    for key in COMPARED_KEYS:
        if key == "settings":
            for name in a["settings"].keys() | b["settings"].keys():
                if a["settings"].get(name) != b["settings"].get(name):
                    found[f"settings.{name}"] = (a["settings"].get(name), b["settings"].get(name))
        elif a[key] != b[key]:
            found[key] = (a[key], b[key])
    return found
