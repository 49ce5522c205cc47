"""PVDNet: recurrent video deblurring with blur-invariant motion and pixel volumes (Son et al., TOG 2021).

One step deblurs the current frame from the previous, current and next blurry frames and the
previous deblurred frame: BIMNet (:mod:`.bimnet_arch`) estimates the motion from the current to
the previous blurry frame, the pixel volume (:mod:`.pixel_volume`) gathers 5x5 grey candidates
of the previous deblurred frame along it, and the deblurring network (two input branches, an
encoder with two stride-2 5x5 convs, 12 residual blocks at 128 channels, two transposed-conv
decoder stages with skips, a global residual) restores the current frame. Same layers, order and
initialisation (Xavier uniform, zero bias) as the public ``PVDNet.py``/``trainer.py``
(BIMNet 5,381,969 + deblurring network 5,132,579 = 10,514,548 parameters). The original works
on frames in [-1, 1] (BIMNet on [0, 1]); this module takes and returns [0, 1] and converts
inside, so that the original's weights would keep their meaning.
"""
import re

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

from .bimnet_arch import BIMNet
from .pixel_volume import pixel_volume


_ORIGINAL_NAMES = [  # (pattern, replacement) from the public code's DeblurNet keys to ours, in turn
    (r'^module\.', ''), (r'^BIMNet\.', 'bimnet.'), (r'^PVDNet\.', 'deblur.'),
    (r'moduleFeatures\.module(One|Fiv|Six)\.0\.', lambda m: f'features.{m[1].lower()}.0.'),
    (r'moduleFeatures\.module(Two|Thr|Fou)\.(\d)\.', lambda m: f'features.{m[1].lower()}.{int(m[2]) // 2}.0.'),
    (r'moduleMatching', 'matching'), (r'moduleSubpixel', 'subpixel'), (r'moduleRegularization', 'regularization'),
    (r'moduleFeat', 'feat'), (r'moduleUpflow', 'upflow'), (r'moduleUpcorr', 'upcorr'), (r'moduleMain', 'main'),
    (r'moduleDist', 'dist'), (r'moduleScaleX', 'scale_x'), (r'moduleScaleY', 'scale_y'),
    (r'\.PV_dec\.', '.pv_dec.'), (r'\.RBs\.', '.blocks.'), (r'\.RB_end\.', '.block_end.'),
]


def convert_original_state_dict(state):
    """The public code's ``DeblurNet`` state dict (``BIMNet.*``, ``PVDNet.*``, optionally ``module.``)
    -> this :class:`PVDNet`'s keys (same tensors: the layers are the same, in the same order)."""
    out = {}
    for key, value in state.items():
        for pattern, repl in _ORIGINAL_NAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def _conv_relu(cin, cout, k, stride=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2), nn.ReLU()]


class _DeblurNet(nn.Module):
    """The original ``PVDNet.Network``: ``(pv, prev, curr, next)`` in [-1, 1] -> current frame."""

    def __init__(self, pv_channels=25, feat=64, img_feat=32, mid=128, num_blocks=12):
        super().__init__()
        self.pv_dec = nn.Sequential(*_conv_relu(pv_channels, feat, 3), *_conv_relu(feat, feat, 3))
        self.img_dec = nn.Sequential(*_conv_relu(9, img_feat, 3), *_conv_relu(img_feat, img_feat, 3))
        self.d0 = nn.Conv2d(feat + img_feat, feat, 5, 1, 2)
        self.d1 = nn.Sequential(*_conv_relu(feat, feat, 5, 2), nn.Conv2d(feat, feat, 5, 1, 2))
        self.temp = nn.Sequential(*_conv_relu(feat, mid, 5, 2), *_conv_relu(mid, mid, 5))
        self.blocks = nn.ModuleList(
            [nn.Sequential(*_conv_relu(mid, mid, 3), *_conv_relu(mid, mid, 3)) for _ in range(num_blocks)])
        self.block_end = nn.Sequential(*_conv_relu(mid, mid, 3))
        self.dconv1 = nn.ConvTranspose2d(mid, feat, 4, 2, 1)
        self.dconv1_end = nn.Sequential(nn.ReLU(), *_conv_relu(feat, feat, 5))
        self.dconv2 = nn.ConvTranspose2d(feat, feat, 4, 2, 1)
        self.dconv2_end = nn.Sequential(nn.ReLU(), *_conv_relu(feat, feat, 5))
        self.end = nn.Conv2d(feat, 3, 5, 1, 2)

    def forward(self, pv, prev, curr, nxt):
        x = torch.cat([self.pv_dec(pv), self.img_dec(torch.cat([curr, prev, nxt], 1))], 1)
        d0 = self.d0(x)
        d1 = self.d1(d0)
        temp = self.temp(d1)
        x = temp
        for block in self.blocks:
            x = x + block(x)
        x = self.block_end(x) + temp
        x = self.dconv1_end(self.dconv1(x) + d1)
        x = self.dconv2_end(self.dconv2(x) + d0)
        return curr + self.end(x)


