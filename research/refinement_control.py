"""Is what a sampler adds to the one-step estimate image detail or noise? A control for ST-LPIPS.

Given the saved frames of two test runs of the same model (``val: save_img: true``) — the one-step
estimate ``m`` and a sampler's output ``r`` — and the ground truth ``g``, per frame:

- ``corr(r - m, g - m)``: how much of what the sampler added points towards the truth (0: none);
- scores (PSNR, SSIM, ST-LPIPS alex; RGB uint8, no crop) of ``m``, ``r``, and two controls with
  the same amount of change: ``m`` plus white Gaussian noise of the same standard deviation as
  ``r - m``, and ``m`` plus ``r - m`` shifted by (37, 53) pixels (the same texture in the wrong places).

If ``r`` beats both controls in ST-LPIPS, the metric rewards where the sampler put its change, not
the change itself.

    python research/refinement_control.py --mean results/ctl_mean --refined results/ctl_ref03 \
        --gt datasets/SynthGoPro/test --videos 001_china 003_coffee --frames 8
"""
import argparse
import glob
import os
import os.path as osp

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import basicsr_vdd  # noqa: E402,F401  (compat shim before the first basicsr import)
from basicsr.metrics import calculate_psnr, calculate_ssim  # noqa: E402

from vdd_demo.images import read_rgb  # noqa: E402
from basicsr_vdd.metrics.stlpips_metric import calculate_stlpips  # noqa: E402

SHIFT = (37, 53)


def read_bgr(path):
    """``path`` as BGR float64 (BasicSR's metrics take BGR), with read_rgb's error for a missing or corrupt file."""
    return read_rgb(path)[:, :, ::-1].astype(np.float64)


def saved_frame(result_dir, video, index):
    """The frame a BasicSR test run saved for ``video`` / ``index`` (``<index>_<name>.png``), BGR float64."""
    paths = glob.glob(osp.join(result_dir, 'visualization', '*', video, f'{index:06d}_*.png'))
    if len(paths) != 1:
        raise FileNotFoundError(f'{result_dir}: expected one saved frame {index:06d} of {video}, found {len(paths)}')
    return read_bgr(paths[0])


def scores(img, gt):
    img, gt = np.clip(np.round(img), 0, 255).astype(np.uint8), gt.astype(np.uint8)
    return calculate_psnr(img, gt, 0), calculate_ssim(img, gt, 0), calculate_stlpips(img, gt)


def compare(mean_dir, refined_dir, gt_root, videos, frames, seed=0):
    """Per-frame ``corr(r - m, g - m)`` and ``std(r - m)`` lists, and ``{row: [(psnr, ssim, stlpips), ...]}``."""
    rng = np.random.default_rng(seed)
    rows = {'one step (m)': [], 'sampler (r)': [], 'm + white noise of std(r - m)': [], 'm + shifted (r - m)': []}
    corrs, stds = [], []
    for video in videos:
        for i in range(frames):
            m, r = saved_frame(mean_dir, video, i), saved_frame(refined_dir, video, i)
            g = read_bgr(osp.join(gt_root, video, 'sharp', f'{i:06d}.png'))
            d = r - m
            corrs.append(np.corrcoef(d.ravel(), (g - m).ravel())[0, 1])
            stds.append(d.std())
            controls = (m, r, m + rng.normal(0, d.std(), m.shape), m + np.roll(d, SHIFT, axis=(0, 1)))
            for key, img in zip(rows, controls):
                rows[key].append(scores(img, g))
    return corrs, stds, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--mean', required=True, help='results folder of the one-step test run')
    parser.add_argument('--refined', required=True, help='results folder of the sampler test run')
    parser.add_argument('--gt', required=True, help='test split: <video>/sharp/<index>.png')
    parser.add_argument('--videos', nargs='+', required=True)
    parser.add_argument('--frames', type=int, default=8, help='the first frames of each video')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    corrs, stds, rows = compare(args.mean, args.refined, args.gt, args.videos, args.frames, args.seed)
    print(f'corr(r - m, g - m) over {len(corrs)} frames: mean {np.mean(corrs):.3f} (min {np.min(corrs):.3f}, '
          f'max {np.max(corrs):.3f}); std(r - m) {np.mean(stds):.2f} / 255')
    print('| frames | PSNR | SSIM | ST-LPIPS |\n|---|---|---|---|')
    for key, values in rows.items():
        psnr, ssim, stlpips = np.mean(values, axis=0)
        print(f'| {key} | {psnr:.2f} | {ssim:.4f} | {stlpips:.4f} |')


if __name__ == '__main__':
    main()
