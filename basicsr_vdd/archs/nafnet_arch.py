"""NAFNet: nonlinear activation free network for image restoration (Chen et al., ECCV 2022).

A U-Net of NAFBlocks: LayerNorm over channels, 1x1 conv to twice the width, 3x3 depth-wise conv,
SimpleGate (the two channel halves multiplied), simplified channel attention (global average
pool + 1x1 conv, multiplied in), 1x1 conv, learned residual scale ``beta``; then a feed-forward
part (LayerNorm, 1x1 conv to twice the width, SimpleGate, 1x1 conv, residual scale ``gamma``).
Down-sampling: 2x2 conv with stride 2 doubling the channels; up-sampling: 1x1 conv doubling the
channels + PixelShuffle(2); skips are added. Same layers, options and parameter names as the
public ``NAFNet_arch.py``: GoPro width 32 (17.11 M) and width 64 (67.89 M) with
``enc_blk_nums [1, 1, 1, 28]``, ``middle_blk_num 1``, ``dec_blk_nums [1, 1, 1, 1]``.
A single-image model: ``[B, T, 3, H, W]`` clips are deblurred frame by frame.
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


class _LayerNorm2d(nn.Module):
    """LayerNorm over the channels of ``[B, C, H, W]`` at every pixel (biased variance, eps 1e-6)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        x = F.layer_norm(rearrange(x, 'b c h w -> b h w c'), x.shape[1:2], self.weight, self.bias, self.eps)
        return rearrange(x, 'b h w c -> b c h w')


class _LocalAvgPool(nn.Module):
    """TLC's local pooling (the original ``NAFNetLocal``): box mean over ``kernel`` (valid windows,
    replicate-padded back to the input size); the global mean when the kernel covers the input."""

    def __init__(self, kernel):
        super().__init__()
        self.kernel = tuple(kernel)

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.kernel[0] >= h and self.kernel[1] >= w:
            return F.adaptive_avg_pool2d(x, 1)
        k1, k2 = min(h, self.kernel[0]), min(w, self.kernel[1])
        # box sums from the integral image (O(HW) whatever the window; avg_pool2d is O(HW k1 k2))
        s = F.pad(x.cumsum(-1).cumsum(-2), (1, 0, 1, 0))
        out = (s[..., k1:, k2:] - s[..., :-k1, k2:] - s[..., k1:, :-k2] + s[..., :-k1, :-k2]) / (k1 * k2)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode='replicate')

    def extra_repr(self):
        return f'kernel={self.kernel}'


def _simple_gate(x):
    a, b = x.chunk(2, dim=1)
    return a * b


class _NAFBlock(nn.Module):

    def __init__(self, c, dw_expand=2, ffn_expand=2, drop_out_rate=0., pool_kernel=None):
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        pool = nn.AdaptiveAvgPool2d(1) if pool_kernel is None else _LocalAvgPool(pool_kernel)
        self.sca = nn.Sequential(pool, nn.Conv2d(dw // 2, dw // 2, 1))
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1, self.norm2 = _LayerNorm2d(c), _LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = _simple_gate(self.conv2(self.conv1(self.norm1(inp))))
        x = self.dropout1(self.conv3(x * self.sca(x)))
        y = inp + x * self.beta
        x = self.conv5(_simple_gate(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


@ARCH_REGISTRY.register()
class NAFNet(nn.Module):
    """``forward(x)``: ``x`` ``[B, C, H, W]`` or ``[B, T, C, H, W]`` in [0, 1] -> deblurred, same shape.

    Any H, W: zero-padded to a multiple of ``2 ** len(enc_blk_nums)`` and cropped back, as the
    original. ``frame_chunk`` (default: all) bounds how many frames of a clip go through at once.
    ``tlc_train_size`` ([H, W] of the training crops, e.g. [256, 256]) turns on the test-time
    local converter of the original's ``NAFNetLocal`` (Chu et al. 2022): channel attention
    averages over windows of ``tlc_ratio`` (1.5) x the training crop at every level instead of
    the whole frame; on inputs no larger than that window it is the plain global mean.
    No parameters change: NAFNet and NAFNetLocal checkpoints are interchangeable.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(),
                 frame_chunk=None, tlc_train_size=None, tlc_ratio=1.5):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f'enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} differ in length')
        self.frame_chunk = frame_chunk

        def block(c, level):
            kernel = None
            if tlc_train_size is not None:  # the original's window: feature size at the crop x base // crop
                kernel = [(t // 2 ** level) * int(t * tlc_ratio) // t for t in tlc_train_size]
            return _NAFBlock(c, pool_kernel=kernel)

        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.ups = nn.ModuleList(), nn.ModuleList()
        chan = width
        for level, num in enumerate(enc_blk_nums):
            self.encoders.append(nn.Sequential(*[block(chan, level) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[block(chan, len(enc_blk_nums)) for _ in range(middle_blk_num)])
        for level, num in zip(range(len(dec_blk_nums) - 1, -1, -1), dec_blk_nums):
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[block(chan, level) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def forward_image(self, inp):
        """``[B, C, H, W]`` -> ``[B, C, H, W]``."""
        h, w = inp.shape[-2:]
        inp = F.pad(inp, (0, (-w) % self.padder_size, 0, (-h) % self.padder_size))
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)
        return (self.ending(x) + inp)[..., :h, :w]

    def forward(self, x):
        if x.dim() == 4:
            return self.forward_image(x)
        frames = rearrange(x, 'b t c h w -> (b t) c h w')
        chunk = self.frame_chunk or frames.shape[0]
        out = torch.cat([self.forward_image(frames[i:i + chunk]) for i in range(0, frames.shape[0], chunk)])
        return rearrange(out, '(b t) c h w -> b t c h w', b=x.shape[0])
