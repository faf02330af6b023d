#!/usr/bin/python3
"""Generates DICOM screens with burned-in text and an answer key, for measuring redaction.

A second generator, deliberately unlike the one in tests/support (OpenCV's Hershey fonts on
ultrasound-like frames): TrueType fonts of four families drawn by Pillow (anti-aliased and
aliased), 7-30 px, contrast down to ~10 grey levels, colour, speckle and gradients under the
text, text touching the edges, rotated labels, CT dose-report tables, scanned request forms
(blur, dust, pale stamps), JPEG-compressed screens and multi-frame clips with static and
changing text. The answer key lists every word drawn, whether it identifies the patient, and
its ink box per frame, so coverage is judged from the pixels, not from radguard's report.

    make_screens.py OUTDIR [COUNT=60] [SEED=7] [--style classic|held-out|third|fourth]

Writes OUTDIR/dicom/NNNN.dcm and OUTDIR/truth.json. `--style held-out` (bench/heldout_screens.py)
draws screens of other fonts, layouts, patients and vocabulary, never used while tuning.
`--style third` (bench/third_screens.py) draws its glyphs with cairo and X11 bitmap fonts,
not Pillow, in layouts of a third kind. `--style fourth` (bench/fourth_screens.py) adds
Linux console fonts, faces none of the others use, coloured text on RGB frames saved as
4:2:2 JPEG, table cells with grid lines, letter-spaced text and words half over anatomy;
its answer key tags every word with its drawing category.
"""
import io
import json
import math
import os
import random
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation",
             "/usr/share/fonts/truetype/freefont", "/usr/share/fonts/truetype/noto"]
FONT_FILES = [
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf",
    "DejaVuSansCondensed-Bold.ttf", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
    "LiberationMono-Regular.ttf", "LiberationSerif-Regular.ttf", "LiberationSansNarrow-Bold.ttf",
    "FreeSans.ttf", "FreeSansBold.ttf", "FreeMono.ttf", "FreeMonoBold.ttf", "FreeSerif.ttf",
    "NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSansMono-Regular.ttf",
    "NotoSerif-Regular.ttf"]

FAMILY = ["MARSHALL", "OKONKWO", "VANDERBERG", "LINDQVIST", "FERREIRA", "KOWALCZYK", "HARGREAVES",
          "NAKAMURA", "DELACROIX", "PETROVIC", "ABERNATHY", "QUINTERO", "SORENSEN", "MCALLISTER",
          "BRANDT", "OYELARAN", "CASTELLANOS", "WHITLOCK", "HOLLOWAY", "ZIMMERMANN"]
GIVEN = ["ELEANOR", "TOBIAS", "MARGUERITE", "KWAME", "ISOLDE", "BARNABY", "PRIYA", "CORNELIUS",
         "ROSALIND", "DMITRI", "HENRIETTA", "LEOPOLD", "SAOIRSE", "AUGUSTIN", "BEATRIX", "OSWALD"]
INSTITUTIONS = [("ST", "BARNABAS", "GENERAL"), ("RIVERSIDE", "MEDICAL", "CENTRE"),
                ("NORTHGATE", "CLINIC"), ("MERCY", "VALLEY", "HOSPITAL"),
                ("KINGSBRIDGE", "IMAGING")]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

US_SAFE = ["Gain 54", "Depth 16cm", "MI 0.8", "TIS 0.4", "FR 32Hz", "C5-1", "LIVER",
           "Transverse", "ABD", "Dyn R 60", "Map C", "PRF 2.5kHz", "Focus 8cm", "THI",
           "RT KIDNEY", "SAG", "Long", "Compound", "Res", "Harm", "TIB 0.2", "Frq 4.0MHz"]
CT_SAFE = ["Series", "Type", "Scan Range", "CTDIvol", "DLP", "Phantom", "Total", "Helical",
           "Body 32", "Head 16", "mGy", "mGy-cm", "Topogram", "Exam", "Dose Report", "kVp 120",
           "mAs 200", "Tilt 0.0"]
