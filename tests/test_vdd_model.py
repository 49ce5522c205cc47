"""VDDModel: stages train exactly their parts, checkpoints hold what changed, pipeline; exact resume: test_resume.py."""
import glob
import json
import math

import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr_vdd.diffusion.schedule import sample_timesteps
from basicsr_vdd.models.stage_checkpoint import read_checkpoint
from basicsr_vdd.models.vdd_model import VDDModel
from basicsr_vdd.pipelines.vdd_diffusion import VDDDiffusion, to_model_video
from conftest import (TINY_NET, batch, changed, load_options, params_by_part, run_pipeline, tiny_options, train_steps,
                      write_options)



def test_each_stage_changes_exactly_its_parts(tmp_path):
    torch.manual_seed(0)
    stage0 = VDDModel(tiny_options(0, tmp_path))
    before = params_by_part(stage0)
    train_steps(stage0, 2)
    assert changed(before, params_by_part(stage0)) == {'unet', 'image_proj'}
    stage0.save(0, -1)

    stage1 = VDDModel(tiny_options(1, tmp_path, pretrain=str(tmp_path / 'net_g_latest.pth')))
    opt_params = {id(p) for group in stage1.optimizer_g.param_groups for p in group['params']}
    assert opt_params == {id(p) for p in stage1.bare.blur_encoder.parameters()}
    assert all(not p.requires_grad for n, p in stage1.bare.named_parameters() if not n.startswith('blur_encoder.'))
    before = params_by_part(stage1)
    train_steps(stage1, 3)
    assert changed(before, params_by_part(stage1)) == {'blur_encoder'}
    assert not stage1.bare.unet.training and stage1.bare.blur_encoder.training  # frozen UNet: no dropout
    stage1.save(0, -1)
    ckpt = read_checkpoint(str(tmp_path / 'net_g_latest.pth'))
    assert ckpt['parts'] == ['blur_encoder', 'unet', 'image_proj']  # trained now + loaded from stage 0
    assert not any(k.startswith(('vae.', 'clip_image.')) for k in ckpt['params'])
    assert ckpt['meta']['stage'] == 1 and ckpt['meta']['target'] == 'residual'
    assert ckpt['meta']['residual_scale'] == stage0.diffusion.residual_scale

    stage2 = VDDModel(tiny_options(2, tmp_path, pretrain=str(tmp_path / 'net_g_latest.pth')))
    assert torch.equal(stage2.bare.blur_encoder.proj[-1].weight, stage1.bare.blur_encoder.proj[-1].weight)
    before = params_by_part(stage2)
    train_steps(stage2, 2)
    assert changed(before, params_by_part(stage2)) == {'blur_encoder', 'unet', 'image_proj'}


def test_checkpoints_of_another_network_are_refused_with_the_keys_named(tmp_path):
    model = VDDModel(tiny_options(0, tmp_path))
    model.save(0, 5)
    opt = tiny_options(1, tmp_path, pretrain=str(tmp_path / 'net_g_5.pth'))
    opt['network_g']['unet']['dim'] = 64
    with pytest.raises(ValueError, match=r'(?s)net_g_5.pth: checkpoint does not match parts .*shape mismatch'):
        VDDModel(opt)
    torch.save({'params': {}}, tmp_path / 'foreign.pth')
    with pytest.raises(ValueError, match='foreign.pth: not a VDD checkpoint'):
        VDDModel(tiny_options(1, tmp_path, pretrain=str(tmp_path / 'foreign.pth')))


def test_exported_ema_only_half_checkpoint_loads_its_ema_weights(tmp_path):
    from vdd_demo.checkpoint_export import export_half

    model = VDDModel(tiny_options(0, tmp_path))
    train_steps(model, 2)
    model.save(0, 2)
    export_half(str(tmp_path / 'net_g_2.pth'), str(tmp_path / 'demo.pth'), drop=('params',))
    ckpt = torch.load(tmp_path / 'demo.pth', weights_only=True)
    assert 'params' not in ckpt and ckpt['parts'] == ['unet', 'image_proj']
    opt = tiny_options(0, tmp_path, pretrain=str(tmp_path / 'demo.pth'))
    opt['path']['param_key_g'] = 'params_ema'
    loaded = VDDModel(opt).bare.state_dict()
    for key, value in ckpt['params_ema'].items():
        assert value.dtype == torch.float16 and torch.equal(loaded[key], value.float()), key
    # with the default param_key (params), a file without params loads the params_ema it has
    default = VDDModel(tiny_options(0, tmp_path, pretrain=str(tmp_path / 'demo.pth'))).bare.state_dict()
    assert all(torch.equal(default[key], value.float()) for key, value in ckpt['params_ema'].items())
    with pytest.raises(KeyError, match='demo.pth: no'):
        export_half(str(tmp_path / 'demo.pth'), str(tmp_path / 'again.pth'), drop=('params',))


