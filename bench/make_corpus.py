#!/usr/bin/python3
"""Builds a synthetic, deterministic DICOM corpus for radguard's de-identification benchmark.

    bench/make_corpus.py OUTDIR [--files 3000] [--megabytes 500] [--seed 1]

Layout (a hospital export: one folder per patient, study and series, files IMG0001...):

    OUTDIR/corpus/wellformed/<PATIENT_NAME>/<STUDY>/<SERIES>/IMG0001  valid DICOM files
    OUTDIR/corpus/malformed/<PATIENT_NAME>/<STUDY>/<SERIES>/IMG....   truncated files, a 4 KB
                                                          file declaring a 1.3 GB element, an
                                                          element longer than its file,
                                                          non-DICOM files
    OUTDIR/manifest.json                                  counts, sizes, seed

The whole corpus is OUTDIR/corpus; its well-formed files alone are OUTDIR/corpus/wellformed.
Every name, ID, date and UID is synthetic and derived from --seed: the same arguments give the same bytes.
--megabytes is a target: the file mix is sized to approach it (see the manifest for the result).
"""

import argparse
import copy
import io
import json
import os
import random
import struct
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

SAMPLES = Path(pydicom.__file__).parent / "data" / "test_files"
# Encapsulated real-world samples (JPEG baseline/extended/lossless, JPEG-LS, RLE, JPEG 2000).
ENCAPSULATED_SAMPLES = [
    "693_J2KI.dcm", "GDCMJ2K_TextGBR.dcm", "J2K_pixelrep_mismatch.dcm", "JPEG-lossy.dcm",
    "JPGExtended.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm", "SC_jpeg_no_color_transform.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_gdcm_KY.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm", "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_rle_32bit.dcm", "SC_rgb_small_odd_jpeg.dcm", "rtdose_rle.dcm",
]

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
US_MF_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
XA_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"

FAMILY = ["SMITH", "JONES", "GARCIA", "MULLER", "DUBOIS", "ROSSI", "NOVAK", "KOWALSKI", "NIELSEN",
          "OKAFOR", "TANAKA", "SILVA", "MARTIN", "BERG", "HUGHES", "PETROV", "COSTA", "WEBER"]
GIVEN = ["ANNA", "JOHN", "MARIA", "PIERRE", "LENA", "OMAR", "SOFIA", "LUCAS", "EMMA", "IVAN",
         "CHLOE", "PAUL", "NINA", "DAVID", "ELIF", "TOM", "ROSA", "HUGO"]
CITIES = ["SPRINGFIELD", "RIVERTON", "LAKEVIEW", "FAIRVIEW", "MIDDLETON"]


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.seed = seed

    def uid(self):
        return "2.25.%d" % self.rng.getrandbits(120)

    def date(self, lo=1940, hi=2024):
        return "%04d%02d%02d" % (self.rng.randint(lo, hi), self.rng.randint(1, 12), self.rng.randint(1, 28))

    def time(self):
        return "%02d%02d%02d.%06d" % (self.rng.randint(7, 19), self.rng.randint(0, 59),
                                      self.rng.randint(0, 59), self.rng.randint(0, 999999))


def make_patient(g, index):
    name = "%s^%s" % (g.rng.choice(FAMILY), g.rng.choice(GIVEN))
    return {
        "name": name,
        "id": "MRN%07d" % g.rng.randint(0, 9_999_999),
        "birth": g.date(1930, 2010),
        "sex": g.rng.choice("MF"),
        "address": "%d %s ROAD, %s" % (g.rng.randint(1, 300), g.rng.choice(FAMILY), g.rng.choice(CITIES)),
        "folder": name.replace("^", "_") + "_%03d" % index,
    }


def make_study(g, patient, index):
    return {
        "uid": g.uid(), "date": g.date(2015, 2024), "time": g.time(),
        "accession": "ACC%08d" % g.rng.randint(0, 99_999_999),
        "id": "S%05d" % g.rng.randint(0, 99999),
        "physician": "%s^%s^^DR" % (g.rng.choice(FAMILY), g.rng.choice(GIVEN)),
        "folder": "STUDY%02d" % index,
        "frame_of_reference": g.uid(),
    }


