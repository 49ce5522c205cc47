"""TF-T2V's 3D UNet as diffusers' ``UNet3DConditionModel`` (the ModelScope UNet) plus what it lacks.

Built from TF-T2V-style options (VGen ``UNetSD_TFT2V`` names), loaded from TF-T2V checkpoints
with :func:`tft2v_to_diffusers` (key renaming of docs/design.md section 2). Parity with the original
code is tested against ``fixtures/tft2v`` (float32 rounding, ~4e-6). What diffusers does not
cover is here: ResBlock dropout 0.1 in training (diffusers fixes 0.0; its temporal convs already
use 0.1), gradient checkpointing (UNet3DConditionModel 0.42 has none), SDPA attention is
diffusers' default processor. The image projection (``pre_image_condition``) lives in
:class:`ImageTokenProjection`; the 8-channel concat slot is filled by the caller.
"""
import re

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def unet_config(in_channels, out_channels, dim=320, dim_mult=(1, 2, 4, 4), head_dim=64, num_res_blocks=2,
                attn_scales=(1.0, 0.5, 0.25), context_dim=1024):
    """diffusers ``UNet3DConditionModel`` kwargs equivalent to a TF-T2V UNet configuration."""
    levels = len(dim_mult)
    has_attn = [1 / 2 ** i in attn_scales for i in range(levels)]
    down = tuple('CrossAttnDownBlock3D' if a else 'DownBlock3D' for a in has_attn)
    up = tuple('CrossAttnUpBlock3D' if a else 'UpBlock3D' for a in reversed(has_attn))
    return dict(in_channels=in_channels, out_channels=out_channels, down_block_types=down, up_block_types=up,
                block_out_channels=tuple(dim * m for m in dim_mult), layers_per_block=num_res_blocks,
                downsample_padding=1, mid_block_scale_factor=1, act_fn='silu', norm_num_groups=32, norm_eps=1e-5,
                cross_attention_dim=context_dim, attention_head_dim=head_dim)  # per-head size in diffusers' 3D UNet


def build_unet(in_channels, out_channels, dropout=0.1, **tft2v_options):
    """``UNet3DConditionModel`` with TF-T2V's structure and ResBlock dropout."""
    from diffusers import UNet3DConditionModel  # here, not at import: ~1 s of every process start

    unet = UNet3DConditionModel(**unet_config(in_channels, out_channels, **tft2v_options))
    for name, module in unet.named_modules():
        if re.search(r'\.resnets\.\d+\.dropout$', name):
            module.p = dropout
    return unet


def set_gradient_checkpointing(unet, enabled):
    """Recompute each down/mid/up block in the backward pass to save activation memory: whenever
    gradients are recorded, also through a frozen UNet in eval mode (stage 1 back-propagates through it
    to the blur encoder's concat input); never under ``torch.no_grad`` (sampling, validation)."""
    blocks = list(unet.down_blocks) + [unet.mid_block] + list(unet.up_blocks)
    for block in blocks:
        if enabled and 'forward' not in block.__dict__:
            inner = block.forward

            def forward(*args, _inner=inner, **kwargs):
                if torch.is_grad_enabled():
                    return checkpoint(_inner, *args, use_reentrant=False, **kwargs)
                return _inner(*args, **kwargs)

            block.forward = forward
        elif not enabled and 'forward' in block.__dict__:
            del block.forward


class ImageTokenProjection(nn.Module):
    """TF-T2V ``pre_image_condition``: CLIP image embedding ``[B, 1, D]`` -> ``num_tokens`` context tokens.

    Linear(D, C) - SiLU - Linear(C, num_tokens * C); tokens ``[B, num_tokens, C]`` follow the text tokens.
    """

    def __init__(self, image_dim=1024, context_dim=1024, num_tokens=4):
        super().__init__()
        self.num_tokens, self.context_dim = num_tokens, context_dim
        self.net = nn.Sequential(nn.Linear(image_dim, context_dim), nn.SiLU(),
                                 nn.Linear(context_dim, num_tokens * context_dim))

    def forward(self, embedding):
        return self.net(embedding).view(embedding.shape[0], self.num_tokens, self.context_dim)


# ---------------------------------------------------------------------------------------- keys
_RESNET = {'in_layers.0': 'norm1', 'in_layers.2': 'conv1', 'emb_layers.1': 'time_emb_proj',
           'out_layers.0': 'norm2', 'out_layers.3': 'conv2', 'skip_connection': 'conv_shortcut'}


