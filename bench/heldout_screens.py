"""make_screens.py --style held-out: screens unlike anything the engine was tuned on.

The classic style (make_screens.py) was in view while the detector engine was tuned; this one
was written afterwards and never tuned on. Everything differs: font families (URW's Nimbus
and Gothic, Croscore, Roboto, Open Sans, Go, Hack, Lato, B612, Cantarell, Inconsolata, the
Terminus bitmap font; italics), patients (two-letter family names, hyphens and apostrophes,
middle initials, referring doctors), date and ID spellings, layouts in the manner of other
vendors (a coloured title bar with the name centred, labels in inverse boxes, a viewer with
four annotated corners and outlined text over the anatomy, a measurement worksheet with a
dark or light theme, a scanned page that is skewed as a whole with stamps at any angle,
clips whose name bar comes and goes), screen vocabulary the engine's word list does not hold,
and JPEG at lower qualities with chroma subsampling.
"""
import glob
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_GLOBS = [
    "/usr/share/fonts/opentype/urw-base35/NimbusSans*.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-*.otf",
    "/usr/share/fonts/opentype/urw-base35/URWGothic-*.otf",
    "/usr/share/fonts/opentype/urw-base35/C059-Roman.otf",
    "/usr/share/fonts/truetype/croscore/*.ttf",
    "/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-*.ttf",
    "/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-*.ttf",
    "/usr/share/fonts/truetype/open-sans/OpenSans-*.ttf",
    "/usr/share/fonts/fonts-go/Go-*.ttf",
    "/usr/share/fonts/truetype/hack/*.ttf",
    "/usr/share/fonts/truetype/lato/Lato-*.ttf",
    "/usr/share/fonts/opentype/b612/*.otf",
    "/usr/share/fonts/opentype/cantarell/Cantarell-*.otf",
    "/usr/share/fonts/truetype/inconsolata/Inconsolata.otf",
]
TERMINUS = "/usr/share/fonts/opentype/terminus/terminus-{}.otb"
TERMINUS_SIZES = [12, 14, 16, 18, 20, 22, 24]

FAMILY = ["NG", "LI", "OH", "O'BRIEN", "SMITH-JONES", "MACDONALD", "ADEYEMI", "BJORKLUND",
          "CHAUDHARY", "DUBOIS", "ESPOSITO", "FITZGERALD", "GUTIERREZ", "HAUGEN", "IVANOVA",
          "JANSSEN", "KAPOOR", "LEBLANC", "MORIARTY", "NOVAK", "PAPADOPOULOS", "RASMUSSEN",
          "TANAKA", "WOJCIK", "YILMAZ"]
GIVEN = ["AMY", "BO", "CHIDI", "DELPHINE", "ESTEBAN", "FIONA", "GRZEGORZ", "HALIMA", "IGOR",
         "JOAQUIN", "KEIKO", "LARS", "MAEVE", "NIAMH", "OLUWASEUN", "PAUL", "RUTH", "SVEN",
         "TOMASZ", "URSULA", "YUSUF", "ZOE"]
DOCTORS = ["KAPLAN", "OSEI", "VARGA", "MENDES", "HOLM", "RAO", "WEBER", "TAN"]
INSTITUTIONS = [("ST", "JUDE", "MEDICAL"), ("LAKESHORE", "RADIOLOGY"),
                ("HOSPITAL", "DEL", "MAR"), ("UNIVERSITY", "CLINIC", "BONN"),
                ("PINE", "RIDGE", "IMAGING", "LLC"), ("EASTFIELD", "WOMENS", "HEALTH")]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

US_SAFE = ["Preset Abd", "Gen", "Persist Med", "Sector 75%", "Angle 60", "Gate 2.0mm",
           "WF 150Hz", "Scale 45cm/s", "Power 100%", "2D", "CF", "G 60%", "Dyn 70", "Edge 2",
           "Freq Pen", "Frame Avg 3", "Zoom 110%", "B-Mode", "Bladder", "Sagittal", "Left Lobe",
           "Cine 120/120", "AO 2.1cm", "Vel 45cm/s", "Baseline 0", "Wall Filter", "Store"]
