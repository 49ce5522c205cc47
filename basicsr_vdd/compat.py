"""What BasicSR 1.4.2 needs on current torch/torchvision and on CPU (docs/design.md section 7).

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
* A resumed run restarts its epoch from the first batch with other crops and flips (measured: the
  losses after a mid-epoch resume differed from the uninterrupted run's). The train sampler is
  :class:`basicsr_vdd.data.resumable_sampler.ResumableSampler`, started at the position of the
  resumed iteration.
* Optimizers skip steps with non-finite gradients and stop training after
  ``train: max_nonfinite_steps`` of them in a row (:mod:`basicsr_vdd.models.nonfinite_guard`).
* ``init_dist`` and ``model_to_device`` assume GPUs (nccl, ``torch.cuda.set_device``, DDP
  ``device_ids``): :func:`init_dist` uses gloo without a GPU, so ``torchrun ... --launcher pytorch``
  also trains on CPU processes.
* ``save_network`` / ``save_training_state`` write straight to the final name: a kill during the
  write leaves a truncated file that ``--auto_resume`` then picks. They write to a temporary file
  and rename it (:func:`atomic_torch_save`).
"""
import functools
import glob
import os
import os.path as osp
import sys
import torch

from basicsr_vdd.distributed import rank_fingerprints
from basicsr_vdd.file_io import atomic_torch_save, safe_torch_load

_APPLIED = False
_RESUMED = {}  # id(opt) -> (epoch, iteration) of the loaded resume state, for the train sampler


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
    """Device onto which saved states are mapped: the CPU. The optimizers, the EMA and the generators
    copy their parts onto the model's device; BasicSR keeps the loaded state alive for the whole run,
    and on the GPU it would hold a second copy of the optimizer state (~5.8 GB per rank at paper size)."""
    return torch.device('cpu')


def latest_training_state(state_dir, before=None):
    """Path of the ``<iter>.state`` file with the largest iteration in ``state_dir`` (below ``before``
    when given), or None. Files whose name is not a number are ignored."""
    def iteration(path):
        try:
            return float(osp.basename(path)[:-len('.state')])
        except ValueError:
            return None
    states = [(iteration(p), p) for p in glob.glob(osp.join(glob.escape(state_dir), '*.state'))]
    states = [(i, p) for i, p in states if i is not None and (before is None or i < before)]
    return max(states)[1] if states else None


def load_resume_state(opt):
    """CPU-safe, root-relative replacement for ``basicsr.train.load_resume_state``. ``--auto_resume`` takes
    the newest state that loads; each newer one that does not (truncated) is named in a warning of the
    training log. An unreadable ``path: resume_state``, or states of which none loads, is a ValueError
    naming the file(s)."""
    from basicsr.utils import check_resume, get_root_logger, get_time_str

    def load(path):
        try:
            state = safe_torch_load(path, map_location=resume_map_location(opt))
        except Exception as err:
            return None, f'{path}: not a readable training state ({type(err).__name__}: {err})'
        if not (isinstance(state, dict) and {'epoch', 'iter'} <= set(state)):
            return None, f'{path}: not a training state (no epoch and iter in it)'
        return state, None

    skipped, state = [], None
    if opt['auto_resume']:
        path = latest_training_state(opt['path']['training_states'])
        while path is not None:
            state, problem = load(path)
            if state is not None:
                break
            skipped.append(problem)
            below = float(osp.basename(path)[:-len('.state')])
            path = latest_training_state(opt['path']['training_states'], before=below)
        if state is None and skipped:
            raise ValueError(f'--auto_resume: no training state loads ({"; ".join(skipped)})')
        if path is not None:
            opt['path']['resume_state'] = path
    else:
        path = opt['path'].get('resume_state')
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f'resume_state {path}: no such file')
        if path is not None:
            state, problem = load(path)
            if state is None:
                raise ValueError(f'path: resume_state {problem}')
    if state is None:
        return None
    if skipped:  # the log BasicSR is about to open (the experiment folder exists: it holds the states)
        log_file = osp.join(opt['path']['log'], f"train_{opt['name']}_{get_time_str()}.log")
        logger = get_root_logger(logger_name='basicsr', log_file=log_file)
        for problem in skipped:
            logger.warning(f'--auto_resume: skipped {problem}; resuming from {path}')
    check_resume(opt, state['iter'])
    _RESUMED[id(opt)] = (state['epoch'], state['iter'])
    return state


def create_train_val_dataloader(opt, logger, _original=None):
    """BasicSR's loaders with a :class:`ResumableSampler` seeded by ``manual_seed`` and, on resume,
    started where the resumed iteration left its epoch (every epoch has ``len(train_loader)``
    iterations: iteration ``i`` is batch ``(i - 1) % n`` of its epoch)."""
    train_loader, train_sampler, *rest = _original(opt, logger)
    train_sampler.seed = opt.get('manual_seed') or 0
    epoch, resumed = _RESUMED.pop(id(opt), (0, 0))
    if resumed and len(train_loader):
        done = (resumed - 1) % len(train_loader) + 1  # batches of the resumed epoch already trained on
        train_sampler.start_epoch = epoch
        train_sampler.start = done * train_loader.batch_size  # DataParallel: batch_size_per_gpu x num_gpu
        logger.info(f'Resumed mid-epoch data order: skipping the first {done} batches of the epoch.')
    return (train_loader, train_sampler, *rest)


