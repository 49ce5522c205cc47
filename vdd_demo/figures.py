"""Comparison figures: side-by-side crops (paper Fig. 3) and error heat maps with a shared scale (Fig. 4).

Images are read from the folders BasicSR's test writes (``visualization/<dataset>/<video>/<frame>_<suffix>.png``)
and from the dataset (input and ground truth). Plain numpy/OpenCV/matplotlib; images are read and
written with :mod:`vdd_demo.images`.
"""
import glob
import os.path as osp

import cv2
import numpy as np


def find_output(result_dir, video, frame_stem):
    """The saved output PNG of ``video``/``frame_stem`` under a BasicSR result folder, or None."""
    hits = glob.glob(osp.join(result_dir, 'visualization', '*', video, f'{frame_stem}_*.png'))
    return sorted(hits)[0] if hits else None


def crop_box(shape, size):
    """Central square crop ``(top, left, size)`` clipped to the image."""
    h, w = shape[:2]
    size = min(size, h, w)
    return (h - size) // 2, (w - size) // 2, size


def _label(img, text):
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _row(tiles):
    """Tiles of equal height side by side with 4-pixel white gaps."""
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    parts = [tiles[0]]
    for tile in tiles[1:]:
        parts += [gap, tile]
    return np.concatenate(parts, 1)


def side_by_side(panels, crop=160):
    """``panels``: list of (label, RGB uint8 image) -> one RGB image of labelled central crops."""
    top, left, size = crop_box(panels[0][1].shape, crop)
    return _row([_label(np.ascontiguousarray(img[top:top + size, left:left + size]), name) for name, img in panels])


def error_maps(panels, gt, vmax=None, crop=160):
    """Heat maps of ``|output - gt|`` (mean over RGB, in [0, 255]) on one shared colour scale.

    Returns (RGB image, vmax). ``vmax`` defaults to the 99th percentile over all panels.
    """
    import matplotlib

    top, left, size = crop_box(gt.shape, crop)
    errors = [(name, np.abs(img.astype(np.float32) - gt.astype(np.float32)).mean(2)[top:top + size, left:left + size])
              for name, img in panels]
    if vmax is None:
        vmax = max(float(np.percentile(np.concatenate([e.ravel() for _, e in errors]), 99)), 1.0)
    colormap = matplotlib.colormaps['inferno']
    return _row([_label((colormap(np.clip(e / vmax, 0, 1))[:, :, :3] * 255).astype(np.uint8), f'{name} (0-{vmax:.0f})')
                 for name, e in errors]), vmax
