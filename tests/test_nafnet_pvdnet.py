"""NAFNet and PVDNet (BIMNet, pixel volume): published sizes, shapes, recurrence, BasicSR pipelines.

Parameter counts of the originals, counted here from the layer definitions of the public code
(megvii-research/NAFNet ``basicsr/models/archs/NAFNet_arch.py``; codeslake/PVDNet
``models/archs/liteFlowNet.py`` = BIMNet, ``models/archs/PVDNet.py``, built by
``models/trainers/trainer.py`` as ``Network(PV_ksize ** 2)`` with ``PV_ksize = 5``):

* NAFBlock of width c: conv1 c->2c (2c^2 + 2c), depth-wise 3x3 on 2c (18c + 2c), conv3 c->c,
  SCA conv c->c, conv4 c->2c, conv5 c->c (each with bias), two LayerNorm2d (4c), beta and gamma
  (2c): 7c^2 + 33c. NAFNet: intro 3->w and ending w->3 (3x3), per encoder level a 2x2 stride-2
  conv c->2c (8c^2 + 2c), per decoder level a bias-free 1x1 conv c->2c (2c^2) + PixelShuffle.
  GoPro width 32, enc [1, 1, 1, 28], middle 1, dec [1, 1, 1, 1]: 17,111,907 ("17.1 M");
  width 64: 67,888,835 ("67.9 M").
* BIMNet (LiteFlowNet layout): pyramid convs, then per level 2..6 matching / sub-pixel /
  regularisation heads (:func:`liteflownet_count`): 5,381,969.
* PVDNet's deblurring network (:func:`pvdnet_count`): 5,132,579. Together 10,514,548 ("10.51 M").
"""
import math

import pytest
import torch

import basicsr_vdd  # noqa: F401  (registration)
from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY
from basicsr_vdd.archs.bimnet_arch import BIMNet, correlation
from basicsr_vdd.archs.nafnet_arch import NAFNet, _LocalAvgPool
from basicsr_vdd.archs.pixel_volume import pixel_volume, rgb_to_gray
from basicsr_vdd.archs.pvdnet_arch import PVDNet, convert_original_state_dict
from basicsr_vdd.models.pvdnet_model import blur_invariant_loss
from conftest import load_options, train_then_test


def conv(cin, cout, kh, kw=None, bias=True, groups=1):
    return cin // groups * cout * kh * (kh if kw is None else kw) + (cout if bias else 0)


def nafnet_count(width, enc, middle, dec, img=3):
    block = lambda c: 7 * c * c + 33 * c  # noqa: E731
    n, c = conv(img, width, 3) + conv(width, img, 3), width
    for k in enc:
        n, c = n + k * block(c) + conv(c, 2 * c, 2), 2 * c
    n += middle * block(c)
    for k in dec:
        n, c = n + conv(c, 2 * c, 1, bias=False), c // 2
        n += k * block(c)
    return n


def liteflownet_count():
    n = conv(3, 32, 7) + 3 * conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 64, 3)
    n += conv(64, 96, 3) + conv(96, 96, 3) + conv(96, 128, 3) + conv(128, 192, 3)
    for level in range(2, 7):
        k = [0, 0, 7, 5, 5, 3, 3][level]
        head = lambda cin: conv(cin, 128, 3) + conv(128, 64, 3) + conv(64, 32, 3) + conv(32, 2, k)  # noqa: E731
        lift = conv(32, 64, 1) if level == 2 else 0
        # matching: (level-2 lift), flow upsampling (not at 6), cost upsampling (levels 2, 3), head on 49
        n += lift + (0 if level == 6 else conv(2, 2, 4, bias=False, groups=2))
        n += (conv(49, 49, 4, bias=False, groups=49) if level < 4 else 0) + head(49)
        # sub-pixel refinement
        n += lift + head([0, 0, 130, 130, 194, 258, 386][level])
        # regularisation
        n += conv([0, 0, 32, 64, 96][level], 128, 1) if level < 5 else 0
        cin = [0, 0, 131, 131, 131, 131, 195][level]
        n += conv(cin, 128, 3) + conv(128, 128, 3) + conv(128, 64, 3) + conv(64, 64, 3) + conv(64, 32, 3)
        n += conv(32, 32, 3)
        n += conv(32, k * k, k) if level >= 5 else conv(32, k * k, k, 1) + conv(k * k, k * k, 1, k)
        n += 2 * conv(k * k, 1, 1)
    return n


