"""STFAN (with its filter-adaptive convolution) and SRN-DeblurNet: indexing, shapes, sizes, recurrence."""
import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr.utils.registry import ARCH_REGISTRY
from basicsr_vdd.archs.fac import filter_adaptive_conv
from basicsr_vdd.archs.srn_arch import SRNDeblurNet
from basicsr_vdd.archs.stfan_arch import STFAN


def fac_loop(feat, filters, k):
    """Per-pixel, per-channel k x k filtering written out: filter index c*k*k + i*k + j, replicate padding."""
    b, c, h, w = feat.shape
    pad = (k - 1) // 2
    out = torch.zeros_like(feat)
    for n in range(b):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    acc = 0.0
                    for i in range(k):
                        for j in range(k):
                            yy, xx = min(max(y + i - pad, 0), h - 1), min(max(x + j - pad, 0), w - 1)
                            acc += filters[n, ch * k * k + i * k + j, y, x] * feat[n, ch, yy, xx]
                    out[n, ch, y, x] = acc
    return out


@pytest.mark.parametrize('k', [3, 5])
def test_fac_equals_a_direct_per_pixel_loop(k):
    g = torch.Generator().manual_seed(k)
    feat = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64)
    filters = torch.randn(2, 2 * k * k, 5, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(filter_adaptive_conv(feat, filters, k), fac_loop(feat, filters, k))
    with pytest.raises(ValueError, match='do not fit'):
        filter_adaptive_conv(feat, filters[:, 1:], k)


def test_original_widths_give_the_published_sizes():
    # STFAN (Zhou et al. 2019): 5.37 M; counted from the original DeblurNet definition
    assert sum(p.numel() for p in STFAN().parameters()) == 5_372_547
    # SRN-DeblurNet, TF original: 8,061,411 with its 3x3 ConvLSTM (256 -> 512 channels: 1,180,160),
    # 6,881,251 without it (the "about 6.8 M" often quoted)
    assert sum(p.numel() for p in SRNDeblurNet().parameters()) == 8_061_411
    assert sum(p.numel() for p in SRNDeblurNet(lstm=False).parameters()) == 6_881_251
    assert {'STFAN', 'SRNDeblurNet'} <= set(ARCH_REGISTRY._obj_map)


def test_stfan_video_equals_its_recurrence_frame_by_frame():
    torch.manual_seed(0)
    net = STFAN(channels=(8, 8, 16)).eval()
    lq = torch.rand(1, 4, 3, 18, 22)  # odd sizes: padded to multiples of 4 inside forward_video
    with torch.no_grad():
        video = net.forward_video(lq)
        frames = torch.nn.functional.pad(lq.flatten(0, 1), (0, 2, 0, 2), mode='replicate').view(1, 4, 3, 20, 24)
        prev_blur, prev_out, state, outs = frames[:, 0], frames[:, 0], None, []
        for t in range(4):
            out, state = net(frames[:, t], prev_blur, prev_out, state)
            outs.append(out[..., :18, :22])
            prev_blur, prev_out = frames[:, t], out.clamp(0, 1)
    assert video.shape == lq.shape
    torch.testing.assert_close(video, torch.stack(outs, 1))
    # the previous frames matter: a different first frame changes the later outputs
    other = lq.clone()
    other[:, 0] = 1 - other[:, 0]
    with torch.no_grad():
        assert (net.forward_video(other)[:, 2] - video[:, 2]).abs().max() > 1e-6


def test_srn_shares_one_network_across_scales_and_keeps_odd_sizes():
    torch.manual_seed(0)
    net = SRNDeblurNet(channels=(8, 8, 16)).eval()
    calls = []
    net.enc1.register_forward_hook(lambda m, i, o: calls.append(o.shape[-2:]))
    x = torch.rand(2, 3, 30, 34)
    with torch.no_grad():
        scales = net.forward_scales(x)
    assert [tuple(s.shape) for s in scales] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 30, 34)]
    assert [tuple(c) for c in calls] == [(8, 12), (16, 24), (32, 48)]  # one module, three scales (padded to 16)
    with torch.no_grad():
        video = net(x.view(1, 2, 3, 30, 34))
    torch.testing.assert_close(video[0], scales[-1])
