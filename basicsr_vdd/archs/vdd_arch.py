"""The VDD network: TF-T2V UNet + image tokens + blur encoder, with the frozen VAE and CLIP tower.

Parts (top-level modules; the training stages select among them):

=============  ======================================================  =========  =========
part           what                                                    stage 1    stage 2
=============  ======================================================  =========  =========
unet           diffusers UNet3DConditionModel, TF-T2V structure        frozen     trained
image_proj     TF-T2V ``pre_image_condition``: CLIP embedding -> 4 tokens frozen  trained
blur_encoder   copy of the VAE encoder + zero-init conv -> 8-ch concat trained    trained
vae            KL-f8 (SD 2.1) or pixel-unshuffle (demo)                frozen     frozen
clip_image     open_clip visual tower (central blurry frame)           frozen     frozen
=============  ======================================================  =========  =========

Options (``network_g``)::

    type: VDDNet
    unet: {dim: 320, dim_mult: [1, 2, 4, 4], head_dim: 64, num_res_blocks: 2, attn_scales: [1, 0.5, 0.25],
           context_dim: 1024, concat_dim: 8, image_dim: 1024, num_image_tokens: 4, dropout: 0.1,
           pretrained: pretrained/tft2v_t2v_non_ema_512000.pth}
    vae: {type: kl, pretrained: pretrained/v2-1_512-ema-pruned.ckpt}          # or {type: pixel_unshuffle, factor: 4}
    clip_image: {model: ViT-H-14, pretrained: pretrained/open_clip_pytorch_model.bin}   # or ~ (no image tokens)
    blur_encoder: {hidden: []}
    null_text: pretrained/null_text_vit_h14.safetensors   # or ~: zeros [1, 77, context_dim]
    pretrained: ~   # or one file in our layout from scripts/convert_weights.py --out (instead of the three)
"""
import os.path as osp

import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

from .autoencoder import build_autoencoder
from .blur_encoder import BlurEncoder
from .checkpoint_io import CheckpointMismatchError, load_strict, read_state_dict
from .clip_image import CLIPImageEncoder
from .tft2v_unet import ImageTokenProjection, build_unet, set_gradient_checkpointing, tft2v_to_diffusers

FROZEN_PARTS = ('vae', 'clip_image')


def load_null_text(path, tokens, dim):
    """The empty-prompt text embedding ``[1, tokens, dim]`` from a file, or zeros when ``path`` is None."""
    if path is None:
        return torch.zeros(1, tokens, dim)
    state = read_state_dict(path)
    if 'null_text' not in state:
        raise CheckpointMismatchError(f'{path}: no "null_text" tensor (keys {sorted(state)[:5]})')
    emb = state['null_text'].float()
    if emb.dim() != 3 or emb.shape[0] != 1 or emb.shape[2] != dim:
        raise CheckpointMismatchError(f'{path}: null_text has shape {tuple(emb.shape)}, expected [1, L, {dim}]')
    return emb


def _sub_state(state, prefix):
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + '.')}