FORM_SAFE = ["Request", "for", "Imaging", "Examination", "Clinical", "history", "Indication",
             "abdominal", "pain", "Signature", "Priority", "Routine", "Allergies", "none",
             "Previous", "studies", "Please", "compare", "Referring", "department"]


def pick(rng, items):
    return items[rng.randrange(len(items))]


class Patient:
    def __init__(self, rng):
        self.family = pick(rng, FAMILY)
        self.given = pick(rng, GIVEN)
        self.mrn = str(rng.randrange(1000000, 99999999))
        if rng.random() < 0.3:
            self.mrn = pick(rng, ["MRN", "H", "P"]) + self.mrn
        self.accession = "A" + str(rng.randrange(100000, 9999999))
        self.birth = (rng.randrange(1930, 2010), rng.randrange(1, 13), rng.randrange(1, 29))
        self.study = (rng.randrange(2015, 2026), rng.randrange(1, 13), rng.randrange(1, 29))
        self.institution = pick(rng, INSTITUTIONS)

    def date_text(self, rng, d):
        y, m, day = d
        return pick(rng, [f"{m:02d}/{day:02d}/{y}", f"{day:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{day:02d}",
                          f"{day:02d}-{MONTHS[m - 1]}-{y}", f"{y}{m:02d}{day:02d}",
                          f"{day:02d}/{m:02d}/{y}"])

    def lines(self, rng):
        """Identifying lines as screens show them: list of (label words, phi words)."""
        name = pick(rng, [[f"{self.family},", self.given], [self.family, self.given],
                          [self.given.title(), self.family.title()], [f"{self.family}^{self.given}"],
                          [self.family.title() + ",", self.given.title()]])
        return [
            (pick(rng, [[], ["Name:"], ["Patient:"], ["PT"]]), name),
            (pick(rng, [["ID:"], ["MRN"], ["PID"], ["Pat.ID"]]), [self.mrn]),
            (pick(rng, [["DOB"], ["Born"], ["DOB:"], ["Birth"]]), [self.date_text(rng, self.birth)]),
            (pick(rng, [["Acc"], ["Acc#"], ["Accession"]]), [self.accession]),
            ([], [w.title() if rng.random() < 0.5 else w for w in self.institution]),
            (pick(rng, [["Study"], ["Exam date"], []]), [self.date_text(rng, self.study)]),
        ]


class Canvas:
    """One frame being drawn, recording every word's ink box."""

    def __init__(self, image, rng, aliased):
        self.image = image
        self.rng = rng
        self.draw = ImageDraw.Draw(image)
        if aliased:
            self.draw.fontmode = "1"
        self.words = []

    def text_line(self, x, y, words, font, fill, phi_flags, angle=0):
        """Draws words left to right from (x, y); returns the x after the line."""
        space = max(3, int(font.size * 0.35))
        for word, phi in zip(words, phi_flags):
            if angle:
                self._rotated_word(x, y, word, font, fill, phi, angle)
                y -= int(font.getlength(word)) + space
                continue
            box = self.draw.textbbox((x, y), word, font=font)
            self.draw.text((x, y), word, font=font, fill=fill)
            self.record(word, phi, box)
            x = box[2] + space
        return x

    def _rotated_word(self, x, y, word, font, fill, phi, angle):
        w = int(font.getlength(word)) + 4
        h = font.size + 8
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).text((2, 2), word, font=font, fill=255)
        mask = mask.rotate(angle, expand=True)
        top = y - mask.size[1]
        colour = Image.new(self.image.mode, mask.size, fill)
        self.image.paste(colour, (x, top), mask)
        ink = mask.getbbox()
        if ink:
            self.record(word, phi, (x + ink[0], top + ink[1], x + ink[2], top + ink[3]))

    def record(self, word, phi, box):
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.image.size[0], x1), min(self.image.size[1], y1)
        if x1 > x0 and y1 > y0:
            self.words.append({"text": word, "phi": phi, "box": [x0, y0, x1 - x0, y1 - y0]})


def font(rng, size):
    name = pick(rng, FONT_FILES)
    for d in FONT_DIRS:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    raise SystemExit(f"font {name} missing (scripts/install-deps.sh installs the fonts)")