@ARCH_REGISTRY.register()
class PVDNet(nn.Module):
    """``forward(prev, curr, nxt, prev_deblurred)`` on ``[B, 3, H, W]`` in [0, 1] -> ``[B, 3, H, W]``.

    H and W: multiples of 4 (``forward_video`` pads); BIMNet sees the top-left crop of multiples
    of 32 and the flow is 0 beyond it, as the original. Options: ``pv_ksize`` (5), the deblurring
    network's widths ``feat`` (64), ``img_feat`` (32), ``mid`` (128) and ``num_blocks`` (12);
    ``fix_bimnet``: BIMNet's parameters do not require gradients (the original's second stage;
    set here, before any DistributedDataParallel wrapping, so that DDP leaves them out).
    """

    def __init__(self, pv_ksize=5, feat=64, img_feat=32, mid=128, num_blocks=12, fix_bimnet=False):
        super().__init__()
        self.pv_ksize = pv_ksize
        self.bimnet = BIMNet()
        self.deblur = _DeblurNet(pv_ksize ** 2, feat, img_feat, mid, num_blocks)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.bimnet.requires_grad_(not fix_bimnet)

    def flow(self, curr, prev):
        """BIMNet's motion ``[B, 2, H, W]`` (pixels) from ``curr`` to ``prev`` (both ``[B, 3, H, W]`` in [0, 1])."""
        h, w = curr.shape[-2:]
        rh, rw = h - h % 32, w - w % 32
        if rh == 0 or rw == 0:
            raise ValueError(f'PVDNet needs frames of at least 32x32 for BIMNet, got {w}x{h}')
        flow = self.bimnet(curr[..., :rh, :rw], prev[..., :rh, :rw])
        flow = F.interpolate(flow, size=(rh, rw), mode='bilinear', align_corners=False)
        return F.pad(flow, (0, w - rw, 0, h - rh))

    def forward(self, prev, curr, nxt, prev_deblurred, flow_pairs=None):
        """The deblurred current frame; with ``flow_pairs`` (a list of ``(first, second)`` frame
        pairs, possibly empty) also the list of flows: current to previous blurry frame, then
        :meth:`flow` of every pair (the blur-invariant loss's, inside one forward for DDP)."""
        flow = self.flow(curr, prev)
        prev_s, curr_s, next_s, deblurred_s = (x * 2 - 1 for x in (prev, curr, nxt, prev_deblurred))
        pv = pixel_volume(deblurred_s, flow, curr_s, self.pv_ksize)
        out = (self.deblur(pv, prev_s, curr_s, next_s) + 1) / 2
        if flow_pairs is None:
            return out
        return out, [flow] + [self.flow(first, second) for first, second in flow_pairs]

    def forward_video(self, lq):
        """Deblur ``lq`` ``[B, T, 3, H, W]`` (any H, W >= 32: padded to multiples of 4) -> ``[B, T, 3, H, W]``.

        As the original's evaluation: neighbours are clamped at the ends of the video and the
        first frame's previous deblurred frame is the first blurry frame.
        """
        b, t, c, h, w = lq.shape
        ph, pw = (-h) % 4, (-w) % 4
        frames = F.pad(lq.flatten(0, 1), (0, pw, 0, ph), mode='replicate').view(b, t, c, h + ph, w + pw)
        deblurred, outs = frames[:, 0], []
        for i in range(t):
            deblurred = self(frames[:, max(i - 1, 0)], frames[:, i], frames[:, min(i + 1, t - 1)], deblurred)
            outs.append(deblurred[..., :h, :w])
        return torch.stack(outs, 1)
