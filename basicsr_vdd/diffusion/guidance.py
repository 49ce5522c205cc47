"""Classifier-free guidance over a conditional v-model: ``v = v_u + s (v_c - v_u)``.

A model here is ``model(x_t [B, C, F, H, W], t int64 [B], cond: dict of [B, ...] tensors) -> v``.
"""
import torch


def cat_conditions(a, b):
    """Concatenate two condition dicts along the batch dimension (same keys)."""
    if a.keys() != b.keys():
        raise ValueError(f'cond and uncond have different keys: {sorted(a)} vs {sorted(b)}')
    return {k: None if a[k] is None else torch.cat([a[k], b[k]]) for k in a}


def guided(model, cond, uncond, scale, batched=True):
    """``fn(x_t, t) -> v`` with guidance scale ``scale``; ``scale == 1`` runs the conditional branch only.

    ``batched`` evaluates both branches in one forward of twice the batch (faster on GPUs when
    memory allows); otherwise two forwards.
    """
    if scale == 1:
        return lambda x, t: model(x, t, cond)

    def fn(x, t):
        if batched:
            v_c, v_u = model(torch.cat([x, x]), torch.cat([t, t]), cat_conditions(cond, uncond)).chunk(2)
        else:
            v_c, v_u = model(x, t, cond), model(x, t, uncond)
        return v_u + scale * (v_c - v_u)

    return fn
