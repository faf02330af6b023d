#!/usr/bin/env bash
# The demo: de-identifies bundled sample DICOM (real files from Debian's python3-pydicom
# package, plus files radguard generates) with the research preset and shows the result.
set -euo pipefail
build=${1:-build}
radguard="$build/apps/radguard/radguard"
work=$(mktemp -d /tmp/radguard-demo.XXXXXX)
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files

echo "== radguard demo in $work"
"$radguard" keygen "$work/demo.key"
echo "== de-identifying $samples with the research preset"
set +e
"$radguard" deid "$samples" --output "$work/release" --key "$work/demo.key" \
  --profile research --report "$work/report.json"
status=$?
set -e
echo "== exit status $status (1 means some inputs failed; they are listed above and in report.json)"
echo "== first de-identified file:"
first=$(find "$work/release" -name '*.dcm' | sort | head -n 1)
dcmdump "$first" | sed -n '1,60p'
echo "== report: $work/report.json"
head -c 1200 "$work/report.json"; echo
