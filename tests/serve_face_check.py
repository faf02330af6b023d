#!/usr/bin/python3
"""The serve end-to-end test's independent "no face" check (tests/serve_e2e_test.sh).

  serve_face_check.py MODEL_DIR CD_FOLDER COPY_FOLDER [THRESHOLD]

radguard's own face evidence (and `radguard audit`) renders the head with radguard's C++
renderer and looks for a face with OpenCV's Haar cascades and a depth test; this check shares
none of that: tools/deface/face_ssd_probe.py renders the skin surface with its own numpy ray
marcher (perspective, skin-tinted, front and yaw +-30) from volumes assembled here with pydicom
and its own NIfTI reader, and scores each rendering with face-api's SSD-MobileNetV1, a CNN
trained on photographs (MODEL_DIR: installed by scripts/install-deps.sh, pinned by sha256).

Every head under CD_FOLDER (DICOM series of 20 images or more, .nii/.nii.gz files) is the
positive control: its best view must score THRESHOLD (0.5) or more, or the check is blind and
fails. Every head in COPY_FOLDER must be one of the CD's heads (same grid, most voxels equal:
the copy is laid out and rendered as the CD was, not seen from the back) and every view of it
must score below THRESHOLD. The score is the detector's, not a proof: see docs/benchmarks.md
("An independent face check for the serve e2e").
"""
import os, sys, time
import numpy as np

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'deface'))
import face_ssd_probe as probe  # noqa: E402


def heads(folder):
    """{label: volume} of every head under folder; labels name no patient (series are numbered)."""
    found = {}
    for i, files in enumerate(sorted(probe.dicom_series(folder).values(), key=lambda f: f[0])):
        found[f'DICOM series {i + 1} ({len(files)} images)'] = probe.read_dicom_series(files)
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.endswith(('.nii', '.nii.gz')):
                path = os.path.join(root, name)
                found[f'NIfTI {os.path.relpath(path, folder)}'] = probe.read_nifti(path)
    return found


def agreement(a, b):
    """Fraction of voxels within 2 % of a's range of each other (0 when the grids differ)."""
    if a.shape != b.shape:
        return 0.0
    tol = 0.02 * (float(a.max()) - float(a.min()))
    return float(np.mean(np.abs(a - b) <= tol))


def main(model_dir, cd, copy, threshold=0.5):
    W = probe.load(model_dir)
    before, after = heads(cd), heads(copy)
    if not before:
        sys.exit('FAIL: no head on the CD: the face check has nothing to control against')
    failures = []
    scores = {}
    for label, vol in before.items():
        t0 = time.time()
        _, views = probe.score_head(W, vol)
        scores[label] = max(views.values())
        print(f'CD {label}: ' + ' '.join(f'yaw{y:+d} {s:.2f}' for y, s in views.items()) +
              f' ({time.time() - t0:.0f} s)')
        if scores[label] < threshold:
            failures.append(f'the control does not fire: the CD\'s {label} scores at most '
                            f'{scores[label]:.2f} (< {threshold}): the check is blind')
    if len(after) != len(before):
        failures.append(f'{len(after)} heads in the copy, {len(before)} on the CD')
    for label, vol in after.items():
        match, agree = max(((b, agreement(before[b], vol)) for b in before), key=lambda m: m[1])
        if agree < 0.8:
            failures.append(f'copy {label} matches no head of the CD ({agree:.2f} of voxels at '
                            'most): laid out differently, the check could be looking at its back')
            continue
        t0 = time.time()
        _, views = probe.score_head(W, vol)
        best = max(views.values())
        print(f'copy {label} (the CD\'s {match}, {agree:.2f} of voxels unchanged): ' +
              ' '.join(f'yaw{y:+d} {s:.2f}' for y, s in views.items()) +
              f'; before {scores[match]:.2f} ({time.time() - t0:.0f} s)')
        if best >= threshold:
            failures.append(f'copy {label} scores {best:.2f} (>= {threshold}): a face')
    if failures:
        sys.exit('\n'.join('FAIL: ' + f for f in failures))
    print(f'independent face check: {len(before)} heads on the CD score {threshold} or more, '
          f'none in the copy does (face-api SSD-MobileNetV1 on the probe\'s renderings)')


if __name__ == '__main__':
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:4], *(float(v) for v in sys.argv[4:]))
