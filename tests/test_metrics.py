"""LPIPS plumbing: real weights or a clear 'unavailable', never a number from a random trunk by default."""
import numpy as np
import pytest
import torch
import torchvision

import basicsr_vdd  # noqa: F401
from basicsr.metrics import calculate_metric
from basicsr_vdd.metrics import lpips_metric
from basicsr_vdd.metrics.lpips_metric import ALEXNET_FILE, MetricUnavailableError, build_lpips
from vdd_demo.report import input_summary
from conftest import write_paired_videos


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(lpips_metric, '_CACHE', {})
    return tmp_path / 'torch_home'


def _images(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)


def test_without_alexnet_weights_lpips_is_unavailable_with_the_instruction(empty_torch_home):
    with pytest.raises(MetricUnavailableError) as err:
        calculate_metric({'img': _images(0), 'img2': _images(1)}, {'type': 'calculate_lpips'})
    assert ALEXNET_FILE in str(err.value) and str(empty_torch_home / 'hub' / 'checkpoints') in str(err.value)


def test_input_summary_reports_lpips_unavailable_not_a_number(empty_torch_home, tmp_path):
    root = write_paired_videos(str(tmp_path / 'data'), ['v'], 3, size=(32, 32))
    summary = input_summary(root)
    assert 'unavailable' in summary['metrics']['lpips'] and 'per_video_mean' not in summary['metrics']['lpips']
    assert summary['metrics']['psnr']['per_video_mean'] > 0


def test_input_row_of_a_frame_subset_scores_exactly_the_first_frames(tmp_path):
    """make demo's "blurry input, first N frames" row (beside a sampler tested on max_frames)."""
    import cv2
    root = write_paired_videos(str(tmp_path / 'data'), ['a', 'b'], [6, 5], size=(32, 32))
    summary = input_summary(root, metrics={'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}, max_frames=3)
    assert summary['frames'] == 6 and summary['videos'] == 2
    by_hand = {}
    for video in ('a', 'b'):
        values = []
        for i in range(3):
            blur, sharp = (cv2.imread(f'{root}/{video}/{k}/{i:06d}.png').astype(np.float64) for k in ('blur', 'sharp'))
            values.append(10 * np.log10(255 ** 2 / np.mean((blur - sharp) ** 2)))
        by_hand[video] = np.mean(values)
    assert summary['metrics']['psnr']['per_video'] == pytest.approx(by_hand, abs=1e-9)
    assert summary['metrics']['psnr']['per_video_mean'] == pytest.approx(np.mean(list(by_hand.values())), abs=1e-9)


def test_lpips_with_a_weights_file_in_torchvision_layout(empty_torch_home, tmp_path):
    # a randomly initialised AlexNet saved in torchvision's layout stands in for the ImageNet file (tests only)
    torch.manual_seed(0)
    path = tmp_path / ALEXNET_FILE
    torch.save(torchvision.models.alexnet().state_dict(), path)
    a, b = _images(0), _images(1)
    opt = {'type': 'calculate_lpips', 'alexnet_path': str(path)}
    same = calculate_metric({'img': a, 'img2': a}, opt)
    diff = calculate_metric({'img': a, 'img2': b}, opt)
    assert same == pytest.approx(0.0, abs=1e-6) and diff > 1e-3
    # the trunk really is the file's: the same computation by hand with lpips' own module
    net = build_lpips(str(path))
    trunk = torchvision.models.alexnet()
    trunk.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(net.net.slice1[0].weight, trunk.features[0].weight)
    random_trunk = build_lpips(random_trunk=True)
    assert not torch.equal(random_trunk.net.slice1[0].weight, trunk.features[0].weight)


# ------------------------------------------------------------------ ST-LPIPS (weights ship in the wheel)
def _photo():
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[100:228, 150:278, ::-1])  # BGR uint8, 128 x 128


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_stlpips_identical_zero_blur_worse_than_mild_noise(net):
    import cv2
    img = _photo()
    opt = {'type': 'calculate_stlpips', 'net': net}
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    same = calculate_metric({'img': img, 'img2': img}, opt)
    d_blur = calculate_metric({'img': blurred, 'img2': img}, opt)
    d_noise = calculate_metric({'img': noisy, 'img2': img}, opt)
    assert same == pytest.approx(0.0, abs=1e-7)
    assert d_blur > 2 * d_noise > 0


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_stlpips_equals_the_package_called_directly(net):
    from stlpips_pytorch import stlpips
    import cv2
    img = _photo()
    other = cv2.GaussianBlur(img, (0, 0), 1.2)
    ours = calculate_metric({'img': other, 'img2': img}, {'type': 'calculate_stlpips', 'net': net})
    reference = stlpips.LPIPS(net=net, variant='shift_tolerant', verbose=False)  # the package's own loading
    to_tensor = lambda x: torch.from_numpy(x[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa
    with torch.no_grad():
        expected = reference(to_tensor(other), to_tensor(img)).item()
    assert ours == pytest.approx(expected, rel=1e-5)


def test_stlpips_rejects_an_unknown_net():
    with pytest.raises(ValueError, match='alex'):
        calculate_metric({'img': _photo(), 'img2': _photo()}, {'type': 'calculate_stlpips', 'net': 'squeeze'})
