"""BIMNet: PVDNet's blur-invariant motion estimation network (Son et al., ACM TOG 2021).

The public PVDNet code uses LiteFlowNet's layout (Hui et al., CVPR 2018, in the PyTorch port it
ships) as BIMNet, trained from scratch with the blur-invariant loss: a 6-level feature pyramid
(32, 32, 64, 96, 128, 192 channels) and, coarse to fine over levels 6..2 (strides 32..2), a
matching step (7x7 cost volume, max displacement 3; at levels 2 and 3 computed with stride 2 and
upsampled by a depth-wise transposed conv), a sub-pixel refinement step and a flow
regularisation step (feature-driven local smoothing). Same layers in the same order as the
original (5,381,969 parameters). The cost volume is written here with tensor slicing (the
original uses a CuPy kernel); it is the same: channel ``(dy + 3) * 7 + (dx + 3)``, mean over the
feature channels, zero outside the frame.
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from basicsr.archs.arch_util import flow_warp
from basicsr.utils.registry import ARCH_REGISTRY

_BACKWARD = {2: 10.0, 3: 5.0, 4: 2.5, 5: 1.25, 6: 0.625}  # flow -> pixels at that level
_KERNEL = {2: 7, 3: 5, 4: 5, 5: 3, 6: 3}
_FEAT = {2: 32, 3: 64, 4: 96, 5: 128, 6: 192}  # pyramid channels per level


def _lrelu():
    return nn.LeakyReLU(0.1)


def _conv(cin, cout, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), _lrelu())


def _head(cin, widths, k_out):
    """3x3 conv + LeakyReLU through ``widths``, then a ``k_out`` conv to a 2-channel flow."""
    layers, c = [], cin
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, 1, 1), _lrelu()]
        c = w
    return nn.Sequential(*layers, nn.Conv2d(c, 2, k_out, 1, k_out // 2))


def _warp(x, flow):
    """Backward warp ``x`` ``[B, C, H, W]`` by ``flow`` ``[B, 2, H, W]`` (pixels), bilinear, zeros outside."""
    return flow_warp(x, rearrange(flow, 'b c h w -> b h w c'))


def correlation(first, second, stride=1, max_disp=3):
    """Cost volume ``[B, (2d+1)^2, ceil(H/s), ceil(W/s)]``: mean over channels of first * shifted second.

    Displacements are multiples of ``stride``; channel ``(dy + d) * (2d + 1) + (dx + d)``.
    """
    pad = max_disp * stride
    h, w = first.shape[-2:]
    ref = first[..., ::stride, ::stride]
    padded = F.pad(second, (pad, pad, pad, pad))
    out = []
    for dy in range(-max_disp, max_disp + 1):
        for dx in range(-max_disp, max_disp + 1):
            oy, ox = pad + dy * stride, pad + dx * stride
            out.append((ref * padded[..., oy:oy + h:stride, ox:ox + w:stride]).mean(1))
    return torch.stack(out, 1)


class _Features(nn.Module):

    def __init__(self):
        super().__init__()
        self.one = _conv(3, 32, 7)
        self.two = nn.Sequential(_conv(32, 32, 3, 2), _conv(32, 32), _conv(32, 32))
        self.thr = nn.Sequential(_conv(32, 64, 3, 2), _conv(64, 64))
        self.fou = nn.Sequential(_conv(64, 96, 3, 2), _conv(96, 96))
        self.fiv = _conv(96, 128, 3, 2)
        self.six = _conv(128, 192, 3, 2)

    def forward(self, x):
        feats = [self.one(x)]
        for stage in (self.two, self.thr, self.fou, self.fiv, self.six):
            feats.append(stage(feats[-1]))
        return feats


def _level_feat(level):
    """Level 2 lifts its 32-channel features to 64 before matching (an identity elsewhere)."""
    return _conv(32, 64, 1) if level == 2 else nn.Identity()


class _Matching(nn.Module):

    def __init__(self, level):
        super().__init__()
        self.level = level
        self.feat = _level_feat(level)
        self.upflow = None if level == 6 else nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False, groups=2)
        self.upcorr = nn.ConvTranspose2d(49, 49, 4, 2, 1, bias=False, groups=49) if level < 4 else None
        self.main = _head(49, (128, 64, 32), _KERNEL[level])

    def forward(self, img1, img2, feat1, feat2, flow):
        feat1, feat2 = self.feat(feat1), self.feat(feat2)
        if flow is not None:
            flow = self.upflow(flow)
            feat2 = _warp(feat2, flow * _BACKWARD[self.level])
        if self.upcorr is None:
            corr = F.leaky_relu(correlation(feat1, feat2, 1), 0.1)
        else:
            corr = self.upcorr(F.leaky_relu(correlation(feat1, feat2, 2), 0.1))
        return (0.0 if flow is None else flow) + self.main(corr)


class _Subpixel(nn.Module):

    def __init__(self, level):
        super().__init__()
        self.level = level
        self.feat = _level_feat(level)
        c = 64 if level == 2 else _FEAT[level]
        self.main = _head(2 * c + 2, (128, 64, 32), _KERNEL[level])

    def forward(self, img1, img2, feat1, feat2, flow):
        feat1, feat2 = self.feat(feat1), self.feat(feat2)
        feat2 = _warp(feat2, flow * _BACKWARD[self.level])
        return flow + self.main(torch.cat([feat1, feat2, flow], 1))


class _Regularization(nn.Module):

    def __init__(self, level):
        super().__init__()
        self.level = level
        k = self.unfold = _KERNEL[level]
        self.feat = nn.Identity() if level >= 5 else _conv(_FEAT[level], 128, 1)
        cin = 3 + (_FEAT[level] if level >= 5 else 128)
        widths, layers, c = (128, 128, 64, 64, 32, 32), [], cin
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, 1, 1), _lrelu()]
            c = w
        self.main = nn.Sequential(*layers)
        if level >= 5:
            self.dist = nn.Sequential(nn.Conv2d(32, k * k, k, 1, k // 2))
        else:  # separable k x 1 then 1 x k
            self.dist = nn.Sequential(nn.Conv2d(32, k * k, (k, 1), 1, (k // 2, 0)),
                                      nn.Conv2d(k * k, k * k, (1, k), 1, (0, k // 2)))
        self.scale_x = nn.Conv2d(k * k, 1, 1)
        self.scale_y = nn.Conv2d(k * k, 1, 1)

    def forward(self, img1, img2, feat1, feat2, flow):
        diff = (img1 - _warp(img2, flow * _BACKWARD[self.level])).pow(2).sum(1, keepdim=True).sqrt().detach()
        centred = flow - flow.mean((2, 3), keepdim=True)
        dist = self.dist(self.main(torch.cat([diff, centred, self.feat(feat1)], 1)))
        dist = dist.pow(2).neg()
        dist = (dist - dist.max(1, keepdim=True)[0]).exp()
        divisor = dist.sum(1, keepdim=True).reciprocal()
        k = self.unfold

        def smooth(component, conv):
            neighbours = F.unfold(component, k, padding=k // 2).view_as(dist)
            return conv(dist * neighbours) * divisor

        return torch.cat([smooth(flow[:, :1], self.scale_x), smooth(flow[:, 1:], self.scale_y)], 1)


@ARCH_REGISTRY.register()
class BIMNet(nn.Module):
    """``forward(first, second)``: frames ``[B, 3, H, W]`` in [0, 1], H and W multiples of 32.

    Returns the flow ``[B, 2, H/2, W/2]`` (x then y, in pixels of the full-size frame) that warps
    ``second`` onto ``first`` (backward warping: ``first(p) ~ second(p + flow(p))``); upsample it
    bilinearly without rescaling, as the original, for full-size flow.
    """

    def __init__(self):
        super().__init__()
        levels = (2, 3, 4, 5, 6)
        self.features = _Features()
        self.matching = nn.ModuleList([_Matching(level) for level in levels])
        self.subpixel = nn.ModuleList([_Subpixel(level) for level in levels])
        self.regularization = nn.ModuleList([_Regularization(level) for level in levels])

    def forward(self, first, second):
        feats1, feats2 = self.features(first), self.features(second)
        imgs1, imgs2 = [first], [second]
        for f1, f2 in zip(feats1[1:], feats2[1:]):  # the frames at every level's size, resized in turn
            imgs1.append(F.interpolate(imgs1[-1], size=f1.shape[-2:], mode='bilinear', align_corners=False))
            imgs2.append(F.interpolate(imgs2[-1], size=f2.shape[-2:], mode='bilinear', align_corners=False))
        flow = None
        for i in (-1, -2, -3, -4, -5):  # level 6 (coarsest) to level 2
            args = (imgs1[i], imgs2[i], feats1[i], feats2[i])
            flow = self.matching[i](*args, flow)
            flow = self.subpixel[i](*args, flow)
            flow = self.regularization[i](*args, flow)
        return flow * 20.0
