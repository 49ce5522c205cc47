"""Diffusion core against VGen's DiffusionDDIM numbers (fixtures/tft2v/diffusion_schedule.pt)."""
import math
import os.path as osp

import pytest
import torch

from basicsr_vdd.diffusion.guidance import guided
from basicsr_vdd.diffusion.samplers import make_scheduler, sample, start_index_for, timesteps
from basicsr_vdd.diffusion.schedule import (NoiseSchedule, linear_sd_betas, offset_noise, sample_timesteps,
                                           timestep_sampling_kwargs)
from basicsr_vdd.pipelines.vdd_diffusion import check_sampling
from conftest import FIXTURES

REF = torch.load(osp.join(FIXTURES, 'diffusion_schedule.pt'), weights_only=True)


def test_schedule_tables_equal_vgen():
    ref = REF['schedule']
    torch.testing.assert_close(linear_sd_betas(), ref['betas_before_zero_snr'], rtol=0, atol=1e-15)
    s = NoiseSchedule.linear_sd()
    torch.testing.assert_close(s.betas, ref['betas'], rtol=0, atol=1e-12)
    torch.testing.assert_close(s.alphas_cumprod, ref['alphas_cumprod'], rtol=0, atol=1e-12)
    assert s.betas[-1] == 1.0 and s.alphas_cumprod[-1] == 0.0 and abs(s.alphas_cumprod[0] - 0.99915) < 1e-12
    torch.testing.assert_close(s.sqrt_one_minus_alphas_cumprod, ref['sqrt_one_minus_alphas_cumprod'], rtol=0,
                               atol=1e-12)


def test_q_sample_v_target_and_x0_from_v_equal_vgen():
    s = NoiseSchedule.linear_sd()
    q = REF['q_sample']
    torch.testing.assert_close(s.q_sample(q['x0'], q['t'], q['noise']), q['xt'], rtol=0, atol=0)
    torch.testing.assert_close(s.v_target(q['x0'], q['t'], q['noise']), REF['v_target']['v_target'], rtol=0, atol=0)
    r = REF['x0_from_v']
    torch.testing.assert_close(s.x0_from_v(r['xt'], r['t'], r['v_pred']), r['x0'], rtol=0, atol=1e-6)
    # eps and x0 recovered from v reproduce x_t
    x_t = s.q_sample(s.x0_from_v(r['xt'], r['t'], r['v_pred']), r['t'], s.eps_from_v(r['xt'], r['t'], r['v_pred']))
    torch.testing.assert_close(x_t, r['xt'], rtol=0, atol=1e-5)


def test_ddim_timesteps_equal_tft2v_spacing():
    assert torch.equal(timesteps(make_scheduler('ddim'), 50), REF['schedule']['ddim_timesteps_50'])
    assert timesteps(make_scheduler('ddim'), 50)[[0, 1, -1]].tolist() == [981, 961, 1]


def _fake_cfg_model(b_cond, b_uncond, seen=None):
    def model(x, t, cond):
        if seen is not None and cond['branch'][0] == 1:
            seen.append(x.clone())
        out = torch.where(cond['branch'].view(-1, 1, 1, 1, 1) == 1, 0.9 * x + b_cond, 0.8 * x + b_uncond)
        return out
    return model


def test_one_guided_ddim_step_equals_vgen():
    r = REF['ddim_step_cfg']
    v = {'c': r['v_cond'], 'u': r['v_uncond']}
    model = lambda x, t, cond: v[cond['k']]  # noqa: E731
    fn = guided(model, {'k': 'c'}, {'k': 'u'}, scale=9.0, batched=False)
    scheduler = make_scheduler('ddim')
    scheduler.set_timesteps(50)
    for t, xt_prev, x0 in ((r['t'], r['xt_prev'], r['x0']), (r['t_last'], r['xt_prev_last'], r['x0_last'])):
        out = scheduler.step(fn(r['xt'], t), t[0], r['xt'], eta=0.0)
        torch.testing.assert_close(out.pred_original_sample, x0, rtol=0, atol=1e-6)  # |x0| reaches 43 at t=981
        # VGen derives eps as (xt / sqrt(ac) - x0) / sqrt(1 / ac - 1), diffusers as sqrt(ac) v + sqrt(1 - ac) xt:
        # equal in exact arithmetic, 1.6e-5 apart in float32 at t=1 (values up to 3.1)
        torch.testing.assert_close(out.prev_sample, xt_prev, rtol=0, atol=2e-5)


