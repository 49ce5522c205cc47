"""PVDNet's pixel volume (Son et al., ACM TOG 2021), as the public ``pixel_volume.py`` computes it.

For every pixel ``p`` and every offset ``d`` of a ``k x k`` neighbourhood, channel ``d`` holds the
grey value of the previous deblurred frame at ``trunc(q + flow(q)) + d`` with ``q = p - d``: the
candidates that the motion vectors around ``p`` point to. Where such a candidate lies on or
beyond the frame's outermost pixels, the grey value of ``fallback`` (the current blurry frame)
at ``p`` is used instead; where ``q`` lies outside the frame the channel is 0. Channel order:
x offset outer, y offset inner (``(dx + k//2) * k + (dy + k//2)``), as the original.
"""
import torch
import torch.nn.functional as F


def rgb_to_gray(img):
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]`` with the original's weights (0.2989, 0.5870, 0.1140)."""
    weights = img.new_tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1)
    return (img * weights).sum(1, keepdim=True)


def _shift(x, dy, dx):
    """``out[..., y, x] = x[..., y - dy, x - dx]``, zero where that lies outside."""
    h, w = x.shape[-2:]
    r = max(abs(dy), abs(dx))
    padded = F.pad(x, (r, r, r, r))
    return padded[..., r - dy:r - dy + h, r - dx:r - dx + w]


def pixel_volume(prev, flow, fallback, ksize=5):
    """Pixel volume ``[B, ksize^2, H, W]`` of ``prev`` ``[B, 3, H, W]`` along ``flow`` ``[B, 2, H, W]``.

    ``flow`` is in pixels (x then y) and points from the current frame into ``prev``;
    ``fallback`` ``[B, 3, H, W]`` fills candidates at the frame border. Values keep the unit of
    the inputs (the original feeds frames in [-1, 1]).
    """
    b, _, h, w = prev.shape
    gray, fallback_gray = rgb_to_gray(prev).flatten(2), rgb_to_gray(fallback)
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing='ij')
    x = torch.trunc(xs + flow[:, 0]).long()  # the original's int cast: rounds towards zero
    y = torch.trunc(ys + flow[:, 1]).long()
    half = ksize // 2
    out = []
    for dx in range(-half, half + 1):
        for dy in range(-half, half + 1):
            xd, yd = x + dx, y + dy
            index = (yd.clamp(0, h - 1) * w + xd.clamp(0, w - 1)).view(b, 1, h * w)
            values = gray.gather(2, index).view(b, 1, h, w)
            border = ((xd < 1) | (xd > w - 2) | (yd < 1) | (yd > h - 2)).unsqueeze(1).to(prev.dtype)
            values, border = _shift(values, dy, dx), _shift(border, dy, dx)
            out.append(values * (1 - border) + fallback_gray * border)
    return torch.cat(out, 1)