def pvdnet_count(pv=25):
    n = conv(pv, 64, 3) + conv(64, 64, 3) + conv(9, 32, 3) + conv(32, 32, 3) + conv(96, 64, 5)
    n += 2 * conv(64, 64, 5) + conv(64, 128, 5) + conv(128, 128, 5) + 25 * conv(128, 128, 3)
    n += conv(128, 64, 4) + conv(64, 64, 5) + conv(64, 64, 4) + conv(64, 64, 5) + conv(64, 3, 5)
    return n


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_published_sizes_from_the_public_layer_definitions():
    assert nafnet_count(32, [1, 1, 1, 28], 1, [1, 1, 1, 1]) == 17_111_907
    assert nafnet_count(64, [1, 1, 1, 28], 1, [1, 1, 1, 1]) == 67_888_835
    for width, expected in ((32, 17_111_907), (64, 67_888_835)):
        opt = load_options(f'options/baselines/train_nafnet_gopro_w{width}.yml')['network_g']
        assert count(ARCH_REGISTRY.get(opt.pop('type'))(**opt)) == expected
    assert liteflownet_count() == 5_381_969 and pvdnet_count() == 5_132_579
    net = PVDNet()
    assert (count(net.bimnet), count(net.deblur), count(net)) == (5_381_969, 5_132_579, 10_514_548)
    assert {'NAFNet', 'BIMNet', 'PVDNet'} <= set(ARCH_REGISTRY._obj_map) and 'PVDNetModel' in MODEL_REGISTRY


def original_nafnet_keys(enc, middle, dec):
    """State-dict keys of the public NAFNet_arch.py (so that its released checkpoints load strictly)."""
    block = ['conv1', 'conv2', 'conv3', 'sca.1', 'conv4', 'conv5', 'norm1', 'norm2']
    block_keys = [f'{m}.{t}' for m in block for t in ('weight', 'bias')] + ['beta', 'gamma']
    keys = {'intro.weight', 'intro.bias', 'ending.weight', 'ending.bias'}
    for i, n in enumerate(enc):
        keys |= {f'encoders.{i}.{j}.{k}' for j in range(n) for k in block_keys} | {f'downs.{i}.weight', f'downs.{i}.bias'}
    keys |= {f'middle_blks.{j}.{k}' for j in range(middle) for k in block_keys}
    for i, n in enumerate(dec):
        keys |= {f'decoders.{i}.{j}.{k}' for j in range(n) for k in block_keys} | {f'ups.{i}.0.weight'}
    return keys


def test_nafnet_has_the_original_parameter_names():
    net = NAFNet(width=8, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1], tlc_train_size=[256, 256])
    assert set(net.state_dict()) == original_nafnet_keys([1, 1, 1, 28], 1, [1, 1, 1, 1])


def original_pvdnet_keys():
    """Parameter names of the public code's DeblurNet (BIMNet = liteFlowNet.Network, PVDNet.Network) in
    registration order, written from its layer definitions."""
    keys = ['moduleFeatures.moduleOne.0']
    keys += [f'moduleFeatures.module{m}.{i}' for m, n in (('Two', 3), ('Thr', 2), ('Fou', 2)) for i in range(0, 2 * n, 2)]
    keys += ['moduleFeatures.moduleFiv.0', 'moduleFeatures.moduleSix.0']
    main4, main6 = [f'moduleMain.{i}' for i in (0, 2, 4, 6)], [f'moduleMain.{i}' for i in range(0, 12, 2)]
    for i, level in enumerate(range(2, 7)):
        keys += [f'moduleMatching.{i}.{k}' for k in (['moduleFeat.0'] if level == 2 else []) + main4]
        keys[-4:-4] = ([f'moduleMatching.{i}.moduleUpflow'] if level != 6 else []) + (
            [f'moduleMatching.{i}.moduleUpcorr'] if level < 4 else [])
    for i, level in enumerate(range(2, 7)):
        keys += [f'moduleSubpixel.{i}.{k}' for k in (['moduleFeat.0'] if level == 2 else []) + main4]
    for i, level in enumerate(range(2, 7)):
        dist = ['moduleDist.0'] + (['moduleDist.1'] if level < 5 else [])
        feat = ['moduleFeat.0'] if level < 5 else []
        keys += [f'moduleRegularization.{i}.{k}' for k in feat + main6 + dist + ['moduleScaleX', 'moduleScaleY']]
    keys = ['BIMNet.' + k for k in keys]
    keys += ['PVDNet.' + k for k in ['PV_dec.0', 'PV_dec.2', 'img_dec.0', 'img_dec.2', 'd0', 'd1.0', 'd1.2', 'temp.0', 'temp.2']]
    keys += [f'PVDNet.RBs.{i}.{j}' for i in range(12) for j in (0, 2)]
    keys += ['PVDNet.' + k for k in ['RB_end.0', 'dconv1', 'dconv1_end.1', 'dconv2', 'dconv2_end.1', 'end']]
    no_bias = ('moduleUpflow', 'moduleUpcorr')
    return [f'{k}.{t}' for k in keys for t in (('weight',) if k.endswith(no_bias) else ('weight', 'bias'))]


