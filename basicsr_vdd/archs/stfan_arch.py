"""STFAN: Spatio-Temporal Filter Adaptive Network for video deblurring (Zhou et al., ICCV 2019).

Recurrent: each step sees the current blurry frame, the previous blurry frame and the previous
restored frame. A filter-prediction branch produces per-pixel, per-channel 5x5 alignment filters
(applied to the previous step's features) and deblurring filters (applied to the current
frame's features) through filter-adaptive convolutions (:mod:`.fac`). Widths 32/64/128 give the
original's 5.37 M parameters. Frames ``[B, 3, H, W]`` in [0, 1]; H and W multiples of 4 inside
``forward`` (``forward_video`` pads).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

from .fac import filter_adaptive_conv


def _conv(cin, cout, k, stride=1, slope=0.1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2), nn.LeakyReLU(slope, inplace=True))


def _upconv(cin, cout, slope=0.1):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.LeakyReLU(slope, inplace=True))


class _ResBlock(nn.Module):
    def __init__(self, ch, k, slope=0.1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(ch, ch, k, 1, (k - 1) // 2), nn.LeakyReLU(slope, inplace=True),
                                  nn.Conv2d(ch, ch, k, 1, (k - 1) // 2))

    def forward(self, x):
        return self.stem(x) + x


def _level(cin, cout, k, stride):
    """conv (stride) + two residual blocks: one encoder level."""
    return nn.Sequential(_conv(cin, cout, k, stride), _ResBlock(cout, k), _ResBlock(cout, k))


@ARCH_REGISTRY.register()
class STFAN(nn.Module):
    """``forward(blur, blur_prev, restored_prev, state=None) -> (restored, state)`` on ``[B, 3, H, W]``."""

    def __init__(self, channels=(32, 64, 128), kernel_size=3, filter_size=5):
        super().__init__()
        c1, c2, c3 = channels
        k, f = kernel_size, filter_size
        self.filter_size = f
        # deblurring branch
        self.encoder = nn.Sequential(_level(3, c1, k, 1), _level(c1, c2, k, 2), _level(c2, c3, k, 2))
        self.state_fuse = _conv(2 * c3, c3, k)
        self.decoder = nn.Sequential(_upconv(2 * c3, c2), _ResBlock(c2, k), _ResBlock(c2, k),
                                     _upconv(c2, c1), _ResBlock(c1, k), _ResBlock(c1, k))
        self.to_image = _conv(c1, 3, k)  # LeakyReLU on the residual too, as the original
        # filter prediction branch: current blurry, previous blurry, previous restored
        self.filter_encoder = nn.Sequential(_level(9, c1, k, 1), _level(c1, c2, k, 2), _level(c2, c3, k, 2))
        self.align_filters = nn.Sequential(_conv(c3, c3, k), _ResBlock(c3, k), _ResBlock(c3, k),
                                           _conv(c3, c3 * f * f, 1))
        self.align_to_features = _conv(c3 * f * f, c3, 1)
        self.deblur_filters = nn.Sequential(_conv(2 * c3, c3, k), _ResBlock(c3, k), _ResBlock(c3, k),
                                            _conv(c3, c3 * f * f, 1))

    def forward(self, blur, blur_prev, restored_prev, state=None):
        kfeat = self.filter_encoder(torch.cat([blur, blur_prev, restored_prev], 1))
        align = self.align_filters(kfeat)
        deblur = self.deblur_filters(torch.cat([kfeat, self.align_to_features(align)], 1))
        feat = self.encoder(blur)
        feat_deblurred = filter_adaptive_conv(feat, deblur, self.filter_size)
        if state is None:
            state = torch.cat([feat, feat], 1)
        aligned = filter_adaptive_conv(self.state_fuse(state), align, self.filter_size)
        state = torch.cat([feat_deblurred, aligned], 1)
        return self.to_image(self.decoder(state)) + blur, state

    def forward_video(self, lq, detach=True):
        """Run over ``lq`` ``[B, T, 3, H, W]`` (any H, W: padded to multiples of 4) -> ``[B, T, 3, H, W]``.

        The first step uses the first blurry frame as previous blurry and previous restored frame;
        the restored frame fed back is clamped to [0, 1]; ``detach`` cuts the graph between frames.
        """
        h, w = lq.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        frames = F.pad(lq.flatten(0, 1), (0, pw, 0, ph), mode='replicate').view(*lq.shape[:3], h + ph, w + pw)
        blur_prev, restored_prev, state, outs = frames[:, 0], frames[:, 0], None, []
        for t in range(frames.shape[1]):
            out, state = self(frames[:, t], blur_prev, restored_prev, state)
            outs.append(out[..., :h, :w])
            blur_prev, restored_prev = frames[:, t], out.clamp(0, 1)
            if detach:
                restored_prev, state = restored_prev.detach(), state.detach()
        return torch.stack(outs, 1)
