"""ST-LPIPS (shift-tolerant LPIPS, Ghildyal & Liu, ECCV 2022) in BasicSR's METRIC_REGISTRY.

``val: metrics: stlpips: {type: calculate_stlpips, net: alex}`` (or ``net: vgg``). The package
``stlpips-pytorch`` ships its trunk and linear weights (``weights/vST0.0/<net>_shift_tolerant.pth``)
inside the wheel, so the metric runs offline. The file is read here with ``weights_only=True`` and
loaded strictly (the package itself unpickles it and loads non-strictly). Lower is better. Values
are *not* comparable to published LPIPS numbers (other trunk, other calibration): label them
ST-LPIPS.
"""
import inspect
import os.path as osp

from basicsr.utils.registry import METRIC_REGISTRY

from basicsr_vdd.file_io import safe_torch_load
from .lpips_metric import image_distance

NETS = ('alex', 'vgg')
_CACHE = {}


UNDECLARED = {'torchsummary': 'torchsummary==1.5.1', 'IPython': 'ipython==9.18.1'}  # module -> pip requirement


def _import_stlpips():
    """``stlpips_pytorch.stlpips``; first checks the two modules it imports but does not declare."""
    import importlib
    for module, requirement in UNDECLARED.items():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f'ST-LPIPS: stlpips-pytorch imports {module} at import time but does not '
                              f'declare it; pip install "{requirement}" ({err})') from err
    from stlpips_pytorch import stlpips
    return stlpips


def weights_path(net):
    stlpips = _import_stlpips()
    return osp.join(osp.dirname(inspect.getfile(stlpips)), 'weights', 'vST0.0', f'{net}_shift_tolerant.pth')


def build_stlpips(net='alex'):
    """The package's shift-tolerant LPIPS module with its shipped weights, in eval mode."""
    if net not in NETS:
        raise ValueError(f'ST-LPIPS net must be one of {NETS}, got {net!r}')
    stlpips = _import_stlpips()

    model = stlpips.LPIPS(pretrained=False, net=net, variant='shift_tolerant', verbose=False)
    path = weights_path(net)
    state = safe_torch_load(path)
    # ``lins.K`` are the same modules as ``linK`` (registered twice by the package): fill both names
    state.update({f'lins.{k[3]}{k[4:]}': v for k, v in list(state.items()) if k.startswith('lin') and k[3].isdigit()})
    model.load_state_dict(state, strict=True)
    return model.eval()


def _get_stlpips(net, device):
    key = (net, str(device))
    if key not in _CACHE:
        _CACHE[key] = build_stlpips(net).to(device)
    return _CACHE[key]


@METRIC_REGISTRY.register()
def calculate_stlpips(img, img2, crop_border=0, input_order='HWC', net='alex', **kwargs):
    """ST-LPIPS between two BGR images with values in [0, 255] (BasicSR's ``tensor2img`` output)."""
    return image_distance(lambda device: _get_stlpips(net, device), img, img2, crop_border, input_order)
