#!/usr/bin/env python3
"""Writes the hostile DICOM inputs of docs/reliability.md into a folder (issue 14).

    python3 bench/hostile_inputs.py OUTDIR

nest10k.dcm      10,000 Content Sequences nested (explicit VR, undefined lengths)
nest1k.dcm       1,000 of them
deflate1g.dcm    deflated data set: 1 GiB of zeros in one OB value (about 1 MB on disk)
deflate4g.dcm    deflated data set: 4 values of 1 GiB each (about 4 MB on disk)
flood512m.dcm    deflated data set: one sequence of 64 Mi empty items (512 MiB inflated)
edge_items.dcm   near the most elements accepted: 1.95 M empty items, not deflated (16 MB)
edge_inflate.dcm the most inflation accepted: 500 MiB at a ratio near 100 (about 5.3 MB)
Only the standard library: the bytes are written by hand.
"""
import struct
import sys
import zlib
from pathlib import Path


def element(group, elem, vr, value):
    if len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value


def part10(syntax, dataset_chunks, deflate=False):
    meta = (struct.pack("<HH", 2, 1) + b"OB\0\0" + struct.pack("<I", 2) + b"\0\1"
            + element(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.7")
            + element(2, 3, b"UI", b"1.2.3.4.5.6.7.8.9")
            + element(2, 0x10, b"UI", syntax))
    yield b"\0" * 128 + b"DICM" + struct.pack("<HH", 2, 0) + b"UL" + struct.pack("<HI", 4, len(meta)) + meta
    if not deflate:
        yield from dataset_chunks
        return
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    for chunk in dataset_chunks:
        out = z.compress(chunk)
        if out:
            yield out
    yield z.flush()


def head():
    return (element(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.7")
            + element(8, 0x18, b"UI", b"1.2.3.4.5.6.7.8.9")
            + element(0x10, 0x20, b"LO", b"PID")
            + element(0x20, 0xD, b"UI", b"1.2.3.4.5.1")
            + element(0x20, 0xE, b"UI", b"1.2.3.4.5.2"))


def nested(depth):
    opening = struct.pack("<HH", 0x40, 0xA730) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF) \
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    yield head()
    yield opening * depth
    yield closing * depth


def zeros(values, size):
    yield head()
    block = b"\0" * (1 << 24)
    for i in range(values):
        yield struct.pack("<HH", 0x0009, 0x1000 + i) + b"OB\0\0" + struct.pack("<I", size)
        left = size
        while left:
            n = min(left, len(block))
            yield block[:n]
            left -= n


def flood(items):
    yield head()
    yield struct.pack("<HH", 0x40, 0xA730) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0)
    per_chunk = 1 << 20
    for _ in range(items // per_chunk):
        yield item * per_chunk
    yield item * (items % per_chunk)
    yield struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def noisy(size):
    """One OB value of `size` bytes: 640 random bytes in every 64 KiB, zeros around them."""
    import os
    yield head()
    yield struct.pack("<HH", 0x0009, 0x1000) + b"OB\0\0" + struct.pack("<I", size)
    for _ in range(size >> 16):
        yield os.urandom(640) + b"\0" * ((1 << 16) - 640)


def write(path, chunks):
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    explicit, deflated = b"1.2.840.10008.1.2.1", b"1.2.840.10008.1.2.1.99"
    write(out / "nest10k.dcm", part10(explicit, nested(10_000)))
    write(out / "nest1k.dcm", part10(explicit, nested(1_000)))
    write(out / "deflate1g.dcm", part10(deflated, zeros(1, 1 << 30), deflate=True))
    write(out / "deflate4g.dcm", part10(deflated, zeros(4, 1 << 30), deflate=True))
    write(out / "flood512m.dcm", part10(deflated, flood(64 << 20), deflate=True))
    write(out / "edge_items.dcm", part10(explicit, flood(1_950_000)))
    write(out / "edge_inflate.dcm", part10(deflated, noisy(500 << 20), deflate=True))


if __name__ == "__main__":
    main()
