"""Regression guards for the committed demo VDD on a fixed synthetic clip: both demo samplers (one
step, the conditional mean; and 5 DDIM steps, 999 -> 19 -> 14 -> 9 -> 4, refining it) deblur it,
i.e. their PSNR is above the blurry input's, and the multi-step row reproduces its measured gain.
Fail if the checkpoint, the sampler path (windows, tiles, schedulers, start_from/strength, residual
target) or the generator's test video breaks."""
import os.path as osp

import numpy as np
import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr.metrics import calculate_psnr
from basicsr_vdd.pipelines.inference import load_vdd
from vdd_demo import runner
from vdd_demo import synthetic as sg

METHODS = runner.methods()
# PSNR gain over the blurry input on the clip below, measured with the committed checkpoint:
#   python -m pytest tests/test_demo_vdd_deblurs.py  (the assertion message prints it)
SAMPLED_GAIN_DB = {'VDD-sampled': 0.347}  # guidance 5 (the demo's since 2026-12-03); 0.348 with guidance 1


@pytest.fixture(scope='module')
def china_clip():
    """The first 8 frames of test video 001_china (as make_synthetic_gopro.py writes them), centre
    128 x 128: blurry and sharp ``[8, 3, 128, 128]`` in [0, 1]."""
    opt = sg.Options()
    source = sg.assign_sources('test', 4, 16, 0)[1]
    spec = sg.plan_video('test', 1, source, 16, 0, opt)
    assert sg.video_name(spec) == '001_china'
    frames = []
    for result in sg.generate_video(spec, opt):
        frames.append((result.blur[64:192, 64:192], result.sharp[64:192, 64:192]))
        if len(frames) == 8:
            break
    to_tensor = lambda imgs: torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2)).float() / 255  # noqa: E731
    return to_tensor([b for b, _ in frames]), to_tensor([s for _, s in frames])


def _psnr(frames, gt):
    as_bgr = lambda x: (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()[:, :, ::-1]  # noqa: E731
    return float(np.mean([calculate_psnr(as_bgr(a), as_bgr(b), 0) for a, b in zip(frames, gt)]))


def _gain(name, clip):
    blurry, sharp = clip
    net, diffusion, sampling = load_vdd(osp.join(runner.ROOT, METHODS[name]['test']))
    out = diffusion.deblur_video(net, blurry[None], sampling, name='001_china')[0]
    return _psnr(out, sharp) - _psnr(blurry, sharp)


def test_committed_vdd_one_step_beats_the_blurry_input(china_clip):
    gain = _gain('VDD', china_clip)
    assert gain > 0.1, f'VDD ({METHODS["VDD"]["test"]}): {gain:+.3f} dB over the blurry input'


@pytest.mark.slow
@pytest.mark.parametrize('name', list(SAMPLED_GAIN_DB))
def test_committed_vdd_sampled_beats_the_blurry_input_as_measured(name, china_clip):
    gain = _gain(name, china_clip)
    assert gain > 0.1, f'{name} ({METHODS[name]["test"]}): {gain:+.3f} dB over the blurry input'
    assert abs(gain - SAMPLED_GAIN_DB[name]) < 0.2, f'{name} ({METHODS[name]["test"]}): {gain:+.3f} dB'
