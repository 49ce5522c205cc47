"""SRN-DeblurNet: scale-recurrent network for deep image deblurring (Tao et al., CVPR 2018).

Three scales (factor 0.5), one encoder-decoder shared by all scales; at each scale the input is
the blurry image at that scale and the upsampled estimate of the coarser scale; a ConvLSTM at
the bottleneck carries its state across scales. 5x5 convolutions, ResBlocks, 4x4 transposed
convolutions, widths 32/64/128, RGB, as the original TensorFlow model. Applied per frame.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


class _ResBlock(nn.Module):
    def __init__(self, ch, k):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, k, padding=k // 2), nn.Conv2d(ch, ch, k, padding=k // 2)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def _block(cin, cout, k, stride):
    """conv + ReLU followed by three ResBlocks (EBlock of the paper)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.ReLU(inplace=True),
                         *[_ResBlock(cout, k) for _ in range(3)])


class ConvLSTMCell(nn.Module):
    """TensorFlow's BasicConvLSTMCell: one 3x3 conv to the 4 gates (i, j, f, o), forget bias 1."""

    def __init__(self, ch, k=3):
        super().__init__()
        self.conv = nn.Conv2d(2 * ch, 4 * ch, k, padding=k // 2)

    def forward(self, x, state):
        c, h = state
        i, j, f, o = self.conv(torch.cat([x, h], 1)).chunk(4, 1)
        c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, (c, h)


@ARCH_REGISTRY.register()
class SRNDeblurNet(nn.Module):
    """``forward(x)`` with ``x`` ``[B, 3, H, W]`` or ``[B, T, 3, H, W]`` in [0, 1] -> the finest estimate.

    ``forward_scales(x)`` returns the estimates of every scale, coarse to fine (multi-scale loss).
    ``lstm: false`` drops the ConvLSTM (the 6.88 M-parameter variant).
    """

    def __init__(self, channels=(32, 64, 128), kernel_size=5, num_scales=3, scale_factor=0.5, lstm=True):
        super().__init__()
        c1, c2, c3 = channels
        k = kernel_size
        self.num_scales, self.scale_factor = num_scales, scale_factor
        self.enc1, self.enc2, self.enc3 = _block(6, c1, k, 1), _block(c1, c2, k, 2), _block(c2, c3, k, 2)
        self.lstm = ConvLSTMCell(c3) if lstm else None
        self.dec3 = nn.Sequential(*[_ResBlock(c3, k) for _ in range(3)])
        self.up2 = nn.ConvTranspose2d(c3, c2, 4, 2, 1)
        self.dec2 = nn.Sequential(*[_ResBlock(c2, k) for _ in range(3)])
        self.up1 = nn.ConvTranspose2d(c2, c1, 4, 2, 1)
        self.dec1 = nn.Sequential(*[_ResBlock(c1, k) for _ in range(3)])
        self.out = nn.Conv2d(c1, 3, k, padding=k // 2)

    def _step(self, blur, pred, state):
        e1 = self.enc1(torch.cat([blur, pred], 1))
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        if self.lstm is not None:
            if state is None:
                state = (torch.zeros_like(e3), torch.zeros_like(e3))
            else:  # the state follows the scale (bilinear resize, as the original)
                state = tuple(F.interpolate(s, size=e3.shape[-2:], mode='bilinear', align_corners=False)
                              for s in state)
            e3, state = self.lstm(e3, state)
        d2 = F.relu(self.up2(self.dec3(e3))) + e2
        d1 = F.relu(self.up1(self.dec2(d2))) + e1
        return self.out(self.dec1(d1)), state

    def forward_scales(self, x):
        """``x`` ``[B, 3, H, W]`` -> estimates for every scale, coarse to fine (the finest is ``[B, 3, H, W]``).

        Frames are replicate-padded to a multiple of ``4 / scale_factor ** (num_scales - 1)`` so
        that every scale has exact sizes; the finest estimate is cropped back.
        """
        h, w = x.shape[-2:]
        multiple = int(round(4 / self.scale_factor ** (self.num_scales - 1)))
        ph, pw = (-h) % multiple, (-w) % multiple
        x = F.pad(x, (0, pw, 0, ph), mode='replicate') if ph or pw else x
        pred, state, outs = None, None, []
        for s in range(self.num_scales):
            f = self.scale_factor ** (self.num_scales - 1 - s)
            size = (int(round(x.shape[-2] * f)), int(round(x.shape[-1] * f)))
            blur = F.interpolate(x, size=size, mode='bilinear', align_corners=False) if f != 1 else x
            pred = blur if pred is None else F.interpolate(pred.detach(), size=size, mode='bilinear',
                                                           align_corners=False)
            pred, state = self._step(blur, pred, state)
            outs.append(pred)
        outs[-1] = outs[-1][..., :h, :w]
        return outs

    def forward(self, x, all_scales=False):
        """The finest estimate (``all_scales``: the list of :meth:`forward_scales`, for training)."""
        if all_scales:
            return self.forward_scales(x)
        if x.dim() == 5:
            b, t = x.shape[:2]
            return self.forward_scales(x.flatten(0, 1))[-1].view(b, t, *x.shape[2:])
        return self.forward_scales(x)[-1]
