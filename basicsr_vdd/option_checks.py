"""The options of ``train.py`` / ``test.py`` read exactly as BasicSR will read them (its YAML loader,
its ``--force_yml`` parsing), then checked before any folder is made. Every problem is a ValueError
or FileNotFoundError whose message names the option file, the option or the ``--force_yml`` entry.

``4e-4`` (a YAML 1.2 float that PyYAML reads as text) is a number, in option files and in
``--force_yml`` values alike (:func:`use_yaml_floats`, applied to BasicSR's own reader).
``allow_random_init: true`` (top level) lets ``test.py`` run without ``path: pretrain_network_g``.
"""
import argparse
import copy
import math
import os
import os.path as osp

from basicsr_vdd.file_io import SCIENTIFIC, float_loader, read_options

NUMERIC_SECTIONS = ('train', 'diffusion', 'sampling')  # no option there is text that reads as a number


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def parse_args(argv):
    """BasicSR's command line (``basicsr.utils.options.parse_options``); a bad flag is a ValueError."""
    parser = _Parser()
    parser.add_argument('-opt', type=str, required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument('--force_yml', nargs='+', default=None, help='e.g. train:ema_decay=0.999')
    return parser.parse_args(argv)


def use_yaml_floats():
    """BasicSR's option reader and ``--force_yml`` parser read ``4e-4`` as a float (idempotent)."""
    import basicsr.utils.options as options
    if getattr(options.ordered_yaml, '_vdd_floats', False):
        return
    ordered_yaml, postprocess = options.ordered_yaml, options._postprocess_yml_value

    def ordered_yaml_floats():
        loader, dumper = ordered_yaml()
        return float_loader(loader), dumper

    def postprocess_floats(value):
        return float(value) if SCIENTIFIC.match(value) else postprocess(value)

    ordered_yaml_floats._vdd_floats = True
    options.ordered_yaml, options._postprocess_yml_value = ordered_yaml_floats, postprocess_floats


def apply_force_yml(opt, entries):
    """``--force_yml a:b=value`` as BasicSR applies it (its value parser; only the last key may be new)."""
    import basicsr.utils.options as options
    for entry in entries or ():
        if entry.count('=') != 1:
            raise ValueError(f'--force_yml {entry}: expected key:subkey=value (one "=")')
        keys, value = (s.strip() for s in entry.split('='))
        try:
            value = options._postprocess_yml_value(value)
        except Exception as err:  # a list is eval()-ed by BasicSR
            raise ValueError(f'--force_yml {entry}: unreadable value ({type(err).__name__}: {err})') from None
        node, keys = opt, keys.split(':')
        for depth, key in enumerate(keys[:-1]):
            node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise ValueError(f'--force_yml {entry}: no option section {":".join(keys[:depth + 1])}')
        node[keys[-1]] = value
    return opt


def _leaves(node, keys=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, keys + (str(key),))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, keys + (f'[{i}]',))
    else:
        yield keys, node


def check_numbers(opt):
    """inf/NaN refused everywhere; text that reads as a number refused where only numbers belong."""
    for keys, value in _leaves(opt):
        where = ': '.join(keys)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'{where}: must be a finite number, got {value}')
        if isinstance(value, str) and keys[0] in NUMERIC_SECTIONS:
            try:
                number = float(value)
            except ValueError:
                continue
            if not math.isfinite(number):
                raise ValueError(f'{where}: must be a finite number, got {value!r}')
            raise ValueError(f'{where}: {value!r} is text, not a number (write it unquoted, e.g. {number!r})')


