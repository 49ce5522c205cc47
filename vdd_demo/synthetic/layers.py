"""Layers of a scene built from its recipe: the opaque background (photo or video frames), the moving
object (a soft-masked patch of another photo) and the near parallax occluder (a textured band or pole)."""
import math
from typing import Tuple

import cv2
import numpy as np

from vdd_demo.synthetic.colour import srgb_to_linear
from vdd_demo.synthetic.scene import Layer, Lissajous, Trajectory, layer_extent
from vdd_demo.synthetic.sources import load_photo, load_video_frames


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize an image [H, W, C] by ``scale`` (area when shrinking, bicubic when enlarging; float may overshoot)."""
    h, w = img.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, size, interpolation=interp)


def _opaque(img_u8: np.ndarray, scale: float) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> linear light, resized by ``scale`` -> opaque RGBA float32 [H', W', 4] (alpha 1)."""
    lin = np.clip(_resize(srgb_to_linear(img_u8), scale), 0.0, 1.0)
    return np.concatenate([lin, np.ones_like(lin[:, :, :1])], axis=2)


def _cover_crop(img_u8: np.ndarray, h: int, w: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Linear-light float32 [h, w, 3]: ``img`` resized by ``scale`` (more if needed to cover h x w), random crop."""
    scale = max(scale, h / img_u8.shape[0], w / img_u8.shape[1]) * 1.0001
    img = np.clip(_resize(srgb_to_linear(img_u8), scale), 0.0, 1.0)
    y = int(rng.integers(0, img.shape[0] - h + 1))
    x = int(rng.integers(0, img.shape[1] - w + 1))
    return img[y:y + h, x:x + w]


def object_mask(spec: dict, side: int) -> np.ndarray:
    """Soft object mask float32 [side, side] in [0, 1], zero on a >= 2 px border.

    ``spec['shape']``: 'blob' (star-shaped: radius ``1 + sum_k c_k cos(k theta + phi_k)``, antialiased edge)
    or 'horse' (skimage's horse silhouette, area-resampled).
    """
    inner = side - 4
    if spec['shape'] == 'horse':
        sil = load_photo('horse')[:, :, 0].astype(np.float32) / 255.0
        ys, xs = np.nonzero(sil > 0.5)
        sil = sil[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        scale = inner / max(sil.shape)
        sil = np.clip(cv2.resize(sil, (max(1, int(sil.shape[1] * scale)), max(1, int(sil.shape[0] * scale))),
                                 interpolation=cv2.INTER_AREA), 0, 1)
        mask = np.zeros((side, side), np.float32)
        y0, x0 = (side - sil.shape[0]) // 2, (side - sil.shape[1]) // 2
        mask[y0:y0 + sil.shape[0], x0:x0 + sil.shape[1]] = sil
        return mask
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    c = (side - 1) / 2.0
    dx, dy = xx - c, yy - c
    rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    radius = np.ones_like(theta)
    for k, (amp, phase) in enumerate(zip(spec['harmonics'], spec['phases']), start=2):
        radius += amp * np.cos(k * theta + phase)
    radius *= (inner / 2.0) / (1.0 + float(np.sum(np.abs(spec['harmonics']))))
    return np.clip(radius - rho + 0.5, 0.0, 1.0).astype(np.float32)


def occluder_mask(spec: dict, shape: Tuple[int, int], window_origin: Tuple[float, float],
                  win: Tuple[int, int]) -> np.ndarray:
    """Soft near-layer mask float32 [H, W] in [0, 1], in layer coordinates.

    Defined around ``window_origin`` (the layer pixel at the window centre at the reference pose),
    with ``v`` = signed distance along the unit normal at ``spec['angle']`` and ``s`` the coordinate
    along the edge: 'band' covers ``v > offset + wave(s)`` (a region entering from one side), 'pole'
    covers ``|v - offset - wave(s)| < width / 2`` (a post crossing the view). Offsets/widths are in
    fractions of the window size; the edge is antialiased over one pixel.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - window_origin[0], yy - window_origin[1]
    n = np.array([math.cos(spec['angle']), math.sin(spec['angle'])])
    v = dx * n[0] + dy * n[1]
    s = -dx * n[1] + dy * n[0]
    unit = min(win)
    wave = np.zeros_like(s)
    for amp, freq, phase in zip(spec['wave_amp'], spec['wave_freq'], spec['wave_phase']):
        wave += amp * unit * np.sin(2 * np.pi * freq * s / unit + phase)
    edge = v - spec['offset'] * unit - wave
    if spec['shape'] == 'band':
        mask = edge + 0.5
    else:
        mask = spec['width'] * unit / 2.0 - np.abs(edge) + 0.5
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def background_layer(spec: dict, size) -> Layer:
    """Background layer (photo, or the video frames of the segment) at the spec's scale, min margin kept."""
    bg = spec['background']
    h, w = size
    if bg['type'] == 'photo':
        imgs = load_photo(bg['name'])[None]
    else:
        imgs = load_video_frames(bg['name'], bg['start'], spec['num_frames'])
    need = max((h + 0.375 * min(size)) / imgs.shape[1], (w + 0.375 * min(size)) / imgs.shape[2])
    scale = max(bg['scale'], need)
    frames = np.stack([_opaque(im, scale) for im in imgs])
    bg['applied_scale'] = float(scale)
    if bg['type'] == 'photo':
        return Layer('background', frames[0])
    return Layer('background', None, frames=frames)


def object_layer(spec: dict, rng: np.random.Generator) -> Layer:
    ob = spec['object']
    side = ob['side']
    patch = _cover_crop(load_photo(ob['source']), side, side, ob['crop_scale'], rng)
    alpha = object_mask(ob, side)[:, :, None]
    rgba = np.concatenate([patch * alpha, alpha], axis=2).astype(np.float32)
    c = (side - 1) / 2.0
    return Layer('object', rgba, ob['depth'], (c, c), Lissajous(**ob['path']))


def near_layer(spec: dict, camera: Trajectory, size, times, rng) -> Layer:
    """Near (parallax) occluder: canvas just large enough for its motion, textured, masked, darkened."""
    nr = spec['near']
    probe = Layer('near', None, nr['depth'])
    lo, hi = layer_extent(probe, camera, size, times)
    cw, ch = (int(math.ceil(v)) + 3 for v in (hi - lo))
    texture = _cover_crop(load_photo(nr['source']), ch, cw, nr['crop_scale'], rng)
    origin = (float(-lo[0] + 1), float(-lo[1] + 1))
    tx0, ty0, _, _ = (float(v) for v in camera.pose(0.0))
    window_origin = (origin[0] + nr['depth'] * tx0, origin[1] + nr['depth'] * ty0)
    alpha = occluder_mask(nr, (ch, cw), window_origin, size)[:, :, None]
    lin = texture * np.float32(nr['brightness'])
    rgba = np.concatenate([lin * alpha, alpha], axis=2).astype(np.float32)
    return Layer('near', rgba, nr['depth'], origin)
