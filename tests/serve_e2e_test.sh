#!/usr/bin/env bash
# The patient's page end to end in a real headless Chromium (serve_e2e.cjs): a CD-like
# folder (serve_make_cd --head: a head MR with a face, a screen capture with the name burned
# in, the disc's DICOMDIR, viewer files) picked in the page, the result checked, the zip
# downloaded and searched for every identifying value (bytes, and dcmdump of each file).
# Screenshots of each page into SCREENSHOT_DIR (docs/serve). Exit 77 (skipped) when
# chromium, node or the pinned playwright-core (scripts/install-deps.sh) are absent; with
# them, a missing face-api model (the independent face check's, installed beside them) fails.
# A third-party head MR with a face (../shared/heads/mr_t2w_face.nii.gz, or
# $RADGUARD_SHARED_HEADS) goes on the CD as a NIfTI file when it is there.
#   serve_e2e_test.sh RADGUARD SERVE_MAKE_CD SCREENSHOT_DIR
set -euo pipefail
radguard=$1
make_cd=$2
shots=$3
pw=${RADGUARD_TEST_NODE_MODULES:-}
for d in /usr/local/lib/radguard-test/node_modules "$HOME/.local/lib/radguard-test/node_modules"; do
  [ -z "$pw" ] && [ -f "$d/playwright-core/package.json" ] && pw=$d
done
if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null || [ -z "$pw" ]; then
  echo "SKIPPED: needs /usr/bin/chromium, node and playwright-core (scripts/install-deps.sh)"
  exit 77
fi
face_model=${RADGUARD_TEST_FACE_MODEL:-$pw/../face-api-ssd}
[ -f "$face_model/ssd_mobilenetv1_model.bin" ] || {
  echo "FAIL: no face-api model in $face_model for the independent face check (scripts/install-deps.sh)" >&2
  exit 1
}
shared_heads=${RADGUARD_SHARED_HEADS:-$(dirname "$0")/../../shared/heads}
work=$(mktemp -d /tmp/radguard-serve-e2e.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$make_cd" "$work/cd" --head
if [ -f "$shared_heads/mr_t2w_face.nii.gz" ]; then
  cp "$shared_heads/mr_t2w_face.nii.gz" "$work/cd/"
else
  echo "note: no $shared_heads/mr_t2w_face.nii.gz: the CD holds no NIfTI head"
fi
"$make_cd" "$work/big" --many 500 >/dev/null  # a screen capture, 500 CT images of 256x256
python3 - "$work" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1] + "/climbing.zip", "w") as z:
    z.writestr("CD/ok.dcm", "x")
    z.writestr(zipfile.ZipInfo("../../outside.dcm"), "y")
PY
mkdir -p "$work/tmp" "$shots"
TMPDIR="$work/tmp" "$radguard" serve >"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 100); do grep -q 'token=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*/?token=[0-9a-f]*' "$work/server.out") || fail "no address printed"
node "$(dirname "$0")/serve_e2e.cjs" "$pw/playwright-core" "$url" "$work/cd" "$work/climbing.zip" \
  "$work" "$shots" "$work/big"

