"""Multi-process training through BasicSR's launcher: ``torchrun --nproc_per_node=2 train.py --launcher
pytorch`` on CPU (gloo). Gradients are averaged, so two ranks with batch B train the same network as one
process with batch 2B; the ranks stay equal; only rank 0 writes; resume continues."""
import glob

import pytest
import torch

from basicsr_vdd.file_io import safe_torch_load
from conftest import TINY_KL_VAE, load_options, run_pipeline, tiny_stage_options, torchrun, write_options


def srn_options(tiny_gopro, batch):
    opt = load_options('options/demo/train_srn_synth.yml')
    opt['network_g'].update(channels=[8, 8, 16])
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16,
                                    batch_size_per_gpu=batch, num_worker_per_gpu=0)
    opt['datasets'].pop('val')
    opt.pop('val')
    opt['train']['total_iter'] = 3
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    return opt


@pytest.mark.slow
def test_two_ranks_train_the_network_of_one_process_with_the_doubled_batch(tiny_gopro, tmp_path):
    one, two, half = tmp_path / 'one', tmp_path / 'two', tmp_path / 'half'
    for root in (one, two, half):
        root.mkdir()
    run_pipeline('train', write_options(dict(srn_options(tiny_gopro, 2), name='srn'), tmp_path / 'one.yml'), one)
    run_pipeline('train', write_options(dict(srn_options(tiny_gopro, 1), name='srn'), tmp_path / 'half.yml'), half)
    torchrun(write_options(dict(srn_options(tiny_gopro, 1), name='srn'), tmp_path / 'two.yml'), two)

    exp = two / 'experiments' / 'srn'
    assert len(glob.glob(str(exp / 'train_srn_*.log'))) == 1  # rank 0 logs; rank 1 writes nothing
    state = safe_torch_load(exp / 'training_states' / '3.state')
    assert len(state['param_fingerprints']) == 2
    assert state['param_fingerprints'][0] == state['param_fingerprints'][1] != {}

    def params(root):
        return torch.load(root / 'experiments' / 'srn' / 'models' / 'net_g_3.pth', weights_only=True)['params']

    def largest_difference(a, b):
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    # same samples, crops and flips; the mean of the ranks' gradients is the doubled batch's gradient
    assert largest_difference(params(one), params(two)) < 1e-5
    assert largest_difference(params(half), params(two)) > 1e-3  # batch 1 on one process: another network


def vdd_dist_options(stage, tiny_gopro, name, pretrain=None, total_iter=2):
    """Tiny stage options with a KL autoencoder (the blur encoder then holds a trained copy of its encoder,
    as in the paper configs) and ``residual_scale: auto`` (measured from the first batch)."""
    opt = tiny_stage_options(stage, pretrain)
    opt['network_g']['vae'] = dict(TINY_KL_VAE)
    opt['network_g']['unet']['concat_dim'] = 8
    opt['diffusion']['residual_scale'] = 'auto'
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16,
                                    batch_size_per_gpu=1, num_worker_per_gpu=0)
    if 'val' in opt['datasets']:  # validation: every rank takes part
        opt['datasets']['val'].update(dataroot=str(tiny_gopro / 'test'), max_frames=3)
        opt['sampling'].update(window=3, overlap=1, tile=0)
        opt['val'].update(val_freq=2)
        opt['val']['metrics'] = {'psnr': opt['val']['metrics']['psnr']}
    opt['train'].update(total_iter=total_iter)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt['name'] = name
    return opt


def assert_ranks_agree(state, parts):
    """Every part the stage trains has the same parameters on both ranks; both ranks used one residual scale."""
    first, second = state['param_fingerprints']
    assert set(first) == set(parts) and first == second
    assert len(state['residual_scales']) == 2 and len(set(state['residual_scales'])) == 1


@pytest.mark.slow
def test_vdd_stages_train_and_resume_under_torchrun_with_the_ranks_in_step(tiny_gopro, tmp_path):
    """Stage 0, 1 and 2 one after the other, 2 ranks each; stage 1 and 2 also resume. Before the trained
    parts were chosen ahead of DistributedDataParallel, stage 1 crashed at its second iteration and stage
    2 trained the blur encoder's copy of the VAE encoder on each rank apart."""
    models = tmp_path / 'experiments'
    torchrun(write_options(vdd_dist_options(0, tiny_gopro, 'vdd_s0'), tmp_path / 's0.yml'), tmp_path)
    assert_ranks_agree(safe_torch_load(models / 'vdd_s0' / 'training_states' / '2.state'), {'unet', 'image_proj'})
    for stage, previous in ((1, 'vdd_s0'), (2, 'vdd_s1')):
        name, ckpt = f'vdd_s{stage}', str(models / previous / 'models' / 'net_g_latest.pth')
        torchrun(write_options(vdd_dist_options(stage, tiny_gopro, name, ckpt), tmp_path / 'a.yml'), tmp_path)
        state = safe_torch_load(models / name / 'training_states' / '2.state')
        assert len(state['generators']) == 2 and not torch.equal(state['generators'][0], state['generators'][1])
        parts = {'blur_encoder'} if stage == 1 else {'blur_encoder', 'unet', 'image_proj'}
        assert_ranks_agree(state, parts)
        torchrun(write_options(vdd_dist_options(stage, tiny_gopro, name, ckpt, total_iter=4), tmp_path / 'b.yml'),
                 tmp_path, '--auto_resume')
        assert_ranks_agree(safe_torch_load(models / name / 'training_states' / '4.state'), parts)
        logs = ''.join(open(p).read() for p in glob.glob(str(models / name / f'train_{name}_*.log')))
        assert 'Resuming training from epoch: 0, iter: 2.' in logs and 'Validation' in logs


def test_ranks_that_drift_apart_stop_training(monkeypatch):
    """A part whose parameters differ between ranks (its gradients were never averaged) is named."""
    from basicsr_vdd import distributed
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    net[1].requires_grad_(False)
    own = distributed.parameter_fingerprint(net)
    assert set(own) == {'0'}  # frozen parts are not fingerprinted
    drifted = {'0': own['0'] + 1e-9}
    monkeypatch.setattr(distributed, 'rank_states', lambda obj: [obj, drifted])
    with pytest.raises(RuntimeError, match=r"different parameters in \['0'\]"):
        distributed.rank_fingerprints(net)
    monkeypatch.setattr(distributed, 'rank_states', lambda obj: [obj, dict(obj)])
    assert distributed.rank_fingerprints(net) == [own, own]


def test_a_finished_rank_leaves_its_process_group_destroyed(tmp_path):
    """train.py / test.py end a distributed run with ``distributed.close()``: the ranks meet, then the
    process group is destroyed (left to the interpreter's exit, a gloo rank aborted with SIGABRT in CI)."""
    import torch.distributed as dist
    from basicsr_vdd import distributed
    distributed.close()  # no process group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        assert distributed.rank_states('x') == ['x']
        distributed.close()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
