"""A non-editable install, run from another directory, discovers and syncs."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

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
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"tap_hotjar/schemas/{s}.json" for s in STREAMS} <= set(names)

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
