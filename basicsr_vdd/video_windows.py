"""Any length, any size: temporal windows with blended overlaps and padding to a size multiple.

Plain torch; used by the VDD model's validation/test and by ``scripts/deblur_video.py``.
"""
import torch
import torch.nn.functional as F


def temporal_windows(num_frames, size, overlap):
    """Start/end indices ``[(s, e), ...]`` of windows of ``size`` frames covering ``num_frames``.

    Consecutive windows share ``overlap`` frames (more for the last one, which is moved back so
    that it ends at the last frame). A video shorter than ``size`` is one window.
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f'window size {size} and overlap {overlap}: need size >= 1 and 0 <= overlap < size')
    if num_frames <= size:
        return [(0, num_frames)]
    stride = size - overlap
    starts = list(range(0, num_frames - size, stride)) + [num_frames - size]
    return [(s, s + size) for s in starts]


def window_weights(start, end, num_frames, overlap, dtype=torch.float32):
    """Per-frame blending weights ``[end - start]``: linear ramps over the overlaps, 1 elsewhere.

    The ramps are not applied at the video's first and last frame, so that every frame's weights
    over all windows sum to a positive number (they are normalised by the caller).
    """
    n = end - start
    w = torch.ones(n, dtype=dtype)
    if overlap > 0:
        ramp = torch.arange(1, overlap + 1, dtype=dtype) / (overlap + 1)
        k = min(overlap, n)
        if start > 0:
            w[:k] = torch.minimum(w[:k], ramp[:k])
        if end < num_frames:
            w[n - k:] = torch.minimum(w[n - k:], ramp[:k].flip(0))
    return w


def run_windowed(fn, video, size, overlap):
    """Apply ``fn`` to temporal windows of ``video`` ``[B, C, N, H, W]`` and blend the overlaps.

    ``fn(clip, start, end)`` takes ``[B, C, end - start, H, W]`` and returns a tensor of the same
    frame count (channels and spatial size may differ from the input's). Blending is a weighted
    mean with :func:`window_weights`, accumulated on the output's device in float32.
    """
    num_frames = video.shape[2]
    out, total = None, torch.zeros(num_frames)
    for start, end in temporal_windows(num_frames, size, overlap):
        clip = fn(video[:, :, start:end], start, end)
        if clip.shape[2] != end - start:
            raise ValueError(f'window [{start}, {end}) returned {clip.shape[2]} frames')
        w = window_weights(start, end, num_frames, overlap)
        if out is None:
            out = clip.new_zeros(clip.shape[:2] + (num_frames,) + clip.shape[3:], dtype=torch.float32)
        out[:, :, start:end] += clip.float() * w.to(clip.device).view(1, 1, -1, 1, 1)
        total[start:end] += w
    return out / total.to(out.device).view(1, 1, -1, 1, 1)


def pad_to_multiple(x, multiple, mode='reflect'):
    """Pad the last two dims of ``x`` (any leading dims) up to a multiple; returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, h, w)
    if mode == 'reflect' and (ph >= h or pw >= w):
        mode = 'replicate'  # reflection needs the pad to be smaller than the size
    flat = F.pad(flat, (0, pw, 0, ph), mode=mode)
    return flat.reshape(*lead, h + ph, w + pw), (h, w)
