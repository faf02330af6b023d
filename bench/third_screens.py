"""make_screens.py --style third: screens drawn with neither Pillow's text nor its fonts.

A third generator, written before any engine change of the third pass and deliberately unlike
the classic and held-out styles (both draw TrueType/OpenType glyphs with Pillow). Here every
glyph is rasterised either by cairo (pycairo; fontconfig families, with cairo's own hinting
and anti-aliasing: grey, none, or sub-pixel-free full hinting) or taken straight from the X11
bitmap fonts of Debian's xfonts-base / xfonts-75dpi / xfonts-100dpi packages (misc-fixed 4x6
to 12x24, Adobe Helvetica, Courier, Times, New Century Schoolbook, Lucida, Lucidatypewriter;
PCF glyph bitmaps blitted by numpy, optionally doubled pixel by pixel as old consoles do).
Words are composited by numpy from a per-word coverage mask, so each word's ink box is exact.

What the screens hold that the other styles do not: inverse video (dark text in light bars,
light bars inside dark tables), 19-24 px bold names in a top bar, text 6-10 px tall, grey on
grey down to 8-14 grey levels, text within 0-2 px of every edge, vertical text (turned a
quarter either way, read top to bottom or bottom to top), coloured text on semi-transparent
coloured overlays over RGB pictures, text straight over speckle with no bar, CT dose screens
in a fixed-width bitmap font, scanned forms skewed as a whole and saved as JPEG at quality
30-55, and clips whose annotation moves from frame to frame over fresh speckle.
Patients, institutions, labels and date spellings are new too.
"""
import gzip
import io
import math
import os

import cairo
import numpy as np
from PIL import Image, PcfFontFile

X11 = "/usr/share/fonts/X11"
# (file, pixel height of capitals, bold) - the bitmap faces, by directory
BITMAP_FACES = [
    ("misc/4x6.pcf.gz", 4), ("misc/5x7.pcf.gz", 5), ("misc/5x8.pcf.gz", 6),
    ("misc/6x10.pcf.gz", 7), ("misc/6x12.pcf.gz", 8), ("misc/6x13.pcf.gz", 9),
    ("misc/6x13B.pcf.gz", 9), ("misc/7x13.pcf.gz", 9), ("misc/7x13B.pcf.gz", 9),
    ("misc/7x14.pcf.gz", 10), ("misc/7x14B.pcf.gz", 10), ("misc/8x13.pcf.gz", 9),
    ("misc/8x13B.pcf.gz", 9), ("misc/9x15.pcf.gz", 10), ("misc/9x15B.pcf.gz", 10),
    ("misc/10x20.pcf.gz", 13), ("misc/12x24.pcf.gz", 16),
    ("75dpi/helvR08.pcf.gz", 6), ("75dpi/helvB08.pcf.gz", 6), ("75dpi/helvR10.pcf.gz", 8),
    ("75dpi/helvB10.pcf.gz", 8), ("75dpi/helvR12.pcf.gz", 9), ("75dpi/helvB12.pcf.gz", 9),
    ("75dpi/helvB14.pcf.gz", 10), ("75dpi/helvB18.pcf.gz", 13), ("75dpi/helvB24.pcf.gz", 17),
    ("75dpi/courR10.pcf.gz", 7), ("75dpi/courB12.pcf.gz", 8), ("75dpi/courR14.pcf.gz", 9),
    ("75dpi/timR10.pcf.gz", 7), ("75dpi/timB12.pcf.gz", 8), ("75dpi/timR14.pcf.gz", 10),
    ("75dpi/ncenR12.pcf.gz", 9), ("75dpi/ncenB14.pcf.gz", 10), ("75dpi/luRS10.pcf.gz", 8),
    ("75dpi/luBS12.pcf.gz", 9), ("75dpi/lutRS10.pcf.gz", 7), ("75dpi/lutBS12.pcf.gz", 9),
    ("100dpi/helvR08.pcf.gz", 8), ("100dpi/helvB10.pcf.gz", 10), ("100dpi/helvB14.pcf.gz", 14),
    ("100dpi/helvB18.pcf.gz", 18), ("100dpi/courB10.pcf.gz", 9), ("100dpi/timR12.pcf.gz", 12),
    ("100dpi/ncenB10.pcf.gz", 10), ("100dpi/luBS14.pcf.gz", 14), ("100dpi/lutBS10.pcf.gz", 10),
]
CAIRO_FAMILIES = ["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Liberation Sans",
                  "Liberation Serif", "Liberation Mono", "FreeSans", "FreeSerif", "Noto Sans",
                  "Noto Mono", "Nimbus Sans", "Nimbus Roman", "Arimo", "Cousine", "Go Mono",
                  "Lato", "Cantarell", "C059"]