def speckle(rng, width, height, box, level):
    """Blobby ultrasound-like speckle inside a sector; returns a float array."""
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    noise = nrng.rayleigh(1.0, (height, width)).astype(np.float32)
    img = Image.fromarray(np.clip(noise * 60, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.2))
    arr = np.asarray(img, dtype=np.float32) * level
    yy, xx = np.mgrid[0:height, 0:width]
    cx, top = (box[0] + box[2]) / 2, box[1]
    r = np.hypot(xx - cx, yy - top)
    ang = np.degrees(np.arctan2(xx - cx, yy - top))
    inside = (r > 20) & (r < box[3] - box[1]) & (np.abs(ang) < 38)
    return np.where(inside, arr, 0)


def foreground(rng, background, colour, min_contrast):
    """A text colour at least min_contrast grey levels from the background."""
    if colour:
        return pick(rng, [(255, 255, 0), (0, 255, 0), (0, 220, 255), (255, 140, 0), (255, 255, 255)])
    low = rng.random() < 0.25
    delta = rng.randrange(min_contrast, max(min_contrast + 1, 30)) if low else rng.randrange(90, 255)
    return int(min(255, background + delta) if background < 128 else max(0, background - delta))


def ultrasound(rng, patient, index):
    width, height = pick(rng, [(640, 480), (800, 600), (720, 540), (1024, 768)])
    colour = rng.random() < 0.35
    bg = rng.randrange(0, 40)
    field = speckle(rng, width, height, (width * 0.2, height * 0.12, width * 0.8, height * 0.95),
                    rng.uniform(0.6, 1.1))
    base = np.clip(field + bg, 0, 255).astype(np.uint8)
    image = Image.fromarray(base).convert("RGB" if colour else "L")
    canvas = Canvas(image, rng, aliased=rng.random() < 0.3)
    lines = patient.lines(rng)
    # Top bar: the name (often large and bold), then the other identifiers.
    y = rng.choice([0, 1, 2, 4])
    x = rng.choice([0, 1, 3, 8])
    label, phi = lines[0]
    big = font(rng, rng.randrange(13, 31))
    fg = foreground(rng, bg, colour, 10)
    canvas.text_line(x, y, label + phi, big, fg, [False] * len(label) + [True] * len(phi))
    y += big.size + rng.randrange(2, 8)
    small_size = rng.randrange(7, 15)
    for label, phi in lines[1:]:
        f = font(rng, small_size)
        canvas.text_line(x, y, label + phi, f, foreground(rng, bg, colour, 10),
                         [False] * len(label) + [True] * len(phi))
        y += small_size + rng.randrange(2, 6)
    # Parameters on the right, some over the speckle.
    py = int(height * rng.uniform(0.15, 0.3))
    px = int(width * rng.uniform(0.7, 0.85))
    for _ in range(rng.randrange(4, 9)):
        f = font(rng, rng.randrange(8, 16))
        canvas.text_line(px, py, pick(rng, US_SAFE).split(), f, foreground(rng, bg, colour, 10),
                         [False] * 3)
        py += f.size + 4
    # A rotated probe label on the left edge, and a bottom line touching the edge.
    if rng.random() < 0.5:
        f = font(rng, rng.randrange(10, 18))
        canvas.text_line(2, height - 40, pick(rng, US_SAFE).split(), f, foreground(rng, bg, colour, 40),
                         [False] * 3, angle=90)
    f = font(rng, rng.randrange(8, 14))
    bottom = height - f.size - rng.choice([0, 1, 3])
    use_name = rng.random() < 0.3
    words = [patient.given.title(), patient.family.title()] if use_name else pick(rng, US_SAFE).split()
    canvas.text_line(rng.randrange(0, 20), bottom, words, f, foreground(rng, bg, colour, 10),
                     [use_name] * len(words))
    if rng.random() < 0.3:  # the name again, tiny, in a corner
        canvas.text_line(width - 90, height - 10, [patient.family], font(rng, 7),
                         foreground(rng, bg, colour, 30), [True])
    return image, canvas.words, "US"


