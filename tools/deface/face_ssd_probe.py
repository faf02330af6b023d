#!/usr/bin/python3
"""Measurement tool, not part of radguard: scores head renderings with face-api's SSD-MobileNetV1
face detector, by a numpy forward pass written after face-api's own source
(src/ssdMobilenetv1/*.ts of @vladmandic/face-api 1.7.15). It produced the figures in
docs/benchmarks.md (Defacing, "The SSD-MobileNetV1 face detector ... was tried next").

  face_ssd_probe.py MODEL_DIR photo IMAGE...            best face score of photographs/PNGs
  face_ssd_probe.py MODEL_DIR nifti [--threshold T] VOLUME.nii[.gz]...
                                                         photo-like renderings (front, yaw+-30)
                                                         of the head surface, scored
  face_ssd_probe.py MODEL_DIR dicom [--threshold T] FOLDER...
                                                         the same for every DICOM series of 20
                                                         images or more under each folder
                                                         (assembled with pydicom)

MODEL_DIR holds ssd_mobilenetv1_model-weights_manifest.json and ssd_mobilenetv1_model.bin from
the npm tarball (npm pack @vladmandic/face-api@1.7.15, sha256
0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031, folder package/model).
Needs numpy and PIL (Debian: python3-numpy, python3-pil); dicom mode pydicom (python3-pydicom).
The serve end-to-end test (tests/serve_face_check.py) uses it as its independent face check.
"""
import gzip, json, struct, sys
import numpy as np
from PIL import Image


# ---- the detector -------------------------------------------------------------------------
def load(model_dir):
    manifest = json.load(open(f'{model_dir}/ssd_mobilenetv1_model-weights_manifest.json'))
    weights = {}
    for group in manifest:
        buf = b''.join(open(f'{model_dir}/{p}', 'rb').read() for p in group['paths'])
        off = 0
        for w in group['weights']:
            n = int(np.prod(w['shape'])) if w['shape'] else 1
            q = w.get('quantization')
            if q:  # uint8, dequantised as q * scale + min
                a = np.frombuffer(buf, np.uint8, n, off).astype(np.float64) * q['scale'] + q['min']
                off += n
            else:
                a = np.frombuffer(buf, '<f4' if w['dtype'] == 'float32' else '<i4', n, off)
                off += 4 * n
            weights[w['name']] = np.asarray(a, np.float32).reshape(w['shape'])
        assert off == len(buf), 'the shards do not match the manifest'
    return weights