FAMILY = ["ACHTERBERG", "BELLWEATHER", "CZERNY", "DRUMMOND", "EKWUEME", "FONSECA", "GALLAGHER",
          "HUANG", "IBARRA", "JOVANOVIC", "KRISHNAMURTHY", "LINDGREN", "MAHLANGU", "NORDSTROM",
          "OYELOWO", "PRZYBYLSKI", "QUARSHIE", "ROSSETTI", "SZABO", "THORVALDSEN", "UCHENNA",
          "VASQUEZ", "WEATHERBY", "XU", "YAMAMOTO", "ZAVALA", "DE LA CRUZ", "VAN HOUTEN"]
GIVEN = ["AGNIESZKA", "BARTHOLOMEW", "CATALINA", "DESMOND", "EFUA", "FREDERIKA", "GIANLUCA",
         "HYUN", "IMOGEN", "JARRAH", "KOFI", "LUDMILA", "MATTHIAS", "NKECHI", "ORLANDO",
         "PERPETUA", "RAFFAELE", "SIOBHAN", "THADDEUS", "VALENTINA", "WILHELMINA", "XAVIER"]
DOCTORS = ["ABARA", "BRENNAN", "CHOWDHURY", "DVORAK", "ELLINGSEN", "FAROUK", "GRUBER"]
INSTITUTIONS = [("QUEEN", "ADELAIDE", "HOSPITAL"), ("HARBOURVIEW", "DIAGNOSTICS"),
                ("SANKT", "GEORG", "KLINIKUM"), ("MOUNT", "CALVARY", "MEDICAL", "GROUP"),
                ("WESTBROOK", "IMAGING", "CENTRE"), ("CLINICA", "SANTA", "LUCIA")]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

US_SAFE = ["TGC", "Depth 12.5", "Gn 48", "DR 66", "MI 1.1", "TIb 0.3", "P 90%", "F 3.5M",
           "Fps 28", "HRes", "SCI", "XBeam", "L12-5", "C1-6", "Abdomen", "Thyroid", "Carotid",
           "Trans", "Long", "Prox", "Mid", "Dist", "PW", "Color", "M-Mode", "Freeze", "Caliper",
           "Dist 2.34cm", "Area 4.1cm2", "RI 0.62", "PSV 88", "EDV 21", "Cine", "Probe"]
CT_SAFE = ["DOSE", "SUMMARY", "Scan", "Kind", "kV", "mAs", "CTDIvol", "DLP", "Phantom", "Body",
           "Head", "Scout", "Axial", "Spiral", "Total", "mGy", "mGy*cm", "Pitch", "Rot", "Coll",
           "Event", "Protocol", "Routine", "Chest", "Pelvis", "Contrast", "Delay", "Series"]
FORM_SAFE = ["REQUISITION", "Diagnostic", "Imaging", "Order", "Procedure", "Ultrasound",
             "Abdomen", "Complete", "Reason", "Symptoms", "Right", "upper", "quadrant", "pain",
             "History", "Gallstones", "Insurance", "Provider", "Signed", "Date", "Time", "Ward",
             "Inpatient", "Outpatient", "Portable", "Isolation", "Fasting", "hours"]
OVERLAY_SAFE = ["ENDO", "Olympus-like", "WLI", "NBI", "Zoom x1.5", "Enh A5", "Iris Auto",
                "Cecum", "Ascending", "Biopsy", "Polyp", "Photo 12", "Freeze", "Record"]