def test_original_pvdnet_checkpoints_convert_onto_the_same_layers():
    ours = PVDNet().state_dict()
    original = original_pvdnet_keys()
    assert len(original) == len(ours)
    # the original's layers in its order, holding our tensors: converted, every tensor lands on its own key
    fake = {'module.' + k: v for k, v in zip(original, ours.values())}
    converted = convert_original_state_dict(fake)
    assert list(converted) == list(ours)
    assert all(converted[k] is ours[k] for k in ours)


def test_nafnet_clips_are_deblurred_frame_by_frame_at_any_size():
    torch.manual_seed(0)
    net = NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1], frame_chunk=2).eval()
    for p in net.parameters():  # beta/gamma start at 0 (blocks are identities): make every block act
        p.data.normal_(0, 0.2)
    clip = torch.rand(2, 3, 3, 18, 22)  # padded to multiples of 4 inside, cropped back
    with torch.no_grad():
        out = net(clip)
        assert out.shape == clip.shape and net(clip[:, 1]).shape == (2, 3, 18, 22)
        torch.testing.assert_close(out[:, 1], net(clip[:, 1]))
        # TLC: identical to global pooling on crops no larger than the window, different on larger frames
        tlc = NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1], tlc_train_size=[8, 8]).eval()
        tlc.load_state_dict(net.state_dict())
        torch.testing.assert_close(tlc(clip[:, 0, :, :8, :8]), net(clip[:, 0, :, :8, :8]))
        assert (tlc(clip[:, 0]) - net(clip[:, 0])).abs().max() > 1e-4
    # the local mean: every valid k1 x k2 window's mean, replicate-padded (centred) back to H x W
    x = torch.rand(1, 2, 9, 12, dtype=torch.float64)
    means = torch.stack([torch.stack([x[..., i:i + 4, j:j + 6].mean((-2, -1)) for j in range(7)], -1) for i in range(6)], -2)
    expected = torch.nn.functional.pad(means, (2, 3, 1, 2), mode='replicate')
    torch.testing.assert_close(_LocalAvgPool((4, 6))(x), expected)


