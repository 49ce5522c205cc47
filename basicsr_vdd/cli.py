"""``train.py`` / ``test.py``: BasicSR's own pipelines, with the options BasicSR will run (the file, then
``--force_yml``) checked before any folder is made (:mod:`basicsr_vdd.option_checks`), one-line errors
for bad input, and nothing left behind by a run that failed or was interrupted.

Exit codes: 0 done; 2 a bad option, path, dataset or checkpoint (one line on stderr naming it); 1
training stopped on non-finite losses; 130/143 interrupted (Ctrl-C / SIGTERM,
:mod:`basicsr_vdd.interrupts`). ``--debug`` (BasicSR's debug mode) shows the traceback instead. A
folder the run created (``experiments/<name>`` or ``results/<name>``) is removed when it failed
before writing any checkpoint or result; one with partial results is renamed
``<name>_failed_<time>``; an ``_archived_`` copy BasicSR made of an earlier run gets its name back.
A training run keeps the checkpoints and states it saved (``--auto_resume`` continues from them).
"""
import os
import os.path as osp
import shutil
import signal
import sys
import time

import yaml

from basicsr_vdd import distributed, interrupts, option_checks
from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError
from basicsr_vdd.data.video_io import VideoDataError
from basicsr_vdd.models.nonfinite_guard import NonFiniteTrainingError

INPUT_ERRORS = (VideoDataError, CheckpointMismatchError, ValueError, OSError, KeyError, yaml.YAMLError)
BOOKKEEPING = ('.log', '.yml', '.yaml')  # what a run writes before any result


def _run_folder(kind, root, opt):
    return osp.join(root, 'experiments' if kind == 'train' else 'results', opt['name'])


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
        note = f'partial results moved to {failed}'
    else:
        shutil.rmtree(folder)
        note = f'{folder} removed: nothing had been written'
    if archived:
        os.rename(osp.join(parent, archived[-1]), folder)
        note += f'; the earlier run is {folder} again'
    return note


def _close_progress_bars():
    """End open tqdm bars (their line) so that the error is a line of its own, the last one."""
    tqdm = getattr(sys.modules.get('tqdm'), 'tqdm', None)
    for bar in list(getattr(tqdm, '_instances', ())):
        bar.close()


def _exit_code(err):
    if isinstance(err, interrupts.INTERRUPTS):
        return interrupts.exit_code_and_message(err)
    return (1 if isinstance(err, NonFiniteTrainingError) else 2), str(err)


def _pipeline(kind):
    if kind == 'train':
        from basicsr.train import train_pipeline
        return train_pipeline
    from basicsr.test import test_pipeline
    return test_pipeline


def main(kind, root):
    """Run BasicSR's ``train_pipeline`` or ``test_pipeline`` for ``sys.argv``; returns the exit code."""
    previous = {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS}
    interrupts.install()  # first: a signal from here on is an exit code, never a traceback or a partial folder
    try:
        return _main(kind, root)
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)  # in-process callers (tests) get their handlers back


def _main(kind, root):
    argv, prog = sys.argv[1:], f'{kind}.py'
    debug, folder, before = '--debug' in argv, None, set()
    try:
        option_checks.use_yaml_floats()
        opt = option_checks.check_options(option_checks.parse_args(argv), kind, root)
        folder = _run_folder(kind, root, opt)
        parent = osp.dirname(folder)
        before = set(os.listdir(parent)) if osp.isdir(parent) else set()
        _pipeline(kind)(root)
        interrupts.raise_if_received()  # the Terminated exception was swallowed on the way
        distributed.close()
    except interrupts.INTERRUPTS + (NonFiniteTrainingError,) + INPUT_ERRORS as err:
        for signum in interrupts.SIGNALS:  # a second Ctrl-C or SIGTERM must not stop the clean-up
            signal.signal(signum, signal.SIG_IGN)
        distributed.close(wait=False)
        # a training run keeps what it saved (--auto_resume needs it)
        keep = folder is None or (kind == 'train' and _has_saves(folder))
        note = None if keep else _clean_up(folder, before)
        if debug:
            raise
        code, message = _exit_code(err)
        _close_progress_bars()
        print(f'{prog}: error: {message}' + (f' ({note})' if note else ''), file=sys.stderr)
        return code
    return 0
