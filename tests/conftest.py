"""Shared test helpers: tiny paired video folders, option files, BasicSR pipeline runs, tiny VDD networks,
deblur_video inputs, CLI error checks and torchrun launches."""
import copy
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
import torch
import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(REPO, 'tests', 'fixtures', 'tft2v')

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd.archs.vdd_arch import VDDNet  # noqa: E402
from basicsr_vdd.file_io import read_options  # noqa: E402
from basicsr_vdd.models.stage_checkpoint import part_state_dict  # noqa: E402


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


# VDD tiny networks

TINY_NET = dict(
    unet=dict(dim=32, dim_mult=[1, 2], head_dim=8, num_res_blocks=1, attn_scales=[0.5], context_dim=32,
              image_dim=32, dropout=0.1),
    clip_image=dict(embed_dim=32, vision_cfg=dict(image_size=32, layers=1, width=32, head_width=16, patch_size=16)),
    blur_encoder=dict(hidden=[16]))
TINY_KL_VAE = {'type': 'kl', 'ch': 32, 'ch_mult': [1, 2], 'num_res_blocks': 1}


def tiny_stage_options(stage, pretrain=None):
    """The demo stage option dict with tiny widths: only YAML values differ from the demo."""
    opt = load_options(f'options/demo/vdd_stage{stage}_synth.yml')
    opt['network_g']['unet'].update(TINY_NET['unet'])
    opt['network_g']['clip_image'].update(TINY_NET['clip_image'])
    opt['network_g']['blur_encoder'] = TINY_NET['blur_encoder']
    opt['network_g']['vae']['factor'] = 2
    opt['path']['pretrain_network_g'] = pretrain
    return opt


def tiny_options(stage, root, pretrain=None, **train):
    """The option dict of :func:`tiny_stage_options` ready for an in-process ``VDDModel`` under ``root``."""
    opt = tiny_stage_options(stage, pretrain)
    opt['train'].update(train)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, root_path=str(root), auto_resume=False)
    opt['path'].update(experiments_root=str(root), models=str(root), training_states=str(root), log=str(root),
                       visualization=str(root / 'vis'))
    opt['datasets']['train']['phase'] = 'train'
    return opt


def batch(seed=0, b=2, f=4, size=16):
    """A seeded ``{'lq', 'gt'}`` batch of ``[b, f, 3, size, size]`` in [0, 1]; lq is gt plus noise."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(b, f, 3, size, size, generator=g)
    return {'lq': (gt + 0.1 * torch.randn(gt.shape, generator=g)).clamp(0, 1), 'gt': gt}


def params_by_part(model):
    """``{part: copy of its state_dict}`` for every child module of ``model.bare``."""
    return {name: copy.deepcopy(module.state_dict()) for name, module in model.bare.named_children()}


def changed(before, after):
    """The set of parts whose parameters differ between two :func:`params_by_part` snapshots."""
    return {part for part in before if any(not torch.equal(before[part][k], after[part][k]) for k in before[part])}


def train_steps(model, n, seed=0):
    """Train ``model`` ``n`` steps on :func:`batch` with seeds ``seed``, ``seed + 1``, ...; returns None."""
    for i in range(n):
        model.feed_data(batch(seed + i))
        model.optimize_parameters(i + 1)


# deblur_video

def tiny_vdd_test_options(tmp_path):
    """The path of the demo VDD test option file with a tiny random stage-2 checkpoint, both written to ``tmp_path``."""
    opt = load_options('options/demo/test_vdd_synth.yml')
    opt['network_g']['unet'].update(dim=32, dim_mult=[1, 2], head_dim=8, num_res_blocks=1, attn_scales=[0.5],
                                    context_dim=32, image_dim=32)
    opt['network_g']['clip_image'].update(embed_dim=32, vision_cfg=dict(image_size=32, layers=1, width=32,
                                                                        head_width=16, patch_size=16))
    opt['network_g']['blur_encoder'] = {'hidden': [8]}
    opt['network_g']['vae']['factor'] = 2
    net_opt = dict(opt['network_g'])
    net_opt.pop('type')
    torch.manual_seed(0)
    net = VDDNet(**net_opt)
    with torch.no_grad():
        net.blur_encoder.proj[-1].weight.normal_(0, 0.05)
    parts = ['blur_encoder', 'unet', 'image_proj']
    ckpt = tmp_path / 'vdd.pth'
    torch.save({'params': part_state_dict(net, parts), 'parts': parts,
                'meta': {'stage': 2, 'target': 'residual', 'residual_scale': 0.2}}, ckpt)
    opt['path']['pretrain_network_g'] = str(ckpt)
    opt['sampling'].update(steps=2, window=4, overlap=1)
    return write_options(opt, tmp_path / 'test.yml')


def user_frames(folder, n=3, size=(16, 20), ext='.png', seed=0):
    """The path of ``folder``, now holding ``n`` frames ``000000<ext>``... of ``size`` (H, W) and no manifest."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(osp.join(folder, f'{i:06d}{ext}'), (rng.random(size + (3,)) * 255).astype(np.uint8))
    return str(folder)


# CLI errors

def edvr_test_options(tiny_gopro, checkpoint):
    """The demo EDVR test option dict with tiny widths on :func:`tiny_gopro`'s test split and ``checkpoint``."""
    opt = load_options('options/demo/test_edvr_synth.yml')
    opt['name'] = 'edvr_cli'
    opt['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    opt['network_g'].update(num_feat=16, deformable_groups=4, num_extract_block=1, num_reconstruct_block=1)
    opt['path']['pretrain_network_g'] = str(checkpoint)
    opt['val']['metrics'].pop('lpips', None)
    return opt


def one_error_line(proc, *fragments):
    """Assert ``proc`` exited 2, its last stderr line a train.py/test.py error with each fragment; returns None."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert lines[-1].startswith(('test.py: error: ', 'train.py: error: ')), proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


# distributed

def torchrun(opt_path, root, *extra, nproc=2):
    """The finished process of ``train.py -opt opt_path --launcher pytorch`` under torchrun, ``nproc`` ranks."""
    launch = root / 'launch_train.py'
    launch.write_text(f'import sys\nsys.path.insert(0, {REPO!r})\nfrom basicsr_vdd.cli import main\n'
                      f'sys.exit(main("train", {str(root)!r}))\n')
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}',
                           str(launch), '-opt', str(opt_path), '--launcher', 'pytorch', *extra],
                          cwd=str(root), capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc
