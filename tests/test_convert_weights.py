"""scripts/convert_weights.py: mapping report, one-file conversion, the empty-prompt embedding."""
import json
import os.path as osp
import sys

import open_clip
import pytest
import torch
from open_clip.model import CLIP

from basicsr_vdd.archs.vdd_arch import VDDNet
from basicsr_vdd.archs.weights import null_text_embedding
from conftest import FIXTURES, REPO

sys.path.insert(0, osp.join(REPO, 'scripts'))
import convert_weights  # noqa: E402

VISION = dict(image_size=32, layers=1, width=32, head_width=16, patch_size=16)
TEXT = dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=3)
NET = dict(unet=dict(dim=32, dim_mult=[1, 1, 2], head_dim=8, num_res_blocks=2, attn_scales=[1.0, 0.5], image_dim=16),
           vae=dict(type='kl', ch=32, ch_mult=[1, 1, 2], num_res_blocks=1),
           clip_image=dict(embed_dim=16, vision_cfg=VISION), null_text=None)


@pytest.fixture(scope='module')
def real_like_files(tmp_path_factory):
    """Files in the distributed formats: TF-T2V .pth, SD .ckpt, open_clip .bin (tiny sizes)."""
    d = tmp_path_factory.mktemp('weights')
    unet = torch.load(osp.join(FIXTURES, 'unet_tft2v_t2v_tiny.pt'), weights_only=True)['state_dict']
    unet = {k: v.float() for k, v in unet.items()}
    unet['pre_image_condition.0.weight'] = torch.randn(1024, 16)  # image_dim 16 of the tiny CLIP
    torch.save({'state_dict': unet, 'step': 512000}, d / 'tft2v.pth')
    vae = torch.load(osp.join(FIXTURES, 'autoencoder_kl_tiny.pt'), weights_only=True)['state_dict']
    torch.save({'state_dict': {k: v.float() for k, v in vae.items()}}, d / 'sd.ckpt')
    torch.manual_seed(0)
    clip = CLIP(16, VISION, TEXT)
    torch.save(clip.state_dict(), d / 'open_clip_pytorch_model.bin')
    with open(d / 'opt.yml', 'w') as f:
        json.dump({'network_g': dict(NET, type='VDDNet')}, f)  # JSON is YAML
    return d, clip


def _args(d, *extra):
    return ['--opt', str(d / 'opt.yml'), '--tft2v', str(d / 'tft2v.pth'), '--sd', str(d / 'sd.ckpt'),
            '--open-clip', str(d / 'open_clip_pytorch_model.bin'), *extra]


def test_check_reports_one_to_one_mapping(real_like_files, capsys):
    d, _ = real_like_files
    assert convert_weights.main(_args(d, '--check')) == 0
    out = capsys.readouterr().out
    assert '-> unet: 1078 tensors' in out and '-> image_proj: 4 tensors' in out
    assert '-> vae.model: 152 tensors' in out and '-> clip_image.visual:' in out
    assert 'OK: every given file maps one to one' in out


def test_check_reports_mismatches_and_fails(real_like_files, tmp_path, capsys):
    d, _ = real_like_files
    state = torch.load(d / 'tft2v.pth', weights_only=True)['state_dict']
    state.pop('out.2.bias')
    bad = tmp_path / 'bad.pth'
    torch.save(state, bad)
    args = _args(d, '--check')
    args[args.index('--tft2v') + 1] = str(bad)
    assert convert_weights.main(args) == 1
    out = capsys.readouterr().out
    assert 'missing keys (1): conv_out.bias' in out and 'MISMATCH' in out


def test_one_converted_file_builds_the_same_network(real_like_files, tmp_path):
    d, _ = real_like_files
    out = tmp_path / 'vdd_init.safetensors'
    assert convert_weights.main(_args(d, '--out', str(out))) == 0
    three = VDDNet(**dict(NET, unet=dict(NET['unet'], pretrained=str(d / 'tft2v.pth')),
                          vae=dict(NET['vae'], pretrained=str(d / 'sd.ckpt')),
                          clip_image=dict(NET['clip_image'], pretrained=str(d / 'open_clip_pytorch_model.bin')))).eval()
    one = VDDNet(**NET, pretrained=str(out)).eval()
    x_t, t, blur = torch.randn(1, 4, 2, 8, 8), torch.tensor([400]), torch.rand(1, 3, 2, 32, 32) * 2 - 1
    with torch.no_grad():
        emb = three.encode_image(blur[:, :, 1])
        torch.testing.assert_close(one.encode_image(blur[:, :, 1]), emb)
        torch.testing.assert_close(one(x_t, t, blur=blur, image_embedding=emb), three(x_t, t, blur=blur, image_embedding=emb))
        torch.testing.assert_close(one.vae.encode(blur), three.vae.encode(blur))


def test_null_text_is_the_penultimate_layer_of_the_text_tower(real_like_files, tmp_path, monkeypatch):
    d, clip = real_like_files
    config = tmp_path / 'clip_cfg'
    config.mkdir()
    with open(config / 'tiny-clip.json', 'w') as f:
        json.dump({'embed_dim': 16, 'vision_cfg': VISION, 'text_cfg': TEXT}, f)
    open_clip.add_model_config(str(config))
    emb = null_text_embedding(str(d / 'open_clip_pytorch_model.bin'), model='tiny-clip')
    with torch.no_grad():
        x = clip.token_embedding(open_clip.tokenize([''])) + clip.positional_embedding
        for block in clip.transformer.resblocks[:2]:  # 3 layers: all but the last
            x = block(x, attn_mask=clip.attn_mask)
        expected = clip.ln_final(x)
        last = clip.ln_final(clip.transformer.resblocks[2](x, attn_mask=clip.attn_mask))
    assert emb.shape == (1, 77, 32)
    torch.testing.assert_close(emb, expected)
    assert (emb - last).abs().max() > 1e-3
