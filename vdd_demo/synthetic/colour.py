"""Colour: sRGB (gamma 2.2) <-> linear light, and quantisation to uint8. Blur is averaged in linear light."""
import numpy as np

GAMMA = 2.2

_LINEAR_LUT = np.power(np.arange(256, dtype=np.float64) / 255.0, GAMMA).astype(np.float32)


def srgb_to_linear(img: np.ndarray) -> np.ndarray:
    """uint8 sRGB [..., 3] (0..255) or float in [0, 1] -> float32 linear light in [0, 1] (``x ** 2.2``)."""
    if img.dtype == np.uint8:
        return _LINEAR_LUT[img]
    return np.power(np.clip(img.astype(np.float32), 0.0, 1.0), np.float32(GAMMA))


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Float linear light -> float32 gamma-encoded values in [0, 1] (``x ** (1/2.2)``, clipped)."""
    return np.power(np.clip(lin, 0.0, 1.0), np.float32(1.0 / GAMMA)).astype(np.float32)


def quantize(srgb: np.ndarray) -> np.ndarray:
    """Float gamma-encoded [0, 1] -> uint8 0..255 (round half to even, clipped)."""
    return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)
