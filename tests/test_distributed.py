"""Multi-process training through BasicSR's launcher: ``torchrun --nproc_per_node=2 train.py --launcher
pytorch`` on CPU (gloo). Gradients are averaged, so two ranks with batch B train the same network as one
process with batch 2B; the ranks stay equal; only rank 0 writes; resume continues."""
import glob
import os
import subprocess
import sys

import torch

from conftest import REPO, load_options, run_pipeline, write_options
from test_vdd_model import tiny_stage_options
from basicsr_vdd.compat import safe_torch_load


def torchrun(opt_path, root, *extra, nproc=2):
    launch = root / 'launch_train.py'
    launch.write_text(f'import sys\nsys.path.insert(0, {REPO!r})\nfrom basicsr_vdd.cli import main\n'
                      f'sys.exit(main("train", {str(root)!r}))\n')
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}',
                           str(launch), '-opt', str(opt_path), '--launcher', 'pytorch', *extra],
                          cwd=str(root), capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


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
    assert state['param_fingerprints'][0] == state['param_fingerprints'][1]

    def params(root):
        return torch.load(root / 'experiments' / 'srn' / 'models' / 'net_g_3.pth', weights_only=True)['params']

    def largest_difference(a, b):
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    # same samples, crops and flips; the mean of the ranks' gradients is the doubled batch's gradient
    assert largest_difference(params(one), params(two)) < 1e-5
    assert largest_difference(params(half), params(two)) > 1e-3  # batch 1 on one process: another network


def test_vdd_two_ranks_stay_equal_and_resume(tiny_gopro, tmp_path):
    opt = tiny_stage_options(2)
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16,
                                    batch_size_per_gpu=1, num_worker_per_gpu=0)
    opt['datasets']['val'].update(dataroot=str(tiny_gopro / 'test'), max_frames=3)
    opt['sampling'].update(window=3, overlap=1, tile=0)
    opt['val'].update(val_freq=2)
    opt['val']['metrics'] = {'psnr': opt['val']['metrics']['psnr']}
    opt['train'].update(total_iter=2)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt['name'] = 'vdd_dist'
    torchrun(write_options(opt, tmp_path / 'a.yml'), tmp_path)
    exp = tmp_path / 'experiments' / 'vdd_dist'
    state = safe_torch_load(exp / 'training_states' / '2.state')
    assert len(state['generators']) == 2 and not torch.equal(state['generators'][0], state['generators'][1])
    assert state['param_fingerprints'][0] == state['param_fingerprints'][1]
    log = open(glob.glob(str(exp / 'train_vdd_dist_*.log'))[0]).read()
    assert 'Validation tiny' in log or 'Validation' in log

    opt['train'].update(total_iter=4)
    torchrun(write_options(opt, tmp_path / 'b.yml'), tmp_path, '--auto_resume')
    state = safe_torch_load(exp / 'training_states' / '4.state')
    assert state['param_fingerprints'][0] == state['param_fingerprints'][1]
    logs = ''.join(open(p).read() for p in glob.glob(str(exp / 'train_vdd_dist_*.log')))
    assert 'Resuming training from epoch: 0, iter: 2.' in logs
