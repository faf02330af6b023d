#!/usr/bin/env python3
"""A minimal DICOM C-STORE sender that sends each Part 10 file's data set bytes exactly as they
are (no parsing, no re-encoding), all on ONE association: what a sender with a broken encoder
does. DCMTK's storescu cannot do this (it parses each file and refuses a malformed one).

usage: gateway_raw_scu.py CALLING CALLED HOST PORT FILE...
Prints one line per file, "STATUS FILE" (STATUS as 0xNNNN, or "none" when no answer came),
then "released" once the association was released normally. Exit status 0 when the
association was made, whatever the statuses.
"""
import socket
import struct
import sys



def ae(title):
    return title.encode().ljust(16, b" ")[:16]


def uid(text):
    b = text.encode()
    return b + b"\0" if len(b) % 2 else b


def item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def element(group, elem, value):  # implicit VR little endian
    return struct.pack("<HHI", group, elem, len(value)) + value


def part10(path):
    """Returns (sop class, sop instance, transfer syntax, data set bytes) from the meta header."""
    data = open(path, "rb").read()
    assert data[128:132] == b"DICM", path
    pos = 132
    meta = {}
    while pos < len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 2:
            break
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            length = struct.unpack_from("<I", data, pos + 8)[0]
            start = pos + 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            start = pos + 8
        meta[elem] = data[start:start + length].rstrip(b"\0 ").decode("latin-1")
        pos = start + length
    return meta[2], meta[3], meta[0x10], data[pos:]


def recv_pdu(sock):
    head = b""
    while len(head) < 6:
        chunk = sock.recv(6 - len(head))
        if not chunk:
            return None, None
        head += chunk
    kind, _, length = struct.unpack(">BBI", head)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None, None
        body += chunk
    return kind, body


def pdata(context, control, payload):
    pdv = struct.pack(">IBB", len(payload) + 2, context, control) + payload
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def main():
    calling, called, host, port = sys.argv[1:5]
    files = sys.argv[5:]
    infos = [part10(f) for f in files]
    kinds = sorted({(i[0], i[2]) for i in infos})
    context_of = {}
    body = struct.pack(">HH", 1, 0) + ae(called) + ae(calling) + b"\0" * 32
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    for n, (sop_class, syntax) in enumerate(kinds):
        cid = 1 + 2 * n
        context_of[(sop_class, syntax)] = cid
        body += item(0x20, struct.pack(">BBBB", cid, 0, 0, 0) + item(0x30, sop_class.encode()) +
                     item(0x40, syntax.encode()))
    body += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.826.0.1.3680043.9.9999"))
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(struct.pack(">BBI", 1, 0, len(body)) + body)
    kind, _ = recv_pdu(sock)
    if kind != 2:
        print("association refused", file=sys.stderr)
        return 1
    message_id = 0
    for path, (sop_class, sop_instance, syntax, dataset) in zip(files, infos):
        message_id += 1
        cid = context_of[(sop_class, syntax)]
        command = (element(0, 2, uid(sop_class)) + element(0, 0x100, struct.pack("<H", 1)) +
                   element(0, 0x110, struct.pack("<H", message_id)) +
                   element(0, 0x700, struct.pack("<H", 0)) +
                   element(0, 0x800, struct.pack("<H", 0)) +
                   element(0, 0x1000, uid(sop_instance)))
        command = element(0, 0, struct.pack("<I", len(command))) + command
        try:
            sock.sendall(pdata(cid, 0x03, command))
            step = 16000
            for start in range(0, len(dataset), step):
                last = start + step >= len(dataset)
                sock.sendall(pdata(cid, 0x02 if last else 0x00, dataset[start:start + step]))
            status = None
            while status is None:
                kind, answer = recv_pdu(sock)
                if kind != 4:
                    break
                # The response command set: find (0000,0900) Status.
                payload = answer[6:]
                pos = 0
                while pos + 8 <= len(payload):
                    group, elem, length = struct.unpack_from("<HHI", payload, pos)
                    if (group, elem) == (0, 0x900):
                        status = struct.unpack_from("<H", payload, pos + 8)[0]
                    pos += 8 + length
        except OSError:
            status = None
        print(("0x%04X" % status if status is not None else "none"), path, flush=True)
        if status is None:
            return 0
    sock.sendall(struct.pack(">BBI", 5, 0, 4) + b"\0" * 4)
    kind, _ = recv_pdu(sock)
    if kind == 6:
        print("released", flush=True)
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
