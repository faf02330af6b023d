#!/usr/bin/env python3
"""A corpus of real third-party DICOM files, replicated with distinct UIDs (issue 21).

    python3 bench/real_corpus.py OUT_DIR --replicas N [--tcia TAR]

Sources, each used when present on the machine (Debian packages and ../shared):
  - the TCIA MR series in ../shared/heads/mr_t1_tcia_predefaced_dicom.tar.xz (120 files);
  - pydicom's test files (python3-pydicom: many transfer syntaxes, character sets, odd files);
  - the examples of GDCM (libgdcm-tools docs) and dicom3tools.
Replica r is every readable source file with its Study, Series, SOP Instance and Frame of
Reference UIDs (and the meta header's copy) mapped to 2.25 UIDs derived from (r, old UID), so
the replicas are distinct studies to every tool, but the same bytes otherwise. Files pydicom
cannot read and write back are left out (counted). Writes OUT_DIR/corpus/rNNN/... and
OUT_DIR/manifest.json (sources, counts, bytes); prints nothing that names a file.
"""
import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import warnings

import pydicom

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TCIA = os.path.join(HERE, "..", "..", "shared", "heads", "mr_t1_tcia_predefaced_dicom.tar.xz")
PYDICOM_DIRS = [os.path.join(os.path.dirname(pydicom.__file__), "data", d)
                for d in ("test_files", "charset_files")]
EXAMPLE_DIRS = ["/usr/share/doc/libgdcm3.0/examples", "/usr/share/doc/dicom3tools/examples",
                "/usr/share/doc/libgdcm-tools/examples"]
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def new_uid(replica, old):
    digest = hashlib.sha256(f"{replica}:{old}".encode()).hexdigest()
    return "2.25." + str(int(digest[:30], 16))


def sources(tcia):
    """(source name, relative name, bytes) of every candidate file."""
    if tcia and os.path.exists(tcia):
        found = []
        with tarfile.open(tcia, "r|xz") as tar:  # streamed: one pass over the xz data
            for member in tar:
                if member.isfile() and member.name.endswith(".dcm"):
                    found.append((os.path.basename(member.name), tar.extractfile(member).read()))
        for name, data in sorted(found):
            yield "tcia", name, data
    for folder in PYDICOM_DIRS + EXAMPLE_DIRS:
        if not os.path.isdir(folder):
            continue
        name = "pydicom" if "pydicom" in folder else os.path.basename(os.path.dirname(folder))
        for root, _, files in sorted(os.walk(folder)):
            for f in sorted(files):
                path = os.path.join(root, f)
                with open(path, "rb") as fh:
                    data = fh.read()
                if len(data) > 132 and data[128:132] == b"DICM":
                    yield name, os.path.relpath(path, folder), data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--replicas", type=int, required=True)
    parser.add_argument("--tcia", default=DEFAULT_TCIA)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    datasets, skipped, per_source = [], 0, {}
    for source, rel, data in sources(args.tcia):
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
            ds.save_as(io.BytesIO())  # can it be written back at all?
        except Exception:  # noqa: BLE001 - a file pydicom cannot round-trip is left out
            skipped += 1
            continue
        datasets.append((source, rel.replace(os.sep, "_"), ds))
        per_source[source] = per_source.get(source, 0) + 1
    total_files, total_bytes = 0, 0
    for r in range(args.replicas):
        folder = os.path.join(args.out, "corpus", f"r{r:03d}")
        os.makedirs(folder, exist_ok=True)
        for i, (source, rel, ds) in enumerate(datasets):
            for keyword in UID_KEYWORDS:
                if keyword in ds:
                    original = ds.get(f"_orig_{keyword}", None)
                    if original is None:
                        original = str(ds.data_element(keyword).value)
                        setattr(ds, f"_orig_{keyword}", original)
                    ds.data_element(keyword).value = new_uid(r, original)
            if hasattr(ds, "file_meta") and "MediaStorageSOPInstanceUID" in ds.file_meta \
                    and "SOPInstanceUID" in ds:
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            path = os.path.join(folder, f"{source}-{i:04d}.dcm")
            ds.save_as(path)
            total_files += 1
            total_bytes += os.path.getsize(path)
    manifest = {"replicas": args.replicas, "files_per_replica": len(datasets),
                "files_left_out": skipped, "per_source": per_source,
                "files": total_files, "bytes": total_bytes}
    with open(os.path.join(args.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    print(f"real corpus: {total_files} files, {total_bytes / 1e6:.0f} MB "
          f"({args.replicas} replicas of {len(datasets)}; {skipped} left out)", file=sys.stderr)


if __name__ == "__main__":
    main()
