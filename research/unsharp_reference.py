"""A classical reference row: unsharp masking tuned on the training split, scored like every method.

``out = blur + amount * (blur - GaussianBlur(blur, sigma))`` on uint8 BGR frames (rounded and
clipped). ``sigma`` and ``amount`` are chosen on the first ``--tune-frames`` frames of every
training video by PSNR (mean over videos), then the test split is scored with the project's own
scorer (:func:`vdd_demo.report.input_summary`: ``tensor2img`` and BasicSR's metrics, as in
validation). It tells how much of a learned method's gain plain sharpening already gives.

    python research/unsharp_reference.py [--train datasets/SynthGoPro/train] [--test datasets/SynthGoPro/test]
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from vdd_demo.report import DEFAULT_METRICS, input_summary, markdown_table  # noqa: E402

SIGMAS = (0.8, 1.2, 1.6, 2.4, 3.2, 4.8)
AMOUNTS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)  # amount 0 (the input itself) is scored once, as the baseline
PSNR = {'psnr': DEFAULT_METRICS['psnr']}


def unsharp(sigma, amount):
    """The sharpening filter ``uint8 BGR [H, W, 3] -> uint8 BGR`` (amount 0: the frame itself)."""
    def apply(img):
        x = img.astype(np.float32)
        out = x + amount * (x - cv2.GaussianBlur(x, (0, 0), sigma))
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return apply


def _psnr(dataroot, frames, transform=None):
    summary = input_summary(dataroot, metrics=PSNR, max_frames=frames, transform=transform)
    return summary['metrics']['psnr']['per_video_mean']


def tune(dataroot, frames, sigmas=SIGMAS, amounts=AMOUNTS):
    """``(sigma, amount, psnr, input_psnr)``: the best PSNR (mean over videos) on the first ``frames`` of
    each video, and the blurry input's, which is the result (amount 0) when no sharpening beats it."""
    input_psnr = _psnr(dataroot, frames)
    best = (sigmas[0], 0.0, input_psnr)
    for sigma in sigmas:
        for amount in amounts:
            psnr = _psnr(dataroot, frames, unsharp(sigma, amount))
            if psnr > best[2]:
                best = (sigma, amount, psnr)
    return best + (input_psnr,)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--train', default=osp.join(ROOT, 'datasets', 'SynthGoPro', 'train'))
    parser.add_argument('--test', default=osp.join(ROOT, 'datasets', 'SynthGoPro', 'test'))
    parser.add_argument('--tune-frames', type=int, default=3, help='first frames of each training video')
    args = parser.parse_args()
    sigma, amount, train_psnr, train_input = tune(args.train, args.tune_frames)
    print(f'tuned on {args.train} (first {args.tune_frames} frames per video): sigma {sigma}, amount {amount}, '
          f'PSNR {train_input:.2f} -> {train_psnr:.2f}')
    blurry = input_summary(args.test)
    sharpened = input_summary(args.test, transform=unsharp(sigma, amount))
    print(markdown_table([('blurry input', blurry), (f'unsharp mask (sigma {sigma}, amount {amount})', sharpened)]))
    per_video = sharpened['metrics']['psnr']['per_video']
    print('PSNR per video: ' + ', '.join(f'{v} {blurry["metrics"]["psnr"]["per_video"][v]:.2f} -> {p:.2f}'
                                         for v, p in per_video.items()))


if __name__ == '__main__':
    main()