def pick(rng, items):
    return items[rng.randrange(len(items))]


class Patient:
    def __init__(self, rng):
        self.family = pick(rng, FAMILY)
        self.given = pick(rng, GIVEN)
        self.middle = None
        self.mrn = pick(rng, [f"{rng.randrange(100, 999)}{rng.randrange(1000, 9999)}",
                              f"K{rng.randrange(10 ** 6, 10 ** 7)}",
                              f"{rng.randrange(10 ** 9, 10 ** 10)}"])
        self.accession = pick(rng, [f"{rng.randrange(10 ** 7, 10 ** 8)}",
                                    f"XA{rng.randrange(10 ** 5, 10 ** 6)}"])
        self.birth = (rng.randrange(1928, 2022), rng.randrange(1, 13), rng.randrange(1, 29))
        self.study = (rng.randrange(2010, 2027), rng.randrange(1, 13), rng.randrange(1, 29))
        self.institution = pick(rng, INSTITUTIONS)
        self.doctor = pick(rng, DOCTORS)

    def header_name(self):
        return f"{self.family}^{self.given}"

    def name_words(self, rng):
        fam, giv = self.family.split(), self.given
        return pick(rng, [fam[:-1] + [fam[-1] + ","] + [giv], [giv] + fam,
                          [w.title() for w in fam] + [giv.title()], fam[:-1] + [fam[-1] + "/" + giv]])

    def date(self, rng, d):
        y, m, day = d
        return pick(rng, [f"{y}.{m:02d}.{day:02d}", f"{day}-{MONTHS[m - 1].title()}-{y % 100:02d}",
                          f"{m:02d}-{day:02d}-{y}", f"{y}{m:02d}{day:02d}", f"{day:02d}{MONTHS[m - 1]}{y}",
                          f"{day:02d}/{m:02d}/{y % 100:02d}"])


_BITMAPS = {}


def bitmap_font(name):
    if name not in _BITMAPS:
        path = os.path.join(X11, name)
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing (scripts/install-deps.sh installs xfonts-*)")
        _BITMAPS[name] = PcfFontFile.PcfFontFile(io.BytesIO(gzip.open(path).read()))
    return _BITMAPS[name]


