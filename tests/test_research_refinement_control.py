"""research/refinement_control.py on hand-made frames: a refinement that restores the truth points at
it and beats both controls; a missing saved frame is an error naming the folder."""
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'research'))  # research/ is not a package
import refinement_control  # noqa: E402


def _save(root, video, index, img):
    folder = osp.join(root, 'visualization', 'SynthGoPro_test', video)
    os.makedirs(folder, exist_ok=True)
    cv2.imwrite(osp.join(folder, f'{index:06d}_{osp.basename(root)}.png'), img)


@pytest.fixture
def runs(tmp_path):
    """Ground truth: a sharp texture; one-step run: its blur; refined run: half-way back to the truth."""
    rng = np.random.default_rng(0)
    gt_root, mean_dir, refined_dir = (str(tmp_path / n) for n in ('gt', 'ctl_mean', 'ctl_ref'))
    for i in range(2):
        g = (rng.random((64, 64, 3)) * 255).round().astype(np.uint8)
        m = cv2.GaussianBlur(g, (0, 0), 2.0)
        r = ((m.astype(np.float64) + g) / 2).round().astype(np.uint8)
        os.makedirs(osp.join(gt_root, 'v', 'sharp'), exist_ok=True)
        cv2.imwrite(osp.join(gt_root, 'v', 'sharp', f'{i:06d}.png'), g)
        _save(mean_dir, 'v', i, m)
        _save(refined_dir, 'v', i, r)
    return mean_dir, refined_dir, gt_root


def test_a_refinement_towards_the_truth_points_at_it_and_beats_the_controls(runs):
    corrs, stds, rows = refinement_control.compare(*runs, videos=['v'], frames=2)
    assert len(corrs) == 2 and min(corrs) > 0.99  # r - m = (g - m) / 2 up to rounding
    mean = {k: np.mean(v, axis=0) for k, v in rows.items()}
    one_step, refined, noise, shifted = (mean[k] for k in rows)
    assert refined[0] > one_step[0] + 3  # half the error: +6 dB, less rounding
    assert refined[2] < noise[2] and refined[2] < shifted[2]
    assert noise[0] < refined[0] and shifted[0] < refined[0]


def test_a_missing_saved_frame_names_the_results_folder(runs):
    mean_dir, refined_dir, gt_root = runs
    os.remove(osp.join(refined_dir, 'visualization', 'SynthGoPro_test', 'v', '000001_ctl_ref.png'))
    with pytest.raises(FileNotFoundError, match='ctl_ref.*000001 of v'):
        refinement_control.compare(mean_dir, refined_dir, gt_root, videos=['v'], frames=2)
