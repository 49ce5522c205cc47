"""Files this package writes and reads: never a partial file under a final name, never an unpickled one.

``atomic_write_text`` / ``atomic_torch_save`` write to a temporary file in the target's folder and
rename it (a kill leaves the previous file or none); ``safe_torch_load`` reads checkpoints and training
states with ``weights_only=True``.
"""
import os
import os.path as osp
from collections import Counter

import torch


def safe_torch_load(path, map_location='cpu'):
    """``torch.load`` with ``weights_only=True``; BasicSR's schedulers keep a Counter of milestones."""
    with torch.serialization.safe_globals([Counter]):
        return torch.load(path, map_location=map_location, weights_only=True)


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
