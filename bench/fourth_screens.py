"""make_screens.py --style fourth: the issue's list, in what the other three styles lack.

Written for issue 11's sixth pass from the issue's list, before looking at the detector
again, and never tuned on. What it adds to the classic, held-out and third styles:

- Debian's console fonts (console-setup-linux's PSF files: VGA 8/14/16, Fixed 13-18,
  Terminus 12-32, bold and plain) drawn bit by bit, the way a scanner console or an old
  frame grabber shows text; PSF is parsed here, no toolkit draws it;
- TrueType/OpenType faces none of the other styles draws: URW Bookman, P052 (Palatino),
  Nimbus Roman (Times), the Z003 script face, DejaVu Sans ExtraLight, the condensed and
  oblique DejaVu faces, FreeSerif/FreeMono italics, Noto Sans italics, 7-30 px;
- coloured text on RGB ultrasound frames with a colour-Doppler box, saved either raw or as
  baseline JPEG with 4:2:2 chroma (YBR_FULL_422), where colour edges bleed;
- dark text on light forms in table cells with grid lines one or two pixels from the ink,
  with inverse (light on dark) header cells;
- italic, letter-spaced (tracking 1-4 px) and condensed text;
- names as "LAST^FIRST", "Last, First", "LAST, First M." and "First LAST";
- text laid half over the anatomy (its left half on the ground, its right half on speckle);
- small grey-on-grey panels (7-10 px, 10-25 grey levels) pressed to the frame's edges
  (0-2 px);
- multi-frame clips whose static overlay is in a console font and whose name shows only in
  some frames, over moving speckle.

Every word carries a "tag" (its drawing category) in the answer key, so score_screens.py
reports misses per category.
"""
import glob
import gzip
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

TT_GLOBS = [
    "/usr/share/fonts/opentype/urw-base35/URWBookman-*.otf",
    "/usr/share/fonts/opentype/urw-base35/P052-*.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusRoman-*.otf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-ExtraLight.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Oblique.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed*.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Oblique.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSerifItalic.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSerifBoldItalic.ttf",
    "/usr/share/fonts/truetype/freefont/FreeMonoBoldOblique.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Italic.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-BoldItalic.ttf",
]
SCRIPT_FACE = "/usr/share/fonts/opentype/urw-base35/Z003-MediumItalic.otf"
PSF_DIR = "/usr/share/consolefonts"
PSF_FILES = ["Lat15-VGA8", "Lat15-VGA14", "Lat15-VGA16", "Lat15-Fixed13", "Lat15-Fixed15",
             "Lat15-Fixed18", "Lat15-Terminus12x6", "Lat15-Terminus14", "Lat15-TerminusBold16",
             "Lat15-TerminusBold20x10", "Lat15-Terminus24x12", "Lat15-TerminusBold28x14",
             "Lat15-TerminusBoldVGA14"]

FAMILY = ["ACHTERBERG", "BALOGUN", "CZERNY", "DOMINGUEZ", "EKSTROM", "FAIRWEATHER", "GALLAGHER",
          "HUSSAIN", "ITURBE", "JOVANOVIC", "KIRKPATRICK", "LUNDGREN", "MBEKI", "NORDSTROM",
          "OYAMA", "PELLEGRINI", "QUAYLE", "ROSSETTI", "SZABO", "THORNTON", "UCHENNA", "VILLANUEVA",
          "WESTERGAARD", "XU", "YAMAMOTO", "ZELENKO"]
GIVEN = ["AGNES", "BORIS", "CLEMENTINE", "DARIUS", "EUGENIA", "FABIAN", "GWENDOLYN", "HORATIO",
         "INGRID", "JASPER", "KATYA", "LUCIEN", "MIRABEL", "NIKOLAI", "OTTILIE", "PERCIVAL"]
INSTITUTIONS = [("HARBORVIEW", "DIAGNOSTICS"), ("SAINT", "CUTHBERT", "INFIRMARY"),
                ("WESTMOOR", "COUNTY", "HOSPITAL"), ("ALPINE", "RADIOLOGIE", "AG"),
                ("CEDARWOOD", "HEALTH", "PARTNERS")]
