"""Files this package writes and reads: never a partial file under a final name, never an unpickled one.

``atomic_write_text`` / ``atomic_torch_save`` write to a temporary file in the target's folder and
rename it (a kill leaves the previous file or none); ``safe_torch_load`` reads checkpoints and training
states with ``weights_only=True``; ``read_options`` reads an option file (YAML) with one-line errors.
"""
import functools
import os
import os.path as osp
import re
from collections import Counter

import torch
import yaml

SCIENTIFIC = re.compile(r'^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$')  # 4e-4, 1.5E+3


def safe_torch_load(path, map_location='cpu', mmap=False):
    """``torch.load`` with ``weights_only=True``; BasicSR's schedulers keep a Counter of milestones."""
    with torch.serialization.safe_globals([Counter]):
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


@functools.lru_cache(maxsize=None)
def float_loader(loader=yaml.SafeLoader):
    """``loader`` that also reads ``4e-4`` as a float (YAML 1.2; PyYAML's 1.1 reads it as text)."""
    floats = type('FloatLoader', (loader,), {})
    floats.add_implicit_resolver('tag:yaml.org,2002:float', SCIENTIFIC, list('-+.0123456789'))
    return floats


def read_options(path, flag='-opt'):
    """An option file (YAML) as a dict. ValueError naming ``flag`` and the file when it is missing, not
    YAML or not a mapping."""
    if not osp.isfile(path):
        raise ValueError(f'{flag} {path}: no such option file')
    try:
        with open(path) as f:
            opt = yaml.load(f, Loader=float_loader())
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark is not None else ''
        problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
        raise ValueError(f'{flag} {path}: not a valid YAML option file{where} ({problem})') from None
    if not isinstance(opt, dict):
        raise ValueError(f'{flag} {path}: not an option file (a YAML mapping of options), it holds '
                         f'{type(opt).__name__}')
    return opt


def _write_atomically(path, write):
    """``write(tmp)`` to a temporary file in the same folder as ``path``, then rename: never a partial file."""
    tmp = f'{path}.partial-{os.getpid()}'
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def atomic_write_text(text, path):
    """Write ``text`` to ``path``; never a partial file."""
    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    _write_atomically(path, write)


def atomic_torch_save(obj, path):
    """``torch.save`` to ``path``; never a partial file."""
    _write_atomically(path, lambda tmp: torch.save(obj, tmp))
