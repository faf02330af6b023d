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

# Consent and disclosure accounting: a release that honours each patient's choices.
echo
echo "== consent: importing data/demo/consents.csv into $work/consent.db"
demo_dir=$(cd "$(dirname "$0")/.." && pwd)/data/demo
cat "$demo_dir/consents.csv"
"$radguard" consent import "$demo_dir/consents.csv" --registry "$work/consent.db"
"$radguard" consent show --patient 4MR1 --registry "$work/consent.db"
mkdir -p "$work/export-in"
cp "$samples/CT_small.dcm" "$samples/MR_small.dcm" "$samples/JPEG2000.dcm" "$work/export-in/"
echo "== export for ai-training: 1CT1 permitted, 4MR1 opted out, 8NM1 never asked (default: deny)"
"$radguard" export "$work/export-in" --output "$work/releases" --purpose ai-training --recipient "Acme AI Lab" \
  --option clean-pixel-data --key "$work/demo.key" --registry "$work/consent.db" --ledger "$work/ledger.db" --report "$work/export.json"
echo "== export for research: 1CT1 and 4MR1 permitted"
"$radguard" export "$work/export-in" --output "$work/releases" --purpose research --recipient "University Hospital Study" \
  --option clean-pixel-data --key "$work/demo.key" --registry "$work/consent.db" --ledger "$work/ledger.db"
echo "== releases:"
find "$work/releases" -maxdepth 1 -mindepth 1 | sort
"$radguard" ledger verify --ledger "$work/ledger.db"
echo "== accounting of disclosures for patient 1CT1:"
"$radguard" disclosures --patient 1CT1 --ledger "$work/ledger.db" --key "$work/demo.key"
echo "== accounting of disclosures for patient 4MR1 (JSON):"
"$radguard" disclosures --patient 4MR1 --ledger "$work/ledger.db" --key "$work/demo.key" --format json

# Pixels: burned-in text and faces.
echo
echo "== burned-in text: deid --option clean-pixel-data on secondary captures and a CT"
mkdir -p "$work/pixels-in"
cp "$samples/SC_rgb_jpeg_dcmtk.dcm" "$samples/SC_rgb_rle.dcm" "$samples/CT_small.dcm" "$work/pixels-in/"
set +e
"$radguard" deid "$work/pixels-in" --output "$work/pixels-out" --key "$work/demo.key" \
  --option clean-pixel-data --report "$work/pixels.json"
echo "== exit status $?"
set -e
echo "== defacing the whole-head T1 MR template ch2 (mricron-data), renderings in $work/deface-preview"
set +e
"$radguard" deface /usr/share/mricron/templates/ch2.nii.gz --output "$work/defaced" \
  --preview "$work/deface-preview"
echo "== exit status $?"
set -e
ls "$work/deface-preview" 2>/dev/null | head -n 20
