"""Frame autoencoders with one interface on videos ``[B, C, F, H, W]``: SD 2.1's KL-f8 and pixel-unshuffle.

* :class:`KLAutoencoder`: diffusers ``AutoencoderKL`` loaded from ``first_stage_model.*`` of a
  Stable Diffusion ``.ckpt`` (diffusers' own LDM key converter), latents scaled by 0.18215,
  frames encoded in chunks, optional tiling for large frames.
* :class:`PixelUnshuffleAutoencoder`: lossless, weightless ``pixel_unshuffle``; the CPU demo uses
  it because no VAE can be downloaded or trained here. Only the config differs.

Both expose ``latent_channels``, ``downscale``, ``encode``/``decode`` and ``encoder_copy()`` (a
trainable copy of the encoder for the blur encoder) with ``encoder_channels`` outputs.
"""
import copy

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .checkpoint_io import CheckpointMismatchError, describe_mismatch, read_state_dict


def per_frame(fn, video, chunk):
    """Apply ``fn`` ``[N, C, H, W] -> [N, C', H', W']`` to the frames of ``video`` ``[B, C, F, H, W]`` in chunks."""
    frames = rearrange(video, 'b c f h w -> (b f) c h w')
    chunk = chunk or frames.shape[0]  # 0: all frames at once
    out = torch.cat([fn(frames[i:i + chunk]) for i in range(0, frames.shape[0], chunk)])
    return rearrange(out, '(b f) c h w -> b c f h w', b=video.shape[0])


class KLAutoencoder(nn.Module):
    """SD 2.1 KL autoencoder (f8, 4 latent channels); ``encode`` returns the scaled posterior mean."""

    def __init__(self, ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4, scale_factor=0.18215,
                 pretrained=None, chunk_frames=8, tiling=False, tile_size=512, sample_posterior=False):
        """``tiling``: encode/decode frames larger than ``tile_size`` pixels in overlapping tiles of that
        size (diffusers' tiling, 25 % overlap, blended), bounding memory on large frames."""
        from diffusers import AutoencoderKL  # here, not at import: diffusers adds ~1 s to every process start

        super().__init__()
        blocks = tuple(ch * m for m in ch_mult)
        self.model = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=z_channels, block_out_channels=blocks,
            layers_per_block=num_res_blocks, down_block_types=('DownEncoderBlock2D',) * len(blocks),
            up_block_types=('UpDecoderBlock2D',) * len(blocks), norm_num_groups=32, scaling_factor=scale_factor,
            sample_size=tile_size)  # diffusers uses sample_size only as the tile size
        self.scale_factor, self.chunk_frames, self.sample_posterior = scale_factor, chunk_frames, sample_posterior
        self.latent_channels, self.downscale, self.encoder_channels = z_channels, 2 ** (len(blocks) - 1), 2 * z_channels
        if tiling:
            self.model.enable_tiling()
        if pretrained:
            self.load_ldm(pretrained)

    def load_ldm(self, path):
        """Load ``first_stage_model.*`` (SD ``.ckpt``) or bare LDM autoencoder keys, strictly."""
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = read_state_dict(path)
        prefixed = {k: v for k, v in state.items() if k.startswith('first_stage_model.')}
        source = prefixed or {f'first_stage_model.{k}': v for k, v in state.items()
                              if k.split('.')[0] in ('encoder', 'decoder', 'quant_conv', 'post_quant_conv')}
        if not source:
            raise CheckpointMismatchError(f'{path}: no first_stage_model.* (autoencoder) keys; found e.g. '
                                          f'{sorted(state)[:5]}')
        converted = convert_ldm_vae_checkpoint(source, self.model.config)
        expected = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        lines = describe_mismatch(path, expected, converted)
        if len(converted) != len(source):
            lines = lines or [f'{path}: does not match the module']
            lines.append(f'  {len(source) - len(converted)} autoencoder keys of the file have no place in the model')
        if lines:
            raise CheckpointMismatchError('\n'.join(lines))
        self.model.load_state_dict(converted, strict=True)

    def _encode_frames(self, x):
        dist = self.model.encode(x.to(self.model.dtype)).latent_dist
        return (dist.sample() if self.sample_posterior else dist.mean).float() * self.scale_factor

    def encode(self, video):
        """``[B, 3, F, H, W]`` in [-1, 1] -> scaled latents ``[B, 4, F, H/8, W/8]``."""
        return per_frame(self._encode_frames, video, self.chunk_frames)

    def decode(self, latents):
        """Scaled latents ``[B, 4, F, h, w]`` -> frames ``[B, 3, F, 8h, 8w]`` (about [-1, 1]), float32 whatever
        the weights' dtype (``train: frozen_dtype``)."""
        return per_frame(lambda z: self.model.decode((z / self.scale_factor).to(self.model.dtype)).sample.float(),
                         latents, self.chunk_frames)

    def encoder_copy(self):
        """Trainable copy of encoder + quant_conv: frames -> 8 posterior moments per latent pixel."""
        return nn.Sequential(copy.deepcopy(self.model.encoder), copy.deepcopy(self.model.quant_conv))


class PixelUnshuffleAutoencoder(nn.Module):
    """Lossless space-to-depth 'autoencoder': ``[B, 3, F, H, W]`` -> ``[B, 3 f², F, H/f, W/f]`` times ``scale``."""

    def __init__(self, factor=4, scale=1.0, chunk_frames=0):
        super().__init__()
        self.factor, self.scale, self.chunk_frames = factor, scale, chunk_frames
        self.latent_channels = self.encoder_channels = 3 * factor * factor
        self.downscale = factor

    def encode(self, video):
        return per_frame(lambda x: F.pixel_unshuffle(x, self.factor) * self.scale, video, self.chunk_frames)

    def decode(self, latents):
        return per_frame(lambda z: F.pixel_shuffle(z / self.scale, self.factor), latents, self.chunk_frames)

    def encoder_copy(self):
        return nn.PixelUnshuffle(self.factor)


def build_autoencoder(opt):
    opt = dict(opt)
    kind = opt.pop('type', 'kl')
    if kind == 'kl':
        return KLAutoencoder(**opt)
    if kind == 'pixel_unshuffle':
        return PixelUnshuffleAutoencoder(**opt)
    raise ValueError(f"vae type must be 'kl' or 'pixel_unshuffle', got {kind!r}")
