"""Deblur your own videos with a trained VDD: load from a test option file, read/write frames or video files.

Used by ``scripts/deblur_video.py``. A video is a folder of frames (png/jpg, natural order) or a
file PyAV can decode (mp4, mkv, avi, mpg, ...). Any length (temporal windows with blended
overlaps) and any size (padded to the network's multiple; ``vae: tiling: true`` bounds the VAE's
memory on large frames).
"""
import os
import os.path as osp
import shutil

import numpy as np
import torch
import yaml

from basicsr_vdd.data.video_io import VideoDataError, list_frames, read_frame
from basicsr_vdd.models.stage_checkpoint import checkpoint_state, load_part_state_dict, read_checkpoint
from basicsr_vdd.vdd_diffusion import VDDDiffusion

VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.avi', '.mov', '.mpg', '.mpeg', '.webm')


def load_vdd(option_file, checkpoint=None, device='cpu', param_key=None):
    """``(net, diffusion, sampling)`` from a VDD test option file (network_g, diffusion, sampling, path)."""
    import basicsr_vdd  # noqa: F401  (registration)
    from basicsr.archs import build_network

    with open(option_file) as f:
        opt = yaml.safe_load(f)
    net = build_network(opt['network_g'])
    path = checkpoint or opt['path'].get('pretrain_network_g')
    diffusion = VDDDiffusion(**opt.get('diffusion', {}))
    if path:
        ckpt = read_checkpoint(path)
        state, _ = checkpoint_state(ckpt, param_key or opt['path'].get('param_key_g', 'params'))
        load_part_state_dict(net, state, ckpt['parts'], path)
        diffusion.load_meta(ckpt.get('meta', {}), source=path)
    return net.to(device).eval(), diffusion, dict(opt.get('sampling', {}))


def read_video(path):
    """Frames ``[N, 3, H, W]`` float32 RGB in [0, 1], plus the frame rate (None for folders)."""
    if osp.isdir(path):
        return torch.from_numpy(np.stack([read_frame(p) for p in list_frames(path)]).transpose(0, 3, 1, 2)), None
    if not osp.isfile(path):
        raise VideoDataError(f'{path}: no such video file or frame folder')
    import av
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            frames = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as err:
        raise VideoDataError(f'{path}: cannot decode video ({err})') from err
    if not frames:
        raise VideoDataError(f'{path}: no video frames')
    return torch.from_numpy(np.stack(frames).transpose(0, 3, 1, 2)).float() / 255, fps


def write_video(frames, path, fps=None):
    """Write ``[N, 3, H, W]`` in [0, 1] as PNG frames (a folder) or a video file (by extension).

    Written under a temporary name next to ``path`` and renamed when complete: an error or a signal
    never leaves a partial video or folder under ``path`` (a kill -9 may leave ``*.partial*``)."""
    images = (frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    folder = not path.lower().endswith(VIDEO_EXTENSIONS)
    tmp = f'{path}.partial' if folder else f'{path}.partial{osp.splitext(path)[1]}'
    try:
        _write_frames(images, tmp) if folder else _write_file(images, tmp, fps)
        _replace(tmp, path)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
        elif osp.exists(tmp):
            os.remove(tmp)


def _write_frames(images, folder):
    import cv2
    os.makedirs(folder)
    for i, img in enumerate(images):
        if not cv2.imwrite(osp.join(folder, f'{i:06d}.png'), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise OSError(f'{folder}: could not write frame {i}')


def _write_file(images, path, fps):
    import av
    from fractions import Fraction
    with av.open(path, 'w') as container:
        stream = container.add_stream('mpeg4', rate=Fraction(fps or 24).limit_denominator(1001))
        stream.width, stream.height = images.shape[2] - images.shape[2] % 2, images.shape[1] - images.shape[1] % 2
        stream.pix_fmt, stream.bit_rate = 'yuv420p', 20_000_000
        for img in images:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:stream.height, :stream.width]), format='rgb24')
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _replace(tmp, path):
    """Move the finished ``tmp`` to ``path``; an existing ``path`` is replaced only once ``tmp`` is complete."""
    if osp.isdir(path) and os.listdir(path):
        old = f'{path}.old-{os.getpid()}'
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old)
    else:
        if osp.isdir(path):
            os.rmdir(path)
        os.replace(tmp, path)
