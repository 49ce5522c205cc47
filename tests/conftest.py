"""Shared test helpers: tiny paired video folders, option files and BasicSR pipeline runs."""
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures', 'tft2v')

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd.file_io import read_options  # noqa: E402


def smooth_frame(rng, h, w):
    """A smooth random RGB uint8 image [H, W, 3] (blurred noise, so that restoration is learnable)."""
    img = rng.random((h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    return (img * 255).round().astype(np.uint8)


def write_paired_videos(root, videos, num_frames, size=(32, 32), lq='blur', gt='sharp', ext='.png', seed=0):
    """Write ``root/<video>/{lq,gt}/%06d<ext>``; lq is a box-blurred copy of gt. Returns root."""
    rng = np.random.default_rng(seed)
    h, w = size
    for v, name in enumerate(videos):
        n = num_frames[v] if isinstance(num_frames, (list, tuple)) else num_frames
        os.makedirs(osp.join(root, name, lq), exist_ok=True)
        os.makedirs(osp.join(root, name, gt), exist_ok=True)
        for i in range(n):
            sharp = smooth_frame(rng, h, w)
            blur = cv2.blur(sharp, (5, 5))
            cv2.imwrite(osp.join(root, name, gt, f'{i:06d}{ext}'), sharp)
            cv2.imwrite(osp.join(root, name, lq, f'{i:06d}{ext}'), blur)
    return root


def load_options(relpath):
    return read_options(osp.join(REPO, relpath))


def write_options(opt, path):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return str(path)


def pipeline_command(kind, opt_path, root, extra_args=()):
    """``(argv, env)`` running BasicSR's ``train_pipeline``/``test_pipeline`` with our plugin under ``root``."""
    code = (
        'import sys; sys.path.insert(0, {repo!r}); import basicsr_vdd; '
        'from basicsr.{kind} import {kind}_pipeline; '
        'sys.argv = ["{kind}.py", "-opt", {opt!r}] + {extra!r}; {kind}_pipeline({root!r})'
    ).format(repo=REPO, kind=kind, opt=str(opt_path), extra=list(extra_args), root=str(root))
    return [sys.executable, '-c', code], dict(os.environ, HF_HUB_OFFLINE='1', PYTHONHASHSEED='0')


def run_pipeline(kind, opt_path, root, extra_args=(), timeout=900):
    """Run BasicSR's ``train_pipeline``/``test_pipeline`` with our plugin in a fresh process under ``root``."""
    argv, env = pipeline_command(kind, opt_path, root, extra_args)
    proc = subprocess.run(argv, cwd=str(root), env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{kind} pipeline failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture
def tiny_gopro(tmp_path):
    """A tiny GoPro-layout dataset: train (2 videos of 7 and 9 frames) and test (2 videos of 5 and 6 frames)."""
    root = tmp_path / 'data'
    write_paired_videos(str(root / 'train'), ['vid_a', 'vid_b'], [7, 9], size=(32, 32), seed=1)
    write_paired_videos(str(root / 'test'), ['vid_c', 'vid_d'], [5, 6], size=(32, 48), seed=2)
    return root


def train_then_test(method, width, tiny_gopro, tmp_path, name, extra=None, iters=2, test=True, train_data=None):
    """Train ``options/demo/train_<method>_synth.yml`` at the widths ``width`` on :func:`tiny_gopro` through
    BasicSR's pipeline, check its checkpoint and validation, then (``test``) test it with
    ``test_<method>_synth.yml``: 11 frames scored and saved. Returns ``(experiment dir, training log)``."""
    root = tmp_path / 'root'
    root.mkdir(exist_ok=True)
    opt = load_options(f'options/demo/train_{method}_synth.yml')
    opt['name'] = name
    opt['network_g'].update(width)
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), gt_size=32, batch_size_per_gpu=2,
                                    num_worker_per_gpu=0, **(train_data or {}))
    opt['datasets']['val'].update(dataroot=str(tiny_gopro / 'test'))
    opt['train']['total_iter'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(print_freq=1, save_checkpoint_freq=iters)
    for key, value in (extra or {}).items():
        opt[key].update(value)
    run_pipeline('train', write_options(opt, tmp_path / f'{name}.yml'), root)
    exp = root / 'experiments' / name
    assert (exp / 'models' / f'net_g_{iters}.pth').is_file()
    logs = open(glob.glob(str(exp / f'train_{name}_*.log'))[0]).read()
    assert 'l_pix' in logs and 'Validation SynthGoPro_test (2 videos, 11 frames' in logs
    if not test:
        return exp, logs
    test_opt = load_options(f'options/demo/test_{method}_synth.yml')
    test_opt['name'] = f'{name}_test'
    test_opt['network_g'].update(width)
    test_opt['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    test_opt['path']['pretrain_network_g'] = str(exp / 'models' / 'net_g_latest.pth')
    test_opt['val']['metrics'].pop('lpips')
    run_pipeline('test', write_options(test_opt, tmp_path / f'{name}_test.yml'), root)
    results = root / 'results' / f'{name}_test'
    summary = json.load(open(glob.glob(str(results / 'metrics_*.json'))[0]))
    assert summary['frames'] == 11 and math.isfinite(summary['metrics']['psnr']['all_frame_mean'])
    assert len(glob.glob(str(results / 'visualization' / 'SynthGoPro_test' / '*' / '*.png'))) == 11
    return exp, logs


def read_video(path):
    """Frames ``[N, 3, H, W]`` float32 in [0, 1] of a folder, image or video file, and its fps (None for
    frames), decoded by deblur_video's own reader."""
    import torch
    from basicsr_vdd.pipelines.inference import VideoSource
    source = VideoSource(str(path))
    return torch.stack(list(source)), source.fps


def write_video(frames, path, fps=None, overwrite=False):
    """Write ``[N, 3, H, W]`` in [0, 1] with deblur_video's own writer (folder, image or video file by
    extension; it leaves its manifest beside what it wrote)."""
    from basicsr_vdd.pipelines.inference import VideoSink
    with VideoSink(str(path), fps, overwrite=overwrite) as sink:
        for frame in frames:
            sink.write(frame)