class Face:
    """A face that turns a word into a coverage mask (float 0..1) and the baseline's row in it."""

    def __init__(self, rng, cap_px, allow_bitmap=True):
        self.cap = cap_px
        fitting = [f for f in BITMAP_FACES if f[1] <= cap_px]
        self.kind = "bitmap" if allow_bitmap and fitting and rng.random() < 0.5 else "cairo"
        if self.kind == "bitmap":
            name, cap = max(fitting, key=lambda f: (f[1], rng.random()))
            near = [f for f in fitting if f[1] >= cap - 1]
            name, cap = pick(rng, near)
            self.scale = 2 if cap * 2 <= cap_px and rng.random() < 0.5 else 1
            self.font = bitmap_font(name)
            self.cap = cap * self.scale
        else:
            self.family = pick(rng, CAIRO_FAMILIES)
            self.bold = rng.random() < 0.4
            self.italic = rng.random() < 0.12
            self.antialias = pick(rng, [cairo.ANTIALIAS_GRAY, cairo.ANTIALIAS_GRAY, cairo.ANTIALIAS_NONE])
            self.hint = pick(rng, [cairo.HINT_STYLE_NONE, cairo.HINT_STYLE_FULL, cairo.HINT_STYLE_SLIGHT])
            self.size = cap_px / 0.72  # cap height is about 0.72 of the em

    def space(self):
        return max(3, int(self.cap * 0.45))

    def mask(self, word):
        if self.kind == "bitmap":
            return self._bitmap(word)
        return self._cairo(word)

    def _bitmap(self, word):
        glyphs = [self.font.glyph[ord(c)] if ord(c) < 256 and self.font.glyph[ord(c)] else None
                  for c in word]
        width = sum(g[0][0] if g else 4 for g in glyphs) + 2
        top = min((g[1][1] for g in glyphs if g), default=-8)
        bottom = max((g[1][3] for g in glyphs if g), default=2)
        out = np.zeros((bottom - top + 2, width), np.float32)
        x = 1
        for g in glyphs:
            if g is None:
                x += 4
                continue
            (adv, _), (x0, y0, x1, y1), _, im = g
            bits = np.asarray(im.convert("L"), np.float32) / 255.0
            if bits.size:
                r, c = y0 - top + 1, x + x0
                out[r:r + bits.shape[0], c:c + bits.shape[1]] = np.maximum(
                    out[r:r + bits.shape[0], c:c + bits.shape[1]], bits)
            x += adv
        base = -top + 1
        if self.scale > 1:
            out = np.kron(out, np.ones((self.scale, self.scale), np.float32))
            base *= self.scale
        return out, base

    def _cairo(self, word):
        w, h = int(self.size * (len(word) + 2)) + 8, int(self.size * 1.8) + 8
        surface = cairo.ImageSurface(cairo.FORMAT_A8, w, h)
        ctx = cairo.Context(surface)
        options = cairo.FontOptions()
        options.set_antialias(self.antialias)
        options.set_hint_style(self.hint)
        ctx.set_font_options(options)
        ctx.select_font_face(self.family,
                             cairo.FONT_SLANT_ITALIC if self.italic else cairo.FONT_SLANT_NORMAL,
                             cairo.FONT_WEIGHT_BOLD if self.bold else cairo.FONT_WEIGHT_NORMAL)
        ctx.set_font_size(self.size)
        base = int(self.size * 1.25) + 2
        ctx.move_to(3, base)
        ctx.show_text(word)
        surface.flush()
        stride = surface.get_stride()
        arr = np.frombuffer(surface.get_data(), np.uint8).reshape(h, stride)[:, :w]
        return arr.astype(np.float32) / 255.0, base


class Screen:
    """A frame being drawn (float array, grey HxW or RGB HxWx3) with every word's ink box."""

    def __init__(self, array):
        self.a = array.astype(np.float32)
        self.words = []

    @property
    def size(self):
        return self.a.shape[1], self.a.shape[0]

    def word(self, x, baseline, text, face, colour, phi, turn=0):
        """Draws one word with its baseline's left end at (x, baseline); returns the x after it.
        turn=+1 reads bottom to top, -1 top to bottom (x, baseline then name the top-left)."""
        mask, base = face.mask(text)
        rows, cols = np.nonzero(mask > 0.2)
        if rows.size == 0:
            return x + face.space()
        mask = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        base -= rows.min()
        advance = mask.shape[1]
        if turn:
            mask = np.rot90(mask, 1 if turn > 0 else -1)
            top, left = baseline, x
        else:
            top, left = baseline - base, x
        self._blend(mask, left, top, colour, phi, text)
        return x + (mask.shape[0] if turn else advance)

    def line(self, x, baseline, words, face, colour, phi_flags, turn=0):
        for text, phi in zip(words, phi_flags):
            if turn:
                length = self.word(x, baseline, text, face, colour, phi, turn) - x
                baseline += length + face.space()
            else:
                x = self.word(x, baseline, text, face, colour, phi) + face.space()
        return baseline if turn else x

    def width_of(self, words, face):
        total = 0
        for text in words:
            mask, _ = face.mask(text)
            cols = np.nonzero((mask > 0.2).any(axis=0))[0]
            total += (cols.max() - cols.min() + 1 if cols.size else 0) + face.space()
        return total - face.space()

    def _blend(self, mask, left, top, colour, phi, text):
        h, w = mask.shape
        H, W = self.a.shape[:2]
        x0, y0, x1, y1 = max(0, left), max(0, top), min(W, left + w), min(H, top + h)
        if x1 <= x0 or y1 <= y0:
            return
        m = mask[y0 - top:y1 - top, x0 - left:x1 - left]
        region = self.a[y0:y1, x0:x1]
        c = np.asarray(colour, np.float32)
        if region.ndim == 3:
            region[...] = region * (1 - m[..., None]) + c * m[..., None]
        else:
            region[...] = region * (1 - m) + float(np.mean(c)) * m
        ink = np.nonzero(m > 0.25)
        if ink[0].size:
            self.words.append({"text": text, "phi": phi,
                               "box": [int(x0 + ink[1].min()), int(y0 + ink[0].min()),
                                       int(ink[1].max() - ink[1].min() + 1),
                                       int(ink[0].max() - ink[0].min() + 1)]})

    def rect(self, x, y, w, h, colour, alpha=1.0):
        region = self.a[max(0, y):y + h, max(0, x):x + w]
        c = np.asarray(colour, np.float32)
        if region.ndim == 2:
            c = float(np.mean(c))
        region[...] = region * (1 - alpha) + c * alpha

    def image(self):
        return Image.fromarray(np.clip(np.rint(self.a), 0, 255).astype(np.uint8))