def save_network(self, net, net_label, current_iter, param_key='params'):
    """BasicSR's ``save_network`` (rank 0, ``module.`` prefixes removed), written atomically."""
    from basicsr.utils.dist_util import get_dist_info
    if get_dist_info()[0] != 0:
        return
    label = 'latest' if current_iter == -1 else current_iter
    nets = net if isinstance(net, list) else [net]
    keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(keys):
        raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} param keys')
    save = {key: {k[len('module.'):] if k.startswith('module.') else k: v.cpu()
                  for k, v in self.get_bare_model(n).state_dict().items()} for n, key in zip(nets, keys)}
    atomic_torch_save(save, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))


def save_training_state(self, epoch, current_iter):
    """BasicSR's training state (epoch, iteration, optimizers, schedulers), written atomically, with
    every rank's parameter fingerprint (a check that the ranks trained the same network) and what the
    model's ``extra_training_state()`` adds (called on every rank: it may gather from the ranks)."""
    from basicsr.utils.dist_util import get_dist_info
    if current_iter == -1:
        return
    fingerprints = rank_fingerprints(self.net_g)
    extra = self.extra_training_state() if hasattr(self, 'extra_training_state') else {}
    if get_dist_info()[0] != 0:
        return
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
             'schedulers': [s.state_dict() for s in self.schedulers], 'param_fingerprints': fingerprints,
             **extra}
    atomic_torch_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))


def get_optimizer(self, optim_type, params, lr, **kwargs):
    """Any ``torch.optim`` optimizer by class name (BasicSR 1.4.2 accepts only Adam), guarded against
    non-finite gradients (:mod:`basicsr_vdd.models.nonfinite_guard`)."""
    from basicsr_vdd.models.nonfinite_guard import make_guarded
    cls = getattr(torch.optim, optim_type, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise NotImplementedError(f'optimizer {optim_type} is not a torch.optim optimizer')
    limit = ((getattr(self, 'opt', None) or {}).get('train') or {}).get('max_nonfinite_steps', 5)
    return make_guarded(cls, params, lr, limit, **kwargs)


def init_dist(launcher, backend='nccl', **kwargs):
    """BasicSR's ``init_dist`` that also runs without a GPU: gloo instead of nccl, no CUDA device to
    set (BasicSR's version divides by ``torch.cuda.device_count()``). With GPUs: the local rank's GPU."""
    import torch.distributed as dist
    from basicsr.utils import dist_util

    if launcher != 'pytorch':  # slurm: BasicSR's own (GPU clusters)
        return dist_util.init_dist(launcher, backend, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    else:
        backend = 'gloo'
    dist.init_process_group(backend=backend)


def model_to_device(self, net):
    """BasicSR's ``model_to_device``; DistributedDataParallel also on CPU (no ``device_ids`` there)."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        return DistributedDataParallel(net, device_ids=device_ids,
                                       find_unused_parameters=self.opt.get('find_unused_parameters', False))
    if self.opt['num_gpu'] > 1:
        return DataParallel(net)
    return net


def _patch_load_network():
    """BasicSR's ``load_network`` errors (a missing key, a shape) name the file they came from."""
    from basicsr.models.base_model import BaseModel
    from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError

    load_network = BaseModel.load_network
    if getattr(load_network, '_vdd_patched', False):
        return

    def load(self, net, load_path, strict=True, param_key='params'):
        if not osp.isfile(load_path):
            raise FileNotFoundError(f'{load_path}: checkpoint not found')
        try:
            return load_network(self, net, load_path, strict, param_key)
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            detail = str(err).strip().splitlines()
            raise CheckpointMismatchError(f'{load_path}: does not fit {type(self.get_bare_model(net)).__name__} '
                                          f'({type(err).__name__}: {" ".join(detail)[:600]})') from err

    load._vdd_patched = True
    BaseModel.load_network = load


def _patch_step_bookkeeping():
    """The optimizers learn the iteration (for their messages); BasicSR's ``model_ema`` skips an
    update when the step was skipped."""
    from basicsr.models.base_model import BaseModel

    update_learning_rate, model_ema = BaseModel.update_learning_rate, BaseModel.model_ema
    if getattr(update_learning_rate, '_vdd_patched', False):
        return

    def update_lr(self, current_iter, warmup_iter=-1):
        for optimizer in getattr(self, 'optimizers', ()):
            optimizer.current_iter = current_iter
        return update_learning_rate(self, current_iter, warmup_iter)

    def ema(self, decay=0.999):
        if any(getattr(o, 'last_step_skipped', False) for o in getattr(self, 'optimizers', ())):
            return
        return model_ema(self, decay)

    update_lr._vdd_patched = True
    BaseModel.update_learning_rate, BaseModel.model_ema = update_lr, ema


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

    from basicsr_vdd.data.resumable_sampler import ResumableSampler

    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.EnlargedSampler = ResumableSampler
    basicsr.train.create_train_val_dataloader = functools.partial(
        create_train_val_dataloader, _original=basicsr.train.create_train_val_dataloader)
    BaseModel.save_network = save_network
    BaseModel.model_to_device = model_to_device
    import basicsr.utils.options
    basicsr.utils.options.init_dist = init_dist
    BaseModel.save_training_state = save_training_state
    video_base_model.VideoBaseModel.dist_validation = video_validation
    BaseModel.get_optimizer = get_optimizer
    _patch_perceptual_l2()
    _patch_step_bookkeeping()
    _patch_load_network()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    _APPLIED = True