@pytest.mark.parametrize('stride', [1, 2])
def test_correlation_equals_a_direct_loop(stride):
    g = torch.Generator().manual_seed(stride)
    a, b = torch.randn(1, 4, 6, 7, generator=g, dtype=torch.float64), torch.randn(1, 4, 6, 7, generator=g, dtype=torch.float64)
    out = correlation(a, b, stride)
    assert out.shape == (1, 49, math.ceil(6 / stride), math.ceil(7 / stride))
    for c in range(49):
        dy, dx = (c // 7 - 3) * stride, (c % 7 - 3) * stride
        for i, y in enumerate(range(0, 6, stride)):
            for j, x in enumerate(range(0, 7, stride)):
                inside = 0 <= y + dy < 6 and 0 <= x + dx < 7
                expected = (a[0, :, y, x] * b[0, :, y + dy, x + dx]).mean() if inside else 0.0
                assert abs(out[0, c, i, j].item() - float(expected)) < 1e-12


def pixel_volume_loop(prev, flow, fallback, k):
    """The original's pixel volume written per pixel (one frame)."""
    gray, fb = rgb_to_gray(prev)[0, 0], rgb_to_gray(fallback)[0, 0]
    h, w = gray.shape
    out = torch.zeros(k * k, h, w, dtype=prev.dtype)
    for c, (dx, dy) in enumerate((dx, dy) for dx in range(-(k // 2), k // 2 + 1) for dy in range(-(k // 2), k // 2 + 1)):
        for y in range(h):
            for x in range(w):
                qy, qx = y - dy, x - dx
                if not (0 <= qy < h and 0 <= qx < w):
                    continue  # zero
                xd = int(qx + flow[0, 0, qy, qx].item()) + dx  # int(): truncation, as the original's cast
                yd = int(qy + flow[0, 1, qy, qx].item()) + dy
                if xd < 1 or xd > w - 2 or yd < 1 or yd > h - 2:
                    out[c, y, x] = fb[y, x]
                else:
                    out[c, y, x] = gray[yd, xd]
    return out


def test_pixel_volume_follows_the_original_indexing():
    g = torch.Generator().manual_seed(0)
    prev, fallback = torch.rand(1, 3, 9, 11, generator=g, dtype=torch.float64), torch.rand(1, 3, 9, 11, generator=g, dtype=torch.float64)
    flow = torch.randn(1, 2, 9, 11, generator=g, dtype=torch.float64) * 2.5  # fractional, both signs
    for k in (3, 5):
        torch.testing.assert_close(pixel_volume(prev, flow, fallback, k)[0], pixel_volume_loop(prev, flow, fallback, k))
    # a constant integer motion: every candidate is the moved pixel
    moved = pixel_volume(prev, torch.tensor([2.0, 1.0], dtype=torch.float64).view(1, 2, 1, 1).expand(1, 2, 9, 11), fallback)
    torch.testing.assert_close(moved[0, :, 3, 4], rgb_to_gray(prev)[0, 0, 4, 6].expand(25))


def test_pvdnet_video_is_its_recurrence_and_bimnet_can_be_fixed():
    torch.manual_seed(0)
    net = PVDNet(feat=8, img_feat=8, mid=8, num_blocks=1).eval()
    lq = torch.rand(1, 3, 3, 34, 36)  # padded to 36x36 inside forward_video; BIMNet sees 32x32
    with torch.no_grad():
        video = net.forward_video(lq)
        frames = torch.nn.functional.pad(lq[0], (0, 0, 0, 2), mode='replicate').unsqueeze(0)
        out0 = net(frames[:, 0], frames[:, 0], frames[:, 1], frames[:, 0])
        out1 = net(frames[:, 0], frames[:, 1], frames[:, 2], out0)
        out2, flows = net(frames[:, 1], frames[:, 2], frames[:, 2], out1, flow_pairs=[(frames[:, 2], frames[:, 0])])
    assert video.shape == lq.shape and [f.shape for f in flows] == [(1, 2, 36, 36)] * 2
    torch.testing.assert_close(video, torch.stack([out0, out1, out2], 1)[..., :34, :36])
    assert flows[0][..., 32:, :].abs().max() == 0  # beyond BIMNet's multiple-of-32 crop: no motion
    with pytest.raises(ValueError, match='32x32'):
        net.flow(lq[:, 0, :, :16], lq[:, 1, :, :16])
    fixed = PVDNet(feat=8, img_feat=8, mid=8, num_blocks=1, fix_bimnet=True)
    assert not any(p.requires_grad for p in fixed.bimnet.parameters())
    assert all(p.requires_grad for p in fixed.deblur.parameters())
    # the blur-invariant loss vanishes when the flow is right: identical frames, zero motion
    gt = torch.rand(2, 3, 8, 8)
    assert blur_invariant_loss(gt, gt, [torch.zeros(2, 2, 8, 8)] * 4).item() < 1e-12
    assert blur_invariant_loss(gt, gt.flip(-1), [torch.zeros(2, 2, 8, 8)]).item() > 1e-3


@pytest.mark.slow
def test_nafnet_trains_and_tests_through_basicsr(tiny_gopro, tmp_path):
    width = {'width': 8, 'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1], 'tlc_train_size': [16, 16]}
    train_then_test('nafnet', width, tiny_gopro, tmp_path, 'nafnet_tiny')


@pytest.mark.slow
def test_pvdnet_two_stages_train_and_test_through_basicsr(tiny_gopro, tmp_path):
    width = {'feat': 8, 'img_feat': 8, 'mid': 8, 'num_blocks': 1}
    stage1, logs = train_then_test('pvdnet', width, tiny_gopro, tmp_path, 'pvdnet_joint', test=False)
    assert 'l_flow' in logs  # joint stage: the blur-invariant loss trains BIMNet
    # stage 2: BIMNet from stage 1, fixed; only the deblurring network is optimised
    stage1_ckpt = stage1 / 'models' / 'net_g_latest.pth'
    extra = {'network_g': {'fix_bimnet': True}, 'path': {'pretrain_network_bimnet': str(stage1_ckpt)}}
    stage2, logs = train_then_test('pvdnet', width, tiny_gopro, tmp_path, 'pvdnet_fixed', extra, iters=1)
    assert 'l_flow' not in logs and 'Loaded BIMNet from' in logs
    before = torch.load(stage1_ckpt, map_location='cpu', weights_only=True)['params']
    after = torch.load(stage2 / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)['params']
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith('bimnet.'))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith('deblur.'))
