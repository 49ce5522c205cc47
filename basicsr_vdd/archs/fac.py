"""Filter-adaptive convolution (FAC) of STFAN in pure torch (the original is a CUDA op).

``out[n, c, y, x] = sum_{i, j} filters[n, c*k*k + i*k + j, y, x] * feat_pad[n, c, y + i, x + j]``:
one k x k filter per pixel and per channel, rows first, the feature map replicate-padded by
(k - 1) / 2 as the original ``KernelConv2D`` module does.
"""
import torch.nn.functional as F


def filter_adaptive_conv(feat, filters, k):
    """``feat`` ``[B, C, H, W]``, ``filters`` ``[B, C*k*k, H, W]`` -> ``[B, C, H, W]``.

    Memory: the unfolded patches are ``B*C*k*k*H*W`` values (the size of ``filters``).
    """
    b, c, h, w = feat.shape
    if filters.shape != (b, c * k * k, h, w):
        raise ValueError(f'filters {tuple(filters.shape)} do not fit features {tuple(feat.shape)} with k={k}')
    pad = (k - 1) // 2
    patches = F.unfold(F.pad(feat, (pad, pad, pad, pad), mode='replicate'), k)  # [B, C*k*k, H*W], (c, i, j) order
    out = (patches.view(b, c, k * k, h * w) * filters.reshape(b, c, k * k, h * w)).sum(2)
    return out.view(b, c, h, w)