def _resnet_key(rest):
    """Key inside a VGen ResBlock -> key inside diffusers' ResnetBlock2D (or its temporal conv)."""
    for old, new in _RESNET.items():
        if rest.startswith(old + '.'):
            return new + rest[len(old):]
    raise KeyError(rest)


def _block_layer(prefix, sub, rest, slot):
    """One layer of a VGen level (``sub`` = index inside the block) -> diffusers key under ``prefix``."""
    if sub == 0:
        if rest.startswith('temopral_conv.'):
            return f'{prefix}.temp_convs.{slot}.{rest[len("temopral_conv."):]}'
        return f'{prefix}.resnets.{slot}.{_resnet_key(rest)}'
    if sub == 1:
        return f'{prefix}.attentions.{slot}.{rest}'
    if sub == 2:
        return f'{prefix}.temp_attentions.{slot}.{rest}'
    raise KeyError(sub)


# single modules of TF-T2V's UNet and their diffusers names
_RENAMED_PREFIXES = {
    'time_embed.0.': 'time_embedding.linear_1.', 'time_embed.2.': 'time_embedding.linear_2.',
    'out.0.': 'conv_norm_out.', 'out.2.': 'conv_out.',
    'input_blocks.0.0.': 'conv_in.', 'input_blocks.0.1.': 'transformer_in.',
}


def _vgen_key_to_diffusers(key, num_res_blocks, num_levels):
    """A TF-T2V UNet key -> (part, key), part in {'unet', 'image_proj'}."""
    per_level = num_res_blocks + 1
    if key.startswith('pre_image_condition.'):
        index, tail = key[len('pre_image_condition.'):].split('.', 1)
        return 'image_proj', f'net.{index}.{tail}'
    for vgen, ours in _RENAMED_PREFIXES.items():
        if key.startswith(vgen):
            return 'unet', ours + key[len(vgen):]
    m = re.match(r'input_blocks\.(\d+)\.(.*)', key)
    if m:
        k = int(m.group(1)) - 1
        level, slot = divmod(k, per_level)
        prefix = f'down_blocks.{level}'
        if slot == num_res_blocks:
            return 'unet', f'{prefix}.downsamplers.0.conv.{m.group(2)[len("op."):]}'
        sub, rest = m.group(2).split('.', 1)
        return 'unet', _block_layer(prefix, int(sub), rest, slot)
    m = re.match(r'middle_block\.(\d)\.(.*)', key)
    if m:
        sub, rest = int(m.group(1)), m.group(2)
        if sub in (0, 3):
            i = 0 if sub == 0 else 1
            return 'unet', _block_layer('mid_block', 0, rest, i)
        return 'unet', _block_layer('mid_block', sub, rest, 0)
    m = re.match(r'output_blocks\.(\d+)\.(\d+)\.(.*)', key)
    if m:
        level, slot = divmod(int(m.group(1)), per_level)
        sub, rest = int(m.group(2)), m.group(3)
        prefix = f'up_blocks.{level}'
        if rest.startswith('conv.') and sub > 0:  # Upsample: the last module of the level's last block
            return 'unet', f'{prefix}.upsamplers.0.{rest}'
        return 'unet', _block_layer(prefix, sub, rest, slot)
    raise KeyError(key)


def tft2v_to_diffusers(state, num_res_blocks=2, num_levels=4, unknown=None):
    """Rename a TF-T2V UNet state dict: ``{'unet': {...}, 'image_proj': {...}}`` in our layout.

    Temporal transformers' Conv1d ``proj_in``/``proj_out`` ``[o, i, 1]`` become Linear ``[o, i]``.
    Keys that are not TF-T2V UNet keys raise a KeyError naming them (nothing is silently dropped),
    unless a list is given as ``unknown``: they are then appended to it.
    """
    out = {'unet': {}, 'image_proj': {}}
    collect = unknown is not None
    unknown = unknown if collect else []
    for key, value in state.items():
        try:
            part, new = _vgen_key_to_diffusers(key, num_res_blocks, num_levels)
        except (KeyError, ValueError):
            unknown.append(key)
            continue
        if re.search(r'(transformer_in|temp_attentions\.\d+)\.proj_(in|out)\.weight$', new) and value.dim() == 3:
            value = value[..., 0]
        out[part][new] = value
    if unknown and not collect:
        raise KeyError(f'{len(unknown)} keys are not TF-T2V UNet keys, e.g. {unknown[:5]}')
    return out
