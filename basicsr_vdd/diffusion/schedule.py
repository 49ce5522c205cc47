"""Noise schedule and parameterisations of TF-T2V (VGen ``DiffusionDDIM``) in plain torch.

Tables are float64, as in VGen; a coefficient is cast to the data's dtype before it multiplies
(VGen's ``_i``). Shapes: data ``[B, C, F, H, W]`` (any ndim >= 1), timesteps int64 ``[B]``.
"""
from dataclasses import dataclass

import torch


def linear_sd_betas(num_timesteps=1000, beta_start=0.00085, beta_end=0.012):
    """Stable Diffusion's 'scaled linear' betas: ``linspace(sqrt(b0), sqrt(b1), T) ** 2`` (float64)."""
    return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_timesteps, dtype=torch.float64) ** 2


def rescale_zero_terminal_snr(betas):
    """Shift and scale ``sqrt(alphas_cumprod)`` so that the last step has zero SNR (Lin et al. 2024)."""
    sqrt_ac = torch.cumprod(1 - betas, 0).sqrt()
    first, last = sqrt_ac[0].clone(), sqrt_ac[-1].clone()
    sqrt_ac = (sqrt_ac - last) * first / (first - last)
    ac = sqrt_ac ** 2
    alphas = torch.cat([ac[:1], ac[1:] / ac[:-1]])
    return 1 - alphas


def _coef(table, t, x):
    """``table[t]`` shaped to broadcast over ``x`` ``[B, ...]``, cast to ``x``'s dtype and device."""
    return table.to(t.device)[t].view(-1, *([1] * (x.ndim - 1))).to(x)


@dataclass
class NoiseSchedule:
    """Discrete DDPM schedule: ``x_t = sqrt(ac_t) x0 + sqrt(1 - ac_t) eps``; v-prediction helpers."""

    betas: torch.Tensor

    def __post_init__(self):
        self.betas = self.betas.to(torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, 0)
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1 - self.alphas_cumprod).sqrt()

    @classmethod
    def linear_sd(cls, num_timesteps=1000, beta_start=0.00085, beta_end=0.012, zero_terminal_snr=True):
        betas = linear_sd_betas(num_timesteps, beta_start, beta_end)
        return cls(rescale_zero_terminal_snr(betas) if zero_terminal_snr else betas)

    @property
    def num_timesteps(self):
        return len(self.betas)

    def q_sample(self, x0, t, noise):
        """Diffuse ``x0`` to step ``t`` with the given ``noise`` (same shape as ``x0``)."""
        return _coef(self.sqrt_alphas_cumprod, t, x0) * x0 + _coef(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise

    def v_target(self, x0, t, noise):
        """``v = sqrt(ac) eps - sqrt(1 - ac) x0``: the regression target of v-prediction."""
        return _coef(self.sqrt_alphas_cumprod, t, x0) * noise - _coef(self.sqrt_one_minus_alphas_cumprod, t, x0) * x0

    def x0_from_v(self, x_t, t, v):
        return _coef(self.sqrt_alphas_cumprod, t, x_t) * x_t - _coef(self.sqrt_one_minus_alphas_cumprod, t, x_t) * v

    def eps_from_v(self, x_t, t, v):
        return _coef(self.sqrt_one_minus_alphas_cumprod, t, x_t) * x_t + _coef(self.sqrt_alphas_cumprod, t, x_t) * v


# kind -> its parameters
TIMESTEP_SAMPLING = {'uniform': (), 'logit_normal': ('mean', 'std', 'uniform_fraction', 'uniform_max')}


def timestep_sampling_kwargs(options=None):
    """Options ``{type: kind, **parameters}`` (default uniform) -> keyword arguments of
    :func:`sample_timesteps`; an unknown kind or parameter is an error naming it."""
    options = dict(options or {})
    kind = options.pop('type', 'uniform')
    if kind not in TIMESTEP_SAMPLING:
        raise ValueError(f'timestep sampling must be one of {list(TIMESTEP_SAMPLING)}, got {kind!r}')
    if set(options) - set(TIMESTEP_SAMPLING[kind]):
        raise ValueError(f'timestep_sampling of type {kind!r} takes {sorted(TIMESTEP_SAMPLING[kind])}, '
                         f'got {sorted(options)}')
    if not 0 <= float(options.get('uniform_fraction', 0)) <= 1:
        raise ValueError(f'timestep_sampling uniform_fraction must be in [0, 1], got {options["uniform_fraction"]}')
    if 'uniform_max' in options and not (isinstance(options['uniform_max'], int) and options['uniform_max'] >= 1):
        raise ValueError(f'timestep_sampling uniform_max must be a positive integer, got {options["uniform_max"]!r}')
    if 'uniform_max' in options and not float(options.get('uniform_fraction', 0)):
        raise ValueError('timestep_sampling uniform_max limits the uniform share: it needs uniform_fraction > 0')
    return dict(options, kind=kind)


def sample_timesteps(batch, num_timesteps, generator=None, device=None, kind='uniform', mean=0.0, std=1.0,
                     uniform_fraction=0.0, uniform_max=None):
    """Training timesteps ``[batch]`` int64 in ``[0, num_timesteps)``.

    ``uniform``: DDPM's ``U{0..T-1}``. ``logit_normal``: ``t = floor(T * sigmoid(mean + std * n))``,
    ``n ~ N(0, 1)`` (Esser et al. 2024); ``mean > 0`` puts more of the training on noisy steps.
    With ``uniform_fraction`` = p > 0 each timestep is instead uniform with probability p (a mixture
    that keeps training the low-noise steps a multi-step sampler ends on); its uniform draws and
    choices follow the logit-normal draws, so p = 0 draws exactly what plain logit-normal does.
    ``uniform_max`` = m limits the uniform part to ``U{0..m-1}`` (default T): the few low-noise steps
    a short refinement of the one-step estimate runs on, without moving training off t = T - 1.
    """
    if kind == 'uniform':
        return torch.randint(0, num_timesteps, (batch,), generator=generator, device=device)
    if kind == 'logit_normal':
        u = torch.sigmoid(mean + std * torch.randn(batch, generator=generator, device=device, dtype=torch.float64))
        t = (u * num_timesteps).long().clamp(0, num_timesteps - 1)
        if uniform_fraction:
            high = num_timesteps if uniform_max is None else uniform_max
            if not 1 <= high <= num_timesteps:
                raise ValueError(f'timestep_sampling uniform_max must be in [1, {num_timesteps}], got {high}')
            flat = torch.randint(0, high, (batch,), generator=generator, device=device)
            pick = torch.rand(batch, generator=generator, device=device) < uniform_fraction
            t = torch.where(pick, flat, t)
        return t
    raise ValueError(f'timestep sampling must be one of {list(TIMESTEP_SAMPLING)}, got {kind!r}')


def offset_noise(shape, strength, generator=None, device=None, dtype=torch.float32):
    """Gaussian noise plus ``strength`` x a per-(video, channel) constant: ``[B, C, F, H, W]``.

    VGen adds ``noise_strength * randn(b, c, f, 1, 1)`` when it draws the noise itself; the same
    shape is used here (constant over H and W, one value per frame).
    """
    noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if strength:
        noise = noise + strength * torch.randn(shape[:3] + (1,) * (len(shape) - 3), generator=generator,
                                               device=device, dtype=dtype)
    return noise
