"""Generating and writing: every frame of a video (blurry and sharp uint8), and a whole dataset in the
GoPro layout with ``meta.json`` (the full recipe and the input PSNR/SSIM), written atomically."""
import json
import os
import os.path as osp
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from vdd_demo.images import psnr_uint8, ssim_uint8, write_png
from vdd_demo.synthetic.colour import GAMMA, linear_to_srgb, quantize
from vdd_demo.synthetic.fitting import build_scene
from vdd_demo.synthetic.planning import SPLIT_CODES, Options, assign_sources, plan_video, video_rng
from vdd_demo.synthetic.rendering import add_noise, blur_from_subframes, render_subframes
from vdd_demo.synthetic.scene import subframe_times
from vdd_demo.synthetic.sources import SPLIT_SOURCES, source_versions

GENERATOR_VERSION = 2  # 2: more training sources (test split unchanged)
# The generator's name in meta.json: its module before it moved here, kept so that data stays byte-identical.
GENERATOR_NAME = 'basicsr_vdd.data.synthetic_gopro'
RECIPE_NOTES = {
    'blur': 'mean in linear light (srgb ** gamma) of num_subframes sharp sub-frames, encoded ** (1/gamma), '
            '+ Gaussian noise of noise_sigma (sRGB units, 1 = white), rounded to uint8',
    'sharp': 'sub-frame (num_subframes - 1) / 2, rendered at mid-exposure t = k, encoded and rounded (no noise)',
    'times': 'frame k sub-frame j at t = k + exposure * (j - (S-1)/2) / (S-1), t in output frames',
    'camera': 'tx, ty (px of a depth-1 layer), rot (rad), zoom (log) = motion_scale * sum amp sin(2 pi freq t + phase)',
    'layers': 'background (depth 1), object (Lissajous path in window px; omega and spin multiplied by '
              'motion_scale), near (parallax occluder at depth > 1); composited back to front in linear light',
    'video_sources': 'output frame k shows still source frame start + k (one shot); the synthetic camera moves '
                     'over it during the exposure',
    'metrics': 'blur vs sharp, RGB uint8, no border crop; SSIM as BasicSR calculate_ssim',
}


@dataclass
class VideoResult:
    """Output of :func:`generate_video` for one frame: uint8 RGB [H, W, 3] images and the physics.

    ``blur_linear``: mean of the sub-frames before noise/quantisation (float32 linear [H, W, 3]);
    ``subframes``: [S, H, W, 3] float32 linear (only when requested); ``sharp_index`` = (S-1)/2.
    """
    frame: int
    blur: np.ndarray
    sharp: np.ndarray
    blur_linear: np.ndarray
    sharp_index: int
    times: np.ndarray
    subframes: Optional[np.ndarray] = None


