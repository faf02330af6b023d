#!/usr/bin/env bash
# The patient's page end to end in a real headless Chromium (serve_e2e.cjs): a CD-like
# folder (serve_make_cd --head: a head MR with a face, a screen capture with the name burned
# in, the disc's DICOMDIR, viewer files) picked in the page, the result checked, the zip
# downloaded and searched for every identifying value (bytes, and dcmdump of each file).
# Screenshots of each page into SCREENSHOT_DIR (docs/serve). Exit 77 (skipped) when
# chromium, node or the pinned playwright-core (scripts/install-deps.sh) are absent.
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
work=$(mktemp -d /tmp/radguard-serve-e2e.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$make_cd" "$work/cd" --head
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
node "$(dirname "$0")/serve_e2e.cjs" "$pw/playwright-core" "$url" "$work/cd" "$work/climbing.zip" "$work" "$shots"

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
kill -TERM "$pid"; wait "$pid"; pid=
[ -z "$(ls -A "$work/tmp")" ] || fail "files left after the server stopped"
echo "serve e2e passed: $n DICOM files in the downloaded zip hold no identifying value"
