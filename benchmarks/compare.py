"""Set the figures of two or more runs of a benchmark side by side.

Every benchmark script that takes ``--json FILE`` writes its headline figures under
"figures" (a flat name -> number map); this prints them in one table, one column
per file, and the ratio of the last to the first.

    .venv/bin/python benchmarks/scale_surveys.py --json before.json
    ... (change the tap) ...
    .venv/bin/python benchmarks/scale_surveys.py --json after.json
    .venv/bin/python benchmarks/compare.py before.json after.json

Baselines are kept in benchmarks/baseline/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="JSON files written by --json (the first is the reference)")
    p.add_argument("--match", default="", help="only figures whose name contains this")
    a = p.parse_args(argv)
    docs = [json.loads(Path(f).read_text()) for f in a.files]
    names: list[str] = []
    for doc in docs:
        names += [n for n in doc.get("figures", {}) if n not in names and a.match in n]
    heads = []
    for i, (f, doc) in enumerate(zip(a.files, docs, strict=True)):
        v = doc.get("versions", {})
        heads.append(f"[{i + 1}]")
        print(
            f"[{i + 1}] {f}: {doc.get('benchmark', '?')}, {doc.get('date', '?')}, "
            f"tap code at {v.get('tap_commit')}, load {doc.get('loadavg_start')} -> {doc.get('loadavg_end')}"
        )
    kinds = {doc.get("benchmark") for doc in docs}
    if len(kinds) > 1:
        print(f"note: these files come from different benchmarks: {sorted(map(str, kinds))}")
    rows = []
    for n in names:
        row: dict = {"figure": n}
        values = [doc.get("figures", {}).get(n) for doc in docs]
        for h, v in zip(heads, values, strict=True):
            row[h] = v
        first, last = values[0], values[-1]
        if isinstance(first, (int, float)) and isinstance(last, (int, float)) and first:
            row["last/first"] = last / first
        rows.append(row)
    print()
    c.table(rows, [("figure", "figure", ""), *[(h, h, ".4g") for h in heads], ("last/first", "last/first", ".2f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
