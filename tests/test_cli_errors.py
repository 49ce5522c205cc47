"""train.py / test.py: bad options, paths and checkpoints are one line on stderr with exit code 2, and a
run that fails leaves no empty experiment/result folder behind (an earlier run keeps its name)."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import REPO, edvr_test_options, load_options, one_error_line, write_options
from conftest import tiny_vdd_test_options as tiny_vdd


def run_cli(kind, opt_path, root, *extra):
    code = ('import sys; sys.path.insert(0, {repo!r}); from basicsr_vdd.cli import main; '
            'sys.argv = ["{kind}.py", "-opt", {opt!r}] + {extra!r}; sys.exit(main("{kind}", {root!r}))'
            ).format(repo=REPO, kind=kind, opt=str(opt_path), extra=list(extra), root=str(root))
    return subprocess.run([sys.executable, '-c', code], cwd=str(root), capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE='1'), timeout=300)


@pytest.mark.slow
def test_refused_checkpoint_names_the_file_and_leaves_no_results(tiny_gopro, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    bad = tmp_path / 'other_network.pth'
    torch.save({'params': {'conv.weight': torch.zeros(3, 3)}}, bad)
    opt_path = write_options(edvr_test_options(tiny_gopro, bad), tmp_path / 'test.yml')
    proc = run_cli('test', opt_path, root)
    one_error_line(proc, str(bad), 'does not fit EDVR')
    assert not (root / 'results' / 'edvr_cli').exists()

    # an earlier run of the same name keeps its name and its files (BasicSR archived it meanwhile)
    earlier = root / 'results' / 'edvr_cli'
    earlier.mkdir(parents=True)
    (earlier / 'metrics.json').write_text('{}')
    one_error_line(run_cli('test', opt_path, root), str(bad))
    assert sorted(os.listdir(root / 'results')) == ['edvr_cli'] and (earlier / 'metrics.json').is_file()


def test_bad_options_are_refused_before_any_folder_is_made(tiny_gopro, tmp_path, monkeypatch, capsys):
    from basicsr_vdd.cli import main

    def refused(kind, opt_path, *fragments):
        monkeypatch.setattr(sys, 'argv', [f'{kind}.py', '-opt', str(opt_path)])
        code = main(kind, str(root))
        proc = subprocess.CompletedProcess([], code, '', capsys.readouterr().err)
        one_error_line(proc, *fragments)

    root = tmp_path / 'root'
    root.mkdir()
    sigint, sigterm = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    opt = load_options('options/demo/test_vdd_synth.yml')
    opt['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    cases = [({'steps': 0}, 'sampling: steps'), ({'guidance_scale': -1}, 'guidance'),
             ({'overlap': 8, 'window': 8}, 'overlap'), ({'strength': 1.5}, 'strength'), ({'stpes': 4}, 'stpes')]
    for change, fragment in cases:
        bad = dict(opt, sampling=dict(opt['sampling'], **change))
        refused('test', write_options(bad, tmp_path / 'bad.yml'), fragment)
    missing = dict(opt, datasets={'test': dict(opt['datasets']['test'], dataroot=str(tmp_path / 'nowhere'))})
    refused('test', write_options(missing, tmp_path / 'bad.yml'), 'nowhere', 'dataroot')
    no_ckpt = dict(opt, path=dict(opt['path'], pretrain_network_g=str(tmp_path / 'none.pth')))
    refused('test', write_options(no_ckpt, tmp_path / 'bad.yml'), 'pretrain_network_g', 'none.pth')
    train = load_options('options/demo/train_srn_synth.yml')
    train['datasets']['train']['dataroot'] = str(tmp_path / 'no_train_data')
    refused('train', write_options(train, tmp_path / 'train.yml'), 'no_train_data')
    train = load_options('options/demo/vdd_stage2_synth.yml')
    train['train']['max_nonfinite_steps'] = 0
    refused('train', write_options(train, tmp_path / 'train.yml'), 'max_nonfinite_steps')
    refused('train', tmp_path / 'absent.yml', 'absent.yml')
    assert not (root / 'results').exists() and not (root / 'experiments').exists()
    assert signal.getsignal(signal.SIGINT) is sigint and signal.getsignal(signal.SIGTERM) is sigterm  # handlers back


def test_a_second_ctrl_c_or_sigterm_does_not_stop_the_clean_up(tiny_gopro, tmp_path):
    """A user pressing Ctrl-C again (or a second SIGTERM) while a failed run's folder is being removed:
    the removal finishes and the command still exits with its one line, no traceback."""
    root = tmp_path / 'root'
    root.mkdir()
    bad = tmp_path / 'other_network.pth'
    torch.save({'params': {'conv.weight': torch.zeros(3, 3)}}, bad)
    opt_path = write_options(edvr_test_options(tiny_gopro, bad), tmp_path / 'test.yml')
    marker = tmp_path / 'removed'
    code = ('import shutil, signal, sys; sys.path.insert(0, {repo!r}); rmtree = shutil.rmtree\n'
            'def rmtree_under_signals(path, *args, **kwargs):  # both signals land while the folder is removed\n'
            '    signal.raise_signal(signal.SIGINT); signal.raise_signal(signal.SIGTERM)\n'
            '    rmtree(path, *args, **kwargs); open({marker!r}, "w").close()\n'
            'shutil.rmtree = rmtree_under_signals\n'
            'from basicsr_vdd.cli import main; sys.argv = ["test.py", "-opt", {opt!r}]; sys.exit(main("test", {root!r}))'
            ).format(repo=REPO, marker=str(marker), opt=str(opt_path), root=str(root))
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(root), capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE='1'), timeout=300)
    one_error_line(proc, str(bad), 'does not fit EDVR')
    assert marker.is_file() and not (root / 'results' / 'edvr_cli').exists()


@pytest.mark.slow
def test_bad_dataset_found_by_the_pipeline_leaves_no_experiment_folder(tiny_gopro, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (tiny_gopro / 'train' / 'vid_a' / 'blur' / '000003.png').unlink()  # a blurry frame missing
    opt = load_options('options/demo/train_srn_synth.yml')
    opt['name'] = 'srn_cli'
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_worker_per_gpu=0)
    opt['datasets']['val']['dataroot'] = str(tiny_gopro / 'test')
    proc = run_cli('train', write_options(opt, tmp_path / 'train.yml'), root)
    one_error_line(proc, 'vid_a')
    assert not (root / 'experiments' / 'srn_cli').exists()
    assert not (root / 'tb_logger' / 'srn_cli').exists() or not os.listdir(root / 'tb_logger' / 'srn_cli')


def tiny_vdd_test_options(tiny_gopro, tmp_path, steps):
    """The tiny VDD test file of conftest.tiny_vdd_test_options on the tiny test split, ``steps`` DDIM steps."""
    opt = load_options(tiny_vdd(tmp_path))
    opt['path']['param_key_g'] = 'params'
    opt['sampling'].update(steps=steps, window=4, overlap=1, tile=0)
    opt['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    opt['val']['metrics'] = {'psnr': opt['val']['metrics']['psnr']}
    opt['name'] = 'vdd_signal'
    return write_options(opt, tmp_path / 'vdd_test.yml')


def cli_argv(kind, opt_path, root, *extra):
    code = ('import sys; sys.path.insert(0, {repo!r}); from basicsr_vdd.cli import main; '
            'sys.argv = ["{kind}.py", "-opt", {opt!r}] + {extra!r}; sys.exit(main("{kind}", {root!r}))'
            ).format(repo=REPO, kind=kind, opt=str(opt_path), extra=list(extra), root=str(root))
    return [sys.executable, '-c', code]


def _signal_when(argv, cwd, ready, sig, timeout=600):
    """Start ``argv``, wait until ``ready()`` (an observable marker; the run has far more work left than
    the test waits), then send ``sig``. No sleep decides the outcome: only the marker does."""
    import time
    proc = subprocess.Popen(argv, cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE='1'))
    start = time.time()
    while not ready():
        if proc.poll() is not None or time.time() - start > timeout:
            proc.kill()
            raise AssertionError(f'no marker before the run ended: {proc.communicate()[1][-3000:]}')
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.mark.slow
def test_sigterm_during_test_leaves_no_result_folder(tiny_gopro, tmp_path):
    opt_path = tiny_vdd_test_options(tiny_gopro, tmp_path, steps=1000)  # minutes of sampling: never done first
    root = tmp_path / 'root'
    root.mkdir()
    folder = root / 'results' / 'vdd_signal'

    def sampling():  # the log line BasicSR writes when inference starts
        return any('Testing ' in p.read_text() for p in folder.glob('*.log')) if folder.is_dir() else False

    rc, err = _signal_when(cli_argv('test', opt_path, root), root, sampling, signal.SIGTERM)
    assert rc == 143 and err.strip().splitlines()[-1].startswith('test.py: error: terminated by signal 15'), err
    assert 'Traceback' not in err
    assert os.listdir(root / 'results') == []


@pytest.mark.slow
def test_sigterm_during_training_keeps_its_states_and_auto_resume_skips_a_truncated_one(tiny_gopro, tmp_path):
    from basicsr_vdd.compat import latest_training_state
    from basicsr_vdd.file_io import safe_torch_load
    opt = load_options('options/demo/train_srn_synth.yml')
    opt['name'] = 'srn_signal'
    opt['network_g'].update(channels=[8, 8, 16])
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16,
                                    batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['datasets'].pop('val')
    opt.pop('val')
    opt['train']['total_iter'] = 10 ** 6  # never done before the signal
    opt['train']['scheduler'].update(periods=[10 ** 6], restart_weights=[1])
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    root = tmp_path / 'root'
    root.mkdir()
    opt_path = write_options(opt, tmp_path / 'train.yml')
    states = root / 'experiments' / 'srn_signal' / 'training_states'
    rc, err = _signal_when(cli_argv('train', opt_path, root), root, (states / '4.state').exists, signal.SIGTERM)
    assert rc == 143 and err.strip().splitlines()[-1] == 'train.py: error: terminated by signal 15', err[-3000:]
    assert 'Traceback' not in err
    assert os.listdir(root / 'experiments') == ['srn_signal']
    saved = sorted(os.listdir(states), key=lambda f: int(f.split('.')[0]))
    assert saved[:2] == ['2.state', '4.state'] and all(f.endswith('.state') for f in saved)  # no partial file
    assert safe_torch_load(os.path.join(states, saved[-1]))['iter'] == int(saved[-1].split('.')[0])

    newest = latest_training_state(str(states))
    with open(newest, 'r+b') as f:
        f.truncate(os.path.getsize(newest) // 2)
    last = int(os.path.basename(newest).split('.')[0])
    proc = run_cli('train', opt_path, root, '--auto_resume', '--force_yml', f'train:total_iter={last + 1}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = sorted((root / 'experiments' / 'srn_signal').glob('train_*.log'))[-1].read_text()
    assert f'WARNING: --auto_resume: skipped {newest}: not a readable training state' in log
    assert f'Resuming training from epoch: ' in log and f'iter: {last - 2}.' in log
    assert safe_torch_load(newest)['iter'] == last  # written again, whole


@pytest.mark.slow
def test_kill9_of_deblur_video_leaves_nothing_under_the_output_name(tiny_gopro, tmp_path):
    opt_path = tiny_vdd_test_options(tiny_gopro, tmp_path, steps=30)  # the first frames are written early
    out = tmp_path / 'deblurred.mp4'
    argv = [sys.executable, os.path.join(REPO, 'scripts', 'deblur_video.py'), '-opt', opt_path,
            '--input', str(tiny_gopro / 'test' / 'vid_d' / 'blur'), '--output', str(out)]
    partial = tmp_path / 'deblurred.mp4.partial.mp4'
    rc, _ = _signal_when(argv, tmp_path, partial.exists, signal.SIGKILL)
    assert rc == -9 and not out.exists()
