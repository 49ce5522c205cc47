"""Safe reading of weight files and strict, explained loading into modules.

Files are read with ``file_io.safe_torch_load`` (``weights_only=True``) or safetensors, never a bare
unpickling.
Formats seen in the wild: a plain state dict, ``{'state_dict': ..., 'step': ...}`` (TF-T2V),
``{'state_dict': {'first_stage_model.*': ...}}`` (Stable Diffusion ``.ckpt``), ``{'params': ...}``
(BasicSR). A mismatch raises :class:`CheckpointMismatchError` naming the file, the missing and
unexpected keys and the shape differences.
"""
import os.path as osp

import torch

from basicsr_vdd.file_io import safe_torch_load


class CheckpointMismatchError(ValueError):
    """A weight file does not fit the module it is loaded into."""


def read_state_dict(path, unwrap=('state_dict', 'params', 'model')):
    """``{key: tensor}`` from ``path`` (.pth/.pt/.ckpt/.bin or .safetensors), unwrapping known containers."""
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{path}: weight file not found')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    try:
        obj = safe_torch_load(path, mmap=True)
    except RuntimeError:  # not a zip archive (legacy format): mmap is impossible, weights_only still applies
        obj = _load_plain(path)
    except Exception as err:
        raise CheckpointMismatchError(f'{path}: not a weights-only PyTorch file ({type(err).__name__}: {err})') from err
    for key in unwrap:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointMismatchError(f'{path}: no state dict of tensors inside (top-level type {type(obj).__name__})')
    return obj


def _load_plain(path):
    try:
        return safe_torch_load(path)
    except Exception as err:
        raise CheckpointMismatchError(f'{path}: not a weights-only PyTorch file ({type(err).__name__}: {err})') from err


def describe_mismatch(source, expected, state, allowed_missing=(), allowed_unexpected=()):
    """Message lines for keys/shapes that differ between ``expected`` {key: shape} and ``state``; [] if none."""
    missing = sorted(k for k in set(expected) - set(state) if not k.startswith(tuple(allowed_missing)))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.startswith(tuple(allowed_unexpected)))
    shapes = sorted(f'{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k])}'
                    for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k]))
    lines = []
    for title, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes)):
        if items:
            lines.append(f'  {title} ({len(items)}): ' + ', '.join(items[:8]) + (' ...' if len(items) > 8 else ''))
    return [f'{source}: does not match the module'] + lines if lines else []


def load_strict(module, state, source):
    """``module.load_state_dict(state)`` after checking keys and shapes; raises with the whole story."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    lines = describe_mismatch(source, expected, state)
    if lines:
        raise CheckpointMismatchError('\n'.join(lines))
    module.load_state_dict(state, strict=True)
