"""Rendering: sharp sub-frames (every layer warped and alpha-composited in linear light), their mean
(the blurry frame before encoding) and sensor noise."""
from typing import Sequence, Tuple

import cv2
import numpy as np

from vdd_demo.synthetic.scene import Scene, layer_matrix


def _warp(img: np.ndarray, matrix: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Warp a float32 [H', W', 4] layer to [H, W, 4] with the output->layer ``matrix`` (bicubic, zero outside)."""
    h, w = size
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def render_frame(scene: Scene, frame: int, t: float) -> np.ndarray:
    """One sharp sub-frame: layers of output frame ``frame`` composited at time ``t``; float32 linear [H, W, 3]."""
    out = None
    for layer in scene.layers:
        warped = _warp(layer.image(frame), layer_matrix(layer, scene.camera, scene.size, t), scene.size)
        np.clip(warped, 0.0, 1.0, out=warped)  # bicubic overshoot
        alpha = warped[:, :, 3:4]
        colour = np.minimum(warped[:, :, :3], alpha)  # premultiplied colour <= alpha
        out = colour if out is None else colour + (1.0 - alpha) * out
    return out


def render_subframes(scene: Scene, frame: int, times: Sequence[float]) -> np.ndarray:
    """Sharp sub-frames of output frame ``frame`` at ``times``: float32 linear light [S, H, W, 3] in [0, 1]."""
    return np.stack([render_frame(scene, frame, float(t)) for t in times])


def blur_from_subframes(subframes: np.ndarray) -> np.ndarray:
    """Blurry frame in linear light: mean of [S, H, W, 3] linear sub-frames -> float32 [H, W, 3]."""
    return (subframes.astype(np.float32).sum(axis=0) / np.float32(subframes.shape[0])).astype(np.float32)


def add_noise(srgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gamma-encoded float [H, W, 3] + Gaussian noise of std ``sigma`` (sRGB units, 1 = white), clipped."""
    noise = rng.standard_normal(srgb.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(srgb + noise, 0.0, 1.0)
