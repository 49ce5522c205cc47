"""What only a GPU can check (``pytest -m gpu``; skipped without CUDA, run by ``scripts/gpu_check.py``):
bf16/fp16 autocast training steps of both stages, SDPA's fused attention kernels, the memory gradient
checkpointing saves, batched guidance, ``deblur_video --device cuda`` and DDP over NCCL."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr_vdd.models.vdd_model import VDDModel
from basicsr_vdd.pipelines.vdd_diffusion import to_model_video
from conftest import (REPO, TINY_KL_VAE, batch, changed, params_by_part, smooth_frame, tiny_options, tiny_stage_options,
                      tiny_vdd_test_options, torchrun, train_steps, write_options)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')]

TRAINED = {1: {'blur_encoder'}, 2: {'blur_encoder', 'unet', 'image_proj'}}


def kl_options(stage, root, **train):
    """Tiny stage options with a KL autoencoder (as the paper configs) on the GPU."""
    root.mkdir(parents=True, exist_ok=True)
    opt = tiny_options(stage, root, **train)
    opt['network_g']['vae'] = dict(TINY_KL_VAE)
    opt['network_g']['unet']['concat_dim'] = 8
    opt['diffusion']['residual_scale'] = 0.5
    opt['num_gpu'] = 1
    return opt


@pytest.mark.parametrize('autocast', ['bf16', 'fp16'])
@pytest.mark.parametrize('stage', [1, 2])
def test_autocast_steps_train_exactly_the_stage_parts_on_cuda(tmp_path, stage, autocast):
    torch.manual_seed(0)
    model = VDDModel(kl_options(stage, tmp_path, autocast=autocast, gradient_checkpointing=True))
    assert model.device.type == 'cuda' and next(model.bare.parameters()).is_cuda
    assert (model.grad_scaler is not None) == (autocast == 'fp16')
    before = params_by_part(model)
    for i in range(2):
        model.feed_data(batch(i, size=32))
        model.optimize_parameters(i + 1)
        assert torch.isfinite(torch.tensor(float(model.log_dict['l_total'])))
    assert changed(before, params_by_part(model)) == TRAINED[stage]


def test_unet_attention_runs_on_the_fused_sdpa_kernels(tmp_path):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    model = VDDModel(kl_options(2, tmp_path))
    model.bare.eval()  # no dropout: both calls compute the same function
    processors = {type(p).__name__ for p in model.bare.unet.attn_processors.values()}
    assert processors == {'AttnProcessor2_0'}  # diffusers' scaled_dot_product_attention processor
    x_t = torch.randn(1, 4, 4, 16, 16, device='cuda')
    t = torch.tensor([500], device='cuda')
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):  # no math fallback
            fused = model.bare(x_t, t)
        with sdpa_kernel([SDPBackend.MATH]):
            reference = model.bare(x_t, t)
    assert torch.isfinite(fused).all()
    torch.testing.assert_close(fused.float(), reference.float(), atol=3e-2, rtol=3e-2)


def _step_peak_and_grads(model, data):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model.feed_data(data)
    model.optimizer_g.zero_grad(set_to_none=True)
    blur, sharp = to_model_video(model.lq), to_model_video(model.gt)
    generator = torch.Generator('cuda').manual_seed(0)
    with torch.no_grad():
        b = model.diffusion.training_batch(model.bare, sharp, blur, generator)
    v = model.net_g(b['x_t'], b['t'], blur=blur, image_embedding=b['image_embedding'], image_keep=b['image_keep'])
    (v.float() - b['v']).square().mean().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    return peak, [p.grad.detach().clone() for p in model.trainable_parameters() if p.grad is not None]


def test_gradient_checkpointing_lowers_the_peak_with_the_same_gradients(tmp_path):
    torch.manual_seed(0)
    model = VDDModel(kl_options(2, tmp_path))
    for m in model.bare.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    data = batch(0, b=1, f=8, size=128)
    plain_peak, plain = _step_peak_and_grads(model, data)
    model.bare.set_gradient_checkpointing(True)
    ckpt_peak, checkpointed = _step_peak_and_grads(model, data)
    assert ckpt_peak < 0.8 * plain_peak, (ckpt_peak, plain_peak)
    assert len(plain) == len(checkpointed) > 0
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_batched_guidance_equals_two_network_calls(tmp_path):
    torch.manual_seed(0)
    model = VDDModel(kl_options(2, tmp_path))
    model.feed_data(batch(0, b=1, f=4, size=32))
    model.sampling.update(steps=3, window=4, overlap=0, tile=0, guidance_scale=3.0)
    outputs = []
    for batched in (True, False):
        model.sampling['guidance_batched'] = batched
        model.test()
        outputs.append(model.output.clone())
    assert outputs[0].is_cuda and torch.isfinite(outputs[0]).all()
    torch.testing.assert_close(outputs[0], outputs[1], atol=2e-3, rtol=0)


def test_deblur_video_on_cuda_writes_every_frame_and_repeats_itself(tmp_path):
    import cv2
    opt_path = tiny_vdd_test_options(tmp_path)
    src = tmp_path / 'clip'
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(src / f'{i:06d}.png'), smooth_frame(rng, 36, 52))
    runs = []
    for k in range(2):
        out = tmp_path / f'out{k}'
        proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'deblur_video.py'), '-opt', opt_path,
                               '--input', str(src), '--output', str(out), '--device', 'cuda'],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(np.stack([cv2.imread(str(out / f'{i:06d}.png')) for i in range(5)]))
    assert runs[0].shape == (5, 36, 52, 3)
    assert np.abs(runs[0].astype(int) - runs[1].astype(int)).max() <= 1  # seeded per window


def test_ddp_over_nccl_trains_stage_2_on_one_gpu(tiny_gopro, tmp_path):
    from basicsr_vdd.file_io import safe_torch_load
    opt = tiny_stage_options(2)
    opt['num_gpu'] = 1
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16,
                                    batch_size_per_gpu=1, num_worker_per_gpu=0)
    opt['datasets'].pop('val')
    opt.pop('val')
    opt['train'].update(total_iter=2)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt['name'] = 'vdd_nccl'
    torchrun(write_options(opt, tmp_path / 'nccl.yml'), tmp_path, nproc=1)  # init_dist: nccl with a GPU
    state = safe_torch_load(tmp_path / 'experiments' / 'vdd_nccl' / 'training_states' / '2.state')
    assert len(state['param_fingerprints']) == 1


def test_fp16_scaler_state_resumes_and_a_skipped_step_leaves_the_ema(tmp_path):
    from basicsr_vdd.file_io import safe_torch_load
    model = VDDModel(kl_options(2, tmp_path / 'a', autocast='fp16', ema_decay=0.9))
    train_steps(model, 2)
    model.save_training_state(0, 2)
    state = safe_torch_load(tmp_path / 'a' / '2.state')
    assert state['grad_scaler']['scale'] == model.grad_scaler.get_scale()
    resumed = VDDModel(kl_options(2, tmp_path / 'b', autocast='fp16', ema_decay=0.9))
    resumed.resume_training(state)
    assert resumed.grad_scaler.get_scale() == model.grad_scaler.get_scale()

    model.grad_scaler.update(new_scale=1e38)  # fp16 gradients overflow: the scaler skips the step
    shadow = {k: v.clone() for k, v in model.ema.shadow.items()}
    weights = params_by_part(model)
    train_steps(model, 1, seed=3)
    assert model.grad_scaler.get_scale() < 1e38
    assert changed(weights, params_by_part(model)) == set()
    assert all(torch.equal(shadow[k], v) for k, v in model.ema.shadow.items())
