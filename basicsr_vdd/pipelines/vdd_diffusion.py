"""The paper's conditional video diffusion around a :class:`~basicsr_vdd.archs.vdd_arch.VDDNet` (plain torch).

Training: ``z0 = vae.encode(sharp)`` (or the scaled residual ``(z_sharp - z_blur) / s``),
``t ~ U{0..T-1}`` (or logit-normal), ``x_t = q_sample(z0, t, noise + offset)``, target ``v``; the blur path enters
through the concat slot, the central frame's CLIP embedding through 4 tokens dropped with
probability ``p_uncond``. Sampling: DDIM / DPM-Solver++ / UniPC with classifier-free guidance
(uncond = image tokens zeroed, blur latents kept), optionally starting from the noised blur.
Videos are ``[B, C, F, H, W]`` in [-1, 1].
"""
import math
import zlib
from contextlib import nullcontext

import torch
from einops import rearrange

from basicsr_vdd.diffusion.guidance import guided
from basicsr_vdd.diffusion.samplers import SAMPLERS, SPACINGS, make_scheduler, sample, start_index_for, timesteps
from basicsr_vdd.diffusion.schedule import (NoiseSchedule, offset_noise, sample_timesteps,
                                           timestep_sampling_kwargs)
from basicsr_vdd.pipelines.video_windows import pad_to_multiple, run_windowed, stream_windowed

TARGETS = ('sharp', 'residual')
SAMPLER_OPTIONS = ('sampler', 'steps', 'eta', 'guidance_scale', 'guidance_batched', 'strength', 'start_from',
                   'spacing', 'autocast')
STARTS = ('blur', 'mean')
SAMPLING_KEYS = SAMPLER_OPTIONS + ('window', 'overlap', 'tile', 'tile_overlap', 'seed')


LOW_PRECISION = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def low_precision_dtype(name, option):
    """``None | 'bf16' | 'fp16'`` -> ``None | torch.bfloat16 | torch.float16``; ValueError naming ``option``."""
    if name is None:
        return None
    if name not in LOW_PRECISION:
        raise ValueError(f'{option} must be ~, bf16 or fp16, got {name!r}')
    return LOW_PRECISION[name]


def check_sampling(sampling):
    """Raise a ValueError that names the option for ``sampling:`` values no run can use (call before any work)."""
    unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
    if unknown:
        raise ValueError(f'sampling: unknown options {unknown}; known: {list(SAMPLING_KEYS)}')
    get = sampling.get
    for key, value in sampling.items():  # inf passes every '>=' below: a guidance of inf samples noise
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'sampling: {key} must be a finite number, got {value!r}')
    choices = {'sampler': SAMPLERS, 'spacing': SPACINGS, 'start_from': STARTS}
    for key, allowed in choices.items():
        if key in sampling and sampling[key] not in allowed:
            raise ValueError(f'sampling: {key} must be one of {list(allowed)}, got {sampling[key]!r}')
    checks = [('steps', get('steps', 1) >= 1 and float(get('steps', 1)).is_integer(), 'an integer >= 1'),
              ('guidance_scale', get('guidance_scale', 1.0) >= 0, '>= 0 (1 = no guidance)'),
              ('eta', get('eta', 0.0) >= 0, '>= 0'),
              ('strength', 0 < get('strength', 1.0) <= 1, 'in (0, 1]'),
              ('window', get('window', 16) >= 1, '>= 1'),
              ('overlap', 0 <= get('overlap', 4) < get('window', 16), f'in [0, window = {get("window", 16)})'),
              ('tile', (get('tile') or 0) >= 0, '>= 0 (0: whole frames)'),
              ('tile_overlap', not get('tile') or 0 <= (get('tile_overlap') or 0) < get('tile'),
               f'in [0, tile = {get("tile")})')]
    for key, ok, need in checks:
        if not ok:
            raise ValueError(f'sampling: {key} must be {need}, got {sampling[key]!r}')
    low_precision_dtype(get('autocast'), 'sampling: autocast')


def to_model_video(frames):
    """``[B, N, C, H, W]`` in [0, 1] -> ``[B, C, N, H, W]`` in [-1, 1]."""
    return rearrange(frames, 'b n c h w -> b c n h w') * 2 - 1


def from_model_video(video):
    """``[B, C, N, H, W]`` in [-1, 1] -> ``[B, N, C, H, W]`` in [0, 1] (clamped)."""
    return ((rearrange(video, 'b c n h w -> b n c h w') + 1) / 2).clamp(0, 1)