DOCTORS = ["ABARA", "BERGSTROM", "CALLOWAY", "DESAI", "ELLINGTON"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

US_SAFE = ["PW", "Doppler", "Color", "CFM", "Velocity", "RI 0.62", "PI 1.10", "HR 72bpm",
           "Vmax 48cm/s", "Depth 14.5", "Gain 58%", "MI 1.1", "TIb 0.3", "Probe L12-5",
           "Carotid", "Thyroid", "Right", "Left", "Trans", "Long", "Frame 28", "PRF 3.5k"]
CT_SAFE = ["Scan", "Protocol", "Chest", "Routine", "CTDIvol", "DLP", "mGy", "mGy*cm", "kV",
           "mAs", "Pitch", "Rotation", "Collimation", "Phantom", "Body", "Total", "Event",
           "Series", "Contrast", "Delay", "Spiral", "Scout", "Dose", "Summary"]
FORM_SAFE = ["Referral", "Radiology", "Department", "Examination", "requested", "Clinical",
             "details", "Urgent", "Routine", "Pregnant", "Yes", "No", "Weight", "Allergy",
             "Contrast", "consent", "signed", "Ward", "Outpatient", "Transport", "Chair"]


def flags_of(label, phi):
    """PHI flags of a field's words: the label and a "Dr" title are not identifying."""
    return [False] * len(label) + [w != "Dr" for w in phi]


def pick(rng, items):
    return items[rng.randrange(len(items))]


class Patient:
    def __init__(self, rng):
        self.family = pick(rng, FAMILY)
        self.given = pick(rng, GIVEN)
        self.initial = chr(ord("A") + rng.randrange(26))
        self.mrn = pick(rng, ["", "", "MR", "K-"]) + str(rng.randrange(100000, 9999999))
        self.accession = pick(rng, ["ACC", "RX", "E"]) + str(rng.randrange(10000, 999999))
        self.birth = (rng.randrange(1925, 2012), rng.randrange(1, 13), rng.randrange(1, 29))
        self.study = (rng.randrange(2016, 2027), rng.randrange(1, 13), rng.randrange(1, 29))
        self.institution = pick(rng, INSTITUTIONS)
        self.doctor = pick(rng, DOCTORS)

    def name_words(self, rng):
        return pick(rng, [[f"{self.family}^{self.given}"],
                          [f"{self.family.title()},", self.given.title()],
                          [f"{self.family},", self.given.title(), f"{self.initial}."],
                          [self.given.title(), self.family],
                          [f"{self.family}^{self.given}^{self.initial}"]])

    def date(self, rng, d):
        y, m, day = d
        return pick(rng, [f"{day}-{MONTHS[m - 1]}-{y}", f"{y}/{m:02d}/{day:02d}", f"{day:02d}{m:02d}{y}",
                          f"{MONTHS[m - 1].upper()} {day} {y}".replace(" ", "_"), f"{m}/{day}/{y % 100:02d}"])

    def fields(self, rng):
        """(label words, PHI words) as screens show them."""
        return [
            (pick(rng, [["Name"], ["Pt"], ["Patient"], []]), self.name_words(rng)),
            (pick(rng, [["ID"], ["MRN:"], ["Hosp#"]]), [self.mrn]),
            (pick(rng, [["DOB"], ["D.O.B."], ["Geb."]]), [self.date(rng, self.birth)]),
            (pick(rng, [["Acc"], ["Req#"]]), [self.accession]),
            (pick(rng, [["Ref"], ["Ref.Phys"]]), ["Dr", self.doctor.title()]),
            ([], list(self.institution)),
            (pick(rng, [["Date"], ["Exam"]]), [self.date(rng, self.study)]),
        ]

    def header_name(self):
        return f"{self.family}^{self.given}^{self.initial}"


# ---- drawing ------------------------------------------------------------------------------

class PsfFont:
    """A Linux console font (PSF1 or PSF2), glyphs as boolean arrays."""

    def __init__(self, path):
        data = gzip.open(path).read()
        if data[:2] == b"\x36\x04":
            mode, self.height = data[2], data[3]
            count, self.width, offset = (512 if mode & 1 else 256), 8, 4
            has_table, bpr = bool(mode & 2), 1
        elif data[:4] == b"\x72\xb5\x4a\x86":
            header = np.frombuffer(data[4:32], "<u4")
            offset, flags, count, charsize, self.height, self.width = (int(v) for v in header[1:7])
            has_table, bpr = bool(flags & 1), (self.width + 7) // 8
        else:
            raise SystemExit(f"{path}: not a PSF font")
        size = bpr * self.height
        glyphs = np.frombuffer(data[offset:offset + count * size], np.uint8).reshape(count, self.height, bpr)
        self.glyphs = np.unpackbits(glyphs, axis=2)[:, :, :self.width].astype(bool)
        self.map = {}
        if has_table:
            table = data[offset + count * size:]
            if data[:2] == b"\x36\x04":
                codes = np.frombuffer(table[:len(table) // 2 * 2], "<u2")
                glyph = 0
                for c in codes:
                    if c == 0xFFFF:
                        glyph += 1
                    elif c != 0xFFFE and glyph < count:
                        self.map.setdefault(chr(c), glyph)
            else:
                for glyph, entry in enumerate(table.split(b"\xff")[:count]):
                    for ch in entry.split(b"\xfe")[0].decode("utf-8", "ignore"):
                        self.map.setdefault(ch, glyph)
        for c in range(32, 127):
            self.map.setdefault(chr(c), c)

    def draw(self, image, x, y, text, fill, tracking=0, bold=False):
        """Draws text at (x, y); returns the ink box (x0, y0, x1, y1) or None."""
        arr = np.asarray(image).copy()
        h, w = arr.shape[:2]
        xs, ys = [], []
        cx = x
        for ch in text:
            glyph = self.glyphs[self.map.get(ch, self.map.get("?", 63))]
            if bold:
                glyph = glyph | np.roll(glyph, 1, axis=1)
            gy, gx = np.nonzero(glyph)
            gy, gx = gy + y, gx + cx
            keep = (gy >= 0) & (gy < h) & (gx >= 0) & (gx < w)
            arr[gy[keep], gx[keep]] = fill
            xs += list(gx[keep])
            ys += list(gy[keep])
            cx += self.width + tracking
        image.paste(Image.fromarray(arr))
        if not xs:
            return None
        return (min(xs), min(ys), max(xs) + 1, max(ys) + 1), cx


PSF_CACHE = {}


def psf(rng, min_height=0, max_height=99):
    names = list(PSF_FILES)
    rng.shuffle(names)
    for name in names:
        if name not in PSF_CACHE:
            path = os.path.join(PSF_DIR, name + ".psf.gz")
            if not os.path.exists(path):
                raise SystemExit(f"{path} missing (scripts/install-deps.sh installs console-setup-linux)")
            PSF_CACHE[name] = PsfFont(path)
        f = PSF_CACHE[name]
        if min_height <= f.height <= max_height:
            return f
    return PSF_CACHE.setdefault("Lat15-VGA14", PsfFont(os.path.join(PSF_DIR, "Lat15-VGA14.psf.gz")))


TT_PATHS = None


def ttf(rng, size, script=False):
    global TT_PATHS
    if TT_PATHS is None:
        TT_PATHS = sorted(p for g in TT_GLOBS for p in glob.glob(g))
        if len(TT_PATHS) < 15:
            raise SystemExit("fonts missing (scripts/install-deps.sh installs fonts-urw-base35, "
                             "fonts-dejavu-extra, fonts-freefont-ttf, fonts-noto-core)")
    return ImageFont.truetype(SCRIPT_FACE if script else pick(rng, TT_PATHS), size)


class Canvas:
    """One frame being drawn, recording every word's ink box and category."""

    def __init__(self, image, aliased=False):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        if aliased:
            self.draw.fontmode = "1"
        self.words = []

    def record(self, word, phi, box, tag):
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.image.size[0], x1), min(self.image.size[1], y1)
        if x1 > x0 and y1 > y0:
            self.words.append({"text": word, "phi": phi, "box": [x0, y0, x1 - x0, y1 - y0], "tag": tag})

    def line(self, x, y, words, phi_flags, font, fill, tag, tracking=0, space=None):
        """TrueType words left to right; tracking adds pixels between letters."""
        space = space if space is not None else max(3, int(font.size * 0.33)) + tracking
        for word, phi in zip(words, phi_flags):
            if tracking:
                x0 = x
                boxes = []
                for ch in word:
                    b = self.draw.textbbox((x, y), ch, font=font)
                    self.draw.text((x, y), ch, font=font, fill=fill)
                    if b[2] > b[0]:
                        boxes.append(b)
                    x += font.getlength(ch) + tracking
                if boxes:
                    box = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                           max(b[2] for b in boxes), max(b[3] for b in boxes))
                    self.record(word, phi, box, tag)
                x = max(x, x0) + space
                continue
            box = self.draw.textbbox((x, y), word, font=font)
            self.draw.text((x, y), word, font=font, fill=fill)
            self.record(word, phi, box, tag)
            x = box[2] + space
        return x

    def console_line(self, x, y, words, phi_flags, font, fill, tag, tracking=0, bold=False):
        for word, phi in zip(words, phi_flags):
            drawn = font.draw(self.image, x, y, word, fill, tracking, bold)
            if drawn:
                box, x = drawn
                self.record(word, phi, box, tag)
            else:
                x += len(word) * (font.width + tracking)
            x += font.width + tracking
        self.draw = ImageDraw.Draw(self.image)
        return x


def speckle(rng, h, w, level):
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    noise = nrng.rayleigh(1.0, (h, w)).astype(np.float32)
    img = Image.fromarray(np.clip(noise * 55, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(img, np.float32) * level


def sector_mask(h, w, cx, top, radius, half_angle):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - cx, yy - top)
    ang = np.degrees(np.arctan2(xx - cx, yy - top))
    return (r > 15) & (r < radius) & (np.abs(ang) < half_angle)


COLOURS = [(255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 160, 0), (255, 80, 80),
           (200, 200, 255), (255, 0, 255), (120, 255, 120)]


def colour_on(rng, ground, low):
    """A colour text fill: saturated, or (low) a dim tint a few levels off the ground."""
    if low:
        d = rng.randrange(12, 30)
        return tuple(int(min(255, g + d * c / 255)) for g, c in zip(ground, pick(rng, COLOURS)))
    return pick(rng, COLOURS)


def grey_near(rng, ground, lo, hi):
    d = rng.randrange(lo, hi)
    return int(min(255, ground + d)) if ground < 128 else int(max(0, ground - d))


# ---- screens ------------------------------------------------------------------------------

def us_colour(rng, patient, index):
    """RGB ultrasound: coloured name bar, colour-Doppler box, labels half over the anatomy."""
    w, h = pick(rng, [(640, 480), (800, 600), (960, 720)])
    ground = rng.randrange(0, 25)
    arr = np.full((h, w, 3), ground, np.float32)
    cx, top, radius = w * rng.uniform(0.45, 0.55), h * 0.1, h * 0.85
    mask = sector_mask(h, w, cx, top, radius, rng.uniform(30, 42))
    field = speckle(rng, h, w, rng.uniform(0.8, 1.3))
    arr[mask] = np.clip(field[mask] + ground, 0, 255)[:, None]
    # Colour-Doppler box: red and blue blobs in the middle of the sector.
    bx, by = int(cx - w * 0.1), int(h * 0.35)
    blobs = speckle(rng, h, w, 1.0)
    box = (slice(by, by + int(h * 0.2)), slice(bx, bx + int(w * 0.2)))
    flow = blobs[box] > 70
    arr[box][flow] = np.array([200, 30, 30]) if rng.random() < 0.5 else np.array([30, 60, 220])
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    canvas = Canvas(image, aliased=rng.random() < 0.25)
    g3 = (ground,) * 3
    # A bar across the top, sometimes a coloured band, with the name large (often bold 19 px).
    bar_h = rng.randrange(22, 36)
    if rng.random() < 0.5:
        band = tuple(rng.randrange(20, 90) for _ in range(3))
        canvas.draw.rectangle([0, 0, w - 1, bar_h], fill=band)
        g3 = band
    fields = patient.fields(rng)
    size = pick(rng, [19, 19, 22, 26, 30, 16])
    x = rng.choice([0, 1, 2, 6])
    label, phi = fields[0]
    big = ttf(rng, size)
    x = canvas.line(x, rng.choice([0, 1, 3]), label + phi, flags_of(label, phi),
                    big, colour_on(rng, g3, False), "name-bar", tracking=rng.choice([0, 0, 2, 3]))
    # The institution at the right end of the bar, pressed to the edge.
    f = ttf(rng, rng.randrange(10, 16))
    inst = list(patient.institution)
    width = sum(f.getlength(s) for s in inst) + 5 * len(inst)
    canvas.line(int(w - width - rng.choice([0, 1, 2])), rng.choice([0, 2, 4]), inst, [True] * len(inst), f,
                colour_on(rng, g3, rng.random() < 0.3), "edge")
    # Other identifiers down the left, small, some dim tints.
    y = bar_h + 4
    small = rng.randrange(8, 14)
    for label, phi in fields[1:5]:
        f = ttf(rng, small)
        canvas.line(rng.choice([0, 1, 4]), y, label + phi, flags_of(label, phi), f,
                    colour_on(rng, (ground,) * 3, rng.random() < 0.3), "small-colour")
        y += small + rng.randrange(2, 6)
    # Parameters on the right, italic or condensed, some over the sector.
    py, px = int(h * rng.uniform(0.15, 0.25)), int(w * rng.uniform(0.72, 0.84))
    for _ in range(rng.randrange(4, 8)):
        f = ttf(rng, rng.randrange(9, 15))
        words = pick(rng, US_SAFE).split()
        canvas.line(px, py, words, [False] * len(words), f, colour_on(rng, (ground,) * 3, False), "params")
        py += f.size + 5
    # A label (and sometimes the name) half over the anatomy: starts left of the sector's edge.
    edge_x = int(cx - np.tan(np.radians(30)) * (h * 0.55 - top)) - rng.randrange(10, 40)
    f = ttf(rng, rng.randrange(11, 18))
    use_name = rng.random() < 0.5
    words = [patient.given.title(), patient.family.title()] if use_name else pick(rng, US_SAFE).split()
    canvas.line(max(0, edge_x), int(h * 0.55), words, [use_name] * len(words), f,
                colour_on(rng, (ground,) * 3, False), "over-anatomy")
    # Bottom line within 0-2 px of the bottom edge, the date and the doctor.
    f = ttf(rng, rng.randrange(8, 13))
    label, phi = fields[6]
    ref_label, ref = fields[4]
    words, flags = label + phi + ref_label + ref, flags_of(label, phi) + \
        [False] * len(ref_label) + [False, True]
    canvas.line(rng.randrange(2, 30), h - f.size - rng.choice([0, 1, 2]), words, flags, f,
                colour_on(rng, (ground,) * 3, rng.random() < 0.3), "edge")
    return image, canvas.words, "US"


def console(rng, patient, index):
    """A scanner console's dose screen in a Linux console font, with a grid table."""
    w, h = pick(rng, [(512, 512), (640, 480), (720, 400)])
    colour = rng.random() < 0.5
    low = rng.random() < 0.35
    ground = rng.randrange(0, 30) if not low else rng.randrange(60, 110)
    image = Image.new("RGB" if colour else "L", (w, h), (ground,) * 3 if colour else ground)
    canvas = Canvas(image)

    def fill(lo, hi):
        if colour:
            c = pick(rng, [(0, 255, 0), (255, 176, 0), (255, 255, 255), (0, 200, 255)])
            if low:
                d = rng.randrange(lo, hi)
                return tuple(int(ground + d * v / 255) for v in c)
            return c
        return grey_near(rng, ground, lo, hi) if low else rng.randrange(170, 256)

    y = rng.choice([0, 1, 2, 5])
    for label, phi in patient.fields(rng)[:4]:
        f = psf(rng, 8, 20)
        canvas.console_line(rng.choice([0, 1, 2, 8]), y, label + phi, flags_of(label, phi),
                            f, fill(12, 30), "console-id", tracking=rng.choice([0, 0, 1]),
                            bold=rng.random() < 0.2)
        y += f.height + rng.randrange(1, 5)
    y += 8
    grid = fill(40, 60) if not colour else tuple(int(v * 0.5) for v in fill(40, 60))
    cols = [6, int(w * 0.35), int(w * 0.6), int(w * 0.8)]
    f = psf(rng, 8, 16)
    for row in range(rng.randrange(6, 11)):
        if y + f.height + 4 >= h - 30:
            break
        canvas.draw.line([(2, y - 2), (w - 3, y - 2)], fill=grid)
        for c in cols:
            canvas.draw.line([(c - 3, y - 2), (c - 3, y + f.height + 2)], fill=grid)
        words = pick(rng, CT_SAFE).split()
        canvas.console_line(cols[0], y, words, [False] * len(words), f, fill(12, 30), "console-table")
        for c in cols[1:]:
            value = f"{rng.uniform(0.5, 999):.{rng.randrange(0, 3)}f}"
            canvas.console_line(c, y, [value], [False], f, fill(12, 30), "console-table")
        y += f.height + 5
    canvas.draw.line([(2, y - 2), (w - 3, y - 2)], fill=grid)
    # The institution on the last line, pressed to the bottom edge.
    f = psf(rng, 8, 16)
    inst = list(patient.institution)
    canvas.console_line(rng.choice([0, 1, 2]), h - f.height - rng.choice([0, 1, 2]), inst, [True] * len(inst),
                        f, fill(12, 30), "edge")
    return image, canvas.words, "CT"


def form_table(rng, patient, index):
    """A referral form: dark ink in table cells with grid lines, inverse header cells."""
    w, h = pick(rng, [(800, 1000), (700, 900)])
    paper = rng.randrange(220, 252)
    arr = np.full((h, w), paper, np.float32) + np.random.default_rng(index).normal(0, 2.5, (h, w))
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    canvas = Canvas(image)
    f = ttf(rng, rng.randrange(20, 28))
    canvas.line(40, 30, ["Radiology", "Referral"], [False, False], f, 30, "form-title")
    # The table: label cell | value cell, grid lines 1-2 px from the ink.
    x0, x1, x2 = 30, 30 + rng.randrange(150, 220), w - 30
    y = 90
    ink = rng.randrange(0, 70)
    rows = patient.fields(rng)
    for label, phi in rows:
        size = rng.randrange(11, 19)
        row_h = size + rng.choice([3, 4, 6])
        canvas.draw.rectangle([x0, y, x2, y + row_h], outline=rng.randrange(0, 90))
        canvas.draw.line([(x1, y), (x1, y + row_h)], fill=rng.randrange(0, 90))
        if label:
            inverse = rng.random() < 0.4
            if inverse:
                canvas.draw.rectangle([x0 + 1, y + 1, x1 - 1, y + row_h - 1], fill=rng.randrange(30, 90))
            lf = ttf(rng, size - 1)
            canvas.line(x0 + 3, y + 1, label, [False] * len(label), lf,
                        rng.randrange(225, 256) if inverse else ink, "form-label")
        vf = ttf(rng, size, script=rng.random() < 0.1)
        canvas.line(x1 + rng.choice([2, 3, 5]), y + 1, phi, flags_of([], phi), vf, ink, "form-cell",
                    tracking=rng.choice([0, 0, 0, 2, 4]))
        y += row_h
    y += 20
    for _ in range(rng.randrange(3, 6)):
        f = ttf(rng, rng.randrange(11, 17))
        words = [pick(rng, FORM_SAFE) for _ in range(rng.randrange(3, 7))]
        canvas.line(40, y, words, [False] * len(words), f, ink, "form-text", tracking=rng.choice([0, 0, 1]))
        y += f.size + 10
    # A signature line in the script face, the doctor's name.
    f = ttf(rng, rng.randrange(18, 26), script=True)
    canvas.line(60, h - 120, ["Dr", patient.doctor.title()], [False, True], f, ink, "signature")
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7)))
    return image, canvas.words, "OT"


