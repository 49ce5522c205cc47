"""--auto_resume after kill -9 continues exactly: the same losses, to the last printed digit, as a run
that was never interrupted, also when the kill comes mid-epoch with crops, flips, reversal and a
data-loading worker (every method of the demo)."""
import glob
import os
import re
import signal
import subprocess
import time

import pytest

from basicsr_vdd.data.paired_video_dataset import PairedVideoDataset
from conftest import load_options, pipeline_command, run_pipeline, tiny_stage_options, write_options

TOTAL_ITER, SAVE_EVERY = 10, 4


def baseline_options(method, **net):
    opt = load_options(f'options/demo/train_{method}_synth.yml')
    opt['network_g'].update(net)
    return opt


METHODS = {
    'vdd_stage2': lambda: tiny_stage_options(2),
    'edvr': lambda: baseline_options('edvr', num_feat=16, deformable_groups=4, num_extract_block=1,
                                     num_reconstruct_block=1, num_frame=3, center_frame_idx=1),
    'stfan': lambda: baseline_options('stfan', channels=[8, 8, 16]),
    'srn': lambda: baseline_options('srn', channels=[8, 8, 16]),
}


def _losses(exp, newest_only=False):
    """``{iteration: 'l_a: x l_b: y'}`` from the training log(s) of an experiment folder."""
    logs = sorted(glob.glob(str(exp / 'train_*.log')))
    text = open(logs[-1]).read() if newest_only else ''.join(open(p).read() for p in logs)
    out = {}
    for line in text.splitlines():
        match = re.search(r'iter:\s*(\d+),.*?\]\s*(.*l_\w+: .*)$', line)
        if match:
            out[int(match.group(1))] = ' '.join(re.findall(r'l_\w+: \S+', match.group(2)))
    return out


def _kill_after_first_save(opt_path, root, state_file, timeout=300):
    argv, env = pipeline_command('train', opt_path, root)
    proc = subprocess.Popen(argv, cwd=str(root), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.time()
    while not state_file.exists():
        if proc.poll() is not None:
            raise AssertionError(f'training ended before its first save: {proc.stderr.read().decode()[-3000:]}')
        if time.time() - start > timeout:
            proc.kill()
            raise AssertionError('no training state written')
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(METHODS))
def test_kill9_mid_epoch_then_auto_resume_repeats_the_losses(method, tiny_gopro, tmp_path):
    opt = METHODS[method]()
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16, use_hflip=True, use_rot=True,
                                    use_reverse=True, batch_size_per_gpu=2, num_worker_per_gpu=1,
                                    dataset_enlarge_ratio=1)
    opt['datasets'].pop('val', None)
    opt.pop('val', None)
    opt['train']['total_iter'] = TOTAL_ITER
    opt['train']['scheduler'] = {'type': 'CosineAnnealingRestartLR', 'periods': [TOTAL_ITER], 'restart_weights': [1],
                                 'eta_min': 1e-6}
    opt['logger'].update(print_freq=1, save_checkpoint_freq=SAVE_EVERY)
    per_epoch = len(PairedVideoDataset(dict(opt['datasets']['train'], phase='train'))) // 2
    assert SAVE_EVERY % per_epoch and per_epoch > 1, 'the saved iteration must lie inside an epoch'

    straight_root, killed_root = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight_root, killed_root):
        root.mkdir()
    opt['name'] = f'{method}_resume'
    opt_path = write_options(opt, tmp_path / 'train.yml')
    run_pipeline('train', opt_path, straight_root)
    straight = _losses(straight_root / 'experiments' / opt['name'])
    assert sorted(straight) == list(range(1, TOTAL_ITER + 1))

    exp = killed_root / 'experiments' / opt['name']
    _kill_after_first_save(opt_path, killed_root, exp / 'training_states' / f'{SAVE_EVERY}.state')
    assert not glob.glob(str(exp / '**' / '*.partial-*'), recursive=True)
    run_pipeline('train', opt_path, killed_root, extra_args=['--auto_resume'])
    resumed = _losses(exp, newest_only=True)
    log = open(sorted(glob.glob(str(exp / 'train_*.log')))[-1]).read()
    first = int(re.search(r'Resuming training from epoch: \d+, iter: (\d+)', log).group(1))
    assert first % per_epoch and first < TOTAL_ITER
    assert sorted(resumed) == list(range(first + 1, TOTAL_ITER + 1))
    for it in resumed:
        assert resumed[it] == straight[it], f'iteration {it}: resumed {resumed[it]} vs uninterrupted {straight[it]}'
