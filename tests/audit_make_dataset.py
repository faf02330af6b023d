#!/usr/bin/python3
"""Writes a small synthetic DICOM dataset with planted identifying values, for audit tests.

    tests/audit_make_dataset.py OUTDIR PLANTED.json [--patients 6] [--per-patient 2] [--seed 1]

OUTDIR/<FAMILY>_<GIVEN>/<study>/IMG000n.dcm (the patient folder is itself identifying).
PLANTED.json lists, per file (relative path), every planted identifying value and the
attribute path where it sits, in radguard audit's path syntax ("(0040,A730)[0]/(0040,A160)").
Every value is synthetic and follows from --seed.
"""
import argparse
import json
import random
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

FAMILY = ["SMITH", "GARCIA", "MULLER", "DUBOIS", "ROSSI", "NOVAK", "KOWALSKI", "NIELSEN"]
GIVEN = ["ANNA", "PIERRE", "LENA", "OMAR", "SOFIA", "LUCAS", "EMMA", "IVAN"]
CT = "1.2.840.10008.5.1.4.1.1.2"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("planted")
    ap.add_argument("--patients", type=int, default=6)
    ap.add_argument("--per-patient", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = Path(a.out)
    planted = {}
    for p in range(a.patients):
        family, given = FAMILY[p % len(FAMILY)], GIVEN[p % len(GIVEN)]
        name = f"{family}^{given}"
        mrn = f"MRN{rng.randrange(100000, 999999)}"
        birth = f"19{rng.randrange(40, 99)}{rng.randrange(1, 13):02d}{rng.randrange(1, 28):02d}"
        study_date = f"2019{rng.randrange(1, 13):02d}{rng.randrange(1, 28):02d}"
        accession = f"A{rng.randrange(10000000, 99999999)}"
        phone = f"555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}"
        study_uid = f"1.2.840.113619.2.55.3.{rng.randrange(10**8, 10**9)}.{study_date}{rng.randrange(100000, 999999)}"
        series_uid = study_uid + ".1"
        for i in range(a.per_patient):
            rel = f"{family}_{given}/study1/IMG{i + 1:04d}.dcm"
            sop_uid = f"{series_uid}.{i + 1}"
            ds = Dataset()
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.SOPClassUID = CT
            ds.SOPInstanceUID = sop_uid
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = study_uid + ".9"
            ds.StudyDate = study_date
            ds.SeriesDate = study_date
            ds.StudyTime = "101500"
            ds.AccessionNumber = accession
            ds.Modality = "CT"
            ds.Manufacturer = "SIEMENS"
            ds.ManufacturerModelName = "SOMATOM Definition AS"
            ds.InstitutionName = "Mercy General Hospital"
            ds.InstitutionAddress = "12 Harbour Road, Springfield"
            ds.ReferringPhysicianName = "HOUSE^GREGORY"
            ds.OperatorsName = "CUDDY^LISA"
            ds.StationName = "CTROOM3"
            ds.StudyDescription = "CT CHEST"
            ds.SeriesDescription = "Axial 5mm"
            ds.PatientName = name
            ds.PatientID = mrn
            ds.PatientBirthDate = birth
            ds.PatientSex = "M" if p % 2 else "F"
            ds.PatientAge = f"{2019 - int(birth[:4]):03d}Y"
            ds.BodyPartExamined = "CHEST"
            ds.ImageComments = f"Patient {given.title()} {family.title()}, call {phone}"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.StudyID = "1"
            ds.SeriesNumber = 1
            ds.InstanceNumber = i + 1
            # A private block no safe list knows, holding the name.
            ds.add_new(0x00190010, "LO", "ACME HOSPITAL PRIVATE")
            ds.add_new(0x00191001, "LO", name)
            # Free text deep inside a content item.
            item = Dataset()
            item.RelationshipType = "CONTAINS"
            item.ValueType = "TEXT"
            item.TextValue = f"Seen by Dr House; patient {mrn}"
            ds.ContentSequence = Sequence([item])
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ds.Columns = 16
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 0
            ds.PixelData = np.array([rng.randrange(0, 4096) for _ in range(256)], dtype="<u2").tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = CT
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.preamble = b"\0" * 128
            ds.save_as(str(path), write_like_original=False)
            planted[rel] = {
                "(0010,0010)": name, "(0010,0020)": mrn, "(0010,0030)": birth,
                "(0008,0050)": accession, "(0008,0080)": "Mercy General Hospital",
                "(0008,0081)": "12 Harbour Road", "(0008,0090)": "HOUSE^GREGORY",
                "(0008,1070)": "CUDDY^LISA", "(0008,1010)": "CTROOM3",
                "(0020,4000)": family.title(), "(0019,1001)": name,
                "(0040,A730)[0]/(0040,A160)": mrn, "(0008,0020)": study_date,
                "(0020,000D)": study_uid, "(0020,000E)": series_uid, "(0008,0018)": sop_uid,
                "filename": family,
            }
    Path(a.planted).write_text(json.dumps(planted, indent=1))


if __name__ == "__main__":
    main()