def dose_report(rng, patient, index):
    width, height = 512, 512
    dark = rng.random() < 0.6
    bg = rng.randrange(0, 30) if dark else rng.randrange(200, 256)
    image = Image.new("L", (width, height), bg)
    canvas = Canvas(image, rng, aliased=rng.random() < 0.4)
    y = 4
    for label, phi in patient.lines(rng)[:4]:
        f = font(rng, rng.randrange(9, 17))
        canvas.text_line(6, y, label + phi, f, foreground(rng, bg, False, 12),
                         [False] * len(label) + [True] * len(phi))
        y += f.size + 5
    y += 10
    grid = 128 if dark else 80
    for row in range(8):
        canvas.draw.line([(4, y - 3), (width - 4, y - 3)], fill=grid)
        f = font(rng, rng.randrange(8, 14))
        words = pick(rng, CT_SAFE).split() + [f"{rng.uniform(1, 900):.1f}"]
        canvas.text_line(8, y, words, f, foreground(rng, bg, False, 12), [False] * len(words))
        y += f.size + 12
    f = font(rng, rng.randrange(9, 14))
    canvas.text_line(6, height - f.size - 2, list(patient.institution), f,
                     foreground(rng, bg, False, 12), [True] * 3)
    return image, canvas.words, "CT"


def request_form(rng, patient, index):
    width, height = pick(rng, [(850, 1100), (700, 900)])
    bg = rng.randrange(215, 250)
    arr = np.full((height, width), bg, np.float32)
    arr += np.random.default_rng(index).normal(0, 3, (height, width))
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    canvas = Canvas(image, rng, aliased=False)
    y = 40
    f = font(rng, rng.randrange(20, 30))
    canvas.text_line(40, y, ["Imaging", "Request"], f, 20, [False, False])
    y += 60
    for label, phi in patient.lines(rng):
        f = font(rng, rng.randrange(12, 20))
        canvas.text_line(40, y, label + phi, f, rng.randrange(0, 90),
                         [False] * len(label) + [True] * len(phi))
        y += f.size + 18
    for _ in range(rng.randrange(3, 7)):
        f = font(rng, rng.randrange(11, 18))
        words = [pick(rng, FORM_SAFE) for _ in range(rng.randrange(3, 7))]
        canvas.text_line(40, y, words, f, rng.randrange(0, 90), [False] * len(words))
        y += f.size + 14
    # A pale rotated stamp with the institution, dust, then scanner blur.
    f = font(rng, rng.randrange(18, 26))
    canvas.text_line(width - 120, height - 60, list(patient.institution[:2]), f,
                     bg - rng.randrange(25, 50), [True, True], angle=rng.choice([90, 0]) or 0)
    for _ in range(200):
        x, yy = rng.randrange(width), rng.randrange(height)
        canvas.draw.ellipse([x, yy, x + rng.randrange(1, 3), yy + rng.randrange(1, 3)],
                            fill=rng.randrange(40, 160))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return image, canvas.words, "OT"


def clip(rng, patient, index):
    """Multi-frame ultrasound: a static overlay and a counter that changes per frame."""
    first, words, _ = ultrasound(rng, patient, index)
    frames, truth = [], []
    n = rng.randrange(6, 13)
    base = np.asarray(first)
    for k in range(n):
        arr = base.copy()
        # The speckle moves a little; the overlay does not.
        field = np.roll(arr, k * 2, axis=1)
        mask = np.zeros(arr.shape[:2], bool)
        for w in words:
            x, y, bw, bh = w["box"]
            mask[max(0, y - 2):y + bh + 2, max(0, x - 2):x + bw + 2] = True
        if arr.ndim == 3:
            arr = np.where(mask[..., None], arr, field)
        else:
            arr = np.where(mask, arr, field)
        image = Image.fromarray(arr)
        canvas = Canvas(image, rng, aliased=False)
        f = ImageFont.truetype(os.path.join(FONT_DIRS[0], "DejaVuSansMono.ttf"), 11)
        w, h = image.size
        canvas.text_line(w - 80, h - 30, [f"{12 + k // 60:02d}:{k % 60:02d}:{(k * 7) % 60:02d}"], f,
                         (255, 255, 255) if image.mode == "RGB" else 230, [False])
        if k % 3 == 0:  # the MRN flashes in and out: changing PHI text
            canvas.text_line(w // 2, h - 16, [patient.mrn], f,
                             (255, 255, 255) if image.mode == "RGB" else 230, [True])
        frames.append(image)
        truth.append(words + canvas.words)
    return frames, truth, "US"


