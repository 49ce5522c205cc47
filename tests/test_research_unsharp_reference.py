"""research/unsharp_reference.py: the classical reference row is scored by the demo's own scorer,
amount 0 is the blurry input itself, and tuning on box-blurred frames finds a sharpening that helps."""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, write_paired_videos

sys.path.insert(0, osp.join(REPO, 'research'))  # research/ is not a package
import unsharp_reference  # noqa: E402
from vdd_demo.report import input_summary  # noqa: E402


def test_the_filter_by_hand():
    img = np.zeros((9, 9, 3), np.uint8)
    img[4, 4] = 100
    out = unsharp_reference.unsharp(1.0, 0.5)(img)
    blurred = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    assert out[4, 4, 0] == np.clip(np.round(100 + 0.5 * (100 - blurred[4, 4, 0])), 0, 255)
    assert out.dtype == np.uint8 and out.min() == 0  # the negative ring is clipped, not wrapped
    assert np.array_equal(unsharp_reference.unsharp(2.0, 0.0)(img), img)


def test_amount_zero_scores_exactly_the_blurry_input(tmp_path):
    root = write_paired_videos(str(tmp_path / 'data'), ['a', 'b'], 3, size=(32, 32))
    metrics = {'psnr': unsharp_reference.PSNR['psnr'], 'ssim': {'type': 'calculate_ssim', 'crop_border': 0}}
    plain = input_summary(root, metrics=metrics)
    same = input_summary(root, metrics=metrics, transform=unsharp_reference.unsharp(1.6, 0.0))
    assert same['metrics'] == plain['metrics']


def test_tuning_picks_a_sharpening_that_beats_the_input(tmp_path):
    root = write_paired_videos(str(tmp_path / 'train'), ['a', 'b'], 2, size=(48, 48))
    sigma, amount, psnr, input_psnr = unsharp_reference.tune(root, frames=2, sigmas=(1.2, 2.4), amounts=(0.5, 1.0))
    blurry = input_summary(root, metrics=unsharp_reference.PSNR)['metrics']['psnr']['per_video_mean']
    assert input_psnr == pytest.approx(blurry, abs=1e-12)
    assert amount > 0 and psnr > blurry + 0.5
    again = input_summary(root, metrics=unsharp_reference.PSNR, transform=unsharp_reference.unsharp(sigma, amount))
    assert again['metrics']['psnr']['per_video_mean'] == pytest.approx(psnr, abs=1e-12)


def test_when_no_sharpening_helps_the_input_itself_is_the_result(tmp_path):
    root = write_paired_videos(str(tmp_path / 'train'), ['a'], 2, size=(32, 32))
    for i in range(2):  # already sharp: blur = sharp, so any amount > 0 only loses PSNR
        sharp = cv2.imread(osp.join(root, 'a', 'sharp', f'{i:06d}.png'))
        cv2.imwrite(osp.join(root, 'a', 'blur', f'{i:06d}.png'), sharp)
    sigma, amount, psnr, input_psnr = unsharp_reference.tune(root, frames=2, sigmas=(1.2,), amounts=(0.5,))
    assert amount == 0.0 and psnr == input_psnr
