"""Paired video folders on disk: listing, pairing, checking and reading frames.

Layouts (folder names are options): GoPro ``<root>/<video>/{blur,sharp}/*.png``, DVD
``<root>/<video>/{input,GT}/*.jpg``. Checks that are cheap run when a dataset is built (names,
counts, image headers and sizes); a file that only fails when fully decoded raises on reading.
Every error is a :class:`VideoDataError` naming the file or folder.
"""
import os
import os.path as osp
import re

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')


class VideoDataError(ValueError):
    """Bad input data; the message names the offending file or folder."""


def natural_key(name):
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r'(\d+)', name)]


def list_frames(folder):
    """Image files of ``folder`` in natural order (``9.png`` before ``10.png``); two files of one stem are refused."""
    if not osp.isdir(folder):
        raise VideoDataError(f'{folder}: folder not found')
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)), key=natural_key)
    if not names:
        raise VideoDataError(f'{folder}: no frames ({"/".join(IMAGE_EXTENSIONS)})')
    stems = {}
    for name in names:  # frames are paired and written back by stem: one file per stem
        other = stems.setdefault(osp.splitext(name)[0], name)
        if other != name:
            raise VideoDataError(f'{folder}: frames {other} and {name} have the same name; keep one of them')
    return [osp.join(folder, n) for n in names]


def image_size(path):
    """(width, height) from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise VideoDataError(f'{path}: not a readable image ({err})') from err


def pair_frames(lq_dir, gt_dir):
    """``[(lq_path, gt_path), ...]`` paired by file stem; both folders must hold the same stems."""
    lq, gt = list_frames(lq_dir), list_frames(gt_dir)
    lq_stems = {osp.splitext(osp.basename(p))[0]: p for p in lq}
    gt_stems = {osp.splitext(osp.basename(p))[0]: p for p in gt}
    if len(lq) != len(gt) or lq_stems.keys() != gt_stems.keys():
        only_lq = sorted(set(lq_stems) - set(gt_stems), key=natural_key)[:5]
        only_gt = sorted(set(gt_stems) - set(lq_stems), key=natural_key)[:5]
        raise VideoDataError(f'{lq_dir} ({len(lq)} frames) and {gt_dir} ({len(gt)} frames) do not pair: '
                             f'only in lq {only_lq}, only in gt {only_gt}')
    return [(p, gt_stems[osp.splitext(osp.basename(p))[0]]) for p in lq]


def check_pairs(pairs, video):
    """Every lq/gt pair has equal sizes and all frames of the video share one size; returns (H, W)."""
    size = None
    for lq_path, gt_path in pairs:
        lq_size, gt_size = image_size(lq_path), image_size(gt_path)
        if lq_size != gt_size:
            raise VideoDataError(f'{lq_path} is {lq_size[0]}x{lq_size[1]} but {gt_path} is {gt_size[0]}x{gt_size[1]}')
        if size is None:
            size = lq_size
        elif lq_size != size:
            raise VideoDataError(f'{lq_path} is {lq_size[0]}x{lq_size[1]}, other frames of video {video} are '
                                 f'{size[0]}x{size[1]}')
    return size[1], size[0]


def scan_paired_videos(root, lq_folder, gt_folder, videos=None, exclude_videos=None):
    """``{video: {'pairs': [(lq, gt), ...], 'size': (H, W)}}`` for the videos under ``root``.

    ``videos`` selects videos by name, ``exclude_videos`` leaves some out (DVD: train = all but test).
    """
    if not root or not osp.isdir(root):
        raise VideoDataError(f'{root}: dataroot not found')
    names = sorted((d for d in os.listdir(root) if osp.isdir(osp.join(root, d))), key=natural_key)
    if videos is not None:
        absent = [v for v in videos if v not in names]
        if absent:
            raise VideoDataError(f'{root}: videos {absent} not found')
        names = list(videos)
    if exclude_videos:
        absent = [v for v in exclude_videos if v not in names]
        if absent:
            raise VideoDataError(f'{root}: videos to exclude {absent} not found')
        names = [n for n in names if n not in set(exclude_videos)]
    if not names:
        raise VideoDataError(f'{root}: no video folders')
    out = {}
    for name in names:
        lq_dir, gt_dir = osp.join(root, name, lq_folder), osp.join(root, name, gt_folder)
        for sub in (lq_dir, gt_dir):
            if not osp.isdir(sub):
                raise VideoDataError(f'{sub}: folder not found (video {name} needs {lq_folder}/ and {gt_folder}/)')
        pairs = pair_frames(lq_dir, gt_dir)
        out[name] = {'pairs': pairs, 'size': check_pairs(pairs, name)}
    return out


def read_frame(path):
    """Decode a frame as float32 RGB ``[H, W, 3]`` in [0, 1]; grey, alpha, palette and 16-bit become RGB."""
    try:
        with Image.open(path) as img:
            img.load()  # decodes everything: a truncated or corrupt file raises here
            if img.mode in ('I;16', 'I;16L', 'I;16B', 'I'):
                grey = np.asarray(img, dtype=np.float32) / 65535.0
                return np.repeat(np.clip(grey, 0, 1)[:, :, None], 3, axis=2)
            rgb = img if img.mode == 'RGB' else img.convert('RGB')
            return np.asarray(rgb, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise VideoDataError(f'{path}: cannot decode image ({err})') from err
