#!/usr/bin/python3
"""Scores a redaction run against make_screens.py's answer key, from the pixels alone.

    score_screens.py SETDIR OUTDIR [--tesseract] [--lost]

SETDIR holds dicom/ and truth.json (make_screens.py); OUTDIR is `radguard redact -o` (its
quarantine folder OUTDIR-quarantine is read too). Files are matched by SOP Instance UID.

A word counts as covered when at least 95% of its ink box is the output's fill (within 8
grey levels of the frame's darkest value) and was not before (text within 8 levels of a black
ground: when its ink, brighter than the fill before, is fill now), and as kept when at least 95% of its box is
unchanged. Neither reads radguard's report, and neither uses OCR. With --tesseract the
Tesseract command line reads each original frame once, to split recall into words it can
and cannot read (an outside reading, not radguard's own). "by_tag" gives PHI words covered and
non-PHI words kept per drawing category (a word's "tag" in the answer key, else its file's kind). --lost lists the non-PHI words
that were changed (up to 200), with how much of each box changed.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from PIL import Image


def frames_of(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if n == 1:
        arr = arr[None, ...]
    if ds.PhotometricInterpretation.startswith("YBR") and arr.ndim == 4:
        arr = arr[..., 0]  # luma is what a reader sees
    elif arr.ndim == 4:
        arr = arr.astype(np.int32).sum(axis=3) // 3
    return ds.SOPInstanceUID, arr.astype(np.int32)


def outputs(outdir):
    found = {}
    for folder in (outdir, outdir + "-quarantine"):
        if not os.path.isdir(folder):
            continue
        quarantined = folder.endswith("-quarantine")
        for root, _, files in os.walk(folder):
            for name in files:
                if name.endswith(".dcm"):
                    uid = pydicom.dcmread(os.path.join(root, name), stop_before_pixels=True).SOPInstanceUID
                    found[uid] = (os.path.join(root, name), quarantined)
    return found


def tesseract_tokens(frame):
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "f.png")
        img = frame.astype(np.float32)
        img = (img - img.min()) * 255.0 / max(1.0, float(img.max() - img.min()))
        Image.fromarray(img.astype(np.uint8)).save(png)
        out = subprocess.run(["tesseract", png, "-", "--psm", "11"], capture_output=True, text=True).stdout
    return {t.strip(",:;.").upper() for t in out.split()}


def main():
    setdir, outdir = sys.argv[1], sys.argv[2]
    use_tesseract = "--tesseract" in sys.argv
    truth = json.load(open(os.path.join(setdir, "truth.json")))
    produced = outputs(outdir)
    s = dict(phi=0, phi_covered=0, phi_released=0, phi_released_covered=0, safe=0, safe_kept=0,
             files=0, quarantined=0, missing=0, phi_unreadable=0, phi_unreadable_covered=0,
             away_pixels=0, away_changed=0)
    misses = []
    tags = {}  # per drawing category (words of bench/fourth_screens.py carry a "tag")
    lost = []  # non-PHI words changed: what over-redaction costs
    for entry in truth["files"]:
        s["files"] += 1
        uid, original = frames_of(os.path.join(setdir, "dicom", entry["file"]))
        if uid not in produced:
            s["missing"] += 1  # failed: nothing released
            continue
        path, quarantined = produced[uid]
        s["quarantined"] += quarantined
        _, result = frames_of(path)
        for f, frame in enumerate(entry["frames"]):
            before, after = original[f], result[f]
            fill = after.min()
            readable = tesseract_tokens(before) if use_tesseract else set()
            near_text = np.zeros(before.shape, bool)
            for word in frame["words"]:
                x, y, w, h = word["box"]
                near_text[max(0, y - 6):y + h + 6, max(0, x - 6):x + w + 6] = True
                box_after = after[y:y + h, x:x + w]
                box_before = before[y:y + h, x:x + w]
                # Text within 8 grey levels of a ground as dark as the fill (dim text on
                # black) is covered when its ink, brighter than the fill before, is fill now.
                ink = box_before > fill + 2
                covered = np.mean(box_after <= fill + 8) >= 0.95 and (
                    np.mean(box_before <= fill + 8) < 0.95
                    or (ink.sum() > 0 and np.mean(box_after[ink] <= fill + 2) >= 0.95))
                tag = tags.setdefault(word.get("tag", entry["kind"]),
                                      dict(phi=0, phi_covered=0, safe=0, safe_kept=0))
                if word["phi"]:
                    tag["phi"] += 1
                    tag["phi_covered"] += covered
                    s["phi"] += 1
                    s["phi_covered"] += covered
                    if not quarantined:
                        s["phi_released"] += 1
                        s["phi_released_covered"] += covered
                    if use_tesseract and word["text"].strip(",:;.").upper() not in readable:
                        s["phi_unreadable"] += 1
                        s["phi_unreadable_covered"] += covered
                    if not covered:
                        misses.append(f'{entry["file"]} f{f} {entry["kind"]} {word["text"]!r} h={h}')
                else:
                    s["safe"] += 1
                    unchanged = np.mean(np.abs(box_after - box_before) <= 2)
                    s["safe_kept"] += unchanged >= 0.95
                    tag["safe"] += 1
                    tag["safe_kept"] += unchanged >= 0.95
                    if unchanged < 0.95:
                        lost.append(f'{entry["file"]} f{f} {entry["kind"]} {word["text"]!r} h={h} '
                                    f'changed={100 * (1 - unchanged):.0f}%')
            away = ~near_text
            s["away_pixels"] += int(away.sum())
            s["away_changed"] += int((np.abs(after - before)[away] > 2).sum())
    pct = lambda a, b: 100.0 * a / b if b else 100.0
    summary = {
        "files": s["files"], "quarantined": s["quarantined"], "failed": s["missing"],
        "phi_words": s["phi"], "phi_recall_pct": round(pct(s["phi_covered"], s["phi"]), 2),
        "phi_released_recall_pct": round(pct(s["phi_released_covered"], s["phi_released"]), 2),
        "safe_words": s["safe"], "safe_kept_pct": round(pct(s["safe_kept"], s["safe"]), 2),
        "pixels_changed_away_from_text_pct": round(pct(s["away_changed"], s["away_pixels"]), 3),
    }
    if use_tesseract:
        summary["phi_unreadable_by_tesseract"] = s["phi_unreadable"]
        summary["phi_unreadable_recall_pct"] = round(pct(s["phi_unreadable_covered"], s["phi_unreadable"]), 2)
    summary["by_tag"] = {k: f'PHI {v["phi_covered"]}/{v["phi"]}, non-PHI kept {v["safe_kept"]}/{v["safe"]}'
                         for k, v in sorted(tags.items())}
    summary["missed"] = misses[:40]
    summary["lost"] = lost[:200] if "--lost" in sys.argv else lost[:0]
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
