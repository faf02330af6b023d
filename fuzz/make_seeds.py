#!/usr/bin/python3
"""Makes the seed corpus of the fuzz targets added for issue 14 (fuzz/corpus/README.md).

    /usr/bin/python3 fuzz/make_seeds.py RADGUARD_BINARY [CORPUS_DIR]

Volumes are synthetic; pixel seeds are the codestreams of pydicom's sample files
(python3-pydicom, MIT licence) behind the 8-byte attribute header of fuzz_pixels.cpp;
signature and manifest seeds are made by `radguard keys new`, `sign` and `manifest create`
(a throwaway test key; its certificate is corpus/trust.pem). Deterministic except for the
signatures (fresh key, time stamps).
"""
import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import pydicom
from pydicom.encaps import generate_pixel_data_frame

SAMPLES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"


def nifti(dims, dtype_code, bitpix, data, sform=True, qform=False, extension=b""):
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, 3, *dims, 1, 1, 1, 1)
    struct.pack_into("<hh", h, 70, dtype_code, bitpix)
    struct.pack_into("<8f", h, 76, -1.0 if qform else 1.0, 1.0, 1.5, 2.0, 1, 1, 1, 1)
    vox_offset = 352 + len(extension)
    struct.pack_into("<fff", h, 108, float(vox_offset), 1.0, -1024.0 if dtype_code == 4 else 0.0)
    h[148:148 + 13] = b"seed descrip\0"
    h[123] = 2
    if qform:
        struct.pack_into("<h", h, 252, 1)
        struct.pack_into("<6f", h, 256, 0.0, 0.0, 0.7071068, 10.0, -20.0, 30.0)
    if sform:
        struct.pack_into("<h", h, 254, 2)
        struct.pack_into("<12f", h, 280, -1, 0, 0, 90, 0, 1.5, 0, -126, 0, 0, 2.0, -72)
    h[344:348] = b"n+1\0"
    flag = b"\1\0\0\0" if extension else b"\0\0\0\0"
    return bytes(h) + flag + extension + data


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def volumes(corpus):
    rng = np.random.default_rng(14)
    vol = rng.integers(-1000, 2000, size=(6, 8, 8), dtype=np.int16)
    write(f"{corpus}/nifti/int16_sform.nii", nifti((8, 8, 6), 4, 16, vol.tobytes()))
    u8 = rng.integers(0, 255, size=(5, 6, 7), dtype=np.uint8)
    write(f"{corpus}/nifti/uint8_qform.nii.gz",
          gzip.compress(nifti((7, 6, 5), 2, 8, u8.tobytes(), sform=False, qform=True), mtime=0))
    f32 = rng.normal(size=(4, 4, 4)).astype("<f4")
    ext = struct.pack("<ii", 16, 4) + b"ext text"
    write(f"{corpus}/nifti/float32_extension.nii", nifti((4, 4, 4), 16, 32, f32.tobytes(), extension=ext))
    i32 = rng.integers(-5, 5, size=(3, 3, 3), dtype="<i4")
    write(f"{corpus}/nifti/int32_pixdim.nii", nifti((3, 3, 3), 8, 32, i32.tobytes(), sform=False))

    shape = (6, 8, 10)
    matrix = rng.integers(-1000, 2000, size=shape, dtype="<i2").tobytes()
    plist = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>matrix</key>