def check_name(name):
    """``name`` is one folder under experiments/ and results/."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f'name: must be a folder name, got {name!r}')
    seps = {'/', os.sep, os.altsep} - {None}
    if osp.isabs(name) or any(s in name for s in seps) or name in ('.', '..'):
        raise ValueError(f'name: {name!r} must be a plain folder name (no path separator, no "..", not absolute): '
                         f'the run is written to experiments/<name> or results/<name>')


def check_metrics(opt):
    """Every ``val: metrics: *: type`` is a registered metric."""
    from basicsr.utils.registry import METRIC_REGISTRY
    for label, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        kind = (metric or {}).get('type')
        if kind not in METRIC_REGISTRY:
            raise ValueError(f'val: metrics: {label}: type {kind!r} is not a metric '
                             f'(known: {", ".join(sorted(name for name, _ in METRIC_REGISTRY))})')


def world_size(launcher):
    """Processes that will train (BasicSR's world size, before ``init_dist``)."""
    variable = {'pytorch': 'WORLD_SIZE', 'slurm': 'SLURM_NTASKS'}.get(launcher)
    return int(os.environ.get(variable, 1)) if variable else 1


def check_train_batch(opt, launcher):
    """At least one full batch per epoch (BasicSR's train loader drops the last incomplete one)."""
    import torch
    from basicsr.utils.registry import DATASET_REGISTRY
    dataset_opt = (opt.get('datasets') or {}).get('train')
    if not isinstance(dataset_opt, dict):
        raise ValueError('datasets: train: missing (training needs a train dataset)')
    dataset_opt = dict(copy.deepcopy(dataset_opt), phase='train', **({'scale': opt['scale']} if 'scale' in opt else {}))
    if dataset_opt.get('type') not in DATASET_REGISTRY:
        raise ValueError(f'datasets: train: type {dataset_opt.get("type")!r} is not a registered dataset')
    clips = len(DATASET_REGISTRY.get(dataset_opt['type'])(dataset_opt))  # not build_dataset: it starts the logger
    ratio, world = dataset_opt.get('dataset_enlarge_ratio', 1), world_size(launcher)
    num_gpu = opt.get('num_gpu', 1)
    num_gpu = torch.cuda.device_count() if num_gpu == 'auto' else num_gpu
    per_gpu = dataset_opt['batch_size_per_gpu']
    batch = per_gpu if launcher != 'none' else per_gpu * max(num_gpu or 0, 1)
    if math.ceil(clips * ratio / world) // batch < 1:
        devices = f'{world} processes' if launcher != 'none' else f'{max(num_gpu or 0, 1)} device(s)'
        raise ValueError(f'datasets: train: batch_size_per_gpu {per_gpu} x {devices} needs {batch * world} clips, '
                         f'but {dataset_opt.get("dataroot")} has {clips} (dataset_enlarge_ratio {ratio}): '
                         f'not one full batch, so no iteration would train')


def _has_states(root, opt):
    folder = osp.join(root, 'experiments', opt['name'], 'training_states')
    return osp.isdir(folder) and any(f.endswith('.state') for f in os.listdir(folder))


def check_paths(opt, kind, root, auto_resume):
    """Dataset roots and checkpoints exist; a test names its checkpoint unless ``allow_random_init``."""
    for phase, dataset in (opt.get('datasets') or {}).items():
        data_root = (dataset or {}).get('dataroot')
        if data_root is not None and not osp.isdir(data_root):
            raise FileNotFoundError(f'datasets: {phase}: dataroot {data_root}: no such folder')
    resuming = kind == 'train' and auto_resume and _has_states(root, opt)  # checkpoints come from the state
    for key, value in (opt.get('path') or {}).items():
        if key.startswith('pretrain_network') and resuming:
            continue
        if key.startswith(('pretrain_network', 'resume_state')) and value and not osp.isfile(value):
            raise FileNotFoundError(f'path: {key}: {value}: no such file')
    checkpoint = (opt.get('path') or {}).get('pretrain_network_g')
    if kind == 'test' and not checkpoint and opt.get('allow_random_init') is not True:
        raise ValueError('path: pretrain_network_g: no checkpoint to test (the metrics would be those of random '
                         'weights; set allow_random_init: true to test them anyway)')


def check_options(args, kind, root):
    """The options BasicSR will run (file, then ``--force_yml``, then the debug prefix), checked.

    Returns them. Raises ValueError / FileNotFoundError naming the file, option or entry."""
    from basicsr_vdd.diffusion.schedule import timestep_sampling_kwargs
    from basicsr_vdd.pipelines.vdd_diffusion import check_sampling

    opt = read_options(args.opt)
    try:
        apply_force_yml(opt, args.force_yml)
        if 'name' not in opt:
            raise ValueError('name: missing (not a BasicSR option file?)')
        check_name(opt['name'])
        if args.debug and not opt['name'].startswith('debug'):
            opt['name'] = 'debug_' + opt['name']
        check_numbers(opt)
        if opt.get('sampling') is not None:
            check_sampling(opt['sampling'])
        timestep_sampling_kwargs((opt.get('diffusion') or {}).get('timestep_sampling'))
        limit = (opt.get('train') or {}).get('max_nonfinite_steps', 5)
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f'train: max_nonfinite_steps must be an integer >= 1, got {limit!r}')
        check_metrics(opt)
        check_paths(opt, kind, root, args.auto_resume)
        if kind == 'train':
            check_train_batch(opt, args.launcher)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'{args.opt}: {err}') from None
    except KeyError as err:
        raise ValueError(f'{args.opt}: missing option {err}') from None
    except ValueError as err:
        raise ValueError(f'{args.opt}: {err}') from None
    return opt