def test_test_deblurs_a_whole_video_in_blended_windows(tmp_path):
    opt = tiny_options(0, tmp_path)
    opt['is_train'] = False
    opt['diffusion']['residual_scale'] = 0.5
    opt['sampling'] = dict(sampler='dpmpp_2m', steps=2, guidance_scale=2.0, window=4, overlap=2, seed=3)
    model = VDDModel(opt)
    lq = torch.rand(1, 7, 3, 20, 28)  # 7 frames (windows 0-4, 2-6, 3-7), size not a multiple of 8
    model.feed_data({'lq': lq, 'folder': 'v'})
    model.test()
    first = model.output.clone()
    assert first.shape == lq.shape and 0 <= first.min() and first.max() <= 1
    model.test()
    assert torch.equal(model.output, first)  # seeded per video and window
    # spatial tiles of 16 pixels overlapping by 8: same contract, other seeds per tile
    model.sampling.update(tile=16, tile_overlap=8)
    model.test()
    assert model.output.shape == lq.shape and not torch.equal(model.output, first)
    model.sampling['tile'] = 10
    with pytest.raises(ValueError, match='tile .10. and tile_overlap .8. must be multiples of'):
        model.test()


@pytest.mark.slow
def test_train_pipeline_validates_and_saves_the_stage_parts(tmp_path, tiny_gopro):
    # exact resume of VDD: test_resume.py (kill -9 mid-epoch, stage 2) and test_distributed.py (two ranks)
    root = tmp_path / 'root'
    root.mkdir()
    opt = load_options('options/demo/vdd_stage0_synth.yml')
    opt['name'] = 'vdd_tiny'
    opt['network_g']['unet'].update(TINY_NET['unet'])
    opt['network_g']['clip_image'].update(TINY_NET['clip_image'])
    opt['network_g']['vae']['factor'] = 2
    train = opt['datasets']['train']
    train.update(dataroot=str(tiny_gopro / 'train'), gt_size=None, use_hflip=False, use_rot=False, use_reverse=False,
                 num_frame=7, batch_size_per_gpu=1, num_worker_per_gpu=0, videos=['vid_a'], interval_list=[1])
    opt['datasets']['val'] = dict(name='tiny_val', type='PairedVideoTestDataset', dataroot=str(tiny_gopro / 'test'),
                                  mode='video', max_frames=4)
    opt['sampling'] = dict(sampler='dpmpp_2m', steps=2, guidance_scale=1.5, window=4, overlap=1, seed=0)
    opt['val'] = dict(val_freq=2, save_img=False,
                      metrics={'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}})
    opt['train'].update(total_iter=4)
    opt['train']['scheduler']['periods'] = [4]
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    run_pipeline('train', write_options(opt, tmp_path / 'a.yml'), root)
    exp = root / 'experiments' / 'vdd_tiny'
    with open(exp / 'metrics_tiny_val_2.json') as f:
        assert math.isfinite(json.load(f)['metrics']['psnr']['per_video_mean'])
    assert sorted(p.split('/')[-1] for p in glob.glob(str(exp / 'models' / '*'))) == [
        'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
    ckpt = read_checkpoint(str(exp / 'models' / 'net_g_4.pth'))
    assert ckpt['parts'] == ['unet', 'image_proj'] and 'params_ema' in ckpt


def test_timestep_sampling_option_sets_the_training_timesteps(tmp_path):
    opt = tiny_options(1, tmp_path)
    opt['diffusion']['timestep_sampling'] = {'type': 'logit_normal', 'mean': 2.0, 'std': 1.0}
    model = VDDModel(opt)
    data = batch(b=4)
    expected_gen = torch.Generator().set_state(model.generator.get_state())
    out = model.diffusion.training_batch(model.bare, to_model_video(data['gt']), to_model_video(data['lq']),
                                         model.generator)
    expected = sample_timesteps(4, 1000, expected_gen, kind='logit_normal', mean=2.0, std=1.0)
    assert torch.equal(out['t'], expected)
    with pytest.raises(ValueError, match="got 'beta'"):
        VDDDiffusion(timestep_sampling={'type': 'beta'})
    with pytest.raises(ValueError, match=r"takes \['mean', 'std', 'uniform_fraction', 'uniform_max'\], got \['meen'\]"):
        VDDDiffusion(timestep_sampling={'type': 'logit_normal', 'meen': 3.0})


def test_start_from_mean_refines_the_one_step_estimate(tmp_path):
    """``start_from: mean`` = DDIM whose first step jumps from T - 1 to the start: the network's clean estimate
    from pure noise, noised with that same noise to the start timestep, then refined by the remaining steps."""
    opt = tiny_options(0, tmp_path)
    opt['is_train'] = False
    opt['diffusion']['residual_scale'] = 0.5
    model = VDDModel(opt)
    net, diffusion = model.bare, model.diffusion
    latent = net.vae.latent_channels
    calls = []
    net.unet.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((args[1].tolist(), args[0][:, :latent].clone())), with_kwargs=True)
    blur = torch.rand(1, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mean = diffusion.sample(net, blur, torch.Generator().manual_seed(1), steps=1, spacing='trailing')
    assert [t for t, _ in calls] == [[999]]
    calls.clear()
    refined = diffusion.sample(net, blur, torch.Generator().manual_seed(1), steps=4, spacing='trailing',
                               strength=0.25, start_from='mean')
    assert [t for t, _ in calls] == [[999], [249]]
    x_T = calls[0][1]
    m = (net.vae.encode(mean) - net.vae.encode(blur)) / 0.5  # the one-step estimate in the diffused space
    ac = diffusion.schedule.alphas_cumprod[249].item()
    torch.testing.assert_close(calls[1][1], math.sqrt(ac) * m + math.sqrt(1 - ac) * x_T, rtol=0, atol=1e-5)
    assert refined.shape == blur.shape and not torch.allclose(refined, mean)
    calls.clear()
    diffusion.sample(net, blur, torch.Generator().manual_seed(1), steps=4, spacing='trailing', strength=0.25)
    assert [t for t, _ in calls] == [[249]]  # start_from: blur (default) costs no extra call
    torch.testing.assert_close(calls[0][1], math.sqrt(1 - ac) * x_T, rtol=0, atol=1e-5)  # zero residual, noised
    with pytest.raises(ValueError, match='start_from must be one of'):
        diffusion.sample(net, blur, torch.Generator(), steps=4, strength=0.5, start_from='sharp')


def test_several_gpus_without_a_launcher_are_refused_with_the_torchrun_command(tmp_path):
    """BasicSR would wrap the network in DataParallel, whose replicas keep the checkpointing wrappers of
    the blocks on the first GPU; VDD trains one process per GPU instead."""
    opt = tiny_options(2, tmp_path)
    opt['num_gpu'] = 2
    with pytest.raises(ValueError, match=r'num_gpu: 2 without a launcher .* torchrun --nproc_per_node=2 .*'
                                         r'--launcher pytorch'):
        VDDModel(opt)


def test_a_state_saved_on_another_kind_of_device_resumes_with_new_noise(tmp_path, caplog):
    """A GPU generator's state (16 bytes) does not fit the CPU generator: resume goes on, with a warning."""
    model = VDDModel(tiny_options(2, tmp_path, ema_decay=0.9))
    train_steps(model, 1)
    model.save_training_state(0, 1)
    state = torch.load(tmp_path / '1.state', weights_only=True)
    assert state['residual_scales'] == [model.diffusion.residual_scale]
    before = model.generator.get_state()
    state['generators'] = [torch.zeros(16, dtype=torch.uint8)]  # as saved by torch.Generator('cuda')
    with caplog.at_level('WARNING', logger='basicsr'):
        model.resume_training(state)
    assert 'another kind of device' in caplog.text
    assert not torch.equal(model.generator.get_state(), before)
    train_steps(model, 1, seed=5)  # and trains on


@pytest.mark.parametrize('key', ['guidance_scale', 'strength', 'eta'])
@pytest.mark.parametrize('value', [float('inf'), float('-inf'), float('nan')])
def test_non_finite_sampling_values_are_refused_by_name(key, value):
    """A guidance of inf passed every range check and sampled saturated noise."""
    from basicsr_vdd.pipelines.vdd_diffusion import check_sampling
    with pytest.raises(ValueError, match=f'sampling: {key} must be a finite number, got {value!r}'):
        check_sampling({key: value})