def grey_panel(rng, patient, index):
    """Small grey-on-grey text (7-10 px) in a corner panel pressed to the edges."""
    w, h = pick(rng, [(512, 512), (640, 512), (768, 576)])
    ground = rng.randrange(70, 170)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = ground + (xx / w - 0.5) * rng.uniform(-30, 30)
    mask = sector_mask(h, w, w / 2, h * 0.15, h * 0.8, 35)
    arr = np.where(mask, np.clip(speckle(rng, h, w, 0.7) + ground * 0.3, 0, 255), arr)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    canvas = Canvas(image, aliased=rng.random() < 0.4)
    right = rng.random() < 0.5
    y = rng.choice([0, 1, 2])
    for label, phi in patient.fields(rng)[:5]:
        size = rng.randrange(7, 11)
        f = ttf(rng, size)
        words = label + phi
        flags = flags_of(label, phi)
        tracking = rng.choice([0, 0, 1, 2])
        width = sum(f.getlength(s) + tracking * len(s) for s in words) + (size // 3 + tracking) * len(words)
        x = int(w - width - rng.choice([0, 1, 2])) if right else rng.choice([0, 1, 2])
        local = int(np.median(np.asarray(image)[y:y + size + 2, max(0, x):max(1, x + int(width))]))
        canvas.line(max(0, x), y, words, flags, f, grey_near(rng, local, 10, 26), "grey-small", tracking=tracking)
        y += size + rng.randrange(1, 4)
    # Safe parameters in the same style at the other side.
    y = rng.choice([0, 2])
    for _ in range(rng.randrange(3, 6)):
        f = ttf(rng, rng.randrange(7, 11))
        words = pick(rng, US_SAFE).split()
        x = rng.choice([0, 1, 2]) if right else w - 90
        local = int(np.median(np.asarray(image)[y:y + f.size + 2, x:x + 80]))
        canvas.line(x, y, words, [False] * len(words), f, grey_near(rng, local, 10, 26), "grey-small")
        y += f.size + 2
    return image, canvas.words, "US"


def clip(rng, patient, index):
    """RGB clip: a static console-font overlay, a name that shows in some frames, moving speckle."""
    w, h = pick(rng, [(640, 480), (512, 384)])
    n = rng.randrange(5, 10)
    ground = rng.randrange(0, 20)
    cx, top = w / 2, h * 0.12
    mask = sector_mask(h, w, cx, top, h * 0.82, 38)
    field = speckle(rng, h, w * 2, 1.0)
    static = Image.new("RGB", (w, h), (0, 0, 0))
    sc = Canvas(static)
    f = psf(rng, 12, 20)
    fields = patient.fields(rng)
    label, phi = fields[0]
    col = pick(rng, COLOURS)
    sc.console_line(rng.choice([0, 1, 4]), rng.choice([0, 1, 3]), label + phi,
                    flags_of(label, phi), f, col, "clip-static", bold=rng.random() < 0.3)
    y = f.height + 6
    small = psf(rng, 8, 14)
    for label, phi in fields[1:4]:
        sc.console_line(rng.choice([0, 2]), y, label + phi, flags_of(label, phi), small,
                        pick(rng, COLOURS), "clip-static")
        y += small.height + 3
    py = int(h * 0.2)
    for _ in range(rng.randrange(3, 6)):
        words = pick(rng, US_SAFE).split()
        sc.console_line(w - 110, py, words, [False] * len(words), small, pick(rng, COLOURS), "clip-static")
        py += small.height + 3
    overlay = np.asarray(static)
    ink = overlay.any(axis=2)
    frames, truth = [], []
    name_font = ttf(rng, rng.randrange(12, 18))
    for k in range(n):
        arr = np.full((h, w, 3), ground, np.float32)
        moved = field[:, k * 3:k * 3 + w]
        arr[mask] = np.clip(moved[mask] + ground, 0, 255)[:, None]
        arr[ink] = overlay[ink]
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        canvas = Canvas(image)
        canvas.console_line(w - 9 * small.width, h - small.height - 1, [f"F{k + 1:03d}"], [False], small,
                            (255, 255, 255), "clip-changing")
        if k % 2 == 0:  # the name over the anatomy, in some frames only
            canvas.line(int(cx - 30), int(h * 0.5), [patient.given.title(), patient.family.title()],
                        [True, True], name_font, pick(rng, COLOURS), "clip-changing")
        frames.append(image)
        truth.append(sc.words + canvas.words)
    return frames, truth, "US"


KINDS = [us_colour, console, form_table, grey_panel, us_colour, clip]


def header_extras(ds, patient):
    ds.PatientName = patient.header_name()
    ds.ReferringPhysicianName = f"{patient.doctor}^A"
    ds.InstitutionName = " ".join(w.title() for w in patient.institution)


def jpeg(rng, kind):
    """Whether a file is saved as JPEG, and with what options (4:2:2 chroma for colour)."""
    if kind == "clip":
        return False, None
    if kind == "form_table" and rng.random() < 0.5:
        return True, dict(quality=rng.randrange(50, 85), subsampling=0)
    if kind == "us_colour" and rng.random() < 0.5:
        return True, dict(quality=rng.randrange(70, 92), subsampling=1)
    return False, None
