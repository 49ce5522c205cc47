"""Paired video datasets: both layouts, crops/augmentation applied identically, every bad-input error."""
import os
import os.path as osp
import random

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from basicsr_vdd.data.paired_video_dataset import PairedVideoDataset, PairedVideoTestDataset
from basicsr_vdd.data.video_io import VideoDataError, read_frame
from basicsr.data.data_util import generate_frame_indices
from conftest import write_paired_videos


def _gopro(tmp_path, frames=(6, 4), size=(24, 32)):
    return write_paired_videos(str(tmp_path / 'gopro'), ['v1', 'v2'], list(frames), size=size)


def _train(root, **kw):
    opt = {'name': 't', 'dataroot': root, 'num_frame': 3, 'gt_size': 16, 'phase': 'train'}
    opt.update(kw)
    return PairedVideoDataset(opt)


def _test(root, **kw):
    opt = {'name': 't', 'dataroot': root, 'phase': 'test'}
    opt.update(kw)
    return PairedVideoTestDataset(opt)


def _marked_video(root, n=5, size=(20, 28)):
    """gt frame i = base + 10*i (one random base image), lq = 255 - gt: ties crops and frame order."""
    base = np.random.default_rng(0).integers(0, 200, size=size + (3,), dtype=np.uint8)
    for sub in ('blur', 'sharp'):
        os.makedirs(osp.join(root, 'vid', sub), exist_ok=True)
    for i in range(n):
        gt = base + np.uint8(10 * i)
        cv2.imwrite(osp.join(root, 'vid', 'sharp', f'{i:03d}.png'), gt)
        cv2.imwrite(osp.join(root, 'vid', 'blur', f'{i:03d}.png'), 255 - gt)
    return root, base[:, :, ::-1].astype(np.float32)  # RGB, as the dataset returns


def test_train_clips_gopro_layout_shapes_and_ranges(tmp_path):
    ds = _train(_gopro(tmp_path))
    assert len(ds) == (6 - 2) + (4 - 2)  # one sample per clip start
    sample = ds[0]
    assert sample['lq'].shape == (3, 3, 16, 16) and sample['gt'].shape == (3, 3, 16, 16)
    assert sample['lq'].dtype == torch.float32 and 0 <= sample['lq'].min() and sample['gt'].max() <= 1
    assert sample['key'] == 'v1/0'
    center = _train(_gopro(tmp_path), gt_frames='center')[1]
    assert center['gt'].shape == (3, 16, 16)


def test_dvd_layout_with_jpg_and_folder_options(tmp_path):
    root = write_paired_videos(str(tmp_path / 'dvd'), ['IMG_0003'], 5, size=(16, 16), lq='input', gt='GT',
                               ext='.jpg')
    ds = _train(root, lq_folder='input', gt_folder='GT', gt_size=None)
    assert len(ds) == 3 and ds[0]['lq'].shape == (3, 3, 16, 16)
    test = _test(root, lq_folder='input', gt_folder='GT')
    assert test[0]['lq_path'][0].endswith(osp.join('IMG_0003', 'input', '000000.jpg'))


def test_crop_flip_rotation_and_reversal_are_identical_on_lq_and_gt(tmp_path):
    root, _ = _marked_video(str(tmp_path / 'marked'))
    ds = _train(root, num_frame=5, gt_size=12, use_hflip=True, use_rot=True, use_reverse=True)
    steps = set()
    for seed in range(12):
        random.seed(seed)
        s = ds[0]
        torch.testing.assert_close(s['lq'], 1 - s['gt'], atol=1e-6, rtol=0)  # same window, same transforms
        # every frame is the same crop of the base image: consecutive frames differ by one constant step
        diffs = (s['gt'][1:] - s['gt'][:-1]) * 255
        step = round(float(diffs.mean()))
        torch.testing.assert_close(diffs, torch.full_like(diffs, float(step)), atol=1e-3, rtol=0)
        steps.add(step)
    assert steps == {10, -10}  # forwards and temporally reversed clips both occur


def test_frame_mode_neighbours_follow_basicsr_padding(tmp_path):
    root, base = _marked_video(str(tmp_path / 'marked'), n=6)
    ds = _test(root, mode='frame', num_frame=5, padding='reflection_circle')
    assert len(ds) == 6 and len(ds.data_info['folder']) == 6

    def frame_numbers(lq):
        return [round(float((255 - f.permute(1, 2, 0).numpy() * 255 - base).mean()) / 10) for f in lq]

    for i in (0, 1, 5):
        s = ds[i]
        assert s['idx'] == f'{i}/6' and s['frame_idx'] == [i] and s['gt'].shape[0] == 3
        assert frame_numbers(s['lq']) == generate_frame_indices(i, 6, 5, padding='reflection_circle')
        assert s['lq_path'].endswith(f'{i:03d}.png')
    # a video shorter than BasicSR's padding assumes: neighbours are clamped into the video
    short, _ = _marked_video(str(tmp_path / 'short'), n=3)
    assert generate_frame_indices(0, 3, 5, padding='reflection_circle') == [4, 3, 0, 1, 2]
    assert frame_numbers(_test(short, mode='frame', num_frame=5)[0]['lq']) == [2, 2, 0, 1, 2]


