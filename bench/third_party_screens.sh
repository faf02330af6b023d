#!/usr/bin/env bash
# Redaction on screens radguard's authors did not make: screenshots and figures shipped in
# Debian packages (valgrind's KCachegrind screenshot, Node.js's YouTube-studio screenshots and
# plots, pip's and GnuPG's diagrams; leptonica's photograph as a picture without text), each
# wrapped as a secondary-capture DICOM object (grey or RGB as shipped) and run through
# `radguard redact --mode all-text`. Scored from the pixels against an outside reading: the
# words the `tesseract` command line reads in the original with confidence >= 80 and at
# least 3 letters; a word is covered when 95% of its box is fill. The photograph reports the
# share of its pixels changed. Each word not covered is listed (text, box, share filled).
#
#   bench/third_party_screens.sh RADGUARD [WORKDIR]
set -euo pipefail
radguard=$(realpath "${1:?usage: third_party_screens.sh RADGUARD [WORKDIR]}")
work=${2:-$(mktemp -d)}
mkdir -p "$work/in"
/usr/bin/python3 - "$work" <<'PY'
import os, sys
import numpy as np
from PIL import Image
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
work = sys.argv[1]
images = ["/usr/share/doc/valgrind/html/images/kcachegrind_xtree.png",
          "/usr/share/doc/valgrind/html/images/dh-tree.png",
          "/usr/share/doc/nodejs/contributing/doc_img/youtube-stream-analytics.png",
          "/usr/share/doc/nodejs/contributing/doc_img/youtube-stream-share.png",
          "/usr/share/doc/nodejs/contributing/doc_img/youtube-stream-status.png",
          "/usr/share/doc/nodejs/contributing/doc_img/youtube-stream-title-description.png",
          "/usr/share/doc/nodejs/contributing/doc_img/compare-boxplot.png",
          "/usr/share/doc/python3-pip/html/topics/deps.png",
          "/usr/share/info/gnupg-module-overview.png",
          "/usr/share/doc/libleptonica-dev/dave-orig.png"]
for i, path in enumerate(p for p in images if os.path.exists(p)):
    im = Image.open(path)
    im = im.convert("RGB") if im.mode in ("RGB", "RGBA", "P") else im.convert("L")
    w, h = im.size
    im = im.crop((0, 0, w - w % 2, h - h % 2))
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.Modality = "THIRD^PARTY", "TP0001", "OT"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ImageComments = os.path.basename(path)
    ds.Rows, ds.Columns = im.size[1], im.size[0]
    rgb = im.mode == "RGB"
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.asarray(im).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(os.path.join(work, "in", f"{i:02d}.dcm"), write_like_original=False)
PY
rm -rf "$work/out" "$work/out-quarantine"
start=$(date +%s.%N)
"$radguard" redact "$work/in" -o "$work/out" --mode all-text -j 2 --no-progress >/dev/null 2>&1 || true
end=$(date +%s.%N)
echo "redact --mode all-text: $(echo "$end - $start" | bc -l | cut -c1-5) s for $(ls "$work/in" | wc -l) images"
/usr/bin/python3 - "$work" <<'PY'
import os, subprocess, sys, tempfile
import numpy as np
import pydicom
from PIL import Image
work = sys.argv[1]
def grey(ds):
    a = ds.pixel_array.astype(np.int32)
    return a.sum(axis=2) // 3 if a.ndim == 3 else a
released = {}
for folder in ("out", "out-quarantine"):
    for root, _, files in os.walk(os.path.join(work, folder)):
        for n in files:
            ds = pydicom.dcmread(os.path.join(root, n))
            released[ds.SOPInstanceUID] = (ds, folder)
total = covered_all = 0
for name in sorted(os.listdir(os.path.join(work, "in"))):
    src = pydicom.dcmread(os.path.join(work, "in", name))
    label = src.ImageComments
    if src.SOPInstanceUID not in released:
        print(f"{label}: no output (failed)")
        continue
    out, folder = released[src.SOPInstanceUID]
    before, after = grey(src), grey(out)
    changed = 100.0 * np.mean(np.abs(before - after) > 2)
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "f.png")
        Image.fromarray(before.astype(np.uint8)).save(png)
        tsv = subprocess.run(["tesseract", png, "-", "tsv"], capture_output=True, text=True).stdout
    words = []
    for row in tsv.splitlines()[1:]:
        f = row.split("\t")
        if len(f) < 12 or not f[11].strip():
            continue
        if float(f[10]) >= 80 and sum(c.isalnum() for c in f[11]) >= 3:
            words.append((tuple(int(v) for v in f[6:10]), f[11].strip()))
    fill = after.min()
    shares = [np.mean(after[y:y + h, x:x + w] <= fill + 8) for (x, y, w, h), _ in words]
    covered = sum(share >= 0.95 for share in shares)
    for ((x, y, w, h), text), share in zip(words, shares):
        if share < 0.95:  # what was missed, for a look (the bench's own files: no PHI)
            print(f"   missed {text!r} at {x},{y} {w}x{h}: {100 * share:.0f}% filled")
    total += len(words)
    covered_all += covered
    print(f"{label}: {before.shape[1]}x{before.shape[0]}, {folder}, words read by tesseract {len(words)}, "
          f"covered {covered}, pixels changed {changed:.1f}%")
print(f"all: {covered_all}/{total} words covered ({100.0 * covered_all / max(1, total):.1f}%)")
PY
