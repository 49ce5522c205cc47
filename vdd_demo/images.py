"""Images on disk and their plain scores, torch-free: RGB PNG read/write, PSNR and SSIM of uint8 images.

Shared by the synthetic data generator (its ``meta.json`` input scores) and the comparison figures.
Scores: RGB uint8 ``[H, W, 3]``, no border crop; SSIM is Wang et al.'s, computed like BasicSR's
``calculate_ssim`` (11x11 Gaussian window, sigma 1.5, valid region, mean of the three channels).
"""
import cv2
import numpy as np


def read_rgb(path: str) -> np.ndarray:
    """An image file as uint8 RGB ``[H, W, 3]``; raises FileNotFoundError for a missing or corrupt file."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'{path}: cannot read image')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write uint8 RGB ``[H, W, 3]`` as PNG (cv2, deterministic); raises OSError if writing fails."""
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f'{path}: cannot write image')


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB images, peak 255, over all pixels and channels (inf if identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 RGB images [H, W, 3]: per channel, 11x11 Gaussian (sigma 1.5), valid region, mean.

    Same definition as BasicSR's ``calculate_ssim`` (Wang et al. 2004, C1=(0.01*255)^2, C2=(0.03*255)^2).
    """
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)

    def filt(z):  # separable 11x11 Gaussian, 'valid' region
        return cv2.sepFilter2D(z, -1, k, k)[5:-5, 5:-5]

    vals = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch].astype(np.float64), b[:, :, ch].astype(np.float64)
        mx, my = filt(x), filt(y)
        sxx = filt(x * x) - mx ** 2
        syy = filt(y * y) - my ** 2
        sxy = filt(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
        vals.append(m.mean())
    return float(np.mean(vals))