VIEW_SAFE = ["WL: 40", "WW: 400", "Se: 3", "Im: 45/120", "Slice 5.0mm", "kV 120", "mA 250",
             "FOV 350mm", "Zoom 1.2", "TR 500", "TE 15", "Thk 3.0", "Pos -45.5", "HFS", "Axial",
             "T1 SE", "Contrast", "Matrix 512", "Loc 12.5", "Sp 2.0"]
SHEET_SAFE = ["Measurements", "Value", "Mean", "Method", "Length", "Width", "Height", "Volume",
              "Comments", "Normal", "appearance", "Findings", "Impression", "No", "focal",
              "lesion", "seen", "size", "within", "limits", "Technique", "Worksheet",
              "Average", "Last", "Left", "Right"]
FORM_SAFE = ["Radiology", "Referral", "Reason", "for", "exam", "Suspected", "fracture",
             "Please", "advise", "Urgent", "Contrast", "allergy", "Weight", "kg", "Pregnant",
             "Clinical", "notes", "Follow-up", "scan", "previous", "result", "attached"]


def pick(rng, items):
    return items[rng.randrange(len(items))]


FONT_PATHS = None


def font(rng, size):
    global FONT_PATHS
    if FONT_PATHS is None:
        FONT_PATHS = sorted(p for g in FONT_GLOBS for p in glob.glob(g))
        if len(FONT_PATHS) < 20:
            raise SystemExit("held-out fonts missing (scripts/install-deps.sh installs them)")
    if size >= 12 and rng.random() < 0.12:  # a bitmap font, aliased by nature
        fitting = [s for s in TERMINUS_SIZES if s <= size] or [12]
        return ImageFont.truetype(TERMINUS.format(pick(rng, ["normal", "bold"])), fitting[-1])
    return ImageFont.truetype(pick(rng, FONT_PATHS), size)


class Patient:
    def __init__(self, rng):
        self.family = pick(rng, FAMILY)
        self.given = pick(rng, GIVEN)
        self.middle = pick(rng, "ABCDEJKMRT") if rng.random() < 0.25 else None
        self.mrn = pick(rng, [str(rng.randrange(10 ** 7, 10 ** 9)).zfill(10),
                              f"{rng.randrange(10, 99)}-{rng.randrange(100, 999)}-{rng.randrange(100, 999)}",
                              "E" + str(rng.randrange(100000, 9999999)),
                              str(rng.randrange(100000, 999999))])
        self.accession = pick(rng, [f"ACC{rng.randrange(10 ** 8, 10 ** 9)}",
                                    str(rng.randrange(10 ** 6, 10 ** 8)),
                                    f"RA{rng.randrange(1000, 9999)}-{rng.randrange(10, 99)}"])
        self.birth = (rng.randrange(1925, 2020), rng.randrange(1, 13), rng.randrange(1, 29))
        self.study = (rng.randrange(2012, 2027), rng.randrange(1, 13), rng.randrange(1, 29))
        self.institution = pick(rng, INSTITUTIONS)
        self.doctor = pick(rng, DOCTORS)

    def header_name(self):
        return f"{self.family}^{self.given}" + (f"^{self.middle}" if self.middle else "")

    def date_words(self, rng, d):
        y, m, day = d
        return pick(rng, [[f"{day} {MONTHS[m - 1]} {y}"], [f"{MONTHS[m - 1]} {day}, {y}"],
                          [f"{y}/{m:02d}/{day:02d}"], [f"{day:02d}.{m:02d}.{y}"],
                          [f"{m}/{day}/{y}"], [f"{day:02d}-{MONTHS[m - 1].upper()}-{y}"]])[0].split()

    def name_words(self, rng):
        fam = self.family.title() if rng.random() < 0.4 else self.family
        giv = self.given.title() if rng.random() < 0.4 else self.given
        mid = [self.middle + "."] if self.middle and rng.random() < 0.6 else []
        return pick(rng, [[fam + ",", giv] + mid, [giv] + mid + [fam], [f"{fam}^{giv}"],
                          [fam, giv]])