def _pad_same(x, k, s):  # TensorFlow 'same': the odd pixel of padding goes bottom/right
    def p(n):
        t = max((-(-n // s) - 1) * s + k - n, 0)
        return t // 2, t - t // 2
    return np.pad(x, (p(x.shape[0]), p(x.shape[1]), (0, 0)))


def _conv(x, w, s, depthwise=False):
    kh = w.shape[0]
    if kh == 1 and s == 1 and not depthwise:
        return x @ w[0, 0]
    xp = _pad_same(x, kh, s)
    h, wd = -(-x.shape[0] // s), -(-x.shape[1] // s)
    out = np.zeros((h, wd, w.shape[2] if depthwise else w.shape[3]), np.float32)
    for i in range(kh):
        for j in range(w.shape[1]):
            patch = xp[i:i + s * h:s, j:j + s * wd:s]
            out += patch * w[i, j, :, 0] if depthwise else patch @ w[i, j]
    return out


def _pointwise(x, W, prefix, s):
    return np.clip(_conv(x, W[prefix + '/weights'], s) + W[prefix + '/convolution_bn_offset'], 0, 6)


def detect(W, rgb):
    """rgb: HxWx3 uint8. Returns (scores, boxes [y0, x0, y1, x1] in input pixels) of the 5,118
    anchors, as face-api's SsdMobilenetv1.forwardInput + outputLayer (before NMS)."""
    h, w, _ = rgb.shape
    n = max(h, w)
    square = np.zeros((n, n, 3), np.uint8)
    square[:h, :w] = rgb  # toBatchTensor(512, false): padded at bottom/right
    x = np.asarray(Image.fromarray(square).resize((512, 512), Image.BILINEAR), np.float32) / 127.5 - 1
    x = _pointwise(x, W, 'MobilenetV1/Conv2d_0_pointwise', 2)
    conv11 = None
    for layer in range(1, 14):
        p = f'MobilenetV1/Conv2d_{layer}_depthwise'
        y = _conv(x, W[p + '/depthwise_weights'], 2 if layer in (2, 4, 6, 12) else 1, depthwise=True)
        y = (y - W[p + '/BatchNorm/moving_mean']) / np.sqrt(
            W[p + '/BatchNorm/moving_variance'] + 0.0010000000474974513) * W[
                p + '/BatchNorm/gamma'] + W[p + '/BatchNorm/beta']
        x = _pointwise(np.clip(y, 0, 6), W, f'MobilenetV1/Conv2d_{layer}_pointwise', 1)
        if layer == 11:
            conv11 = x
    extra = [_pointwise(x, W, 'Prediction/Conv2d_0_pointwise', 1)]
    for k in range(1, 8):
        extra.append(_pointwise(extra[-1], W, f'Prediction/Conv2d_{k}_pointwise', 2 if k % 2 else 1))
    boxes, classes = [], []
    for i, f in enumerate([conv11, x, extra[1], extra[3], extra[5], extra[7]]):
        p = f'Prediction/BoxPredictor_{i}'
        boxes.append((_conv(f, W[p + '/BoxEncodingPredictor/weights'], 1) +
                      W[p + '/BoxEncodingPredictor/biases']).reshape(-1, 4))
        classes.append((_conv(f, W[p + '/ClassPredictor/weights'], 1) +
                        W[p + '/ClassPredictor/biases']).reshape(-1, 3))
    B, C = np.concatenate(boxes), np.concatenate(classes)
    A = W['Output/extra_dim'].reshape(-1, 4)
    s0, s1 = A[:, 2] - A[:, 0], A[:, 3] - A[:, 1]
    c0, c1 = A[:, 0] + s0 / 2, A[:, 1] + s1 / 2
    h0, h1 = np.exp(B[:, 2] / 5) * s0 / 2, np.exp(B[:, 3] / 5) * s1 / 2
    a0, a1 = B[:, 0] / 10 * s0 + c0, B[:, 1] / 10 * s1 + c1
    return 1 / (1 + np.exp(-C[:, 1])), np.stack([a0 - h0, a1 - h1, a0 + h0, a1 + h1], 1) * n


# ---- photo-like rendering of a NIfTI head ---------------------------------------------------
_DT = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8,
       512: np.uint16}


def read_nifti(path):
    """Voxels as float32 [x, y, z], flipped so that x, y, z follow the sform's R, A, S signs
    (axis-aligned volumes only), repeated to about 1 mm cells."""
    b = gzip.open(path).read() if path.endswith('.gz') else open(path, 'rb').read()
    e = '<' if struct.unpack('<i', b[:4])[0] == 348 else '>'
    dim = struct.unpack(e + '8h', b[40:56])
    dtype = struct.unpack(e + 'h', b[70:72])[0]
    pix = struct.unpack(e + '8f', b[76:108])[1:4]
    off = int(struct.unpack(e + 'f', b[108:112])[0])
    srow = np.array(struct.unpack(e + '12f', b[280:328])).reshape(3, 4)
    n = dim[1:4]
    a = np.frombuffer(b, np.dtype(_DT[dtype]).newbyteorder(e), int(np.prod(n)), off)
    a = a.reshape(n[::-1]).transpose(2, 1, 0).astype(np.float32)
    for axis in range(3):
        if srow[axis, axis] < 0:
            a = np.flip(a, axis)
        a = a.repeat(max(1, int(round(pix[axis]))), axis)
    return np.ascontiguousarray(a)


def read_dicom_series(paths):
    """Voxels of one DICOM series (files of one Series Instance UID) as float32 [x, y, z], laid
    out as read_nifti lays out a NIfTI volume: each array axis mapped to the patient axis it
    runs nearest to (axis-aligned series; an oblique one is read as its nearest axes), flipped
    from DICOM's L, P, S to R, A, S, repeated to about 1 mm cells. Rescale slope and intercept
    applied. pydicom only: nothing of radguard's reading or assembly is used."""
    import pydicom  # Debian python3-pydicom; only this mode needs it
    slices = [pydicom.dcmread(p) for p in paths]
    iop = np.array([float(v) for v in slices[0].ImageOrientationPatient])
    row, col = iop[:3], iop[3:]  # directions of increasing column and increasing row index
    normal = np.cross(row, col)
    slices.sort(key=lambda d: float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])))
    pos = [np.dot(normal, [float(v) for v in d.ImagePositionPatient]) for d in slices]
    dz = float(np.median(np.diff(pos))) if len(pos) > 1 else float(slices[0].get('SliceThickness', 1))
    a = np.stack([d.pixel_array.astype(np.float32) * float(d.get('RescaleSlope', 1) or 1) +
                  float(d.get('RescaleIntercept', 0) or 0) for d in slices])  # [k, i, j]
    dy, dx = (float(v) for v in slices[0].PixelSpacing)  # row spacing, column spacing
    dirs, spacing = [normal, col, row], [dz, dy, dx]
    order = [int(np.argmax(np.abs(d))) for d in dirs]  # the patient axis of each array axis
    if sorted(order) != [0, 1, 2]:
        raise ValueError('the series is too oblique to lay out along the patient axes')
    a = a.transpose([order.index(axis) for axis in range(3)])
    for axis in range(3):
        d = dirs[order.index(axis)]
        if (d[axis] > 0) == (axis < 2):  # DICOM x grows to the left, y to the back
            a = np.flip(a, axis)
        a = a.repeat(max(1, int(round(spacing[order.index(axis)]))), axis)
    return np.ascontiguousarray(a)


