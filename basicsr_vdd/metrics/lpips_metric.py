"""LPIPS (AlexNet, v0.1) in BasicSR's METRIC_REGISTRY: ``val: metrics: lpips: {type: calculate_lpips}``.

The LPIPS linear heads ship inside the ``lpips`` package; the AlexNet trunk needs torchvision's
ImageNet weights ``alexnet-owt-7be5be79.pth``. Nothing is downloaded: the file is taken from the
metric option ``alexnet_path`` or from ``$TORCH_HOME/hub/checkpoints``. Without it the metric
raises :class:`MetricUnavailableError` (the video validation then reports "unavailable" with
this instruction) instead of computing a number with a random trunk.
"""
import os.path as osp

import numpy as np
import torch

from basicsr.utils.registry import METRIC_REGISTRY

from basicsr_vdd.file_io import safe_torch_load

ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'
_CACHE = {}


class MetricUnavailableError(RuntimeError):
    """A metric cannot be computed on this machine (missing weights); the message says how to fix it."""


def default_alexnet_path():
    return osp.join(torch.hub.get_dir(), 'checkpoints', ALEXNET_FILE)


def build_lpips(alexnet_path=None, random_trunk=False):
    """LPIPS-Alex with the trunk loaded from ``alexnet_path`` (or the torch hub cache).

    ``random_trunk=True`` keeps a randomly initialised AlexNet: only for tests of the plumbing.
    """
    import warnings

    import lpips

    with warnings.catch_warnings():  # torchvision's deprecation notice for lpips' pretrained=False call
        warnings.simplefilter('ignore', UserWarning)
        net = lpips.LPIPS(net='alex', version='0.1', pretrained=True, pnet_rand=True, verbose=False)
    if random_trunk:
        return net.eval()
    path = alexnet_path or default_alexnet_path()
    if not osp.isfile(path):
        raise MetricUnavailableError(
            f'LPIPS unavailable: put torchvision\'s ImageNet AlexNet weights {ALEXNET_FILE} at {path} '
            f'(or set alexnet_path in the metric options)')
    state = safe_torch_load(path)
    features = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
    trunk = {}
    for slice_name, block in net.net.named_children():  # slice1..5 hold features[i] under the name str(i)
        for layer_name, layer in block.named_children():
            for param_name, _ in layer.named_parameters():
                trunk[f'{slice_name}.{layer_name}.{param_name}'] = features.pop(f'{layer_name}.{param_name}')
    if features:
        raise MetricUnavailableError(f'{path}: unexpected AlexNet feature keys {sorted(features)}')
    net.net.load_state_dict(trunk, strict=True)
    return net.eval()


def _get_lpips(alexnet_path, device):
    key = (alexnet_path, str(device))
    if key not in _CACHE:
        _CACHE[key] = build_lpips(alexnet_path).to(device)
    return _CACHE[key]


def _to_lpips_input(img, input_order):
    """uint8-range BGR image (BasicSR's tensor2img output) -> RGB tensor [1, 3, H, W] in [-1, 1]."""
    img = np.asarray(img, dtype=np.float64)
    if input_order == 'CHW':
        img = img.transpose(1, 2, 0)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'LPIPS needs 3-channel images, got shape {img.shape}')
    rgb = img[:, :, ::-1] / 255.0
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().unsqueeze(0) * 2 - 1


def image_distance(get_model, img, img2, crop_border=0, input_order='HWC'):
    """``model(x, y).item()`` of the LPIPS-style module ``get_model(device)`` on two BGR images with
    values in [0, 255] (BasicSR's ``tensor2img`` output), as RGB tensors in [-1, 1] (GPU if any)."""
    assert img.shape == img2.shape, f'Image shapes are different: {img.shape}, {img2.shape}.'
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = get_model(device)
    x, y = _to_lpips_input(img, input_order), _to_lpips_input(img2, input_order)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    with torch.no_grad():
        return model(x.to(device), y.to(device)).item()


@METRIC_REGISTRY.register()
def calculate_lpips(img, img2, crop_border=0, input_order='HWC', alexnet_path=None, **kwargs):
    """LPIPS-Alex between two BGR images with values in [0, 255] (lower is better)."""
    return image_distance(lambda device: _get_lpips(alexnet_path, device), img, img2, crop_border, input_order)