@pytest.mark.parametrize('batched', [True, False])
def test_full_guided_ddim_loop_equals_vgen(batched):
    r = REF['ddim_loop_fake_model']
    seen = []
    model = _fake_cfg_model(r['b_cond'], r['b_uncond'], seen)
    fn = guided(model, {'branch': torch.ones(1)}, {'branch': torch.zeros(1)}, scale=9.0, batched=batched)
    out = sample(fn, r['noise'], make_scheduler('ddim'), steps=50, return_x0=False)
    seen = torch.stack([s[:1] for s in seen])
    # float32 rounding of diffusers' scheduler vs VGen's float64 tables: measured max 3.8e-6 on |x| <= 7.4
    torch.testing.assert_close(seen, r['x_t_seen_by_cond_call'], rtol=0, atol=1e-5)
    torch.testing.assert_close(out, r['output'], rtol=0, atol=1e-5)


def test_guidance_scale_one_is_the_conditional_branch():
    calls = []

    def model(x, t, cond):
        calls.append(x.shape[0])
        return x * cond['w']

    x, t = torch.randn(2, 4, 3, 2, 2), torch.tensor([5, 5])
    v = guided(model, {'w': torch.full((2, 1, 1, 1, 1), 2.0)}, {'w': torch.zeros(2, 1, 1, 1, 1)}, 1.0)(x, t)
    assert torch.equal(v, 2 * x) and calls == [2]
    batched = guided(model, {'w': torch.full((2, 1, 1, 1, 1), 2.0)}, {'w': torch.zeros(2, 1, 1, 1, 1)}, 3.0)(x, t)
    assert calls[-1] == 4
    torch.testing.assert_close(batched, 6 * x)


def _oracle(schedule, x0):
    """A denoiser that knows x0: returns the exact v for any x_t."""
    def model(x, t):
        a = schedule.alphas_cumprod[t].view(-1, 1, 1, 1, 1).float()
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * x0
    return model


@pytest.mark.parametrize('sampler, steps, spacing', [
    ('ddim', 50, 'leading'), ('ddim', 10, 'leading'), ('dpmpp_2m', 10, 'leading'), ('unipc', 8, 'leading'),
    ('ddim', 1, 'trailing'), ('ddim', 10, 'trailing'), ('dpmpp_2m', 10, 'trailing'), ('unipc', 8, 'trailing')])
def test_samplers_with_an_oracle_denoiser_return_x0(sampler, steps, spacing):
    schedule = NoiseSchedule.linear_sd()
    x0 = torch.randn(2, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    seen = []
    out = sample(_oracle(schedule, x0), x_T, make_scheduler(sampler, spacing=spacing), steps=steps,
                 callback=lambda i, t, x: seen.append(int(t)))
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)
    assert seen == timesteps(make_scheduler(sampler, spacing=spacing), steps).tolist() and len(seen) == steps
    assert (seen[0] == 999) == (spacing == 'trailing')
    with pytest.raises(ValueError, match='spacing'):
        make_scheduler(sampler, spacing='linspace')


def test_start_from_a_noised_estimate_skips_steps():
    schedule = NoiseSchedule.linear_sd()
    x0 = torch.randn(1, 4, 2, 4, 4)
    k = start_index_for(0.4, 10)
    assert k == 6
    t_start = timesteps(make_scheduler('dpmpp_2m'), 10)[k]
    x_T = schedule.q_sample(x0 + 0.1, t_start.view(1), torch.randn_like(x0))
    steps_seen = []
    out = sample(_oracle(schedule, x0), x_T, make_scheduler('dpmpp_2m'), steps=10, start_index=k,
                 callback=lambda i, t, x: steps_seen.append(int(t)))
    assert len(steps_seen) == 4 and steps_seen[0] == int(t_start)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match='strength'):
        start_index_for(0, 10)


