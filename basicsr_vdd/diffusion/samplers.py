"""Samplers: diffusers' DDIM / DPM-Solver++ / UniPC schedulers configured as TF-T2V, driven by one loop.

diffusers reproduces VGen's DDIM (50 steps 981, 961, ..., 1; the last step lands on
``alphas_cumprod[0]``) to float32 rounding, see ``tests/test_diffusion.py``, so its schedulers
are used rather than rewritten. What is ours: the loop over a guided model, the start from a
noised estimate (``strength`` < 1, SDEdit-style) and the choice of what is returned.
"""
import torch

from .schedule import NoiseSchedule

SAMPLERS = ('ddim', 'dpmpp_2m', 'unipc')
SPACINGS = ('leading', 'trailing')


def make_scheduler(sampler='ddim', num_timesteps=1000, beta_start=0.00085, beta_end=0.012, zero_terminal_snr=True,
                   spacing='leading'):
    """A diffusers scheduler with TF-T2V's schedule (scaled-linear betas, zero terminal SNR, v-prediction).

    ``spacing``: ``leading`` is TF-T2V's (50 steps: 981, 961, ..., 1; 10 steps start at 901);
    ``trailing`` starts every run at T - 1 = 999, where zero terminal SNR makes the input pure noise
    (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed"); with one
    step it returns the network's clean estimate from pure noise, its conditional mean.

    Its ``alphas_cumprod`` are replaced by our float64 table: diffusers keeps them in float32, and
    ``sqrt(1 - alphas_cumprod)`` at small t then loses ~1e-5 relative precision (measured against
    VGen's numbers); with float64 coefficients the clean prediction matches VGen exactly.
    """
    table = NoiseSchedule.linear_sd(num_timesteps, beta_start, beta_end, zero_terminal_snr).alphas_cumprod
    if spacing not in SPACINGS:
        raise ValueError(f'spacing must be one of {SPACINGS}, got {spacing!r}')
    scheduler = _make_diffusers_scheduler(sampler, num_timesteps, beta_start, beta_end, zero_terminal_snr, spacing)
    if sampler == 'ddim':
        scheduler.final_alpha_cumprod = table[0]  # set_alpha_to_one=False: the last step lands on ac[0]
    else:  # their sigma = sqrt((1 - ac) / ac) must stay finite at zero SNR: the same 2**-24 floor as diffusers
        table = table.clone()
        table[-1] = table[-1].clamp(min=2 ** -24)
    scheduler.alphas_cumprod = table
    return scheduler


def _make_diffusers_scheduler(sampler, num_timesteps, beta_start, beta_end, zero_terminal_snr, spacing):
    common = dict(num_train_timesteps=num_timesteps, beta_start=beta_start, beta_end=beta_end,
                  beta_schedule='scaled_linear', rescale_betas_zero_snr=zero_terminal_snr,
                  prediction_type='v_prediction', timestep_spacing=spacing,
                  steps_offset=1 if spacing == 'leading' else 0)
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler  # ~1 s: not at import

    if sampler == 'ddim':
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=False)
    if sampler == 'dpmpp_2m':
        return DPMSolverMultistepScheduler(**common, algorithm_type='dpmsolver++', solver_order=2,
                                           final_sigmas_type='zero')
    if sampler == 'unipc':
        return UniPCMultistepScheduler(**common, final_sigmas_type='zero')
    raise ValueError(f'sampler must be one of {SAMPLERS}, got {sampler!r}')


@torch.no_grad()
def sample(model, x_T, scheduler, steps=50, eta=0.0, generator=None, start_index=0, return_x0=True, callback=None):
    """Run the reverse process from ``x_T`` ``[B, C, F, H, W]`` with ``model(x_t, t) -> v``.

    ``start_index`` skips the first timesteps (the caller noised ``x_T`` to
    ``timesteps(scheduler, steps)[start_index]``). ``return_x0`` returns the last step's clean
    prediction; otherwise the last ``x_t`` (VGen returns that: for DDIM it sits at
    ``alphas_cumprod[0]`` = 0.99915, slightly noisy). ``callback(i, t, x_t)`` sees every model input.
    """
    scheduler.set_timesteps(steps, device=x_T.device)
    timesteps = scheduler.timesteps[start_index:]
    if start_index and hasattr(scheduler, 'set_begin_index'):
        scheduler.set_begin_index(start_index)
    from diffusers import DDIMScheduler  # already loaded by make_scheduler

    extra = {'eta': eta, 'generator': generator} if isinstance(scheduler, DDIMScheduler) else {}
    x, x0 = x_T, x_T
    for i, t in enumerate(timesteps):
        if callback is not None:
            callback(i, t, x)
        t_batch = t.reshape(1).expand(x.shape[0]).to(x.device)
        v = model(x, t_batch)
        out = scheduler.step(v, t, x, **extra)
        x = out.prev_sample
        x0 = out.pred_original_sample if getattr(out, 'pred_original_sample', None) is not None else x
    return x0 if return_x0 else x


def timesteps(scheduler, steps):
    """The model-call timesteps (int64, descending) of ``scheduler`` for ``steps`` steps."""
    scheduler.set_timesteps(steps)
    return scheduler.timesteps.clone()


def start_index_for(strength, steps):
    """Index of the first timestep when starting at ``strength`` in (0, 1] of the noise range."""
    if not 0 < strength <= 1:
        raise ValueError(f'strength must be in (0, 1], got {strength}')
    return min(steps - 1, int(round((1 - strength) * steps)))
