"""A non-editable install, run from another directory, discovers and syncs."""

from __future__ import annotations

import importlib.metadata
import json
import re
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
STREAMS = {"surveys", "survey_questions", "survey_responses", "survey_answers"}


def test_wheel_ships_schemas_and_runs_outside_the_checkout(tmp_path, small_sim):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("tap_hotjar-*.whl"))
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert {f"tap_hotjar/schemas/{s}.json" for s in STREAMS} <= set(names)
    assert "tap_hotjar/report/templates/report.html" in names  # hotjar-report's page
    # The licence travels with the package, and its metadata names it.
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert f"{info}/licenses/LICENSE" in names
    metadata = archive.read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()

    # A fresh virtualenv that sees this environment's dependencies but not the
    # checkout: the editable install's hook is a .pth file, which is not run from
    # a directory merely added to sys.path.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import tap_hotjar; print(tap_hotjar.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=elsewhere,
    ).stdout
    assert where.startswith(str(env_dir))

    (elsewhere / "config.json").write_text(json.dumps(small_sim.config()))
    tap = str(env_dir / "bin" / "tap-hotjar")
    discovered = subprocess.run(
        [tap, "--config", "config.json", "--discover"],
        check=True,
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert {s["tap_stream_id"] for s in json.loads(discovered.stdout)["streams"]} == STREAMS
    synced = subprocess.run([tap, "--config", "config.json"], check=True, capture_output=True, text=True, cwd=elsewhere)
    streams = {json.loads(line)["stream"] for line in synced.stdout.split("\n") if '"RECORD"' in line}
    assert streams == STREAMS


def _released_versions() -> list[str]:
    """The versions CHANGELOG.md gives a release heading (`## [1.2.3] - date`), newest first."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, flags=re.MULTILINE)


def test_about_the_package_metadata_and_the_changelog_name_one_version():
    about = subprocess.run(
        [str(Path(sys.executable).parent / "tap-hotjar"), "--about", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
    )
    version = json.loads(about.stdout)["version"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert version == importlib.metadata.version("tap-hotjar") == pyproject["project"]["version"]
    # Semantic versioning, and the newest release in the changelog is the package's.
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert _released_versions()[0] == version
