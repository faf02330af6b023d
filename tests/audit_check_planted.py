#!/usr/bin/python3
"""Checks an audit JSON report against the planted values that survived a de-identifier.

    tests/audit_check_planted.py PLANTED.json OUTPUT_DIR AUDIT.json

For each file of PLANTED.json present under OUTPUT_DIR (same relative path), every planted
value still found at its attribute path (or in the file's path, for "filename") must have a
finding for that file and path. Prints the count of surviving values and of misses; exits 1
on any miss.
"""
import json
import re
import sys
from pathlib import Path

import pydicom


def value_at(ds, path):
    parts = path.split("/")
    cur = ds
    for i, part in enumerate(parts):
        m = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)(?:\[(\d+)\])?", part)
        tag = (int(m.group(1), 16) << 16) | int(m.group(2), 16)
        if tag not in cur:
            return None
        el = cur[tag]
        if m.group(3) is not None:
            idx = int(m.group(3))
            if el.VR != "SQ" or idx >= len(el.value):
                return None
            cur = el.value[idx]
        else:
            return "" if el.value is None else str(el.value)
    return None


def main():
    planted = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    report = json.loads(Path(sys.argv[3]).read_text())
    found = {(f["file"], f["path"]) for f in report["findings"]}
    found_files = {f["file"] for f in report["findings"] if f["category"] == "filename"}
    surviving = misses = 0
    for rel, values in planted.items():
        path = out / rel
        if not path.exists():
            continue
        ds = pydicom.dcmread(path)
        for where, planted_value in values.items():
            if where == "filename":
                if planted_value.upper() in rel.upper():
                    surviving += 1
                    if rel not in found_files:
                        misses += 1
                        print(f"MISS {rel}: file name")
                continue
            v = value_at(ds, where)
            if v is None or planted_value.upper() not in v.upper():
                continue
            surviving += 1
            if (rel, where) not in found:
                misses += 1
                print(f"MISS {rel}: {where}")
    print(f"surviving planted values: {surviving}, not flagged: {misses}")
    sys.exit(1 if misses else 0)


if __name__ == "__main__":
    main()
