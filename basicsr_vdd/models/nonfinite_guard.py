"""Optimizer steps that skip non-finite gradients (a NaN/inf loss), and stop training after N in a row.

Every optimizer built by ``BaseModel.get_optimizer`` (VDD, EDVR, STFAN, SRN) is a
:func:`guarded` subclass of its ``torch.optim`` class. A step whose gradients hold a NaN or inf
does not change the parameters (nor, in VDD and BasicSR's ``model_ema``, the EMA), is logged with
its iteration and counted; after ``train: max_nonfinite_steps`` (default 5) such steps in a row
training stops with :class:`NonFiniteTrainingError`. Checkpoints written before stay as they were.
"""
import functools

import torch

from basicsr.utils import get_root_logger


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive optimizer steps had non-finite gradients."""


def grads_finite(optimizer):
    """True when every gradient the optimizer would apply is finite: their total norm is (a NaN or inf
    propagates into it; computed with fused per-dtype kernels, one device sync)."""
    grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
    if not grads:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


def _skip(optimizer):
    """Bookkeeping before a step: True (and the step skipped, or training stopped) when not finite."""
    if grads_finite(optimizer):
        optimizer.nonfinite_in_row, optimizer.last_step_skipped = 0, False
        return False
    optimizer.nonfinite_in_row += 1
    optimizer.nonfinite_total += 1
    optimizer.last_step_skipped = True
    optimizer.zero_grad(set_to_none=True)
    where = f'iteration {optimizer.current_iter}' if optimizer.current_iter is not None else 'a step'
    get_root_logger().warning(f'Non-finite loss or gradients at {where}: step skipped '
                              f'({optimizer.nonfinite_in_row} in a row, {optimizer.nonfinite_total} in this run).')
    if optimizer.nonfinite_in_row >= optimizer.max_nonfinite_steps:
        raise NonFiniteTrainingError(
            f'training stopped at {where}: {optimizer.nonfinite_in_row} consecutive steps with non-finite loss '
            f'or gradients (train: max_nonfinite_steps = {optimizer.max_nonfinite_steps}). The parameters were not '
            'changed by them; the checkpoints saved before are intact. Lower the learning rate, check the data, '
            'or resume from the last state with --auto_resume.')
    return True


@functools.lru_cache(maxsize=None)
def guarded(cls):
    """``cls`` (a ``torch.optim.Optimizer`` subclass) whose ``step`` skips non-finite gradients."""
    def step(self, closure=None):
        return None if _skip(self) else cls.step(self, closure)

    return type(cls.__name__, (cls,), {'step': step, '__doc__': cls.__doc__, '__module__': __name__,
                                       '__qualname__': f'guarded({cls.__name__})'})


def make_guarded(cls, params, lr, max_nonfinite_steps=5, **kwargs):
    """An instance of ``guarded(cls)`` with its counters."""
    if int(max_nonfinite_steps) < 1:
        raise ValueError(f'train: max_nonfinite_steps must be >= 1, got {max_nonfinite_steps}')
    optimizer = guarded(cls)(params, lr, **kwargs)
    optimizer.max_nonfinite_steps = int(max_nonfinite_steps)
    optimizer.nonfinite_in_row = optimizer.nonfinite_total = 0
    optimizer.last_step_skipped, optimizer.current_iter = False, None
    return optimizer