mkdir "$work/unzipped"
(cd "$work/unzipped" && unzip -q ../download.zip)
[ -f "$work/unzipped/DICOMDIR" ] && [ -f "$work/unzipped/report.html" ] || fail "the zip is not a copy"
n=0
while IFS= read -r f; do
  for secret in DOE PID12345 19300102 Elsewhere ACC998877 1.2.826.0.1.3680043.2.1125; do
    grep -q "$secret" "$f" && fail "$secret in ${f#"$work/unzipped/"}"
  done
  if [[ $f == */DICOM/* ]]; then
    dcmdump "$f" >"$work/dump.txt" || fail "dcmdump cannot read ${f#"$work/unzipped/"}"
    for secret in DOE PID12345 19300102 Elsewhere; do
      grep -q "$secret" "$work/dump.txt" && fail "$secret in the header of ${f#"$work/unzipped/"}"
    done
    grep -q '(0012,0062) CS \[YES\]' "$work/dump.txt" || fail "Patient Identity Removed not YES"
    n=$((n + 1))
  fi
done < <(find "$work/unzipped" -type f)
[ "$n" -ge 1 ] || fail "no DICOM file in the zip"

# No burned-in text an outside reader (the tesseract program, not radguard's own OCR) can read:
# the CD's screen capture is read first (the name must be readable there, or this check proves
# nothing), then every image of the copy and every picture of its report.
ocr_words() { tesseract "$1" - --psm 11 2>/dev/null | tr -d ' ' | tr '[:lower:]' '[:upper:]'; }
dcmj2pnm --write-png "$work/cd/DICOM/S2/I1" "$work/before.png" >/dev/null 2>&1 \
  || fail "dcmj2pnm cannot read the CD's screen capture"
ocr_words "$work/before.png" | grep -q 'DOE' || fail "the check reads no name on the CD's screen capture"
read_images=0
mr=0
while IFS= read -r f; do
  png=$f
  if [[ $f == */DICOM/* ]]; then
    dcmdump +P 0028,0010 "$f" | grep -q Rows || continue  # no pixels
    # the head's slices hold no text (one in ten is read); every other image is read
    if dcmdump +P 0008,0060 "$f" | grep -q '\[MR\]'; then
      mr=$((mr + 1))
      [ $((mr % 10)) -eq 1 ] || continue
    fi
    dcmj2pnm --write-png --frame 1 "$f" "$work/page.png" >/dev/null 2>&1 || fail "dcmj2pnm cannot read ${f#"$work/unzipped/"}"
    png=$work/page.png
  fi
  words=$(ocr_words "$png")
  for secret in DOE JOHN PID12345 1930; do
    [[ $words == *"$secret"* ]] && fail "tesseract reads $secret in ${f#"$work/unzipped/"}"
  done
  read_images=$((read_images + 1))
done < <(find "$work/unzipped/DICOM" "$work/unzipped/previews" -type f | sort)
echo "tesseract read $read_images images of the copy: no name, ID or birth date"

# No face: radguard audit at full depth (a face looked for on every head series, burned-in
# text with the text detector). On the CD it finds the face and the burned-in name (or this
# check proves nothing); on the unzipped copy, against the CD, no high finding at all.
"$radguard" audit "$work/cd/DICOM" --format json --report "$work/audit-cd.json" --fail-on never \
  2>/dev/null || fail "audit of the CD failed"
"$radguard" audit "$work/unzipped/DICOM" --against "$work/cd" --format json \
  --report "$work/audit.json" --fail-on high 2>"$work/audit.err" \
  || { cat "$work/audit.err" >&2; fail "audit --depth full finds something high in the copy"; }
python3 - "$work/audit-cd.json" "$work/audit.json" "$work/cd/DICOM/S1/I1" <<'PY' || fail "audit"
import json, os, sys
cd, copy = (json.load(open(p))["summary"] for p in sys.argv[1:3])
head = os.path.exists(sys.argv[3])
assert copy["depth"] == "full", copy
assert cd["by_category"]["pixels"] >= 1, "audit finds no burned-in text on the CD: %s" % cd
assert not head or cd["by_category"]["face"] >= 1, "audit finds no face on the CD's head: %s" % cd
assert copy["high"] == 0 and copy["by_category"]["face"] == 0 and copy["by_category"]["pixels"] == 0, copy
assert copy["dicom_files"] >= (182 if head else 1), copy
print("audit at full depth: the CD shows %d face and %d burned-in text findings, the copy none "
      "(%d DICOM files)" % (cd["by_category"]["face"], cd["by_category"]["pixels"], copy["dicom_files"]))
PY
# No face, by a method that shares nothing with radguard's (tests/serve_face_check.py: its own
# pydicom assembly and numpy renderer, face-api's SSD-MobileNetV1 CNN instead of the Haar
# cascades and depth test): every head on the CD scores 0.5 or more (the control: else the
# check is blind and fails), every head in the copy less, on every view.
/usr/bin/python3 "$(dirname "$0")/serve_face_check.py" "$face_model" "$work/cd" "$work/unzipped" \
  || fail "the independent face check"
kill -TERM "$pid"; wait "$pid"; pid=
[ -z "$(ls -A "$work/tmp")" ] || fail "files left after the server stopped"
echo "serve e2e passed: $n DICOM files in the downloaded zip hold no identifying value"
