"""The README's settings table, generated from the tap's config schema (tap_hotjar/settings.py).

    .venv/bin/python scripts/settings_table.py           print the table
    .venv/bin/python scripts/settings_table.py --write   put it into README.md between its markers

One row per setting of CONFIG_SCHEMA, in its order: name, whether it is required, its
default, its description. tests/test_docs.py fails while README.md holds another table.
singer-sdk's built-in settings (stream maps, flattening, batch_config) are not in it:
the README names them in a sentence, `tap-hotjar --about` lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t
from pathlib import Path

from tap_hotjar.settings import CONFIG_SCHEMA

README = Path(__file__).resolve().parent.parent / "README.md"
START_MARKER = "<!-- settings-table:"
END_MARKER = "<!-- end of settings-table -->"
HEADER = ("| Setting | Required | Default | Description |", "|:--|:--:|:--:|:--|")


def _cell(text: str) -> str:
    # A table cell is one line; a pipe would end it.
    return " ".join(text.split()).replace("|", "\\|")


def _default(prop: dict[str, t.Any]) -> str:
    if "default" not in prop or prop["default"] is None:
        return ""
    value = prop["default"]
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def table(schema: dict[str, t.Any] = CONFIG_SCHEMA) -> list[str]:
    """The table's lines: header, separator, one row per setting."""
    required = set(schema.get("required", []))
    lines = list(HEADER)
    for name, prop in schema["properties"].items():
        cells = [name, "yes" if name in required else "no", _default(prop), _cell(prop.get("description", ""))]
        lines.append("|" + "|".join(f" {c} " if c else " " for c in cells) + "|")
    return lines


def replace_table(text: str, lines: list[str]) -> str:
    """`text` (the README) with the lines between the markers replaced by `lines`."""
    current = text.split("\n")
    starts = [i for i, line in enumerate(current) if line.startswith(START_MARKER)]
    ends = [i for i, line in enumerate(current) if line.strip() == END_MARKER]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        msg = f"README.md must hold one '{START_MARKER} ...' line and one '{END_MARKER}' line after it"
        raise ValueError(msg)
    return "\n".join([*current[: starts[0] + 1], *lines, *current[ends[0] :]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update README.md instead of printing the table")
    args = parser.parse_args(argv)
    lines = table()
    if not args.write:
        sys.stdout.write("\n".join(lines) + "\n")
        return 0
    README.write_text(replace_table(README.read_text(), lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
