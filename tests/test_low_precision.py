"""Memory levers of the paper configs: frozen parts held in bf16 (train: frozen_dtype), sampling under autocast."""
import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr_vdd.models.stage_checkpoint import read_checkpoint
from basicsr_vdd.models.vdd_model import VDDModel
from basicsr_vdd.pipelines.vdd_diffusion import check_sampling
from conftest import TINY_KL_VAE, batch, tiny_options



def kl_stage1(tmp_path, pretrain=None, **train):
    """The tiny stage-1 options with a (random) KL autoencoder, as in the paper configs."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    opt = tiny_options(1, tmp_path, pretrain=pretrain, **train)
    opt['network_g']['vae'] = dict(TINY_KL_VAE)
    opt['network_g']['unet']['concat_dim'] = 8
    opt['diffusion']['residual_scale'] = 0.5
    return opt


def dtypes(module):
    return {p.dtype for p in module.parameters()}


def first_loss(model, seed=0):
    model.feed_data(batch(seed, size=32))
    model.optimize_parameters(1)
    return float(model.log_dict['l_total'])


@pytest.mark.parametrize('autocast', [None, 'bf16'])
def test_frozen_dtype_holds_the_parts_stage_1_neither_trains_nor_saves_in_bf16(tmp_path, autocast):
    torch.manual_seed(0)
    ref = VDDModel(kl_stage1(tmp_path / 'ref', autocast=autocast))
    torch.manual_seed(0)
    model = VDDModel(kl_stage1(tmp_path / 'bf16', autocast=autocast, frozen_dtype='bf16'))
    for part in ('vae', 'clip_image', 'unet', 'image_proj'):
        assert dtypes(getattr(model.bare, part)) == {torch.bfloat16}, part
    assert dtypes(model.bare.blur_encoder) == {torch.float32}
    assert {p.dtype for g in model.optimizer_g.param_groups for p in g['params']} == {torch.float32}
    weights = sum(p.numel() * p.element_size() for p in model.bare.parameters())
    ref_weights = sum(p.numel() * p.element_size() for p in ref.bare.parameters())
    trained = sum(p.numel() for p in model.bare.blur_encoder.parameters())
    assert weights == ref_weights - (sum(p.numel() for p in model.bare.parameters()) - trained) * 2

    before = model.bare.blur_encoder.proj[-1].weight.clone()
    loss, ref_loss = first_loss(model), first_loss(ref)
    assert torch.isfinite(torch.tensor(loss))
    assert abs(loss - ref_loss) < 0.05 * ref_loss  # the same step in bf16 frozen weights
    assert not torch.equal(before, model.bare.blur_encoder.proj[-1].weight)  # gradients reached the encoder

    model.save(0, -1)
    ckpt = read_checkpoint(str(tmp_path / 'bf16' / 'net_g_latest.pth'))
    assert ckpt['parts'] == ['blur_encoder']
    assert {v.dtype for v in ckpt['params'].values()} == {torch.float32}


def test_frozen_dtype_keeps_parts_that_the_checkpoint_saves_in_float32(tmp_path):
    """Demo chain: stage 1 saves the stage-0 UNet again, so it must stay exact (float32)."""
    stage0 = VDDModel(tiny_options(0, tmp_path))
    stage0.save(0, -1)
    (tmp_path / 's1').mkdir()
    stage1 = VDDModel(tiny_options(1, tmp_path / 's1', pretrain=str(tmp_path / 'net_g_latest.pth'),
                                   frozen_dtype='bf16'))
    assert dtypes(stage1.bare.unet) == {torch.float32} and dtypes(stage1.bare.image_proj) == {torch.float32}
    assert dtypes(stage1.bare.clip_image) == {torch.bfloat16}
    stage1.feed_data(batch(0, size=32))
    stage1.optimize_parameters(1)
    stage1.save(0, -1)
    saved = read_checkpoint(str(tmp_path / 's1' / 'net_g_latest.pth'))['params']
    assert all(torch.equal(saved[f'unet.{k}'], v) for k, v in stage0.bare.unet.state_dict().items())


def test_sampling_autocast_runs_the_network_in_bf16_and_stays_close_to_float32(tmp_path):
    torch.manual_seed(0)
    model = VDDModel(tiny_options(2, tmp_path))
    model.feed_data(batch(0, b=1, f=4, size=32))
    model.optimize_parameters(1)  # sets the residual scale
    model.lq = batch(1, b=1, f=4, size=32)['lq']
    model.sampling.update(steps=2, window=4, overlap=0, tile=0)
    model.test()
    ref = model.output.clone()
    seen = []
    hook = model.bare.unet.conv_in.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    model.sampling['autocast'] = 'bf16'
    model.test()
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert model.output.dtype == torch.float32
    diff = (model.output - ref).abs()
    assert 0 < diff.max() < 0.05, diff.max()


@pytest.mark.parametrize('where', ['train', 'sampling'])
def test_unknown_precision_names_the_option(tmp_path, where):
    if where == 'sampling':
        with pytest.raises(ValueError, match=r'sampling: autocast must be ~, bf16 or fp16, got .fp8.'):
            check_sampling({'autocast': 'fp8'})
    else:
        with pytest.raises(ValueError, match=r'train: frozen_dtype must be ~, bf16 or fp16, got .half.'):
            VDDModel(tiny_options(1, tmp_path, frozen_dtype='half'))