def speckle(rng, h, w, strength=1.0):
    g = np.random.default_rng(rng.randrange(1 << 30))
    noise = g.rayleigh(1.0, (h // 2 + 1, w // 2 + 1)).astype(np.float32)
    noise = np.kron(noise, np.ones((2, 2), np.float32))[:h, :w]
    k = np.array([1, 4, 6, 4, 1], np.float32) / 16
    for axis in (0, 1):
        noise = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, noise)
    return noise * 55 * strength


def fan(h, w, cx, top, radius, half_angle):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - cx, yy - top)
    ang = np.degrees(np.arctan2(xx - cx, yy - top))
    return (r > 15) & (r < radius) & (np.abs(ang) < half_angle)


def grey_text(rng, ground, low):
    delta = rng.randrange(8, 15) if low else rng.randrange(60, 200)
    return min(255, ground + delta) if ground < 128 else max(0, ground - delta)


def us_namebar(rng, patient, index):
    """Ultrasound: a top bar with a large bold name, parameters down the side in bitmap fonts,
    labels straight over the speckle, a vertical MRN along the left edge, text at the edges."""
    w, h = pick(rng, [(640, 480), (800, 600), (720, 540)])
    rgb = rng.random() < 0.5
    base = np.zeros((h, w, 3) if rgb else (h, w), np.float32)
    field = speckle(rng, h, w) * fan(h, w, w / 2, 40, h * 0.9, 40)
    base += field[..., None] if rgb else field
    s = Screen(base)
    inverse = rng.random() < 0.35
    bar = (210, 210, 200) if inverse else pick(rng, [(30, 40, 90), (60, 60, 60), (20, 20, 20), (90, 20, 20)])
    bar_h = rng.randrange(26, 34)
    s.rect(0, 0, w, bar_h, bar)
    low = rng.random() < 0.3
    ink = (20, 20, 20) if inverse else ((bar[0] + 14,) * 3 if low else (250, 250, 240))
    big = Face(rng, rng.randrange(14, 18), allow_bitmap=rng.random() < 0.4)
    big.bold = True if big.kind == "cairo" else None
    name = patient.name_words(rng)
    x = s.line(rng.randrange(0, 3), bar_h - 6, name, big, ink, [True] * len(name))
    small = Face(rng, rng.randrange(7, 10))
    s.line(x + 20, bar_h - 6, [patient.mrn], small, ink, [True])
    inst = [w_.title() if rng.random() < 0.5 else w_ for w_ in patient.institution]
    edge = rng.randrange(0, 3)
    f = Face(rng, rng.randrange(6, 10))
    s.line(w - edge - s.width_of(inst, f), bar_h - 6, inst, f, ink, [True] * len(inst))
    # parameters down the right, in a bitmap face, some over the speckle
    f = Face(rng, rng.randrange(5, 10))
    y = bar_h + 20
    for label in rng.sample(US_SAFE, 7):
        words = label.split()
        s.line(w - 110 - rng.randrange(0, 40), y, words, f, pick(rng, [(200, 200, 200), (120, 220, 120), (230, 200, 80)]),
               [False] * len(words))
        y += f.cap + rng.randrange(6, 12)
    # date and time on the bottom edge, 0-2 px from it
    f = Face(rng, rng.randrange(6, 11))
    date = patient.date(rng, patient.study)
    s.line(rng.randrange(0, 3), h - rng.randrange(0, 3), [date, f"{rng.randrange(0, 24):02d}:{rng.randrange(60):02d}"],
           f, (200, 200, 200), [True, False])
    s.line(w // 2 - 40, h - 2, ["DOB", patient.date(rng, patient.birth)], f, (180, 180, 180), [False, True])
    # a vertical MRN or doctor along the left edge
    f = Face(rng, rng.randrange(7, 12))
    words = pick(rng, [["ID", patient.mrn], ["Ref", "Dr", patient.doctor]])
    s.line(rng.randrange(0, 3), bar_h + 60, words, f, (210, 210, 210), [w_ in (patient.mrn, patient.doctor) for w_ in words],
           turn=pick(rng, [1, -1]))
    # a label straight over the speckle (no bar), faint or bright
    f = Face(rng, rng.randrange(8, 13))
    words = pick(rng, [["Pt", patient.family.split()[-1].title()], ["RT", "LOBE"], ["Acc", patient.accession]])
    s.line(w // 2 - 60, int(h * 0.55), words, f, (rng.randrange(150, 255),) * 3,
           [w_ in (patient.family.split()[-1].title(), patient.accession) for w_ in words])
    return s.image(), s.words, "US"


def ct_dose(rng, patient, index):
    """CT dose screen in a fixed-width bitmap face: grey on grey, an inverse header row."""
    w = h = 512
    ground = rng.randrange(0, 70)
    s = Screen(np.full((h, w), ground, np.float32))
    low = rng.random() < 0.5
    ink = grey_text(rng, ground, low)
    f = Face(rng, rng.randrange(5, 10))
    x0, y = rng.randrange(0, 3), rng.randrange(8, 14)
    s.line(x0, y + f.cap, ["Patient:"] + patient.name_words(rng), f, ink, [False] + [True] * 4)
    y += f.cap + 8
    s.line(x0, y + f.cap, ["ID:", patient.mrn, "Acc:", patient.accession], f, ink, [False, True, False, True])
    y += f.cap + 8
    s.line(x0, y + f.cap, ["Exam", "date:", patient.date(rng, patient.study)], f, ink, [False, False, True])
    y += f.cap + 8
    s.line(x0, y + f.cap, [w_.title() for w_ in patient.institution], f, ink, [True] * len(patient.institution))
    y += f.cap + 18
    header_h = f.cap + 8
    s.rect(0, y, w, header_h, grey_text(rng, ground, False))
    bar = s.a[y + 1, 1]
    s.line(4, y + header_h - 4, ["Series", "Type", "kV", "mAs", "CTDIvol", "DLP"], f,
           max(0, bar - rng.randrange(60, 150)), [False] * 6)
    y += header_h + 6
    for row in range(rng.randrange(3, 7)):
        words = [str(row + 1), pick(rng, ["Scout", "Axial", "Spiral", "Contrast"]), "120",
                 str(rng.randrange(30, 400)), f"{rng.uniform(1, 40):.2f}", f"{rng.uniform(10, 900):.1f}"]
        s.line(4, y + f.cap, words, f, ink, [False] * 6)
        y += f.cap + 6
    s.line(4, y + f.cap + 6, ["Total", "DLP:", f"{rng.uniform(100, 2000):.1f}", "mGy*cm"], f, ink, [False] * 4)
    # physician, bottom right corner, touching the edge
    f2 = Face(rng, rng.randrange(7, 11))
    words = ["Dr", patient.doctor.title()]
    s.line(w - s.width_of(words, f2) - rng.randrange(0, 2), h - rng.randrange(0, 2), words, f2, ink, [False, True])
    return s.image(), s.words, "CT"


def scan_form(rng, patient, index):
    """A scanned request form: cairo faces, skewed as a whole, grey paper, saved as poor JPEG."""
    w, h = 850, 1100
    paper = rng.randrange(200, 245)
    s = Screen(np.full((h, w), paper, np.float32))
    ink = rng.randrange(20, 90)
    y = 60
    title = Face(rng, 18, allow_bitmap=False)
    s.line(60, y, ["DIAGNOSTIC", "IMAGING", "REQUISITION"], title, ink, [False] * 3)
    y += 40
    inst = Face(rng, 11, allow_bitmap=False)
    s.line(60, y, list(patient.institution), inst, ink, [True] * len(patient.institution))
    y += 50
    f = Face(rng, rng.randrange(8, 12), allow_bitmap=False)
    fields = [(["Surname"], [patient.family.split()[-1]]), (["Forename"], [patient.given.title()]),
              (["Date", "of", "birth"], [patient.date(rng, patient.birth)]),
              (["Hosp", "No"], [patient.mrn]), (["Order", "No"], [patient.accession]),
              (["Requesting", "clinician"], ["Dr", patient.doctor.title()])]
    for label, value in fields:
        x = s.line(60, y, label, f, ink, [False] * len(label))
        s.rect(x + 4, y + 3, 300, 1, ink)
        flags = [v != "Dr" for v in value]
        s.line(max(x + 12, 250), y, value, Face(rng, rng.randrange(9, 14), allow_bitmap=False),
               rng.randrange(10, 120), flags)
        y += rng.randrange(34, 46)
    y += 20
    body = Face(rng, rng.randrange(7, 11), allow_bitmap=False)
    for _ in range(rng.randrange(4, 8)):
        words = rng.sample(FORM_SAFE, rng.randrange(4, 8))
        s.line(60, y, words, body, ink, [False] * len(words))
        y += body.cap + rng.randrange(10, 16)
    # a pale stamp with the study date, not turned
    stamp = Face(rng, 14, allow_bitmap=False)
    s.line(rng.randrange(450, 600), rng.randrange(150, 300), ["RECEIVED", patient.date(rng, patient.study)],
           stamp, paper - rng.randrange(25, 50), [False, True])
    # scanner: small skew of the page as a whole (boxes move with it), blur and dust
    angle = rng.uniform(-1.2, 1.2)
    img = Image.fromarray(np.clip(s.a, 0, 255).astype(np.uint8))
    img = img.rotate(angle, resample=Image.BILINEAR, fillcolor=paper, center=(0, 0))
    rad = math.radians(angle)
    moved = []
    for word in s.words:
        x, y_, bw, bh = word["box"]
        xs, ys = [], []
        for px, py in ((x, y_), (x + bw, y_), (x, y_ + bh), (x + bw, y_ + bh)):
            xs.append(px * math.cos(rad) + py * math.sin(rad))
            ys.append(-px * math.sin(rad) + py * math.cos(rad))
        # the word's own slope widens its box a little; keep the box of the ink band's centre
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        slack = abs(math.sin(rad)) * bw / 2
        word = dict(word, box=[int(x0), int(y0 + slack * 0.5), int(x1 - x0), int(max(3, y1 - y0 - slack))])
        moved.append(word)
    arr = np.asarray(img, np.float32)
    g = np.random.default_rng(rng.randrange(1 << 30))
    arr = arr + g.normal(0, rng.uniform(2, 6), arr.shape)
    dust = g.random(arr.shape) < 0.0008
    arr[dust] = ink
    s.a = arr
    s.words = moved
    return s.image(), s.words, "OT"


def overlay_rgb(rng, patient, index):
    """A colour picture (endoscopy-like) with text on semi-transparent coloured panels."""
    w, h = pick(rng, [(640, 480), (720, 576)])
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - w / 2, yy - h / 2) / (h / 2)
    warm = np.stack([180 - 60 * r, 80 - 30 * r, 60 - 20 * r], axis=-1)
    warm += speckle(rng, h, w, 0.5)[..., None] * np.array([0.8, 0.5, 0.4])
    s = Screen(np.clip(warm, 0, 255))
    panel = pick(rng, [(0, 0, 120), (0, 80, 0), (60, 60, 60), (120, 0, 90)])
    s.rect(0, 0, 200, h, panel, alpha=rng.uniform(0.45, 0.8))
    colour = pick(rng, [(255, 255, 0), (0, 255, 255), (255, 255, 255), (255, 160, 60), (160, 255, 160)])
    f = Face(rng, rng.randrange(8, 13))
    y = rng.randrange(2, 6) + f.cap
    for words, flags in [(patient.name_words(rng), None), (["ID", patient.mrn], [False, True]),
                         ([patient.date(rng, patient.birth)], [True]),
                         ([patient.date(rng, patient.study), f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"], [True, False]),
                         (["Dr", patient.doctor.title()], [False, True])]:
        flags = flags or [True] * len(words)
        s.line(rng.randrange(0, 3), y, words, f, colour, flags)
        y += f.cap + rng.randrange(8, 14)
    for label in rng.sample(OVERLAY_SAFE, 5):
        words = label.split()
        s.line(4, y, words, f, colour, [False] * len(words))
        y += f.cap + 10
    # inverse label: dark text in a light box, bottom right, institution
    words = list(patient.institution)
    f2 = Face(rng, rng.randrange(7, 11))
    width = s.width_of(words, f2)
    s.rect(w - width - 8, h - f2.cap - 10, width + 8, f2.cap + 10, (235, 235, 235))
    s.line(w - width - 4, h - 5, words, f2, (rng.randrange(0, 60),) * 3, [True] * len(words))
    return s.image(), s.words, "OT"


def clip(rng, patient, index):
    """Frames of fresh speckle with a static header and an annotation that moves each frame."""
    w, h = pick(rng, [(480, 360), (640, 480)])
    rgb = rng.random() < 0.5
    n = rng.randrange(5, 10)
    head = Face(rng, rng.randrange(9, 15))
    tag = Face(rng, rng.randrange(7, 12))
    name = patient.name_words(rng)
    colour = (230, 230, 230)
    ground = pick(rng, [0, 0, 25])
    frames, truth = [], []
    dx, dy = rng.randrange(-12, 13), rng.randrange(-6, 7)
    x0, y0 = rng.randrange(120, w - 220), rng.randrange(h // 3, h - 60)
    fan_mask = fan(h, w, w / 2, 30, h * 0.95, 42)
    date = patient.date(rng, patient.study)
    for k in range(n):
        field = ground + speckle(rng, h, w) * fan_mask
        s = Screen(np.repeat(field[..., None], 3, axis=2) if rgb else field)
        s.line(rng.randrange(0, 2) + 2, 2 + head.cap, name + [patient.mrn], head, colour,
               [True] * (len(name) + 1))
        s.line(2, h - 3, [date, f"F{k + 1}/{n}"], tag, colour, [True, False])
        words = pick(rng, [["Pt:", patient.family.split()[-1]], ["Acc", patient.accession]]) if k == 0 else moving
        moving = words
        s.line(x0 + dx * k, y0 + dy * k, words, tag, (255, 255, 120) if rgb else 255,
               [w_ in (patient.family.split()[-1], patient.accession) for w_ in words])
        frames.append(s.image())
        truth.append(s.words)
    return frames, truth, "US"


KINDS = [us_namebar, us_namebar, ct_dose, scan_form, overlay_rgb, clip]


def header_extras(ds, patient):
    ds.PatientName = patient.header_name()
    ds.ReferringPhysicianName = f"{patient.doctor}^A"
    ds.InstitutionName = " ".join(w.title() for w in patient.institution)


def jpeg(rng, kind):
    """Whether a file is saved as JPEG, and with what options."""
    if kind == "scan_form":
        return True, dict(quality=rng.randrange(30, 56), subsampling=0)
    if kind == "clip":
        return False, None
    if rng.random() < 0.3:
        return True, dict(quality=rng.randrange(45, 80), subsampling=2)
    return False, None
