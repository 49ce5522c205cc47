"""Demo checkpoints for committing: float32 tensors stored as float16 (they load into the float32 networks)."""
from basicsr_vdd.file_io import atomic_torch_save, safe_torch_load


def export_half(src, dst, drop=()):
    """Copy a checkpoint with its float32 tensors stored as float16 (demo checkpoints are committed),
    without the top-level entries ``drop`` (e.g. ``params`` when the test loads ``params_ema``)."""
    import torch

    def half(value):
        if isinstance(value, dict):
            return {k: half(v) for k, v in value.items()}
        if torch.is_tensor(value) and value.dtype == torch.float32:
            return value.half()
        return value

    state = safe_torch_load(src)
    missing = [k for k in drop if k not in state]
    if missing:
        raise KeyError(f'{src}: no {missing} to drop; it has {sorted(state)}')
    atomic_torch_save(half({k: v for k, v in state.items() if k not in drop}), dst)
