"""The composite VDD network: initial equivalence to the T2V UNet, frozen parts, CLIP and null-text loading."""
import pytest
import torch
from safetensors.torch import save_file

from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError
from basicsr_vdd.archs.clip_image import CLIPImageEncoder
from basicsr_vdd.archs.vdd_arch import VDDNet

TINY_CLIP = dict(embed_dim=64, vision_cfg=dict(image_size=224, layers=1, width=64, head_width=32, patch_size=32))
TINY = dict(
    unet=dict(dim=32, dim_mult=(1, 2), head_dim=8, num_res_blocks=1, attn_scales=(0.5,), context_dim=64, image_dim=64),
    vae=dict(type='kl', ch=32, ch_mult=(1, 2), num_res_blocks=1),
    clip_image=TINY_CLIP, blur_encoder=dict(hidden=[16]), null_text=None, text_tokens=5)


def _net(**overrides):
    torch.manual_seed(0)
    return VDDNet(**dict(TINY, **overrides)).eval()


def test_at_initialisation_the_output_is_the_pretrained_t2v_output_for_any_blur():
    net = _net()
    x_t, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([10, 900])
    blur_a, blur_b = torch.rand(2, 3, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 3, 16, 16) * 2 - 1
    emb = net.encode_image(blur_a[:, :, 1])
    with torch.no_grad():
        plain = net(x_t, t, image_embedding=emb)  # concat slot all zeros, as in TF-T2V's T2V setting
        torch.testing.assert_close(net(x_t, t, blur=blur_a, image_embedding=emb), plain, rtol=0, atol=0)
        torch.testing.assert_close(net(x_t, t, blur=blur_b, image_embedding=emb), plain, rtol=0, atol=0)
    # the blur path is live: once the projection is not zero, the blur changes the output
    with torch.no_grad():
        net.blur_encoder.proj[-1].weight.normal_(0, 0.1)
        assert (net(x_t, t, blur=blur_a, image_embedding=emb) - plain).abs().max() > 1e-4


def test_blur_encoder_starts_as_a_copy_of_the_vae_encoder_and_stays_independent():
    net = _net()
    vae_encoder = net.vae.model.encoder.state_dict()
    copy = net.blur_encoder.encoder[0].state_dict()
    assert all(torch.equal(vae_encoder[k], copy[k]) for k in vae_encoder)
    with torch.no_grad():
        net.blur_encoder.encoder[0].conv_in.weight.add_(1)
    assert not torch.equal(net.vae.model.encoder.conv_in.weight, net.blur_encoder.encoder[0].conv_in.weight)


def test_frozen_parts_have_no_grads_and_stay_in_eval_mode():
    net = _net().train()
    assert not net.vae.training and not net.clip_image.training
    assert not any(p.requires_grad for p in net.vae.parameters())
    assert not any(p.requires_grad for p in net.clip_image.parameters())
    assert net.unet.training and net.blur_encoder.training
    dropouts = [m.p for n, m in net.unet.named_modules() if n.endswith('resnets.0.dropout')]
    assert dropouts and all(p == 0.1 for p in dropouts)  # TF-T2V's ResBlock dropout


def test_image_tokens_are_zeroed_by_image_keep():
    net = _net()
    x_t, t = torch.randn(2, 4, 2, 8, 8), torch.tensor([500, 500])
    emb = torch.randn(2, 1, 64)
    with torch.no_grad():
        uncond = net(x_t, t, image_embedding=None)
        dropped = net(x_t, t, image_embedding=emb, image_keep=torch.tensor([0.0, 1.0]))
        cond = net(x_t, t, image_embedding=emb)
    torch.testing.assert_close(dropped[0], uncond[0])
    torch.testing.assert_close(dropped[1], cond[1])
    assert (cond[0] - uncond[0]).abs().max() > 1e-4


def test_gradient_checkpointing_gives_the_same_gradients():
    net = _net().train()
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    x_t, t = torch.randn(1, 4, 2, 8, 8), torch.tensor([300])

    def grads():
        net.zero_grad()
        net(x_t, t).square().mean().backward()
        return [p.grad.clone() for p in net.unet.parameters() if p.grad is not None]

    plain = grads()
    net.set_gradient_checkpointing(True)
    checkpointed = grads()
    net.set_gradient_checkpointing(False)
    assert len(plain) == len(checkpointed) > 0
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_clip_tower_loads_open_clip_files_and_explains_mismatches(tmp_path):
    ref = CLIPImageEncoder(**TINY_CLIP, seed=3)
    full = {f'visual.{k}': v for k, v in ref.visual.state_dict().items()}
    full['token_embedding.weight'] = torch.zeros(10, 64)  # the text tower of the same file is ignored
    path = str(tmp_path / 'open_clip_pytorch_model.bin')
    torch.save(full, path)
    loaded = CLIPImageEncoder(**TINY_CLIP, pretrained=path, seed=7)
    frames = torch.rand(2, 3, 40, 56) * 2 - 1
    torch.testing.assert_close(loaded(frames), ref(frames))
    assert loaded(frames).shape == (2, 1, 64)
    bad = dict(full)
    bad.pop('visual.proj')
    torch.save(bad, path)
    with pytest.raises(CheckpointMismatchError, match=r'missing keys \(1\): proj'):
        CLIPImageEncoder(**TINY_CLIP, pretrained=path)


def test_null_text_file_and_its_errors(tmp_path):
    path = str(tmp_path / 'null_text.safetensors')
    emb = torch.randn(1, 5, 64)
    save_file({'null_text': emb}, path)
    net = _net(null_text=path)
    torch.testing.assert_close(net.null_text, emb)
    assert net.null_text_source == 'null_text.safetensors'
    save_file({'null_text': torch.randn(1, 5, 32)}, path)
    with pytest.raises(CheckpointMismatchError, match=r'shape \(1, 5, 32\), expected \[1, L, 64\]'):
        _net(null_text=path)
    assert torch.equal(_net().null_text, torch.zeros(1, 5, 64))


def test_size_multiple_and_image_dim_check():
    assert _net().size_multiple == 2 * 2  # KL with one downsampling level x UNet with two levels
    with pytest.raises(ValueError, match='embeds to 64 dims but unet.image_dim is 32'):
        VDDNet(**dict(TINY, unet=dict(TINY['unet'], image_dim=32)))


def test_checkpointing_engages_in_a_frozen_eval_unet_that_gradients_pass_through():
    """Stage 1: the UNet is frozen and in eval mode, but the loss back-propagates through it to the blur
    encoder's concat input; checkpointing must recompute its blocks (not keep their activations) and
    give the same input gradient."""
    net = _net()
    net.unet.requires_grad_(False).eval()
    x_t, t = torch.randn(1, 4, 2, 8, 8), torch.tensor([300])
    calls = []
    net.unet.mid_block.resnets[0].register_forward_hook(lambda *a: calls.append(1))

    def input_grad():
        concat = torch.randn(1, net.concat_dim, 2, 8, 8, generator=torch.Generator().manual_seed(0),
                             requires_grad=True)
        calls.clear()
        net(x_t, t, concat=concat).square().mean().backward()
        return concat.grad, len(calls)

    plain, plain_calls = input_grad()
    net.set_gradient_checkpointing(True)
    checkpointed, checkpointed_calls = input_grad()
    with torch.no_grad():  # no recording, no recomputation
        calls.clear()
        net(x_t, t)
    net.set_gradient_checkpointing(False)
    assert plain_calls == 1 and checkpointed_calls == 2 and len(calls) == 1
    torch.testing.assert_close(plain, checkpointed, rtol=1e-4, atol=1e-7)