def test_video_and_window_modes_cover_every_frame_once(tmp_path):
    root = _gopro(tmp_path, frames=(7, 3))
    video = _test(root)
    assert len(video) == 2 and video[0]['lq'].shape == (7, 3, 24, 32) and video[0]['frame_idx'] == list(range(7))
    window = _test(root, mode='window', num_frame=3)
    covered = [(window[i]['folder'], f) for i in range(len(window)) for f in window[i]['frame_idx']]
    assert sorted(covered) == sorted(zip(window.data_info['folder'], window.data_info['frame_idx']))
    assert len(covered) == len(set(covered)) == 10 and len(window) == 3 + 1
    assert len(_test(root, max_frames=2).data_info['folder']) == 4


@pytest.mark.parametrize('mode, expected', [
    ('L', [100, 100, 100]),
    ('LA', [100, 100, 100]),
    ('RGBA', [10, 20, 30]),
    ('P', [10, 20, 30]),
])
def test_grey_alpha_palette_frames_become_rgb(tmp_path, mode, expected):
    path = str(tmp_path / f'{mode}.png')
    if mode in ('L', 'LA'):
        img = Image.new(mode, (4, 3), 100 if mode == 'L' else (100, 7))
    elif mode == 'RGBA':
        img = Image.new('RGBA', (4, 3), (10, 20, 30, 5))
    else:
        img = Image.new('P', (4, 3), 1)
        img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.save(path)
    out = read_frame(path)
    assert out.shape == (3, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 2] * 255, expected, atol=1e-4)


def test_16bit_grey_frames_keep_their_range(tmp_path):
    path = str(tmp_path / 'deep.png')
    cv2.imwrite(path, np.full((3, 4), 32768, dtype=np.uint16))
    np.testing.assert_allclose(read_frame(path), 32768 / 65535, rtol=1e-6)


def _expect(match, fn, *args, **kwargs):
    with pytest.raises(VideoDataError, match=match):
        fn(*args, **kwargs)


def test_missing_root_and_subfolders_are_named(tmp_path):
    _expect('nowhere: dataroot not found', _train, str(tmp_path / 'nowhere'))
    root = _gopro(tmp_path)
    os.rename(osp.join(root, 'v2', 'sharp'), osp.join(root, 'v2', 'GT'))
    _expect(r'v2/sharp: folder not found', _test, root)
    _expect(r"videos \['v9'\] not found", _test, root, videos=['v9'])
    _expect(r"videos to exclude \['v9'\] not found", _test, root, exclude_videos=['v9'])
    assert _test(root, exclude_videos=['v2']).data_info['folder'] == ['v1'] * 6


def test_empty_and_unpaired_frame_folders(tmp_path):
    root = _gopro(tmp_path)
    for f in os.listdir(osp.join(root, 'v2', 'blur')):
        os.remove(osp.join(root, 'v2', 'blur', f))
    _expect(r'v2/blur: no frames', _test, root)
    root = _gopro(tmp_path / 'b')
    os.remove(osp.join(root, 'v1', 'sharp', '000003.png'))
    _expect(r'v1/blur \(6 frames\) and .*v1/sharp \(5 frames\) do not pair: only in lq \[\'000003\'\]', _test, root)
    root = _gopro(tmp_path / 'c')
    os.rename(osp.join(root, 'v1', 'sharp', '000005.png'), osp.join(root, 'v1', 'sharp', '000099.png'))
    _expect(r"only in lq \['000005'\], only in gt \['000099'\]", _train, root)


def test_size_mismatches_are_named(tmp_path):
    root = _gopro(tmp_path)
    cv2.imwrite(osp.join(root, 'v1', 'sharp', '000002.png'), np.zeros((24, 30, 3), np.uint8))
    cv2.imwrite(osp.join(root, 'v1', 'blur', '000002.png'), np.zeros((24, 32, 3), np.uint8))
    _expect(r'v1/blur/000002.png is 32x24 but .*v1/sharp/000002.png is 30x24', _test, root)
    root = _gopro(tmp_path / 'b')
    for sub in ('blur', 'sharp'):
        cv2.imwrite(osp.join(root, 'v2', sub, '000001.png'), np.zeros((16, 16, 3), np.uint8))
    _expect(r'v2/blur/000001.png is 16x16, other frames of video v2 are 32x24', _train, root)
    _expect(r'v1: frames are 32x24, smaller than gt_size 64', _train, _gopro(tmp_path / 'c'), gt_size=64)
    _expect(r'v2: 4 frames, shorter than a clip of 5 frames', _train, _gopro(tmp_path / 'd'), num_frame=5)
    assert len(_train(_gopro(tmp_path / 'e'), num_frame=5, skip_short=True)) == 2


def test_corrupt_and_non_image_files_are_named(tmp_path):
    root = _gopro(tmp_path)
    with open(osp.join(root, 'v1', 'blur', '000001.png'), 'wb') as f:
        f.write(b'not an image at all')
    _expect(r'v1/blur/000001.png: not a readable image', _train, root)

    root = _gopro(tmp_path / 'b')
    path = osp.join(root, 'v2', 'sharp', '000002.png')
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])  # valid header, truncated pixels: found when decoded
    ds = _test(root)
    _expect(r'v2/sharp/000002.png: cannot decode image', ds.__getitem__, 1)