def private_block(g, ds, kind, patient):
    """Private tags: creators from the PS3.15 safe-private list and unknown ones carrying PHI."""
    if kind == "siemens":
        block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
        block.add_new(0x08, "CS", "IMAGE NUM 4")
        block.add_new(0x09, "LO", "20100114")
        block.add_new(0x10, "OB", g.np.integers(0, 256, 2048, dtype=np.uint8).tobytes())
        mr = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        mr.add_new(0x08, "CS", "IMAGE NUM 4")
        mr.add_new(0x0B, "DS", "%d" % g.rng.randint(1, 80))
    elif kind == "ge":
        block = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
        block.add_new(0x27, "SH", "/1.0:1")
        block.add_new(0x39, "IS", ["3", "0", "0", "0"])
        acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        acq.add_new(0x9E, "LO", "GENERIC")
        idn = ds.private_block(0x0009, "GEMS_IDEN_01", create=True)
        idn.add_new(0x01, "LO", "SUITE ID " + patient["id"])
    # An unknown creator that hides identity in private text and a private sequence.
    unknown = ds.private_block(0x0011, "ACME HOSPITAL PACS 2.1", create=True)
    unknown.add_new(0x01, "LO", patient["name"])
    unknown.add_new(0x02, "LT", "Referred from %s on %s" % (patient["address"], patient["birth"]))
    item = Dataset()
    item.PatientID = patient["id"]
    item.add_new(0x00111010, "LO", "ACME HOSPITAL PACS 2.1")
    item.add_new(0x00111011, "LO", patient["name"])
    unknown.add_new(0x03, "SQ", Sequence([item]))


