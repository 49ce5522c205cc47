"""``train.py`` / ``test.py``: BasicSR's own pipelines, with this project's options checked before any
folder is made, one-line errors for bad input, and nothing left behind by a run that failed at start.

Exit codes: 0 done; 2 a bad option, path, dataset or checkpoint (one line on stderr); 1 training
stopped on non-finite losses; 130/143 interrupted (Ctrl-C / SIGTERM). ``--debug`` (BasicSR's debug
mode) shows the traceback instead. A folder the run created (``experiments/<name>`` or
``results/<name>``) is removed when it failed before writing any checkpoint or result; one with
partial results is renamed ``<name>_failed_<time>``; an ``_archived_`` copy BasicSR made of an
earlier run gets its name back.
"""
import os
import os.path as osp
import shutil
import signal
import sys
import time

import yaml

from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError
from basicsr_vdd.data.video_io import VideoDataError
from basicsr_vdd.models.nonfinite_guard import NonFiniteTrainingError

INPUT_ERRORS = (VideoDataError, CheckpointMismatchError, ValueError, OSError, KeyError, yaml.YAMLError)
BOOKKEEPING = ('.log', '.yml', '.yaml')  # what a run writes before any result


def _arg(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def check_options(opt_path):
    """Read the option file and check what this project adds, before BasicSR makes any folder.

    Returns the options. Raises ValueError / FileNotFoundError naming the option and the problem."""
    from basicsr_vdd.diffusion.schedule import timestep_sampling_kwargs
    from basicsr_vdd.vdd_diffusion import check_sampling

    if opt_path is None:
        raise ValueError('-opt: an option file is required')
    if not osp.isfile(opt_path):
        raise FileNotFoundError(f'-opt {opt_path}: no such file')
    with open(opt_path) as f:
        opt = yaml.safe_load(f)
    if not isinstance(opt, dict) or 'name' not in opt:
        raise ValueError(f'{opt_path}: not a BasicSR option file (no name:)')
    if opt.get('sampling') is not None:
        check_sampling(opt['sampling'])
    timestep_sampling_kwargs((opt.get('diffusion') or {}).get('timestep_sampling'))
    limit = (opt.get('train') or {}).get('max_nonfinite_steps', 5)
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f'{opt_path}: train: max_nonfinite_steps must be an integer >= 1, got {limit!r}')
    for phase, dataset in (opt.get('datasets') or {}).items():
        root = (dataset or {}).get('dataroot')
        if root is not None and not osp.isdir(root):
            raise FileNotFoundError(f'{opt_path}: datasets: {phase}: dataroot {root}: no such folder')
    for key, value in (opt.get('path') or {}).items():
        if key.startswith(('pretrain_network', 'resume_state')) and value and not osp.isfile(value):
            raise FileNotFoundError(f'{opt_path}: path: {key}: {value}: no such file')
    return opt


def _run_folder(kind, root, opt, argv):
    name = opt['name']
    if kind == 'train':
        if '--debug' in argv and 'debug' not in name:
            name = 'debug_' + name
        return osp.join(root, 'experiments', name)
    return osp.join(root, 'results', name)


def _has_results(folder):
    return any(not f.endswith(BOOKKEEPING) for _, _, files in os.walk(folder) for f in files)


def _has_saves(folder):
    return any(osp.isdir(osp.join(folder, sub)) and any(os.scandir(osp.join(folder, sub)))
               for sub in ('models', 'training_states'))


def _clean_up(folder, siblings_before):
    """After a failed run: drop (or mark) the folder it made; an archived earlier run gets its name back."""
    parent, base = osp.split(folder)
    if not osp.isdir(folder):
        return None
    archived = sorted(s for s in set(os.listdir(parent)) - siblings_before if s.startswith(base + '_archived_'))
    if base in siblings_before and not archived:
        return None  # not made by this run (e.g. --auto_resume)
    if _has_results(folder):
        failed = f'{folder}_failed_{time.strftime("%Y%m%d_%H%M%S")}'
        os.rename(folder, failed)
        return f'partial results moved to {failed}'
    shutil.rmtree(folder)
    if archived:
        os.rename(osp.join(parent, archived[-1]), folder)
    return f'{folder} removed: nothing had been written'


class Terminated(Exception):
    """SIGTERM arrived."""


def _terminate(signum, frame):
    raise Terminated(f'terminated by signal {signum}')


def main(kind, root):
    """Run BasicSR's ``train_pipeline`` or ``test_pipeline`` for ``sys.argv``; returns the exit code."""
    argv, prog = sys.argv[1:], f'{kind}.py'
    debug = '--debug' in argv
    try:
        opt = check_options(_arg(argv, '-opt'))
    except INPUT_ERRORS as err:
        if debug:
            raise
        print(f'{prog}: error: {err}', file=sys.stderr)
        return 2
    folder = _run_folder(kind, root, opt, argv)
    parent = osp.dirname(folder)
    before = set(os.listdir(parent)) if osp.isdir(parent) else set()
    signal.signal(signal.SIGTERM, _terminate)
    if kind == 'train':
        from basicsr.train import train_pipeline as pipeline
    else:
        from basicsr.test import test_pipeline as pipeline
    try:
        pipeline(root)
    except (KeyboardInterrupt, Terminated, NonFiniteTrainingError) + INPUT_ERRORS as err:
        # a training run keeps what it saved (--auto_resume needs it)
        note = _clean_up(folder, before) if kind == 'test' or not _has_saves(folder) else None
        if debug:
            raise
        if isinstance(err, KeyboardInterrupt):
            code, message = 130, 'interrupted'
        elif isinstance(err, Terminated):
            code, message = 128 + signal.SIGTERM, str(err)
        else:
            code, message = (1 if isinstance(err, NonFiniteTrainingError) else 2), str(err)
        print(f'{prog}: error: {message}' + (f' ({note})' if note else ''), file=sys.stderr)
        return code
    return 0
