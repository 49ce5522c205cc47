"""What BasicSR 1.4.2 needs on current torch/torchvision and on CPU (design.md section 7).

`apply()` is idempotent and runs on `import basicsr_vdd`, before the first `import basicsr`:

* ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17; BasicSR's
  degradations import ``rgb_to_grayscale`` from it. We alias the module to
  ``torchvision.transforms.functional``, which has the same function.
* ``basicsr.train.load_resume_state`` maps the state onto ``torch.cuda.current_device()`` (crashes
  on CPU), looks for states relative to the working directory instead of the root path, and
  unpickles without ``weights_only``. It is replaced by :func:`load_resume_state`.
* ``VideoBaseModel.dist_validation`` allocates its metric tensors with ``device='cuda'``. It is
  replaced by :func:`basicsr_vdd.models.video_validation.video_validation`, which keeps its
  behaviour (per-video means, then the mean over videos) on any device and also reports the
  mean over all frames.
* ``PerceptualLoss(criterion='l2')`` calls the non-existent ``torch.nn.L2loss``; it gets ``MSELoss``
  (STFAN's perceptual term is an MSE of VGG19 features).
* ``BaseModel.get_optimizer`` knows only ``Adam``; the paper trains with AdamW. Any
  ``torch.optim`` optimizer can now be named in ``optim_g: type:``.
"""
import glob
import os
import os.path as osp
import sys
from collections import Counter

import torch

_APPLIED = False


def _install_functional_tensor_shim():
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision: nothing to do)
    except ImportError:
        import torchvision.transforms.functional as functional
        sys.modules[name] = functional


def resume_map_location(opt):
    """Device onto which saved states are mapped: the model's device."""
    if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def safe_torch_load(path, map_location='cpu'):
    """``torch.load`` with ``weights_only=True``; BasicSR's schedulers keep a Counter of milestones."""
    with torch.serialization.safe_globals([Counter]):
        return torch.load(path, map_location=map_location, weights_only=True)


def latest_training_state(state_dir):
    """Path of the ``<iter>.state`` file with the largest iteration in ``state_dir``, or None."""
    states = glob.glob(osp.join(state_dir, '*.state'))
    if not states:
        return None
    return max(states, key=lambda p: float(osp.basename(p)[:-len('.state')]))


def load_resume_state(opt):
    """CPU-safe, root-relative replacement for ``basicsr.train.load_resume_state``."""
    from basicsr.utils import check_resume

    if opt['auto_resume']:
        path = latest_training_state(opt['path']['training_states'])
        if path is not None:
            opt['path']['resume_state'] = path
    else:
        path = opt['path'].get('resume_state')
    if path is None:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(f'resume_state {path}: no such file')
    state = safe_torch_load(path, map_location=resume_map_location(opt))
    check_resume(opt, state['iter'])
    return state


def get_optimizer(self, optim_type, params, lr, **kwargs):
    """Any ``torch.optim`` optimizer by class name (BasicSR 1.4.2 accepts only Adam)."""
    cls = getattr(torch.optim, optim_type, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise NotImplementedError(f'optimizer {optim_type} is not a torch.optim optimizer')
    return cls(params, lr, **kwargs)


def _patch_perceptual_l2():
    from basicsr.losses.basic_loss import PerceptualLoss

    original_init = PerceptualLoss.__init__
    if getattr(original_init, '_vdd_patched', False):
        return

    def __init__(self, *args, criterion='l1', **kwargs):
        original_init(self, *args, criterion='l1' if criterion == 'l2' else criterion, **kwargs)
        if criterion == 'l2':
            self.criterion_type, self.criterion = 'l2', torch.nn.MSELoss()

    __init__._vdd_patched = True
    PerceptualLoss.__init__ = __init__


def apply():
    """Patch BasicSR for current torch/torchvision and CPU. Safe to call more than once."""
    global _APPLIED
    if _APPLIED:
        return
    _install_functional_tensor_shim()
    import basicsr.train
    import basicsr.models.video_base_model as video_base_model
    from basicsr.models.base_model import BaseModel
    from basicsr_vdd.models.video_validation import video_validation

    basicsr.train.load_resume_state = load_resume_state
    video_base_model.VideoBaseModel.dist_validation = video_validation
    BaseModel.get_optimizer = get_optimizer
    _patch_perceptual_l2()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    _APPLIED = True
