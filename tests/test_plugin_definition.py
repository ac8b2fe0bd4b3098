"""The Meltano Hub definition (meltano-hub/extractors/tap-hotjar/tap-hotjar.yml) is ours.

Other projects add the extractor from that file (`meltano add tap-hotjar --from-ref`);
this project uses the inline definition in meltano.yml. The two must be one plugin:
equal on everything but pip_url, and both true to the tap itself (its settings schema
in tap_hotjar/settings.py, the capabilities `tap-hotjar --about` declares). The file
must also be what the Hub accepts, and its pip_url must install from the repository.
tests/test_meltano_add.py adds it to a fresh project with real Meltano.
"""

from __future__ import annotations

import json
import shlex
import subprocess

import tomllib
from packaging.requirements import Requirement

from tests.conftest import TAP
from tests.plugin_definitions import (
    HUB_FILE,
    REPO_ROOT,
    REPO_URL,
    differences,
    hub_definition,
    project_plugin,
    tap_settings_schema,
)

# The Meltano Hub's schema for extractor definitions (meltano/hub, schemas/plugin_definitions/
# extractors.schema.json and the files it refers to): the keys it allows, the setting
# kinds and the capabilities it knows. `sensitive` is how current Hub files and Meltano
# mark a secret (`kind: password` is the deprecated form).
HUB_REQUIRED = {"name", "namespace", "variant", "label"}
HUB_EXTRACTOR_KEYS = HUB_REQUIRED | {
    "pip_url",
    "description",
    "executable",
    "settings",
    "docs",
    "repo",
    "logo_url",
    "hidden",
    "settings_group_validation",
    "commands",
    "capabilities",
    "metadata",
    "schema",
    "select",
    "maintenance_status",
    "domain_url",
    "keywords",
    "requires",
    "definition",
    "next_steps",
    "settings_preamble",
    "usage",
    "prereq",
    "quality",
}
HUB_SETTING_KEYS = {
    "name",
    "aliases",
    "label",
    "value",
    "placeholder",
    "kind",
    "description",
    "tooltip",
    "documentation",
    "protected",
    "env",
    "value_processor",
    "value_post_processor",
    "oauth",
    "options",
    "docs",
    "sensitive",
}
HUB_SETTING_KINDS = {
    "oauth",
    "hidden",
    "password",
    "date_iso8601",
    "file",
    "email",
    "integer",
    "options",
    "object",
    "array",
    "boolean",
    "string",
}
HUB_CAPABILITIES = {
    "properties",
    "catalog",
    "discover",
    "state",
    "about",
    "stream-maps",
    "schema-flattening",
    "activate-version",
    "batch",
    "test",
    "log-based",
    "structured-logging",
}
HUB_MAINTENANCE_STATUS = {"active", "beta", "development", "inactive", "unknown"}

# A JSON Schema type (and format) in tap_hotjar/settings.py -> the Meltano setting kind.
KIND_OF_TYPE = {"string": "string", "integer": "integer", "array": "array", "boolean": "boolean", "object": "object"}


def _about() -> dict:
    proc = subprocess.run([TAP, "--about", "--format=json"], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def _json_type(prop: dict) -> str:
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    (json_type,) = (x for x in types if x != "null")
    return json_type


def test_hub_definition_equals_the_meltano_yml_extractor_except_pip_url() -> None:
    ours = project_plugin(REPO_ROOT / "meltano.yml")
    hub = hub_definition()
    assert differences(ours, hub) == {}
    # The inline definition installs this checkout; the Hub's, the repository.
    assert ours["pip_url"] != hub["pip_url"]


def test_hub_definition_has_only_what_the_hub_schema_allows() -> None:
    hub = hub_definition()
    assert hub.keys() >= HUB_REQUIRED
    assert hub.keys() <= HUB_EXTRACTOR_KEYS, hub.keys() - HUB_EXTRACTOR_KEYS
    assert (hub["name"], hub["namespace"], hub["variant"]) == ("tap-hotjar", "tap_hotjar", "tap-hotjar")
    assert set(hub["capabilities"]) <= HUB_CAPABILITIES
    assert hub["maintenance_status"] in HUB_MAINTENANCE_STATUS
    assert "meltano_sdk" in hub["keywords"]
    for setting in hub["settings"]:
        assert setting.keys() <= HUB_SETTING_KEYS, setting
        assert setting["kind"] in HUB_SETTING_KINDS, setting
        # Every setting documented: a label and a description for the Hub's page.
        assert setting.get("label") and setting.get("description"), setting["name"]
    names = [s["name"] for s in hub["settings"]]
    assert len(names) == len(set(names))
    for group in hub["settings_group_validation"]:
        assert set(group) <= set(names)
    for name, command in hub["commands"].items():
        assert command.keys() <= {"args", "description", "executable"}, name


def test_hub_pip_url_installs_the_repository_with_the_warehouse_extra() -> None:
    hub = hub_definition()
    assert hub["repo"] == REPO_URL
    # Meltano splits pip_url like a shell (shlex); the requirement must stay one argument.
    (argument,) = shlex.split(hub["pip_url"])
    requirement = Requirement(argument)
    assert requirement.name == "tap-hotjar"
    assert requirement.url == f"git+{REPO_URL}.git"
    assert requirement.extras == {"warehouse"}
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == requirement.name
    assert "warehouse" in pyproject["project"]["optional-dependencies"]
    # The extra holds the drivers the warehouse options of user-lookup import.
    drivers = {Requirement(r).name for r in pyproject["project"]["optional-dependencies"]["warehouse"]}
    assert {"psycopg", "duckdb"} <= drivers
    scripts = pyproject["project"]["scripts"]
    assert hub["executable"] in scripts
    assert {c["executable"] for c in hub["commands"].values()} <= scripts.keys()


def test_hub_settings_are_the_taps_settings() -> None:
    """Label, description, default, secrecy and kind of each setting come from the tap's
    own schema (tap_hotjar/settings.py, which --about and the README's table show)."""
    schema = tap_settings_schema()
    settings = {s["name"]: s for s in hub_definition()["settings"]}
    for name, prop in schema["properties"].items():
        assert name in settings, f"{name} is a tap setting missing from {HUB_FILE.name}"
        setting = settings[name]
        assert setting["label"] == prop["title"], name
        assert " ".join(setting["description"].split()) == prop["description"], name
        assert setting.get("value") == prop.get("default"), name
        assert setting.get("sensitive", False) == bool(prop.get("secret")), name
        expected_kind = "date_iso8601" if prop.get("format") == "date-time" else KIND_OF_TYPE[_json_type(prop)]
        assert setting["kind"] == expected_kind, name
    required = set(schema["required"])
    assert [set(g) for g in hub_definition()["settings_group_validation"]] == [required]


def test_hub_settings_and_capabilities_are_what_the_tap_declares() -> None:
    about = _about()
    hub = hub_definition()
    # singer-sdk's built-in settings (stream maps, flattening, batch) included.
    declared = about["settings"]["properties"]
    unknown = {s["name"] for s in hub["settings"]} - declared.keys()
    assert not unknown, f"settings the tap does not know: {unknown}"
    for setting in hub["settings"]:
        prop = declared[setting["name"]]
        if "format" not in prop:
            assert setting["kind"] == KIND_OF_TYPE[_json_type(prop)], setting["name"]
    assert set(hub["capabilities"]) == set(about["capabilities"])
