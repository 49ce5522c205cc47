"""Paired blurry/sharp video datasets for BasicSR (GoPro and DVD layouts, any length and size).

Options common to both: ``dataroot`` (folder of videos), ``lq_folder`` / ``gt_folder`` (default
``blur`` / ``sharp``; DVD: ``input`` / ``GT``), ``videos`` (optional list of video names),
``exclude_videos`` (optional list left out, e.g. DVD's test videos for training).
Tensors are float32 RGB in [0, 1].
"""
import random

import numpy as np
import torch
from torch.utils import data

from basicsr.data.data_util import generate_frame_indices
from basicsr.data.transforms import augment
from basicsr.utils.registry import DATASET_REGISTRY

from .resumable_sampler import seeded_random
from .video_io import VideoDataError, read_frame, scan_paired_videos


def _scan(opt):
    return scan_paired_videos(opt['dataroot'], opt.get('lq_folder', 'blur'), opt.get('gt_folder', 'sharp'),
                              opt.get('videos'), opt.get('exclude_videos'))


def _stack(frames):
    """List of HWC arrays -> tensor [T, C, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2)))


@DATASET_REGISTRY.register()
class PairedVideoDataset(data.Dataset):
    """Training clips of ``num_frame`` consecutive frames with identical crops and augmentation.

    Options: ``num_frame``, ``gt_size`` (square random crop, ~ for the whole frame),
    ``interval_list`` (frame strides, default [1]), ``use_hflip``, ``use_rot`` (flips and rot90),
    ``use_reverse`` (temporal reversal with probability 0.5), ``gt_frames`` (``all``: gt
    ``[T, C, H, W]``; ``center``: only the centre frame ``[C, H, W]``, as BasicSR's REDSDataset
    gives EDVR), ``skip_short`` (drop videos shorter than a clip instead of raising).
    One sample per clip start, so an epoch sees every clip once.
    Returns ``{'lq': [T, C, H, W], 'gt': [T, C, H, W] | [C, H, W], 'key': '<video>/<start>'}``.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.num_frame = int(opt['num_frame'])
        self.gt_size = opt.get('gt_size')
        self.intervals = list(opt.get('interval_list', [1]))
        self.gt_frames = opt.get('gt_frames', 'all')
        if self.gt_frames not in ('all', 'center'):
            raise ValueError(f"gt_frames must be 'all' or 'center', got {self.gt_frames!r}")
        self.videos = _scan(opt)
        self.clips = []  # (video, start)
        span = (self.num_frame - 1) * min(self.intervals) + 1
        for name, video in self.videos.items():
            n = len(video['pairs'])
            if n < span:
                if opt.get('skip_short', False):
                    continue
                raise VideoDataError(f'{opt["dataroot"]}/{name}: {n} frames, shorter than a clip of '
                                     f'{self.num_frame} frames (set skip_short: true to skip it)')
            h, w = video['size']
            if self.gt_size is not None and (self.gt_size > h or self.gt_size > w):
                raise VideoDataError(f'{opt["dataroot"]}/{name}: frames are {w}x{h}, smaller than gt_size '
                                     f'{self.gt_size}')
            self.clips.extend((name, s) for s in range(n - span + 1))
        if not self.clips:
            raise VideoDataError(f'{opt["dataroot"]}: no video has {self.num_frame} frames')

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        # a ResumableSampler index carries the seed of this sample's crop, flips and reversal
        with seeded_random(getattr(index, 'seed', None)):
            return self._clip(int(index))

    def _clip(self, index):
        name, start = self.clips[index]
        pairs = self.videos[name]['pairs']
        interval = random.choice([i for i in self.intervals if start + (self.num_frame - 1) * i < len(pairs)])
        chosen = [pairs[start + k * interval] for k in range(self.num_frame)]
        lqs = [read_frame(lq) for lq, _ in chosen]
        gts = [read_frame(gt) for _, gt in chosen]
        if self.gt_size is not None:
            h, w = lqs[0].shape[:2]
            top, left = random.randint(0, h - self.gt_size), random.randint(0, w - self.gt_size)
            crop = (slice(top, top + self.gt_size), slice(left, left + self.gt_size))
            lqs, gts = [f[crop] for f in lqs], [f[crop] for f in gts]
        if self.opt.get('use_reverse', False) and random.random() < 0.5:
            lqs, gts = lqs[::-1], gts[::-1]
        frames = augment(lqs + gts, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        lq, gt = _stack(frames[:self.num_frame]), _stack(frames[self.num_frame:])
        if self.gt_frames == 'center':
            gt = gt[self.num_frame // 2]
        return {'lq': lq, 'gt': gt, 'key': f'{name}/{start}'}


@DATASET_REGISTRY.register()
class PairedVideoTestDataset(data.Dataset):
    """Whole videos for validation and test; per-frame bookkeeping for per-video and all-frame means.

    ``mode``:
      * ``video`` (default): one sample per video, ``lq``/``gt`` ``[N, C, H, W]``;
      * ``window``: consecutive windows of ``num_frame`` frames (the last one shorter);
      * ``frame``: one sample per frame with ``num_frame`` neighbours (``padding``, BasicSR's
        ``generate_frame_indices``, default ``reflection_circle``) for sliding-window models such
        as EDVR: ``lq`` ``[T, C, H, W]``, ``gt`` the centre frame ``[C, H, W]``.
    ``max_frames`` keeps the first frames of each video (quick validation).
    Each sample has ``folder``, ``idx`` (``'i/n'``, BasicSR's convention), ``frame_idx`` (the
    indices of its gt frames) and ``lq_path`` (their lq paths). ``data_info['folder']`` has one
    entry per frame.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.mode = opt.get('mode', 'video')
        if self.mode not in ('video', 'window', 'frame'):
            raise ValueError(f"mode must be 'video', 'window' or 'frame', got {self.mode!r}")
        self.num_frame = opt.get('num_frame')
        if self.mode != 'video' and not self.num_frame:
            raise ValueError(f'mode {self.mode} needs num_frame')
        self.padding = opt.get('padding', 'reflection_circle')
        self.videos = _scan(opt)
        max_frames = opt.get('max_frames')
        if max_frames:
            for video in self.videos.values():
                video['pairs'] = video['pairs'][:int(max_frames)]
        self.samples = []  # (video, list of gt frame indices)
        self.data_info = {'folder': [], 'frame_idx': []}
        for name, video in self.videos.items():
            n = len(video['pairs'])
            self.data_info['folder'].extend([name] * n)
            self.data_info['frame_idx'].extend(range(n))
            if self.mode == 'video':
                self.samples.append((name, list(range(n))))
            elif self.mode == 'window':
                self.samples.extend((name, list(range(s, min(s + self.num_frame, n))))
                                    for s in range(0, n, self.num_frame))
            else:
                self.samples.extend((name, [i]) for i in range(n))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        name, frame_idx = self.samples[index]
        pairs = self.videos[name]['pairs']
        n = len(pairs)
        sample = {'folder': name, 'idx': f'{frame_idx[0]}/{n}', 'frame_idx': frame_idx,
                  'lq_path': [pairs[i][0] for i in frame_idx]}
        if self.mode == 'frame':
            i = frame_idx[0]
            # BasicSR's padding can point past the end of videos shorter than a few windows: clamp
            neighbours = [min(max(k, 0), n - 1)
                          for k in generate_frame_indices(i, n, self.num_frame, padding=self.padding)]
            sample['lq'] = _stack([read_frame(pairs[k][0]) for k in neighbours])
            sample['gt'] = _stack([read_frame(pairs[i][1])])[0]
            sample['lq_path'] = pairs[i][0]
        else:
            sample['lq'] = _stack([read_frame(pairs[i][0]) for i in frame_idx])
            sample['gt'] = _stack([read_frame(pairs[i][1]) for i in frame_idx])
        return sample