def dataset_for(patient, modality, image0, frames):
    ds = Dataset()
    ds.PatientName = f"{patient.family}^{patient.given}"
    ds.PatientID = patient.mrn
    ds.PatientBirthDate = "%04d%02d%02d" % patient.birth
    ds.AccessionNumber = patient.accession
    ds.InstitutionName = " ".join(w.title() for w in patient.institution)
    ds.StudyDate = "%04d%02d%02d" % patient.study
    ds.Modality = modality
    ds.SOPClassUID = {"US": "1.2.840.10008.5.1.4.1.1.6.1",
                      "CT": "1.2.840.10008.5.1.4.1.1.7", "MR": "1.2.840.10008.5.1.4.1.1.7",
                      "OT": "1.2.840.10008.5.1.4.1.1.7"}[modality]
    if frames > 1:
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
        ds.NumberOfFrames = frames
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Rows, ds.Columns = image0.size[1], image0.size[0]
    rgb = image0.mode == "RGB"
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    return ds


def write(path, ds, images, jpeg, jpeg_options=None):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if jpeg:
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        frames = []
        for im in images:
            buf = io.BytesIO()
            im.save(buf, format="JPEG", **(jpeg_options or dict(quality=92, subsampling=0)))
            frames.append(buf.getvalue())
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].is_undefined_length = True
        if ds.SamplesPerPixel == 3:
            subsampled = (jpeg_options or {}).get("subsampling", 0) == 1
            ds.PhotometricInterpretation = "YBR_FULL_422" if subsampled else "YBR_FULL"
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = b"".join(np.asarray(im).tobytes() for im in images)
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    style = "classic"
    if "--style" in sys.argv:
        style = sys.argv[sys.argv.index("--style") + 1]
        args.remove(style)
    if style not in ("classic", "held-out", "third", "fourth"):
        raise SystemExit("--style is classic, held-out, third or fourth")
    out = args[0]
    count = int(args[1]) if len(args) > 1 else 60
    rng = random.Random(int(args[2]) if len(args) > 2 else 7)
    os.makedirs(os.path.join(out, "dicom"), exist_ok=True)
    truth = []
    kinds = [ultrasound, ultrasound, ultrasound, dose_report, request_form, clip]
    make_patient, held, third = Patient, None, None
    if style == "held-out":
        import heldout_screens as held
        kinds, make_patient = held.KINDS, held.Patient
    elif style == "third":
        import third_screens as third
        kinds, make_patient = third.KINDS, third.Patient
    elif style == "fourth":
        import fourth_screens as third  # the same hooks as the third style's
        kinds, make_patient = third.KINDS, third.Patient
    for i in range(count):
        patient = make_patient(rng)
        kind = kinds[i % len(kinds)]
        made = kind(rng, patient, i)
        if kind.__name__ == "clip":
            images, words, modality = made
        else:
            images, words, modality = [made[0]], [made[1]], made[2]
        if third:
            jpeg, options = third.jpeg(rng, kind.__name__)
        else:
            jpeg = kind.__name__ != "clip" and rng.random() < (0.3 if held else 0.2)
            options = held.jpeg_options(rng, images[0].mode == "RGB") if held and jpeg else None
        name = f"{i:04d}.dcm"
        ds = dataset_for(patient, modality, images[0], len(images))
        if held or third:
            (held or third).header_extras(ds, patient)
        write(os.path.join(out, "dicom", name), ds, images, jpeg, options)
        truth.append({"file": name, "kind": kind.__name__, "jpeg": jpeg,
                      "frames": [{"words": w} for w in words]})
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump({"generator": "bench/make_screens.py", "style": style, "files": truth}, f, indent=1)


if __name__ == "__main__":
    main()
