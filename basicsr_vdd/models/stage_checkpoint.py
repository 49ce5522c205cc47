"""Checkpoints that hold what training changed: the parts a stage trains, never the frozen ones.

A VDD checkpoint (``net_g_<iter>.pth``, written with ``torch.save``, read with
``weights_only=True``) is::

    {'params':     {key: tensor} for every parameter/buffer of the saved parts,
     'params_ema': the same keys, EMA weights (when EMA is on),
     'parts':      ['blur_encoder', 'unet', ...],      # top-level modules of the network
     'meta':       {'stage': 1, 'target': 'sharp', 'residual_scale': ..., ...}}

The frozen VAE and CLIP tower are rebuilt from their own ``pretrained`` files; the parts not in
the checkpoint come from the network's pretrained weights as configured.
"""
import os.path as osp

from basicsr_vdd.file_io import safe_torch_load


def part_state_dict(net, parts):
    """``{key: tensor}`` of every parameter and buffer under the top-level modules ``parts``."""
    prefixes = tuple(f'{p}.' for p in parts)
    return {k: v.detach().cpu() for k, v in net.state_dict().items() if k.startswith(prefixes)}


def load_part_state_dict(net, state, parts, source):
    """Load ``state`` into the ``parts`` of ``net``; every key of those parts must be present.

    Raises a ValueError naming ``source``, the missing and unexpected keys and the shape
    mismatches; nothing is loaded unless everything matches.
    """
    expected = part_state_dict(net, parts)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(f'{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(v.shape)}'
                        for k, v in expected.items() if k in state and state[k].shape != v.shape)
    if missing or unexpected or mismatched:
        lines = [f'{source}: checkpoint does not match parts {list(parts)} of the network']
        for title, keys in (('missing', missing), ('unexpected', unexpected), ('shape mismatch', mismatched)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): ' + ', '.join(keys[:10]) + (' ...' if len(keys) > 10 else ''))
        raise ValueError('\n'.join(lines))
    net.load_state_dict(state, strict=False)


def read_checkpoint(path):
    """Read a stage checkpoint safely; raises a clear error for a missing or foreign file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such checkpoint')
    try:
        ckpt = safe_torch_load(path)
    except Exception as err:  # unpickling refused or corrupt file
        raise ValueError(f'{path}: not a readable weights-only checkpoint ({type(err).__name__}: {err})') from err
    if not isinstance(ckpt, dict) or not {'params', 'params_ema'} & set(ckpt) or 'parts' not in ckpt:
        keys = sorted(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f'{path}: not a VDD checkpoint (expected keys params or params_ema, and parts; found {keys})')
    return ckpt


def checkpoint_state(ckpt, param_key='params'):
    """``(state, key)``: the tensors to load, ``params`` updated with ``key`` (``params_ema`` holds
    the trained tensors only; buffers come from ``params``). ``key`` is ``param_key`` when the file
    has it, else whichever of ``params`` / ``params_ema`` it has (:func:`read_checkpoint` ensures one)."""
    key = param_key if param_key in ckpt else next(k for k in ('params', 'params_ema') if k in ckpt)
    state = dict(ckpt.get('params', {}))
    state.update(ckpt[key])
    return state, key