def base_dataset(g, sop_class, patient, study, series, number, modality):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = g.uid()
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    ds.AcquisitionDate = study["date"]
    ds.ContentDate = study["date"]
    ds.StudyTime = study["time"]
    ds.SeriesTime = study["time"]
    ds.ContentTime = g.time()
    ds.AccessionNumber = study["accession"]
    ds.Modality = modality
    ds.Manufacturer = series["manufacturer"]
    ds.InstitutionName = "ST. ELSEWHERE GENERAL HOSPITAL"
    ds.InstitutionAddress = "1 HOSPITAL WAY, " + g.rng.choice(CITIES)
    ds.ReferringPhysicianName = study["physician"]
    ds.StationName = "CT%02d-%s" % (g.rng.randint(1, 9), series["manufacturer"][:4].upper())
    ds.StudyDescription = series["study_description"]
    ds.SeriesDescription = series["description"]
    ds.OperatorsName = "%s^%s" % (g.rng.choice(FAMILY), g.rng.choice(GIVEN))
    ds.PerformingPhysicianName = study["physician"]
    ds.ManufacturerModelName = "MODEL-%d" % g.rng.randint(100, 999)
    # Nested sequences: request attributes with a code sequence inside each item.
    code = Dataset()
    code.CodeValue = "RPID%d" % g.rng.randint(1, 999)
    code.CodingSchemeDesignator = "LOCAL"
    code.CodeMeaning = "CT CHEST WITH CONTRAST for " + patient["name"].replace("^", " ")
    request = Dataset()
    request.RequestedProcedureID = "RP%06d" % g.rng.randint(0, 999999)
    request.ScheduledProcedureStepID = "SPS%06d" % g.rng.randint(0, 999999)
    request.ScheduledProtocolCodeSequence = Sequence([code])
    request.AccessionNumber = study["accession"]
    ds.RequestAttributesSequence = Sequence([request])
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref_study.ReferencedSOPInstanceUID = g.uid()
    ds.ReferencedStudySequence = Sequence([ref_study])
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.IssuerOfPatientID = "ST.ELSEWHERE"
    ds.PatientBirthDate = patient["birth"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = "%03dY" % max(1, int(study["date"][:4]) - int(patient["birth"][:4]))
    ds.PatientAddress = patient["address"]
    other = Dataset()
    other.PatientID = "ALT" + patient["id"][3:]
    other.IssuerOfPatientID = "CITY CLINIC"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.BodyPartExamined = series["body_part"]
    ds.DeviceSerialNumber = "SN%06d" % g.rng.randint(0, 999999)
    ds.SoftwareVersions = "VB%02d" % g.rng.randint(10, 99)
    ds.ProtocolName = series["description"]
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series["uid"]
    ds.StudyID = study["id"]
    ds.SeriesNumber = series["number"]
    ds.InstanceNumber = number
    ds.FrameOfReferenceUID = study["frame_of_reference"]
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = "scanned for %s" % patient["name"].replace("^", " ")
    return ds


def add_pixels(ds, rows, cols, frames, samples, bits, signed, data):
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits
    ds.BitsStored = 12 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = data
    ds["PixelData"].VR = "OW" if bits == 16 else "OB"


def image_pixels(g, rows, cols, big_endian):
    # A disc phantom with noise: cheap, deterministic, not trivially compressible.
    y, x = np.ogrid[:rows, :cols]
    r2 = (y - rows / 2) ** 2 + (x - cols / 2) ** 2
    img = np.where(r2 < (rows * 0.42) ** 2, 40, -1000).astype(np.int16)
    img += g.np.integers(-60, 60, size=(rows, cols), dtype=np.int16)
    return img.astype(">i2" if big_endian else "<i2").tobytes()


def write(ds, path, sop_class, transfer_syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1.999"
    meta.ImplementationVersionName = "MAKECORPUS_1"
    fds = FileDataset(str(path), ds, file_meta=meta, preamble=b"\0" * 128)
    fds.is_little_endian = transfer_syntax != ExplicitVRBigEndian
    fds.is_implicit_VR = transfer_syntax == ImplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    fds.save_as(str(path), write_like_original=False)


def plan(files, megabytes):
    """Counts per kind, sized so the total approaches the target."""
    n_bad = max(6, files // 300)
    n_good = files - n_bad
    n_enc = max(len(ENCAPSULATED_SAMPLES), n_good // 10)
    n_sc = max(4, n_good // 25)
    n_mf = max(4, n_good // 100)
    n_img = n_good - n_enc - n_sc - n_mf
    budget = megabytes * 1_000_000
    mr_b, ct_b = 256 * 256 * 2 + 3000, 512 * 512 * 2 + 3000
    # Multi-frame: half US cine (480x640 RGB), half XA (512x512 8-bit), a quarter of the bytes.
    avg_frame = (480 * 640 * 3 + 512 * 512) / 2
    frames = int(min(max(2, budget * 0.25 / (n_mf * avg_frame)), 120))
    fixed = n_enc * 20_000 + n_sc * (256 * 256 * 3 + 3000) + n_mf * frames * avg_frame
    # Split single-frame images between CT (512x512) and MR (256x256) to fit the rest.
    n_ct = int((budget - fixed - n_img * mr_b) / (ct_b - mr_b))
    n_ct = min(max(n_ct, n_img // 20), n_img * 9 // 10)
    n_mr = n_img - n_ct
    us_frames = xa_frames = frames
    return {"bad": n_bad, "enc": n_enc, "sc": n_sc, "mf": n_mf, "ct": n_ct, "mr": n_mr,
            "us_frames": us_frames, "xa_frames": xa_frames}


SERIES_KINDS = {
    "ct": (CT_STORAGE, "CT", "CHEST", "AX 1.25mm C+", (20, 80)),
    "mr": (MR_STORAGE, "MR", "HEAD", "T2 TSE TRA", (10, 40)),
    "us": (US_MF_STORAGE, "US", "ABDOMEN", "ABD LIVER CINE", (1, 4)),
    "xa": (XA_STORAGE, "XA", "HEART", "LCA RAO 30", (1, 4)),
    "sc": (SC_STORAGE, "OT", "CHEST", "SCREEN CAPTURE", (1, 3)),
    "enc": (None, None, None, None, (1, 3)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--megabytes", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    out = Path(args.outdir).resolve()
    repo = Path(__file__).resolve().parent.parent
    if out == repo or repo in out.parents:
        sys.exit("make_corpus: refusing to write inside the repository (%s)" % repo)
    if out.exists() and any(out.iterdir()):
        sys.exit("make_corpus: %s exists and is not empty" % out)
    good_root, bad_root = out / "corpus" / "wellformed", out / "corpus" / "malformed"

    g = Gen(args.seed)
    counts = plan(args.files, args.megabytes)
    kinds = (["ct"] * counts["ct"] + ["mr"] * counts["mr"] + ["enc"] * counts["enc"] + ["sc"] * counts["sc"]
             + ["us"] * ((counts["mf"] + 1) // 2) + ["xa"] * (counts["mf"] // 2))
    g.rng.shuffle(kinds)
    # Group into series of one kind; series into studies; studies into patients.
    remaining = {k: kinds.count(k) for k in set(kinds)}
    order = []
    for k in kinds:
        if remaining[k] == 0:
            continue
        lo, hi = SERIES_KINDS[k][4]
        n = min(remaining[k], g.rng.randint(lo, hi))
        remaining[k] -= n
        order.append((k, n))

    patients, written, explicit_le = [], [], []
    tally = {"explicit_le": 0, "implicit_le": 0, "explicit_be": 0, "deflated": 0, "encapsulated": 0}
    sample_cache = {name: pydicom.dcmread(str(SAMPLES / name)) for name in ENCAPSULATED_SAMPLES}
    enc_index = 0
    study = patient = None
    series_in_study = 0
    for series_index, (kind, n) in enumerate(order):
        if patient is None or g.rng.random() < 0.35:
            patient = make_patient(g, len(patients) + 1)
            patient["studies"] = 0
            patients.append(patient)
            study = None
        if study is None or series_in_study >= g.rng.randint(2, 6):
            patient["studies"] += 1
            study = make_study(g, patient, patient["studies"])
            series_in_study = 0
        series_in_study += 1
        sop_class, modality, body, desc, _ = SERIES_KINDS[kind]
        series = {"uid": g.uid(), "number": series_in_study, "description": desc or "IMPORTED",
                  "manufacturer": g.rng.choice(["SIEMENS", "GE MEDICAL SYSTEMS", "PHILIPS", "CANON"]),
                  "body_part": body or "UNKNOWN", "study_description": "%s %s" % (modality or "OT", body or "")}
        folder = good_root / patient["folder"] / study["folder"] / ("SER%03d_%s" % (
            series_in_study, (modality or "OT")))
        # Transfer syntax per series: mostly explicit LE, some implicit LE, big endian, deflated.
        roll = g.rng.random()
        ts = (ImplicitVRLittleEndian if roll < 0.15 else ExplicitVRBigEndian if roll < 0.22
              else DeflatedExplicitVRLittleEndian if roll < 0.27 else ExplicitVRLittleEndian)
        if kind in ("us", "xa", "sc") and ts == DeflatedExplicitVRLittleEndian:
            ts = ExplicitVRLittleEndian  # deflating 100 MB of frames in Python is slow
        for i in range(1, n + 1):
            path = folder / ("IMG%04d" % i)
            if kind == "enc":
                name = ENCAPSULATED_SAMPLES[enc_index % len(ENCAPSULATED_SAMPLES)]
                enc_index += 1
                ds = copy.deepcopy(sample_cache[name])
                # Original clinical data carries no Encrypted Attributes Sequence (a sample that
                # was once gdcmanon'ed does, and gdcmanon then refuses the file and stops).
                for tag in (0x04000500, 0x04000561, 0x00120062, 0x00120063, 0x00120064):
                    if tag in ds:
                        del ds[tag]
                ds.SOPInstanceUID = g.uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.StudyInstanceUID = study["uid"]
                ds.SeriesInstanceUID = series["uid"]
                ds.PatientName = patient["name"]
                ds.PatientID = patient["id"]
                ds.PatientBirthDate = patient["birth"]
                ds.StudyDate = study["date"]
                ds.AccessionNumber = study["accession"]
                ds.InstitutionName = "ST. ELSEWHERE GENERAL HOSPITAL"
                private_block(g, ds, g.rng.choice(["siemens", "ge"]), patient)
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(str(path), write_like_original=False)
                tally["encapsulated"] += 1
                written.append(path)
                continue
            ds = base_dataset(g, sop_class, patient, study, series, i, modality)
            big = ts == ExplicitVRBigEndian
            if kind == "ct":
                ds.ImagePositionPatient = [-250.0, -250.0, -1.25 * i]
                ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
                ds.PixelSpacing = [0.9765625, 0.9765625]
                ds.SliceThickness = 1.25
                ds.RescaleIntercept = -1024
                ds.RescaleSlope = 1
                ds.KVP = 120
                add_pixels(ds, 512, 512, 1, 1, 16, True, image_pixels(g, 512, 512, big))
            elif kind == "mr":
                ds.ImagePositionPatient = [-120.0, -120.0, 5.0 * i]
                ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
                ds.PixelSpacing = [0.9375, 0.9375]
                ds.SliceThickness = 5
                ds.MagneticFieldStrength = 1.5
                add_pixels(ds, 256, 256, 1, 1, 16, True, image_pixels(g, 256, 256, big))
            elif kind == "us":
                frames = counts["us_frames"]
                ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL"]
                ds.FrameTime = 33.3
                ds.FrameIncrementPointer = 0x00181063
                data = g.np.integers(0, 256, 480 * 640 * 3, dtype=np.uint8).tobytes() * frames
                add_pixels(ds, 480, 640, frames, 3, 8, False, data)
            elif kind == "xa":
                frames = counts["xa_frames"]
                ds.FrameTime = 66.7
                ds.FrameIncrementPointer = 0x00181063
                ds.PositionerPrimaryAngle = -30
                data = g.np.integers(0, 256, 512 * 512, dtype=np.uint8).tobytes() * frames
                add_pixels(ds, 512, 512, frames, 1, 8, False, data)
            elif kind == "sc":
                ds.ImageType = ["DERIVED", "SECONDARY"]
                ds.ConversionType = "WSD"
                add_pixels(ds, 256, 256, 1, 3, 8, False,
                           g.np.integers(0, 256, 256 * 256 * 3, dtype=np.uint8).tobytes())
            private_block(g, ds, "siemens" if series["manufacturer"] == "SIEMENS" else
                          "ge" if series["manufacturer"].startswith("GE") else "none", patient)
            write(ds, path, sop_class, ts)
            tally[{ImplicitVRLittleEndian: "implicit_le", ExplicitVRBigEndian: "explicit_be",
                   DeflatedExplicitVRLittleEndian: "deflated", ExplicitVRLittleEndian: "explicit_le"}[ts]] += 1
            written.append(path)
            if ts == ExplicitVRLittleEndian and kind in ("ct", "mr"):
                explicit_le.append(path)

    # The malformed subset, in the same export layout.
    bad = []
    victims = explicit_le
    for j in range(counts["bad"]):
        patient = patients[g.rng.randrange(len(patients))]
        folder = bad_root / patient["folder"] / "STUDY01" / "SER001_CT"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ("IMG%04d" % (j + 1))
        kind = j % 6
        if kind in (0, 1):  # truncated in the pixel data / in the header
            src = victims[g.rng.randrange(len(victims))].read_bytes()
            path.write_bytes(src[: int(len(src) * 0.6)] if kind == 0 else src[:700])
            what = "truncated_pixels" if kind == 0 else "truncated_header"
        elif kind == 2:  # 4 KB file whose pixel data element declares 1.3 GB
            src = victims[g.rng.randrange(len(victims))]
            ds = pydicom.dcmread(str(src))
            del ds[0x00290000:0x00300000]
            del ds[0x00110000:0x00120000]
            del ds.PixelData
            buffer = io.BytesIO()
            ds.save_as(buffer, write_like_original=False)
            body = bytearray(buffer.getvalue() + b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", 1_300_000_000))
            body += bytes(g.np.integers(0, 256, max(0, 4096 - len(body)), dtype=np.uint8))
            path.write_bytes(bytes(body[:4096]))
            what = "declares_1.3GB"
        elif kind == 3:  # a private element that declares more bytes than the file holds
            src = bytearray(victims[g.rng.randrange(len(victims))].read_bytes())
            at = src.find(b"\x29\x00\x10\x10OB\x00\x00")
            if at < 0:
                at = src.find(b"\x11\x00\x02\x10LT")
                src[at + 6: at + 8] = struct.pack("<H", 0xFFF0)
            else:
                src[at + 8: at + 12] = struct.pack("<I", 0x7FFFFFF0)
            path.write_bytes(bytes(src[: min(len(src), 8192)]))
            what = "wrong_length"
        elif kind == 4:  # not DICOM: an export's text file
            path = folder / "README.TXT"
            path.write_text("Exported by PACS for %s\n" % patient["folder"])
            what = "not_dicom"
        else:  # not DICOM: random bytes named like an image
            path.write_bytes(bytes(g.np.integers(0, 256, 20_000, dtype=np.uint8)))
            what = "not_dicom"
        bad.append({"path": str(path.relative_to(out / "corpus")), "kind": what, "bytes": path.stat().st_size})

    good_bytes = sum(p.stat().st_size for p in written)
    manifest = {
        "seed": args.seed, "files_requested": args.files, "megabytes_requested": args.megabytes,
        "wellformed_files": len(written), "wellformed_bytes": good_bytes,
        "malformed_files": len(bad), "malformed_bytes": sum(b["bytes"] for b in bad),
        "patients": len(patients), "plan": counts, "transfer_syntaxes": tally, "malformed": bad,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print("make_corpus: %d well-formed files (%.0f MB), %d malformed, %d patients in %s" % (
        len(written), good_bytes / 1e6, len(bad), len(patients), out))


if __name__ == "__main__":
    main()