@ARCH_REGISTRY.register()
class VDDNet(nn.Module):
    """``forward(x_t [B, c, F, h, w], t [B], blur=None | concat=None, image_embedding=None) -> v [B, c, F, h, w]``."""

    def __init__(self, unet, vae, blur_encoder=None, clip_image=None, null_text=None, text_tokens=77,
                 pretrained=None):
        super().__init__()
        converted = read_state_dict(pretrained) if pretrained else None
        unet = dict(unet)
        unet_file = unet.pop('pretrained', None)
        dropout = unet.pop('dropout', 0.1)
        self.concat_dim = unet.pop('concat_dim', 8)
        image_dim, num_tokens = unet.pop('image_dim', 1024), unet.pop('num_image_tokens', 4)
        context_dim = unet.setdefault('context_dim', 1024)
        self.num_levels = len(unet.get('dim_mult', (1, 2, 4, 4)))

        self.vae = build_autoencoder(vae).requires_grad_(False).eval()
        latent = self.vae.latent_channels
        self.unet = build_unet(latent + self.concat_dim, latent, dropout=dropout, **unet)
        self.image_proj = ImageTokenProjection(image_dim, context_dim, num_tokens)
        if unet_file:
            self.load_tft2v(unet_file, unet.get('num_res_blocks', 2))
        if converted is not None:  # before the blur encoder copies the VAE encoder
            for part in ('vae.model', 'unet', 'image_proj') if hasattr(self.vae, 'model') else ('unet', 'image_proj'):
                load_strict(self.get_submodule(part), _sub_state(converted, part), f'{pretrained} ({part}.*)')
        self.blur_encoder = BlurEncoder(self.vae.encoder_copy(), self.vae.encoder_channels, self.concat_dim,
                                        **(blur_encoder or {}))
        self.clip_image = CLIPImageEncoder(**clip_image) if clip_image else None
        if self.clip_image is not None and self.clip_image.embed_dim != image_dim:
            raise ValueError(f'clip_image embeds to {self.clip_image.embed_dim} dims but unet.image_dim is {image_dim}')
        if converted is not None and self.clip_image is not None:
            load_strict(self.clip_image.visual, _sub_state(converted, 'clip_image.visual'),
                        f'{pretrained} (clip_image.*)')
        self.null_text_source = osp.basename(null_text) if null_text else 'zeros'
        self.register_buffer('null_text', load_null_text(null_text, text_tokens, context_dim), persistent=False)

    # ----------------------------------------------------------------- loading
    def load_tft2v(self, path, num_res_blocks=2):
        """Load a TF-T2V UNet checkpoint (VGen layout, optionally ``{'state_dict', 'step'}``) strictly."""
        state = read_state_dict(path)
        try:
            parts = tft2v_to_diffusers(state, num_res_blocks, self.num_levels)
        except KeyError as err:
            raise CheckpointMismatchError(f'{path}: {err.args[0]}') from err
        load_strict(self.unet, parts['unet'], path)
        load_strict(self.image_proj, parts['image_proj'], f'{path} (pre_image_condition)')

    # ----------------------------------------------------------------- properties
    @property
    def size_multiple(self):
        """Frame sizes must be multiples of this (autoencoder factor x UNet downsampling)."""
        return self.vae.downscale * 2 ** (self.num_levels - 1)

    def train(self, mode=True):
        super().train(mode)
        for name in FROZEN_PARTS:
            if getattr(self, name) is not None:
                getattr(self, name).eval()
        return self

    def set_gradient_checkpointing(self, enabled=True):
        set_gradient_checkpointing(self.unet, enabled)

    # ----------------------------------------------------------------- encoders
    @torch.no_grad()
    def encode_image(self, frames):
        """Central frames ``[B, 3, H, W]`` in [-1, 1] -> CLIP embedding ``[B, 1, D]`` (None without CLIP)."""
        return None if self.clip_image is None else self.clip_image(frames)

    def encode_blur(self, blur):
        """Blurry frames ``[B, 3, F, H, W]`` in [-1, 1] -> concat features ``[B, concat_dim, F, h, w]``."""
        return self.blur_encoder(blur.to(compute_dtype(self.blur_encoder, blur))).to(blur.dtype)

    # ----------------------------------------------------------------- forward
    def forward(self, x_t, t, blur=None, concat=None, image_embedding=None, image_keep=None, text_context=None):
        """Predict v. ``concat`` (precomputed) or ``blur`` fills the concat slot (zeros if neither).

        Image tokens: from ``image_embedding`` ``[B, 1, D]``; zero tokens when it is None (the
        unconditional branch); ``image_keep`` ``[B]`` multiplies them (dropout for guidance).
        Networks without a CLIP tower and without an embedding get no image tokens at all.
        """
        b = x_t.shape[0]
        if concat is None:
            concat = self.encode_blur(blur) if blur is not None else x_t.new_zeros(
                (b, self.concat_dim) + tuple(x_t.shape[2:]))
        context = self.null_text.expand(b, -1, -1) if text_context is None else text_context
        context = context.to(x_t.dtype)
        if self.clip_image is not None or image_embedding is not None:
            if image_embedding is None:
                tokens = x_t.new_zeros(b, self.image_proj.num_tokens, self.image_proj.context_dim)
            else:
                tokens = self.image_proj(image_embedding.to(compute_dtype(self.image_proj, x_t)))
            if image_keep is not None:
                tokens = tokens * image_keep.to(tokens.dtype).view(b, 1, 1)
            context = torch.cat([context, tokens.to(context.dtype)], 1)
        dtype = compute_dtype(self.unet, x_t)
        x = torch.cat([x_t, concat.to(x_t.dtype)], 1).to(dtype)
        return self.unet(x, t, encoder_hidden_states=context.to(dtype)).sample.to(x_t.dtype)


def compute_dtype(module, x):
    """The dtype to feed ``module``: its weights' dtype, unless autocast is on (autocast casts itself).
    Parts held in bf16 (``train: frozen_dtype``) thus run in bf16 with or without autocast."""
    if torch.is_autocast_enabled(x.device.type):
        return x.dtype
    return next(module.parameters()).dtype