class Canvas:
    """One frame being drawn, recording every word's ink box."""

    def __init__(self, image, rng, aliased=False):
        self.image = image
        self.rng = rng
        self.draw = ImageDraw.Draw(image)
        if aliased:
            self.draw.fontmode = "1"
        self.words = []

    def line(self, x, y, words, fnt, fill, phi_flags, stroke=0, stroke_fill=0, anchor_right=False):
        space = max(3, int(fnt.size * 0.33))
        if str(getattr(fnt, "path", "")).endswith(".otb"):
            stroke = 0  # FreeType cannot outline a bitmap font
        widths = [self.draw.textbbox((0, 0), w, font=fnt, stroke_width=stroke)[2] for w in words]
        if anchor_right:
            x -= sum(widths) + space * (len(words) - 1)
        for word, phi, width in zip(words, phi_flags, widths):
            box = self.draw.textbbox((x, y), word, font=fnt, stroke_width=stroke)
            self.draw.text((x, y), word, font=fnt, fill=fill, stroke_width=stroke,
                           stroke_fill=stroke_fill)
            self.record(word, phi, box)
            x = box[2] + space
        return x

    def turned(self, cx, cy, words, fnt, fill, phi_flags, angle):
        """A line of words turned by `angle` degrees about (cx, cy), each word's ink recorded."""
        space = max(3, int(fnt.size * 0.33))
        lengths = [fnt.getlength(w) for w in words]
        total = sum(lengths) + space * (len(words) - 1)
        rad = math.radians(angle)
        along = -total / 2
        for word, phi, length in zip(words, phi_flags, lengths):
            centre = along + length / 2
            wx, wy = cx + centre * math.cos(rad), cy - centre * math.sin(rad)
            w, h = int(length) + 6, fnt.size + 10
            mask = Image.new("L", (w, h), 0)
            ImageDraw.Draw(mask).text((3, 3), word, font=fnt, fill=255)
            mask = mask.rotate(angle, expand=True, resample=Image.BICUBIC)
            left, top = int(wx - mask.size[0] / 2), int(wy - mask.size[1] / 2)
            self.image.paste(Image.new(self.image.mode, mask.size, fill), (left, top), mask)
            ink = mask.point(lambda v: 255 if v > 60 else 0).getbbox()
            if ink:
                self.record(word, phi, (left + ink[0], top + ink[1], left + ink[2], top + ink[3]))
            along += length + space

    def record(self, word, phi, box):
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.image.size[0], x1), min(self.image.size[1], y1)
        if x1 > x0 and y1 > y0:
            self.words.append({"text": word, "phi": phi, "box": [x0, y0, x1 - x0, y1 - y0]})


def grey_or_colour(rng, colour, bg, low):
    if colour:
        return pick(rng, [(230, 230, 230), (255, 220, 120), (140, 220, 255), (180, 255, 180)])
    delta = rng.randrange(10, 32) if low else rng.randrange(80, 240)
    return int(min(255, bg + delta) if bg < 128 else max(0, bg - delta))


