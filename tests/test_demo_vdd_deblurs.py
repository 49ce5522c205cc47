"""Regression guard for the committed demo VDD: each demo sampler (1 step and multi-step) deblurs a
fixed synthetic clip, i.e. its PSNR is above the blurry input's. Fails if the checkpoint, the sampler
path (windows, tiles, schedulers, residual target) or the generator's test video breaks."""
import numpy as np
import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr.metrics import calculate_psnr
from basicsr_vdd import runner
from basicsr_vdd.data import synthetic_gopro as sg
from basicsr_vdd.inference import load_vdd

VDD_TESTS = {name: spec['test'] for name, spec in runner.methods().items()
             if runner.load_yaml(spec['test'])['model_type'] == 'VDDModel'}


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


@pytest.mark.parametrize('name', list(VDD_TESTS))
def test_committed_vdd_with_its_demo_sampler_beats_the_blurry_input(name, china_clip):
    blurry, sharp = china_clip
    net, diffusion, sampling = load_vdd(runner.ROOT + '/' + VDD_TESTS[name])
    out = diffusion.deblur_video(net, blurry[None], sampling, name='001_china')[0]
    gain = _psnr(out, sharp) - _psnr(blurry, sharp)
    assert gain > 0.1, f'{name} ({VDD_TESTS[name]}): {gain:+.2f} dB over the blurry input'
