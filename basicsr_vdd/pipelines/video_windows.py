"""Any length, any size: temporal windows and spatial tiles with blended overlaps, padding to a size multiple.

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


def run_windowed(fn, video, size, overlap, tile=0, tile_overlap=0):
    """Apply ``fn`` to windows of ``video`` ``[B, C, N, H, W]`` and blend the overlaps.

    Windows are ``size`` frames overlapping by ``overlap`` (:func:`temporal_windows`) and, when
    ``tile`` > 0, spatial tiles of ``tile`` x ``tile`` pixels overlapping by ``tile_overlap``
    (the same placement along H and W; a side not larger than ``tile`` is one tile).
    ``fn(clip, (t0, y0, x0))`` takes ``[B, C, f, h, w]`` at that offset and returns
    ``[B, C', f, h, w]``. Blending is a weighted mean with the product of the per-axis
    :func:`window_weights`, accumulated on the output's device in float32.
    """
    n, h, w = video.shape[2:]
    spans_t = temporal_windows(n, size, overlap)
    spans_y = temporal_windows(h, tile, tile_overlap) if tile else [(0, h)]
    spans_x = temporal_windows(w, tile, tile_overlap) if tile else [(0, w)]
    out, total = None, torch.zeros(n, h, w)
    for t0, t1 in spans_t:
        for y0, y1 in spans_y:
            for x0, x1 in spans_x:
                clip = fn(video[:, :, t0:t1, y0:y1, x0:x1], (t0, y0, x0))
                if clip.shape[2:] != (t1 - t0, y1 - y0, x1 - x0):
                    raise ValueError(f'window at {(t0, y0, x0)} of {(t1 - t0, y1 - y0, x1 - x0)} returned '
                                     f'{tuple(clip.shape[2:])}')
                weight = (window_weights(t0, t1, n, overlap).view(-1, 1, 1)
                          * window_weights(y0, y1, h, tile_overlap).view(1, -1, 1)
                          * window_weights(x0, x1, w, tile_overlap).view(1, 1, -1))
                if out is None:
                    out = clip.new_zeros(clip.shape[:2] + (n, h, w), dtype=torch.float32)
                out[:, :, t0:t1, y0:y1, x0:x1] += clip.float() * weight.to(clip.device)
                total[t0:t1, y0:y1, x0:x1] += weight
    return out / total.to(out.device)


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


def stream_windowed(fn, frames, num_frames, size, overlap, tile=0, tile_overlap=0):
    """:func:`run_windowed` over a stream, yielding each output frame as soon as it is final.

    ``frames`` yields ``num_frames`` input frames ``[B, C, H, W]``; yields output frames
    ``[B, C', H, W]`` (float32) in order. Only the frames of the current window and the overlap
    with the next are held, so memory does not grow with the video's length. Windows, tiles,
    weights and the order of the blending sums are those of :func:`run_windowed`: the result is
    bit for bit the same.
    """
    spans_t = temporal_windows(num_frames, size, overlap)
    source, inputs, acc, total = iter(frames), {}, {}, {}
    read = written = 0
    for k, (t0, t1) in enumerate(spans_t):
        while read < t1:
            try:
                inputs[read] = next(source)
            except StopIteration:
                raise ValueError(f'the frame stream ended after {read} of {num_frames} frames') from None
            read += 1
        video = torch.stack([inputs[i] for i in range(t0, t1)], dim=2)
        h, w = video.shape[-2:]
        spans_y = temporal_windows(h, tile, tile_overlap) if tile else [(0, h)]
        spans_x = temporal_windows(w, tile, tile_overlap) if tile else [(0, w)]
        for y0, y1 in spans_y:
            for x0, x1 in spans_x:
                clip = fn(video[:, :, :, y0:y1, x0:x1], (t0, y0, x0))
                if clip.shape[2:] != (t1 - t0, y1 - y0, x1 - x0):
                    raise ValueError(f'window at {(t0, y0, x0)} of {(t1 - t0, y1 - y0, x1 - x0)} returned '
                                     f'{tuple(clip.shape[2:])}')
                weight = (window_weights(t0, t1, num_frames, overlap).view(-1, 1, 1)
                          * window_weights(y0, y1, h, tile_overlap).view(1, -1, 1)
                          * window_weights(x0, x1, w, tile_overlap).view(1, 1, -1))
                weighted = clip.float() * weight.to(clip.device)
                for j, i in enumerate(range(t0, t1)):
                    if i not in acc:
                        acc[i] = clip.new_zeros(clip.shape[:2] + (h, w), dtype=torch.float32)
                        total[i] = torch.zeros(h, w)
                    acc[i][:, :, y0:y1, x0:x1] += weighted[:, :, j]
                    total[i][y0:y1, x0:x1] += weight[j]
        final = spans_t[k + 1][0] if k + 1 < len(spans_t) else num_frames
        for i in range(written, final):
            out = acc.pop(i)
            yield out / total.pop(i).to(out.device)
            inputs.pop(i, None)
        written = max(written, final)