def texture(rng, width, height, sigma):
    n = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 1, (height, width)).astype(np.float32)
    img = Image.fromarray(np.clip(128 + n * 40, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(sigma))
    return (np.asarray(img, np.float32) - 128) / 40


def sector(rng, width, height, level):
    field = np.abs(texture(rng, width, height, 1.0)) * 70 * level
    yy, xx = np.mgrid[0:height, 0:width]
    cx, top = width / 2 + rng.randrange(-40, 40), height * 0.1
    r = np.hypot(xx - cx, yy - top)
    ang = np.degrees(np.arctan2(xx - cx, yy - top))
    inside = (r > 30) & (r < height * 0.85) & (np.abs(ang) < rng.randrange(30, 46))
    return np.where(inside, field, 0)


def us_bar(rng, patient, index):
    """Ultrasound with a coloured title bar: name centred, institution left, date right."""
    width, height = pick(rng, [(640, 480), (800, 600), (1024, 768), (960, 720)])
    colour = rng.random() < 0.5
    base = np.clip(sector(rng, width, height, rng.uniform(0.5, 1.2)) + rng.randrange(0, 25), 0, 255)
    image = Image.fromarray(base.astype(np.uint8)).convert("RGB" if colour else "L")
    c = Canvas(image, rng, aliased=rng.random() < 0.25)
    bar_h = rng.randrange(16, 30)
    bar = pick(rng, [(20, 30, 70), (50, 50, 50), (0, 60, 60), (90, 20, 20)]) if colour else rng.randrange(40, 90)
    c.draw.rectangle([0, 0, width, bar_h], fill=bar)
    bar_grey = sum(bar) // 3 if colour else bar
    size = bar_h - rng.randrange(4, 8)
    f = font(rng, size)
    name = patient.name_words(rng)
    text = grey_or_colour(rng, colour, bar_grey, rng.random() < 0.2)
    c.line(width // 2 - 60, (bar_h - size) // 2, name, f, text, [True] * len(name))
    f2 = font(rng, max(8, size - 4))
    inst = [w.title() if rng.random() < 0.5 else w for w in patient.institution]
    c.line(3, (bar_h - f2.size) // 2, inst[:2], f2, text, [True] * 2)
    c.line(width - 3, (bar_h - f2.size) // 2, patient.date_words(rng, patient.study), f2, text,
           [True] * 3, anchor_right=True)
    # The second line, under the bar: ID, birth date, referring doctor; small.
    y = bar_h + 3
    small = rng.randrange(6, 12)
    bg = int(np.median(base[y:y + 12, :]))
    for words, phi in [(["ID:", patient.mrn], [False, True]),
                       (["DOB"] + patient.date_words(rng, patient.birth), [False, True, True, True]),
                       (["Ref:", "Dr", patient.doctor], [False, False, True]),
                       (["Acc", patient.accession], [False, True])]:
        if rng.random() < 0.25:
            continue
        f = font(rng, small)
        c.line(4 + rng.randrange(0, 4), y, words, f, grey_or_colour(rng, colour, bg, rng.random() < 0.35),
               phi[:len(words)])
        y += small + rng.randrange(2, 5)
    # Parameters down the left, one in an inverse box; a probe and preset at the bottom.
    y = int(height * rng.uniform(0.25, 0.4))
    for k in range(rng.randrange(4, 9)):
        f = font(rng, rng.randrange(8, 15))
        words = pick(rng, US_SAFE).split()
        if k == 2 and rng.random() < 0.6:
            w = c.draw.textbbox((0, 0), " ".join(words), font=f)[2] + 6
            c.draw.rectangle([2, y - 2, 2 + w, y + f.size + 3], fill=(220, 220, 220) if colour else 220)
            c.line(5, y, words, f, (10, 10, 10) if colour else 10, [False] * len(words))
        else:
            c.line(5, y, words, f, grey_or_colour(rng, colour, 10, rng.random() < 0.3), [False] * len(words))
        y += f.size + 5
    if rng.random() < 0.35:  # the MRN over the speckle, as some vendors stamp it
        f = font(rng, rng.randrange(9, 14))
        c.line(width // 2 - 40, int(height * 0.55), [patient.mrn], f,
               grey_or_colour(rng, colour, 60, False), [True], stroke=1 if rng.random() < 0.5 else 0)
    f = font(rng, rng.randrange(6, 10))
    c.line(width - 4, height - f.size - 3, pick(rng, US_SAFE).split(), f,
           grey_or_colour(rng, colour, 10, rng.random() < 0.3), [False] * 3, anchor_right=True)
    image.info["bar_h"] = bar_h
    return image, c.words, "US"


def viewer(rng, patient, index):
    """A CT/MR viewer frame: anatomy in the middle, four annotated corners, outlined text."""
    size = pick(rng, [512, 640, 768])
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy = size / 2, size / 2
    head = ((xx - cx) / (size * 0.36)) ** 2 + ((yy - cy) / (size * 0.42)) ** 2
    img = np.where(head < 1, 90 + 40 * texture(rng, size, size, 3.0), 0)
    img = np.where(head < 0.8, 120 + 30 * texture(rng, size, size, 2.0), img)
    img = np.where((head < 1) & (head > 0.9), 230, img)  # the skull
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    c = Canvas(image, rng, aliased=rng.random() < 0.3)
    outlined = rng.random() < 0.4
    stroke = 1 if outlined else 0
    fs = rng.randrange(8, 16)

    def fg(low_ok=True):
        return rng.randrange(150, 256) if not (low_ok and rng.random() < 0.2) else rng.randrange(14, 40)

    y = 3
    for words, phi in [(patient.name_words(rng), None), (["ID:", patient.mrn], [False, True]),
                       (patient.date_words(rng, patient.birth), None)]:
        f = font(rng, fs)
        c.line(3, y, words, f, fg(), phi or [True] * len(words), stroke=stroke)
        y += fs + 3
    y = 3
    inst = [w.title() if rng.random() < 0.5 else w for w in patient.institution]
    for words, phi in [(inst, None), (patient.date_words(rng, patient.study), None),
                       (["Acc:", patient.accession], [False, True])]:
        f = font(rng, fs)
        c.line(size - 3, y, words, f, fg(), phi or [True] * len(words), stroke=stroke, anchor_right=True)
        y += fs + 3
    for right in (False, True):
        y = size - 4
        for _ in range(rng.randrange(2, 5)):
            f = font(rng, fs)
            y -= fs + 3
            words = pick(rng, VIEW_SAFE).split()
            x = size - 3 if right else 3
            c.line(x, y, words, f, fg(False), [False] * len(words), stroke=stroke, anchor_right=right)
    # Orientation letters at the edges' midpoints, and a label over the anatomy.
    f = font(rng, fs + 2)
    c.line(4, size // 2, ["R"], f, fg(False), [False], stroke=stroke)
    c.line(size - 4, size // 2, ["L"], f, fg(False), [False], stroke=stroke, anchor_right=True)
    if rng.random() < 0.5:
        f = font(rng, rng.randrange(9, 14))
        words = pick(rng, [["ROI", "1"], ["HU", "34.5"], ["Lesion", "A"], ["12.4", "mm"]])
        c.line(int(size * 0.55), int(size * 0.45), words, f, 255, [False] * 2, stroke=1)
    return image, c.words, pick(rng, ["CT", "MR"])


def worksheet(rng, patient, index):
    """A measurement worksheet page: name line on top, a table, a footer."""
    width, height = pick(rng, [(800, 600), (1024, 768)])
    dark = rng.random() < 0.5
    bg = rng.randrange(15, 45) if dark else rng.randrange(225, 250)
    image = Image.new("L", (width, height), bg)
    c = Canvas(image, rng, aliased=rng.random() < 0.2)
    f = font(rng, rng.randrange(10, 16))
    ink = grey_or_colour(rng, False, bg, rng.random() < 0.25)
    words = ["Patient:"] + patient.name_words(rng) + ["ID:", patient.mrn, "DOB:"] + \
        patient.date_words(rng, patient.birth)
    phi = [w not in ("Patient:", "ID:", "DOB:") for w in words]
    c.line(10, 8, words, f, ink, phi)
    c.draw.line([(6, 8 + f.size + 5), (width - 6, 8 + f.size + 5)], fill=ink)
    f = font(rng, rng.randrange(12, 20))
    c.line(10, 40, ["Worksheet"] + pick(rng, [["Abdomen"], ["OB"], ["Vascular"]]), f, ink, [False, False])
    y = 80
    grid = 100 if dark else 170
    for row in range(rng.randrange(6, 12)):
        c.draw.line([(8, y - 4), (width - 8, y - 4)], fill=grid)
        f = font(rng, rng.randrange(9, 14))
        label = pick(rng, SHEET_SAFE)
        value = f"{rng.uniform(0.5, 30):.1f}"
        c.line(12, y, [label], f, ink, [False])
        c.line(width // 2, y, [value, pick(rng, ["cm", "mm", "ml", "cm/s"])], f, ink, [False, False])
        c.line(width - 12, y, [pick(rng, SHEET_SAFE)], f, ink, [False], anchor_right=True)
        y += f.size + 12
    f = font(rng, rng.randrange(8, 12))
    inst = [w.title() for w in patient.institution]
    c.line(10, height - f.size - 6, inst, f, ink, [True] * len(inst))
    c.line(width - 10, height - f.size - 6, ["Page", "1", "of", "2"], f, ink, [False] * 4, anchor_right=True)
    return image, c.words, "OT"


def scanned(rng, patient, index):
    """A scanned referral, skewed as a whole, with stamps at any angle."""
    width, height = pick(rng, [(850, 1100), (1000, 1300)])
    bg = rng.randrange(205, 245)
    arr = np.full((height, width), bg, np.float32) + 4 * texture(rng, width, height, 0.6)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    c = Canvas(image, rng)
    skew = rng.uniform(-2.5, 2.5)
    rad = math.radians(skew)
    x0, y = 60, 70

    def line(words, fnt, fill, phi):
        # The page is turned by `skew` about its corner: each line's centre moves with it.
        length = sum(fnt.getlength(w) for w in words) + max(3, int(fnt.size * 0.33)) * (len(words) - 1)
        cx, cy = x0 + length / 2, y + fnt.size / 2
        c.turned(cx * math.cos(rad) + cy * math.sin(rad), -cx * math.sin(rad) + cy * math.cos(rad),
                 words, fnt, fill, phi, skew)

    line(["Radiology", "Referral"], font(rng, rng.randrange(20, 30)), 25, [False, False])
    y += 55
    for words, phi in [(["Name:"] + patient.name_words(rng), None),
                       (["Hospital", "No:", patient.mrn], [False, False, True]),
                       (["Date", "of", "birth:"] + patient.date_words(rng, patient.birth), None),
                       (["Referring:", "Dr", patient.doctor], [False, False, True])]:
        fnt = font(rng, rng.randrange(12, 19))
        flags = phi or [w != "Name:" for w in words]
        if words[0] == "Date":
            flags = [False, False, False] + [True] * (len(words) - 3)
        line(words, fnt, rng.randrange(0, 80), flags)
        y += fnt.size + 20
    for _ in range(rng.randrange(3, 7)):
        fnt = font(rng, rng.randrange(11, 17))
        words = [pick(rng, FORM_SAFE) for _ in range(rng.randrange(3, 7))]
        line(words, fnt, rng.randrange(0, 90), [False] * len(words))
        y += fnt.size + 14
    # Stamps: the institution at any angle, a received date, both pale.
    angle = pick(rng, [90, -90, 15, 25, 35, -20, -30, 0])
    fnt = font(rng, rng.randrange(18, 28))
    inst = list(patient.institution)
    c.turned(width - 200, height - 220, inst, fnt, bg - rng.randrange(22, 50), [True] * len(inst), angle)
    fnt = font(rng, rng.randrange(14, 22))
    words = ["RECEIVED"] + [w.upper() for w in patient.date_words(rng, patient.study)]
    c.turned(width // 2, height - 90, words, fnt, bg - rng.randrange(30, 70),
             [False] + [True] * (len(words) - 1), pick(rng, [0, 8, -12, 5]))
    for _ in range(300):
        x, yy = rng.randrange(width), rng.randrange(height)
        c.draw.ellipse([x, yy, x + rng.randrange(1, 3), yy + rng.randrange(1, 3)], fill=rng.randrange(40, 170))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.1)))
    return image, c.words, "OT"


def clip(rng, patient, index):
    """A clip whose name bar shows only in some frames, over moving speckle."""
    first, words, _ = us_bar(rng, patient, index)
    base = np.asarray(first)
    n = rng.randrange(5, 11)
    bar = first.info["bar_h"] + 1
    bar_words = [w for w in words if w["box"][1] + w["box"][3] <= bar]
    rest = [w for w in words if w["box"][1] + w["box"][3] > bar]
    shown = [k % 4 != 3 for k in range(n)]
    frames, truth = [], []
    for k in range(n):
        arr = np.roll(base, k * 3, axis=0).copy()
        keep = np.zeros(arr.shape[:2], bool)
        for w in words:
            x, y, bw, bh = w["box"]
            keep[max(0, y - 3):y + bh + 3, max(0, x - 3):x + bw + 3] = True
        keep[:bar, :] = True
        arr = np.where(keep[..., None] if arr.ndim == 3 else keep, base, arr)
        if not shown[k]:
            arr[:bar] = 0
        image = Image.fromarray(arr.astype(np.uint8))
        c = Canvas(image, rng)
        f = font(rng, 10)
        w, h = image.size
        c.line(w - 6, h - 28, [f"{k * 40} ms"], f, (255, 255, 255) if image.mode == "RGB" else 220,
               [False], anchor_right=True)
        frames.append(image)
        truth.append((bar_words if shown[k] else []) + rest + c.words)
    return frames, truth, "US"


KINDS = [us_bar, us_bar, viewer, worksheet, scanned, clip]


def header_extras(ds, patient):
    ds.PatientName = patient.header_name()
    ds.ReferringPhysicianName = f"{patient.doctor}^J"


def jpeg_options(rng, colour):
    return dict(quality=rng.randrange(70, 92), subsampling=2 if colour else 0)