def dicom_series(folder, min_slices=20):
    """Series of at least min_slices images under folder: {series uid: [paths]}."""
    import os, pydicom
    series = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            try:
                d = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # not DICOM (DICOMDIR reads, but has no rows)
                continue
            if 'Rows' in d and 'ImagePositionPatient' in d and 'ImageOrientationPatient' in d:
                series.setdefault(str(d.SeriesInstanceUID), []).append(path)
    return {uid: sorted(p) for uid, p in series.items() if len(p) >= min_slices}


def score_head(W, vol, threshold=None, yaws=(0, 30, -30)):
    """Best face score of each view of vol's surface (Otsu threshold unless given)."""
    t = otsu(vol) if threshold is None else threshold
    return t, {yaw: float(detect(W, render(vol, t, yaw))[0].max()) for yaw in yaws}


def otsu(v):
    h, e = np.histogram(v[v > 0], 256)
    c = (e[:-1] + e[1:]) / 2
    w, m = np.cumsum(h), np.cumsum(h * c)
    between = w * (w[-1] - w) * (m / np.maximum(w, 1) - (m[-1] - m) / np.maximum(w[-1] - w, 1)) ** 2
    return c[np.argmax(between)]


def render(vol, threshold, yaw, size=320, dist=600.0, fov=34.0):
    """Perspective view from the front (y grows anterior, z superior), turned by yaw degrees;
    light from the camera and a little above, skin albedo, grey-blue background."""
    for axis in range(3):  # 3x3x3 box smoothing against the voxel staircase
        vol = (np.roll(vol, 1, axis) + vol + np.roll(vol, -1, axis)) / 3
    nx, ny, nz = vol.shape
    centre = np.array([nx / 2, ny / 2, nz / 2])
    yr = np.radians(yaw)
    fwd = np.array([-np.sin(yr), -np.cos(yr), 0.0])
    right = np.array([-np.cos(yr), np.sin(yr), 0.0])
    up = np.array([0, 0, 1.0])
    eye = centre - fwd * dist
    u = (np.arange(size) - size / 2 + 0.5) / (size / 2)
    U, V = np.meshgrid(u, -u)
    d = fwd / np.tan(np.radians(fov / 2)) + right * U[..., None] + up * V[..., None]
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    radius = np.linalg.norm([nx, ny, nz]) / 2
    depth = np.full((size, size), np.inf)
    for t in np.arange(dist - radius, dist + radius, 0.5):
        i = np.round(eye + d * t).astype(int)
        ok = np.isinf(depth) & (i[..., 0] >= 0) & (i[..., 0] < nx) & (i[..., 1] >= 0) & (
            i[..., 1] < ny) & (i[..., 2] >= 0) & (i[..., 2] < nz)
        if ok.any():
            val = np.zeros((size, size))
            val[ok] = vol[i[..., 0][ok], i[..., 1][ok], i[..., 2][ok]]
            depth[ok & (val > threshold)] = t
    hit = np.isfinite(depth)
    P = eye + d * np.where(hit, depth, 0)[..., None]
    nrm = np.cross(np.roll(P, -1, 1) - np.roll(P, 1, 1), np.roll(P, -1, 0) - np.roll(P, 1, 0))
    nrm /= np.maximum(np.linalg.norm(nrm, axis=-1, keepdims=True), 1e-6)
    nrm *= np.sign(-(nrm * d).sum(-1, keepdims=True))
    light = -fwd + np.array([0, 0, 0.35])
    light /= np.linalg.norm(light)
    lambert = np.clip((nrm * light).sum(-1), 0, 1)
    half = light - d
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    spec = np.clip((nrm * half).sum(-1), 0, 1) ** 20
    img = np.clip(((0.25 + 0.75 * lambert)[..., None] * np.array([224, 172, 140]) / 255 +
                   0.15 * spec[..., None]) * 255, 0, 255)
    inside = hit & np.roll(hit, 1, 0) & np.roll(hit, -1, 0) & np.roll(hit, 1, 1) & np.roll(hit, -1, 1)
    img[~inside] = (70, 80, 95)
    return img.astype(np.uint8)


def main(argv):
    if len(argv) < 3 or argv[1] not in ('photo', 'nifti', 'dicom'):
        sys.exit(__doc__)
    W = load(argv[0])
    args = argv[2:]
    threshold = None
    if args[:1] == ['--threshold']:
        threshold, args = float(args[1]), args[2:]
    for path in args:
        if argv[1] == 'photo':
            s, b = detect(W, np.asarray(Image.open(path).convert('RGB')))
            i = int(np.argmax(s))
            print(f'{path}: best {s[i]:.3f} box (y0 x0 y1 x1) {[int(v) for v in b[i]]}')
            continue
        heads = {path: read_nifti(path)} if argv[1] == 'nifti' else {
            f'{path} series {uid}': read_dicom_series(files)
            for uid, files in dicom_series(path).items()}
        for name, vol in heads.items():
            t, views = score_head(W, vol, threshold)
            print(f'{name}: threshold {t:.0f}  ' +
                  '  '.join(f'yaw{yaw:+d} {s:.2f}' for yaw, s in views.items()))


if __name__ == '__main__':
    main(sys.argv[1:])