class VDDDiffusion:
    """Diffusion settings of VDD and the operations that need the network (encode, train batch, sample)."""

    def __init__(self, num_timesteps=1000, beta_start=0.00085, beta_end=0.012, zero_terminal_snr=True,
                 offset_noise=0.1, target='sharp', residual_scale='auto', p_uncond=0.1, timestep_sampling=None):
        if target not in TARGETS:
            raise ValueError(f'diffusion target must be one of {TARGETS}, got {target!r}')
        self.timestep_sampling = timestep_sampling_kwargs(timestep_sampling)
        self.schedule_args = dict(num_timesteps=num_timesteps, beta_start=beta_start, beta_end=beta_end,
                                  zero_terminal_snr=zero_terminal_snr)
        self.schedule = NoiseSchedule.linear_sd(**self.schedule_args)
        self.offset_noise, self.target, self.p_uncond = offset_noise, target, p_uncond
        self.residual_scale = None if residual_scale == 'auto' else float(residual_scale)

    # --------------------------------------------------------------- target space
    def meta(self):
        return {'target': self.target, 'residual_scale': self.residual_scale}

    def load_meta(self, meta, source=''):
        """Adopt the target space of a checkpoint; a different ``target`` is an error."""
        if meta.get('target', self.target) != self.target:
            raise ValueError(f'{source}: trained with target {meta["target"]!r}, options say {self.target!r}')
        if self.residual_scale is None and meta.get('residual_scale') is not None:
            self.residual_scale = float(meta['residual_scale'])

    @torch.no_grad()
    def encode_target(self, net, sharp, blur):
        """The clean sample ``x0`` ``[B, c, F, h, w]`` the diffusion runs on."""
        z_sharp = net.vae.encode(sharp)
        if self.target == 'sharp':
            return z_sharp
        residual = z_sharp - net.vae.encode(blur)
        if self.residual_scale is None:  # measured once, then kept in every checkpoint
            self.residual_scale = first_rank_value(max(residual.float().std().item(), 1e-3), residual.device)
        return residual / self.residual_scale

    def decode_target(self, net, x0, z_blur):
        z = x0 if self.target == 'sharp' else x0 * self.residual_scale + z_blur
        return net.vae.decode(z)

    # --------------------------------------------------------------- training
    @torch.no_grad()
    def training_batch(self, net, sharp, blur, generator, use_blur=True):
        """``{'x_t', 't', 'v', 'image_embedding', 'image_keep'}`` for one training step."""
        x0 = self.encode_target(net, sharp, blur)
        b, device = x0.shape[0], x0.device
        t = sample_timesteps(b, self.schedule.num_timesteps, generator, device, **self.timestep_sampling)
        noise = offset_noise(tuple(x0.shape), self.offset_noise, generator, device, x0.dtype)
        center = (blur if use_blur else sharp)[:, :, x0.shape[2] // 2]
        keep = (torch.rand(b, generator=generator, device=device) >= self.p_uncond).float()
        return {'x_t': self.schedule.q_sample(x0, t, noise), 't': t, 'v': self.schedule.v_target(x0, t, noise),
                'image_embedding': net.encode_image(center), 'image_keep': keep}

    # --------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, net, blur, generator, sampler='ddim', steps=50, eta=0.0, guidance_scale=1.0,
               guidance_batched=True, strength=1.0, start_from='blur', spacing='leading', autocast=None):
        """Deblur one window: ``blur`` ``[B, 3, F, H, W]`` in [-1, 1] -> ``[B, 3, F, H, W]``.

        ``strength`` < 1 starts the reverse process part-way, at ``timesteps[round((1 - strength) * steps)]``,
        from a noised guess (SDEdit): ``start_from: blur`` guesses the blurry video itself (zero residual),
        ``start_from: mean`` the network's own clean estimate from pure noise at t = T - 1 (one more
        network call; under zero terminal SNR it is the conditional mean, and with the same noise this is
        DDIM with a first jump from T - 1 to the start): the remaining steps then refine that estimate.
        ``autocast`` (``bf16 | fp16``): the blur encoder, CLIP tower and UNet run under ``torch.autocast``;
        the VAE and the sampler's arithmetic stay in float32.
        """
        if self.target == 'residual' and self.residual_scale is None:
            raise ValueError('target residual needs residual_scale: load a trained checkpoint or set a number')
        if start_from not in STARTS:
            raise ValueError(f'sampling start_from must be one of {STARTS}, got {start_from!r}')
        b, f = blur.shape[0], blur.shape[2]
        dtype = low_precision_dtype(autocast, 'sampling: autocast')
        mixed = torch.autocast(blur.device.type, dtype=dtype) if dtype is not None else nullcontext()
        z_blur = net.vae.encode(blur)
        with mixed:
            cond = {'concat': net.encode_blur(blur), 'image_embedding': net.encode_image(blur[:, :, f // 2]),
                    'image_keep': blur.new_ones(b)}
        uncond = dict(cond, image_keep=blur.new_zeros(b))

        def model(x, t, c):
            with mixed:
                v = net(x, t, concat=c['concat'], image_embedding=c['image_embedding'], image_keep=c['image_keep'])
            return v.float()

        scheduler = make_scheduler(sampler, spacing=spacing, **self.schedule_args)
        start = start_index_for(strength, steps)
        fn = guided(model, cond, uncond, guidance_scale, guidance_batched)
        x_T = torch.randn(z_blur.shape, generator=generator, device=blur.device, dtype=z_blur.dtype)
        if start > 0:
            if start_from == 'mean':
                t_max = torch.full((b,), self.schedule.num_timesteps - 1, device=blur.device, dtype=torch.long)
                guess = self.schedule.x0_from_v(x_T, t_max, fn(x_T, t_max))
            else:
                guess = torch.zeros_like(z_blur) if self.target == 'residual' else z_blur
            t0 = timesteps(scheduler, steps)[start].to(blur.device).expand(b)
            x_T = self.schedule.q_sample(guess, t0, x_T)
        x0 = sample(fn, x_T, scheduler, steps=steps, eta=eta, generator=generator, start_index=start)
        return self.decode_target(net, x0, z_blur)

    def _window_sampler(self, net, sampling, name, device, whole_frame):
        """``fn(clip, (t0, y0, x0))`` for :func:`run_windowed`: sample one window with its own seed."""
        seed = int(sampling.get('seed', 0))
        options = {k: sampling[k] for k in SAMPLER_OPTIONS if k in sampling}

        def deblur_window(clip, offset):
            key = f'{name}:{offset[0]}' if whole_frame else f'{name}:{offset[0]}:{offset[1]}:{offset[2]}'
            generator = torch.Generator(device).manual_seed(seed ^ zlib.crc32(key.encode()))
            return self.sample(net, clip, generator, **options)
        return deblur_window

    @staticmethod
    def _tiles(net, sampling):
        multiple = net.size_multiple
        tile, tile_overlap = int(sampling.get('tile') or 0), int(sampling.get('tile_overlap') or 0)
        if tile % multiple or tile_overlap % multiple:
            raise ValueError(f'sampling: tile ({tile}) and tile_overlap ({tile_overlap}) must be multiples of '
                             f'{multiple} pixels for this network')
        return tile, tile_overlap

    @torch.no_grad()
    def deblur_video(self, net, lq, sampling, name=''):
        """Deblur a whole video ``lq`` ``[B, N, C, H, W]`` in [0, 1] -> ``[B, N, C, H, W]`` in [0, 1].

        Frames are padded to the network's size multiple; temporal windows of ``sampling['window']``
        frames overlapping by ``sampling['overlap']`` (and, with ``sampling['tile']`` > 0, spatial
        tiles of that many pixels overlapping by ``sampling['tile_overlap']``) are sampled
        independently, each with its own generator seeded from ``sampling['seed']``, ``name`` and
        the window's offset (results do not depend on the order or on the process), and blended.
        """
        tile, tile_overlap = self._tiles(net, sampling)
        video, (h, w) = pad_to_multiple(to_model_video(lq), net.size_multiple)
        whole_frame = not tile or (video.shape[-2] <= tile and video.shape[-1] <= tile)
        fn = self._window_sampler(net, sampling, name, lq.device, whole_frame)
        out = run_windowed(fn, video, int(sampling.get('window', 16)), int(sampling.get('overlap', 4)),
                           tile, tile_overlap)
        return from_model_video(out[..., :h, :w])

    @torch.no_grad()
    def deblur_stream(self, net, frames, num_frames, sampling, name='', device='cpu'):
        """:meth:`deblur_video` over a stream: ``frames`` yields ``num_frames`` frames ``[B, C, H, W]``
        in [0, 1] (any device); yields the deblurred frames ``[B, C, H, W]`` in [0, 1] on ``device``
        as soon as each is final. Bit for bit the frames of :meth:`deblur_video`; memory holds one
        window (and its overlap), not the video."""
        tile, tile_overlap = self._tiles(net, sampling)
        multiple, size = net.size_multiple, {}

        def model_frames():
            for frame in frames:
                padded, size['hw'] = pad_to_multiple(frame.to(device) * 2 - 1, multiple)
                size['whole'] = not tile or (padded.shape[-2] <= tile and padded.shape[-1] <= tile)
                yield padded

        source = model_frames()
        first = next(source, None)
        if first is None:
            raise ValueError(f'{name}: no frames')
        h, w = size['hw']
        fn = self._window_sampler(net, sampling, name, torch.device(device), size['whole'])

        def chained():
            yield first
            yield from source

        for out in stream_windowed(fn, chained(), num_frames, int(sampling.get('window', 16)),
                                   int(sampling.get('overlap', 4)), tile, tile_overlap):
            yield ((out[..., :h, :w] + 1) / 2).clamp(0, 1)


def first_rank_value(value, device):
    """``value`` as rank 0 has it when several processes train together (``torch.distributed``), else
    ``value``: every rank must train against the same target space."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return value
    shared = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(shared, src=0)
    return float(shared.item())