def test_offset_noise_is_constant_over_space_per_frame():
    g = torch.Generator().manual_seed(0)
    plain = torch.randn(2, 4, 3, 5, 5, generator=g)
    shift = torch.randn(2, 4, 3, 1, 1, generator=g)
    noise = offset_noise((2, 4, 3, 5, 5), 0.1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(noise, plain + 0.1 * shift)


def test_training_timesteps_uniform_and_logit_normal():
    uniform = sample_timesteps(6, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(uniform, torch.randint(0, 1000, (6,), generator=torch.Generator().manual_seed(3)))
    # logit-normal by hand: n = 0 -> sigmoid 0.5 -> t 500; the draws of a seeded generator, floored
    n = torch.randn(5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = [min(int(1000 / (1 + math.exp(-(2.0 + 0.5 * x)))), 999) for x in n.tolist()]
    t = sample_timesteps(5, 1000, torch.Generator().manual_seed(4), kind='logit_normal', mean=2.0, std=0.5)
    assert t.dtype == torch.int64 and t.tolist() == expected
    many = sample_timesteps(20000, 1000, torch.Generator().manual_seed(0), kind='logit_normal', mean=2.0, std=1.0)
    assert many.min() >= 0 and many.max() <= 999
    assert abs((many >= 881).float().mean().item() - 0.5) < 0.02  # median at 1000 * sigmoid(2) = 880.8
    with pytest.raises(ValueError, match='logit_normal'):
        sample_timesteps(2, 1000, kind='lognormal')


def test_logit_normal_with_a_uniform_fraction_is_the_mixture_drawn_in_order():
    g = torch.Generator().manual_seed(5)
    n = torch.randn(8, generator=g, dtype=torch.float64)
    flat = torch.randint(0, 1000, (8,), generator=g)
    pick = torch.rand(8, generator=g) < 0.5
    logit = [min(int(1000 / (1 + math.exp(-(3.0 + x)))), 999) for x in n.tolist()]
    expected = [f if p else l for f, p, l in zip(flat.tolist(), pick.tolist(), logit)]
    t = sample_timesteps(8, 1000, torch.Generator().manual_seed(5), kind='logit_normal', mean=3.0,
                         uniform_fraction=0.5)
    assert t.tolist() == expected and 0 < pick.sum() < 8
    # p = 0 draws exactly plain logit-normal; the mixture trains low-noise steps plain logit-normal never reaches
    plain = sample_timesteps(8, 1000, torch.Generator().manual_seed(5), kind='logit_normal', mean=3.0)
    assert plain.tolist() == logit
    many = sample_timesteps(20000, 1000, torch.Generator().manual_seed(0), kind='logit_normal', mean=3.0,
                            uniform_fraction=0.5)
    assert abs((many < 300).float().mean().item() - 0.15) < 0.01  # 0.5 * 0.3 from the uniform half
    with pytest.raises(ValueError, match='uniform_fraction'):
        timestep_sampling_kwargs({'type': 'logit_normal', 'uniform_fraction': 1.5})


@pytest.mark.parametrize('bad, message', [
    ({'steps': 0}, 'steps must be an integer >= 1, got 0'),
    ({'steps': 2.5}, 'steps must be an integer >= 1'),
    ({'guidance_scale': -1}, 'guidance_scale must be >= 0'),
    ({'eta': -0.1}, 'eta must be >= 0'),
    ({'strength': 0}, r'strength must be in \(0, 1\]'),
    ({'strength': 1.5}, r'strength must be in \(0, 1\]'),
    ({'window': 8, 'overlap': 8}, r'overlap must be in \[0, window = 8\)'),
    ({'tile': 64, 'tile_overlap': 64}, r'tile_overlap must be in \[0, tile = 64\)'),
    ({'tile': -8}, 'tile must be >= 0'),
    ({'sampler': 'euler'}, 'sampler must be one of'),
    ({'spacing': 'linspace'}, 'spacing must be one of'),
    ({'start_from': 'sharp'}, 'start_from must be one of'),
    ({'stpes': 4}, r"unknown options \['stpes'\]"),
])
def test_sampling_options_are_checked_before_any_work(bad, message):
    with pytest.raises(ValueError, match=message):
        check_sampling(dict({'steps': 4, 'window': 8, 'overlap': 2}, **bad))


def test_valid_sampling_options_pass():
    check_sampling({'sampler': 'ddim', 'steps': 1, 'spacing': 'trailing', 'guidance_scale': 0.0, 'strength': 1.0,
                    'start_from': 'mean', 'window': 1, 'overlap': 0, 'tile': 0, 'tile_overlap': 16, 'seed': 3})


def test_uniform_max_limits_the_uniform_part_to_the_low_noise_steps():
    many = sample_timesteps(20000, 1000, torch.Generator().manual_seed(0), kind='logit_normal', mean=3.0,
                            uniform_fraction=0.25, uniform_max=100)
    low = many[many < 100]
    assert abs(low.numel() / 20000 - 0.25) < 0.01  # logit-normal mean 3 puts ~1e-5 of its mass below 100
    assert abs(low.float().mean().item() - 49.5) < 2.0  # U{0..99}
    assert abs((many >= 900).float().mean().item() - 0.75 * 0.7889) < 0.015  # P(sigmoid(3 + n) >= 0.9) = 0.7889
    g = torch.Generator().manual_seed(3)
    same = sample_timesteps(64, 1000, g, kind='logit_normal', mean=3.0, uniform_fraction=0.25, uniform_max=1000)
    default = sample_timesteps(64, 1000, torch.Generator().manual_seed(3), kind='logit_normal', mean=3.0,
                               uniform_fraction=0.25)
    assert same.tolist() == default.tolist()
    with pytest.raises(ValueError, match=r'uniform_max must be in \[1, 1000\], got 1001'):
        sample_timesteps(4, 1000, kind='logit_normal', uniform_fraction=0.5, uniform_max=1001)
    with pytest.raises(ValueError, match='uniform_max must be a positive integer'):
        timestep_sampling_kwargs({'type': 'logit_normal', 'uniform_fraction': 0.5, 'uniform_max': 0.5})
    with pytest.raises(ValueError, match='needs uniform_fraction > 0'):
        timestep_sampling_kwargs({'type': 'logit_normal', 'uniform_max': 100})
