"""scripts/compare.py on two small fake result folders: the numbers it reports and the figures it writes."""
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, write_paired_videos

sys.path.insert(0, osp.join(REPO, 'scripts'))
import compare  # noqa: E402


def _fake_result(root, name, psnr, params, data, shift):
    """A BasicSR-style result folder: a metrics summary and saved outputs (gt shifted by ``shift`` levels)."""
    os.makedirs(root)
    summary = {'metrics': {'psnr': {'per_video_mean': psnr, 'all_frame_mean': psnr + 0.5, 'per_video': {}},
                           'ssim': {'per_video_mean': 0.8, 'all_frame_mean': 0.81, 'per_video': {}},
                           'stlpips': {'per_video_mean': psnr / 100, 'all_frame_mean': psnr / 100 + 0.01,
                                       'per_video': {}},
                           'lpips': {'unavailable': 'LPIPS unavailable: put alexnet-owt-7be5be79.pth at X'}},
               'seconds_per_frame': 0.25, 'parameters': params, 'frames': 5, 'videos': 1}
    with open(osp.join(root, f'metrics_test_{name}.json'), 'w') as f:
        json.dump(summary, f)
    for video in os.listdir(data):
        out_dir = osp.join(root, 'visualization', 'test', video)
        os.makedirs(out_dir)
        for frame in os.listdir(osp.join(data, video, 'sharp')):
            gt = cv2.imread(osp.join(data, video, 'sharp', frame)).astype(np.int16)
            cv2.imwrite(osp.join(out_dir, frame.replace('.png', f'_{name}.png')), np.clip(gt + shift, 0, 255).astype(np.uint8))


def test_report_numbers_and_figures(tmp_path, capsys, monkeypatch):
    data = write_paired_videos(str(tmp_path / 'test'), ['vid'], 5, size=(48, 64))
    _fake_result(str(tmp_path / 'a'), 'a', 25.0, 1_500_000, data, shift=20)
    _fake_result(str(tmp_path / 'b'), 'b', 30.0, 3_000_000, data, shift=5)
    monkeypatch.setattr(compare, 'ROOT', str(tmp_path))
    assert compare.main(['--name', 'fake', '--dataroot', data, '--result', f'A={tmp_path / "a"}',
                         '--result', f'B={tmp_path / "b"}', '--crop', '32']) == 0
    out_dir = tmp_path / 'results' / 'compare' / 'fake'
    report = (out_dir / 'report.md').read_text()
    assert 'ST-LPIPS (videos) | ST-LPIPS (frames) | LPIPS (videos)' in report
    assert '| A | 25.00 | 25.50 | 0.8000 | 0.8100 | 0.2500 | 0.2600 | n/a | n/a | 1.50 M | 0.250 |' in report
    assert '| B | 30.00 | 30.50 |' in report and '| 3.00 M |' in report
    assert 'n/a: LPIPS unavailable: put alexnet-owt-7be5be79.pth at X' in report
    assert '| VDD | GoPro | 32.22 | 0.95 | 0.07 | VDD paper, Table 1 |' in report
    summary = json.loads((out_dir / 'summary.json').read_text())
    # the blurry input is scored here, exactly: write_paired_videos blurs with a 5x5 box filter
    assert 10 < summary['blurry input']['metrics']['psnr']['per_video_mean'] < 40
    crops = cv2.imread(str(out_dir / 'vid_000002_crops.png'))
    errors = cv2.imread(str(out_dir / 'vid_000002_errors.png'))
    assert crops.shape == (32, 4 * 32 + 3 * 4, 3)  # input, A, B, ground truth
    assert errors.shape == (32, 3 * 32 + 2 * 4, 3)  # input, A, B on one scale
    # A is off by 20 grey levels, B by 5: on the shared colour scale A's panel is brighter
    panel_a, panel_b = errors[20:, 36:68].mean(), errors[20:, 72:104].mean()
    assert panel_a > panel_b
    assert '![crops](vid_000002_crops.png)' in report


def test_unknown_demo_method_is_refused():
    with pytest.raises(ValueError, match='unknown methods'):
        compare.main(['--methods', 'NoSuchNet'])


def test_a_method_tested_on_the_first_frames_gets_its_own_input_row(tmp_path):
    """make demo / compare.py: a slow sampler tested with max_frames sits next to the blurry input scored
    on exactly those frames, and its label says so; figures default to a frame every method has."""
    from vdd_demo.report import method_rows
    data = write_paired_videos(str(tmp_path / 'test'), ['v1', 'v2'], 6, size=(32, 32))
    full, part = {'metrics': {}, 'frames': 12}, {'metrics': {}, 'frames': 4}
    rows = method_rows(data, [('A', full, None), ('B', part, 2), ('C', part, 2)])
    assert [label for label, _ in rows] == ['blurry input', 'A', 'blurry input, first 2 frames', 'B, first 2 frames',
                                            'blurry input, first 2 frames', 'C, first 2 frames']
    assert rows[0][1]['frames'] == 12 and rows[2][1]['frames'] == 4 and rows[3][1] is part
    assert rows[2][1]['metrics']['psnr'] != rows[0][1]['metrics']['psnr']
    methods = [('A', 'dir', None, None), ('B', 'dir', None, 4), ('C', 'dir', None, 6)]
    assert compare.default_frames(data, methods) == [('v1', 2), ('v2', 2)]
    assert compare.default_frames(data, methods[:1]) == [('v1', None), ('v2', None)]