\t<dict>
\t\t<key>dtype</key>
\t\t<string>int16</string>
\t\t<key>filename</key>
\t\t<string>matrix.dat</string>
\t\t<key>shape</key>
\t\t<array>
\t\t\t<integer>{shape[0]}</integer>
\t\t\t<integer>{shape[1]}</integer>
\t\t\t<integer>{shape[2]}</integer>
\t\t</array>
\t</dict>
\t<key>spacing</key>
\t<array>
\t\t<real>0.5</real>
\t\t<real>0.5</real>
\t\t<real>1.25</real>
\t</array>
</dict>
</plist>
""".encode()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in (("main.plist", plist), ("matrix.dat", matrix)):
            info = tarfile.TarInfo("project/" + name)
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    write(f"{corpus}/inv3/small.inv3", gzip.compress(tar.getvalue(), mtime=0))


CODECS = {
    "1.2.840.10008.1.2.4.50": "pixels_jpeg_baseline",
    "1.2.840.10008.1.2.4.51": "pixels_jpeg_baseline",
    "1.2.840.10008.1.2.4.57": "pixels_jpeg_lossless",
    "1.2.840.10008.1.2.4.70": "pixels_jpeg_lossless",
    "1.2.840.10008.1.2.4.80": "pixels_jpeg_ls",
    "1.2.840.10008.1.2.4.81": "pixels_jpeg_ls",
    "1.2.840.10008.1.2.4.90": "pixels_jpeg2000",
    "1.2.840.10008.1.2.4.91": "pixels_jpeg2000",
    "1.2.840.10008.1.2.5": "pixels_rle",
}
GREY = ["MONOCHROME2", "MONOCHROME1"]
COLOUR = ["RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"]


def pixel_seeds(corpus):
    for name in sorted(os.listdir(SAMPLES)):
        if name.endswith(".dcm"):
            pixel_seed(corpus, os.path.join(SAMPLES, name), name[:-4])


def pixel_seed(corpus, path, name, max_bytes=48 * 1024):
    try:
        ds = pydicom.dcmread(path)
        target = CODECS.get(str(ds.file_meta.TransferSyntaxUID))
        if not target or "PixelData" not in ds:
            return
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        samples = int(ds.SamplesPerPixel)
        bits = int(ds.BitsAllocated)
        if bits not in (8, 16) or samples not in (1, 3) or frames > 4:
            return
        if ds.Columns > 512 or ds.Rows > 512:
            return
        photometric = str(ds.PhotometricInterpretation)
        table = GREY if samples == 1 else COLOUR
        if photometric not in table:
            return
        fragments = list(generate_pixel_data_frame(ds.PixelData, frames))
    except Exception:  # a sample pydicom itself cannot take apart: not a seed
        return
    if len({len(f) for f in fragments}) != 1:
        return  # fuzz_pixels splits the data into equal parts
    flags = (1 if samples == 3 else 0) | (2 if bits == 16 else 0)
    flags |= (int(getattr(ds, "PixelRepresentation", 0)) & 1) << 2
    flags |= table.index(photometric) << 3
    flags |= (int(getattr(ds, "PlanarConfiguration", 0) or 0) & 1) << 6
    header = struct.pack("<HHBBBB", ds.Columns, ds.Rows, flags, int(ds.BitsStored), frames, 0)
    seed = header + b"".join(fragments)
    if len(seed) <= max_bytes:
        write(f"{corpus}/{target}/{name}.bin", seed)


def dcmtk_seeds(corpus):
    """Seeds DCMTK's own encoders make from MR_small (64 x 64, 16 bits): JPEG lossless (SV1
    and process 14 with another predictor), JPEG-LS lossless with DCMTK's parameters."""
    with tempfile.TemporaryDirectory() as w:
        for tool, option, name in (("dcmcjpeg", "+e1", "MR_small_dcmcjpeg_sv1"),
                                   ("dcmcjpeg", "+el", "MR_small_dcmcjpeg_p14"),
                                   ("dcmcjpls", "+el", "MR_small_dcmcjpls")):
            out = f"{w}/{name}.dcm"
            if shutil.which(tool) is None:
                continue
            subprocess.run([tool, option, f"{SAMPLES}/MR_small.dcm", out], check=True,
                           capture_output=True)
            pixel_seed(corpus, out, name)


def signed_seeds(radguard, corpus):
    with tempfile.TemporaryDirectory() as w:
        run = lambda *a: subprocess.run([radguard, *a], check=True, capture_output=True)
        run("keys", "new", "--key", f"{w}/k.pem", "--cert", f"{w}/c.pem")
        with open(f"{w}/c.pem", "rb") as f:
            write(f"{corpus}/trust.pem", f.read())
        os.makedirs(f"{w}/in")
        for name in ("MR_small.dcm", "rtplan.dcm", "priv_SQ.dcm", "CT_small.dcm"):
            with open(os.path.join(SAMPLES, name), "rb") as f:
                write(f"{w}/in/{name}", f.read())
        run("sign", f"{w}/in", "--key", f"{w}/k.pem", "--cert", f"{w}/c.pem", "-o", f"{w}/signed")
        for name in sorted(os.listdir(f"{w}/signed")):
            with open(f"{w}/signed/{name}", "rb") as f:
                data = f.read()
            if len(data) <= 48 * 1024:
                write(f"{corpus}/signature/{name}", data)
        # The folder fuzz_manifest checks against (fuzz_signing.cpp makes the same one).
        folder = f"{w}/folder"
        os.makedirs(f"{folder}/sub")
        for rel, text in (("a.txt", "alpha\n"), ("sub/b.txt", "beta\n"), ("sub/c.txt", "gamma\n")):
            write(f"{folder}/{rel}", text.encode())
        run("manifest", "create", folder, "-o", f"{w}/unsigned.json")
        run("manifest", "create", folder, "--key", f"{w}/k.pem", "--cert", f"{w}/c.pem",
            "-o", f"{w}/signed.json")
        for name in ("unsigned.json", "signed.json"):
            with open(f"{w}/{name}", "rb") as f:
                write(f"{corpus}/manifest/{name}", f.read())


def main():
    radguard = sys.argv[1]
    corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "corpus")
    volumes(corpus)
    pixel_seeds(corpus)
    dcmtk_seeds(corpus)
    signed_seeds(radguard, corpus)


if __name__ == "__main__":
    main()
