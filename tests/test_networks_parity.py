"""Our UNet and VAE reproduce the original TF-T2V (VGen) code's outputs; the real key lists map one to one."""
import argparse
import gzip
import json
import os.path as osp

import pytest
import torch

from basicsr_vdd.archs.autoencoder import KLAutoencoder
from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError
from basicsr_vdd.archs.tft2v_unet import ImageTokenProjection, build_unet, tft2v_to_diffusers
from basicsr_vdd.archs.vdd_arch import VDDNet
from conftest import FIXTURES

# SDPA vs VGen's xformers-style attention and float32 rounding: the fixture README measured 3.3e-6
TOL = 1e-5
TINY_UNET = dict(dim=32, dim_mult=(1, 1, 2), head_dim=8, num_res_blocks=2, attn_scales=(1.0, 0.5))
TINY_VAE = {'type': 'kl', 'ch': 32, 'ch_mult': (1, 1, 2), 'num_res_blocks': 1}
FULL_UNET = dict(dim=320, dim_mult=(1, 2, 4, 4), head_dim=64, num_res_blocks=2, attn_scales=(1.0, 0.5, 0.25))


@pytest.fixture(scope='module')
def unet_fixture():
    return torch.load(osp.join(FIXTURES, 'unet_tft2v_t2v_tiny.pt'), weights_only=True)


@pytest.fixture(scope='module')
def tiny_tft2v_file(unet_fixture, tmp_path_factory):
    """The fixture's state dict written as TF-T2V distributes it: {'state_dict', 'step'} (float32)."""
    path = tmp_path_factory.mktemp('ckpt') / 'tft2v_tiny.pth'
    torch.save({'state_dict': {k: v.float() for k, v in unet_fixture['state_dict'].items()}, 'step': 1}, path)
    return str(path)


def _real_shapes(name):
    with gzip.open(osp.join(FIXTURES, 'real_config_state_dict_shapes.json.gz')) as f:
        return dict(json.load(f)[name])


def test_unet_outputs_equal_vgen(unet_fixture, tiny_tft2v_file):
    net = VDDNet(unet=dict(TINY_UNET, pretrained=tiny_tft2v_file), vae=TINY_VAE, null_text=None, text_tokens=32).eval()
    inp, out = unet_fixture['inputs'], unet_fixture['outputs']
    x, t = inp['x'], inp['t']
    zeros = torch.zeros(x.shape[0], 8, *x.shape[2:])

    def unet(context):
        with torch.no_grad():
            return net.unet(torch.cat([x, zeros], 1), t, encoder_hidden_states=context).sample

    uncond_text = inp['zero_y_negative'].repeat(2, 1, 1)
    with torch.no_grad():
        results = {
            'image_cond': net(x, t, image_embedding=inp['image'], text_context=inp['y_text']),
            'image_uncond_cfg': net(x, t, image_embedding=torch.zeros_like(inp['image']), text_context=uncond_text),
            't2v_cond': unet(inp['y_text']),
            't2v_uncond': unet(uncond_text),
        }
    for name, value in results.items():
        torch.testing.assert_close(value, out[name], rtol=0, atol=TOL, msg=name)
    assert (results['image_cond'] - results['t2v_cond']).abs().max() > 1e-2  # the image tokens matter


def test_time_embedding_intermediate_equals_vgen(unet_fixture, tiny_tft2v_file):
    net = VDDNet(unet=dict(TINY_UNET, pretrained=tiny_tft2v_file), vae=TINY_VAE).eval()
    record = next(r for r in unet_fixture['intermediates_image_cond'] if r['name'] == 'time_embed')
    with torch.no_grad():
        emb = net.unet.time_embedding(net.unet.time_proj(unet_fixture['inputs']['t']))
    flat = emb.flatten()
    torch.testing.assert_close(flat[record['sample_idx']], record['sample'].to(flat.dtype), rtol=0, atol=TOL)