def generate_video(spec: dict, opt: Options, keep_subframes: bool = False):
    """Yield a :class:`VideoResult` per frame of the video described by ``spec`` (fitted in place).

    Blurry: ``quantize(add_noise(linear_to_srgb(blur_from_subframes(sub))))``; sharp:
    ``quantize(linear_to_srgb(sub[S // 2]))`` - the sub-frame rendered at mid-exposure ``t = k``.
    """
    scene = build_scene(spec, opt.size, opt.max_step, opt.subframes)
    noise_rng = video_rng(spec['seed'], SPLIT_CODES[spec['split']], spec['index'], 2)
    s = spec['num_subframes']
    for k in range(spec['num_frames']):
        times = subframe_times(k, s, spec['exposure'])
        sub = render_subframes(scene, k, times)
        blur_lin = blur_from_subframes(sub)
        blur = quantize(add_noise(linear_to_srgb(blur_lin), spec['noise_sigma'], noise_rng))
        sharp = quantize(linear_to_srgb(sub[s // 2]))
        yield VideoResult(k, blur, sharp, blur_lin, s // 2, times, sub if keep_subframes else None)


def video_name(spec: dict) -> str:
    """Folder name of a video, e.g. ``003_astronaut`` or ``000_city_f0040``."""
    bg = spec['background']
    tail = f'_f{bg["start"]:04d}' if bg['type'] == 'video' else ''
    return f'{spec["index"]:03d}_{bg["name"]}{tail}'


@contextmanager
def _single_threaded_cv2():
    prev = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(prev)


def _summary(per_video: List[dict]) -> dict:
    """Split metrics: mean over all frames and mean over videos (of per-video means)."""
    psnr = [p for v in per_video for p in v['psnr']]
    ssim = [s for v in per_video for s in v['ssim']]
    return dict(num_videos=len(per_video), num_frames=len(psnr),
                psnr_all_frames=float(np.mean(psnr)), ssim_all_frames=float(np.mean(ssim)),
                psnr_video_mean=float(np.mean([np.mean(v['psnr']) for v in per_video])),
                ssim_video_mean=float(np.mean([np.mean(v['ssim']) for v in per_video])),
                psnr_min_video=float(min(np.mean(v['psnr']) for v in per_video)),
                psnr_max_video=float(max(np.mean(v['psnr']) for v in per_video)))


def _generate_split(root: str, split: str, num_videos: int, num_frames: int, seed: int, opt: Options,
                    log) -> Tuple[List[dict], dict]:
    specs, metrics = [], []
    for i, source in enumerate(assign_sources(split, num_videos, num_frames, seed)):
        spec = plan_video(split, i, source, num_frames, seed, opt)
        name = video_name(spec)
        for sub in ('blur', 'sharp'):
            os.makedirs(osp.join(root, split, name, sub))
        psnr, ssim = [], []
        for res in generate_video(spec, opt):
            write_png(osp.join(root, split, name, 'blur', f'{res.frame:06d}.png'), res.blur)
            write_png(osp.join(root, split, name, 'sharp', f'{res.frame:06d}.png'), res.sharp)
            psnr.append(psnr_uint8(res.blur, res.sharp))
            ssim.append(ssim_uint8(res.blur, res.sharp))
        spec['name'] = name
        spec['input_psnr'], spec['input_ssim'] = float(np.mean(psnr)), float(np.mean(ssim))
        specs.append(spec)
        metrics.append(dict(psnr=psnr, ssim=ssim))
        log(f'  {split}/{name:<24s} {spec["kind"]:<16s} S={spec["num_subframes"]:2d} '
            f'exp={spec["exposure"]:.2f} blur<={spec["max_path_per_exposure_px"]:5.1f}px '
            f'PSNR {spec["input_psnr"]:.2f} SSIM {spec["input_ssim"]:.4f}')
    return specs, _summary(metrics)


def _is_nonempty_dir(path: str) -> bool:
    return osp.isdir(path) and len(os.listdir(path)) > 0


SPLITS = ('train', 'test')


def generate_dataset(out: str, seed: int = 0, num_train: int = 60, num_test: int = 4, train_frames: int = 40,
                     test_frames: int = 16, size: int = 256, force: bool = False, log=print,
                     options: Optional[Options] = None, splits: Sequence[str] = SPLITS) -> dict:
    """Write the dataset to ``out`` (GoPro layout + ``meta.json``) and return the meta dict.

    Layout: ``out/{train,test}/<video>/{blur,sharp}/%06d.png`` (uint8 RGB PNG); ``splits`` chooses which
    are written (each split depends only on the seed and its own arguments). Writes into a temporary
    sibling folder and renames it to ``out`` at the end; on any error the temporary folder is removed
    and ``out`` is untouched. Refuses an existing non-empty ``out`` unless ``force``.
    """
    out = osp.abspath(out)
    if osp.exists(out) and not osp.isdir(out):
        raise FileExistsError(f'{out} exists and is not a folder')
    if not splits or set(splits) - set(SPLITS):
        raise ValueError(f'splits must be a non-empty subset of {SPLITS}, got {list(splits)}')
    if _is_nonempty_dir(out) and not force:
        raise FileExistsError(f'{out} exists and is not empty; pass force=True (--force) to replace it')
    opt = options or Options()
    opt.size = (size, size) if isinstance(size, int) else tuple(size)
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = osp.join(parent, f'.{osp.basename(out)}.tmp-{os.getpid()}')
    if osp.exists(tmp):
        shutil.rmtree(tmp)
    start = time.time()
    try:
        os.makedirs(tmp)
        meta = dict(generator=GENERATOR_NAME, generator_version=GENERATOR_VERSION, seed=seed,
                    size=list(opt.size), gamma=GAMMA, options={k: v for k, v in opt.__dict__.items()},
                    recipe=RECIPE_NOTES,
                    source_versions=source_versions(), split_sources=SPLIT_SOURCES, splits={})
        with _single_threaded_cv2():
            for split, num, frames in (('train', num_train, train_frames), ('test', num_test, test_frames)):
                if split not in splits:
                    continue
                log(f'{split}: {num} videos x {frames} frames at {opt.size[0]}x{opt.size[1]}')
                specs, summary = _generate_split(tmp, split, num, frames, seed, opt, log)
                meta['splits'][split] = dict(summary=summary, videos=specs)
                log(f'{split}: input PSNR {summary["psnr_all_frames"]:.2f} dB / SSIM {summary["ssim_all_frames"]:.4f}'
                    f' (mean over all frames), {summary["psnr_video_mean"]:.2f} dB / {summary["ssim_video_mean"]:.4f}'
                    f' (mean over videos), per-video PSNR {summary["psnr_min_video"]:.2f}..'
                    f'{summary["psnr_max_video"]:.2f}')
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f'wrote {out} in {time.time() - start:.1f} s')
    return meta


def _replace(tmp: str, out: str) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is moved aside first and deleted only after success.
    (``basicsr_vdd.pipelines.inference._replace`` does the same for outputs; generating data imports neither
    torch nor BasicSR, so this package keeps its own.)"""
    if not osp.exists(out):
        os.rename(tmp, out)
        return
    old = f'{tmp}.old'
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old)