def test_wrong_unet_checkpoints_are_explained(unet_fixture, tmp_path):
    state = {k: v.float() for k, v in unet_fixture['state_dict'].items()}
    partial = dict(state)
    partial.pop('out.2.weight')
    partial['input_blocks.1.0.in_layers.2.weight'] = torch.zeros(1, 1, 1, 1)
    path = str(tmp_path / 'partial.pth')
    torch.save(partial, path)
    with pytest.raises(CheckpointMismatchError) as err:
        VDDNet(unet=dict(TINY_UNET, pretrained=path), vae={'type': 'pixel_unshuffle', 'factor': 1})
    msg = str(err.value)
    assert path in msg and 'conv_out.weight' in msg and 'down_blocks.0.resnets.0.conv1.weight' in msg
    assert 'shape mismatches' in msg and 'missing keys' in msg
    foreign = str(tmp_path / 'foreign.pth')
    torch.save(dict(state, **{'local_image_embedding.0.weight': torch.zeros(1)}), foreign)
    with pytest.raises(CheckpointMismatchError, match='local_image_embedding'):
        VDDNet(unet=dict(TINY_UNET, pretrained=foreign), vae={'type': 'pixel_unshuffle', 'factor': 1})
    pickled = str(tmp_path / 'pickled.pth')
    torch.save({'state_dict': state, 'args': argparse.Namespace(lr=1e-4)}, pickled)  # needs full unpickling
    with pytest.raises(CheckpointMismatchError, match='weights-only'):
        VDDNet(unet=dict(TINY_UNET, pretrained=pickled), vae={'type': 'pixel_unshuffle', 'factor': 1})


def test_vae_equals_vgen(tmp_path):
    ref = torch.load(osp.join(FIXTURES, 'autoencoder_kl_tiny.pt'), weights_only=True)
    path = str(tmp_path / 'sd.ckpt')
    torch.save({'state_dict': {k: v.float() for k, v in ref['state_dict'].items()}}, path)
    vae = KLAutoencoder(ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, pretrained=path).eval()
    image, out = ref['inputs']['image'], ref['outputs']
    with torch.no_grad():
        posterior = vae.model.encode(image).latent_dist
        latent = vae.encode(image.unsqueeze(2))[:, :, 0]
        decoded = vae.decode(out['latent_scaled'].unsqueeze(2))[:, :, 0]
    torch.testing.assert_close(posterior.mean, out['posterior_mean'], rtol=0, atol=TOL)
    torch.testing.assert_close(latent, out['latent_scaled'], rtol=0, atol=TOL)
    torch.testing.assert_close(decoded, out['decoded'], rtol=0, atol=TOL)


def test_vae_checkpoint_without_autoencoder_keys_is_explained(tmp_path):
    path = str(tmp_path / 'unet_only.ckpt')
    torch.save({'state_dict': {'model.diffusion_model.x': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointMismatchError, match='no first_stage_model'):
        KLAutoencoder(ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, pretrained=path)


def test_real_tft2v_unet_keys_map_one_to_one_onto_the_full_config():
    real = {k: torch.empty(shape, device='meta') for k, shape in _real_shapes('t2v').items()}
    converted = tft2v_to_diffusers(real)
    with torch.device('meta'):
        modules = {'unet': build_unet(12, 4, **FULL_UNET), 'image_proj': ImageTokenProjection(1024, 1024, 4)}
    total = 0
    for part, module in modules.items():
        ours = module.state_dict()
        assert set(ours) == set(converted[part]), part
        assert all(tuple(ours[k].shape) == tuple(converted[part][k].shape) for k in ours), part
        total += sum(p.numel() for p in module.parameters())
    assert total == 1_416_504_900


def test_real_sd21_vae_keys_map_one_to_one_onto_the_full_config():
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    real = {k: torch.empty(shape, device='meta') for k, shape in _real_shapes('autoencoder_first_stage_model').items()}
    with torch.device('meta'):
        vae = KLAutoencoder()
    converted = convert_ldm_vae_checkpoint(real, vae.model.config)
    ours = vae.model.state_dict()
    assert len(converted) == len(real) == len(ours) == 248
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in ours.items()}


def test_paper_config_builds_the_real_sizes_on_the_meta_device():
    from basicsr_vdd.archs.weights import _without_pretrained
    from conftest import load_options

    net_opt = load_options('options/vdd_stage1.yml')['network_g']
    net_opt.pop('type')
    with torch.device('meta'):
        net = VDDNet(**_without_pretrained(net_opt))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net.unet) + count(net.image_proj) == 1_416_504_900
    real = _real_shapes('t2v')
    assert count(net.unet) == sum(torch.Size(s).numel() for k, s in real.items() if not k.startswith('pre_image'))
    vae_real = _real_shapes('autoencoder_first_stage_model')
    assert count(net.vae) == sum(torch.Size(s).numel() for s in vae_real.values())
    assert count(net.blur_encoder.encoder) == count(net.vae.model.encoder) + count(net.vae.model.quant_conv)
    assert net.clip_image.embed_dim == 1024 and net.size_multiple == 64
