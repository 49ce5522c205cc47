"""train.py / test.py check the options BasicSR will run (the file, then --force_yml) before anything is
made or renamed: each refusal is one line on stderr, exit 2, naming the option; an earlier run keeps its
name and files. In-process (``main`` / ``check_options``): no training runs here."""
import glob
import logging
import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import REPO, load_options, one_error_line, write_options


def run_main(monkeypatch, capsys, kind, root, *argv):
    from basicsr_vdd.cli import main
    monkeypatch.setattr(sys, 'argv', [f'{kind}.py', *map(str, argv)])
    code = main(kind, str(root))
    return subprocess.CompletedProcess([], code, '', capsys.readouterr().err)


def checked(kind, root, *argv):
    from basicsr_vdd import option_checks
    option_checks.use_yaml_floats()
    return option_checks.check_options(option_checks.parse_args(list(map(str, argv))), kind, str(root))


def srn_train(tiny_gopro, name='srn_opts'):
    opt = load_options('options/demo/train_srn_synth.yml')
    opt['name'] = name
    opt['network_g'].update(channels=[8, 8, 16])
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), num_frame=3, gt_size=16,
                                    batch_size_per_gpu=2, num_worker_per_gpu=0)  # 5 + 7 clips of 3 frames
    opt['datasets']['val']['dataroot'] = str(tiny_gopro / 'test')
    return opt


@pytest.fixture
def root(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    return root


def test_force_yml_is_applied_before_the_check_and_an_earlier_run_keeps_its_name(
        tiny_gopro, tmp_path, root, monkeypatch, capsys):
    states = root / 'experiments' / 'X' / 'training_states'
    states.mkdir(parents=True)
    (states / '4.state').write_bytes(b'earlier run')
    opt = srn_train(tiny_gopro)
    opt['train']['max_nonfinite_steps'] = 0  # a mistake elsewhere in the options
    path = write_options(opt, tmp_path / 'train.yml')
    one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', path, '--force_yml', 'name=X'),
                   'max_nonfinite_steps')
    good = write_options(srn_train(tiny_gopro), tmp_path / 'good.yml')
    for entries, fragment in [(['train:optim_g:lr=inf'], 'train: optim_g: lr: must be a finite number'),
                              (['trian:total_iter=5'], 'no option section trian'),
                              (['name'], 'one "="'),
                              (['train:scheduler:periods=[77'], 'train:scheduler:periods=[77'),
                              (['name=../X'], "name: '../X'")]:
        one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', good, '--auto_resume',
                                '--force_yml', 'name=X', *entries), fragment)
    one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', good, '--no_such_flag'), '--no_such_flag')
    assert os.listdir(root / 'experiments') == ['X'] and os.listdir(states) == ['4.state']
    assert (states / '4.state').read_bytes() == b'earlier run'


def test_scientific_numbers_are_floats_for_the_check_and_for_basicsr(tiny_gopro, tmp_path, root, monkeypatch):
    text = open(write_options(srn_train(tiny_gopro), tmp_path / 'plain.yml')).read()
    text = re.sub(r'\n    lr: .*\n', '\n    lr: 4e-4\n', text, count=1)
    path = tmp_path / 'train.yml'
    path.write_text(text)
    argv = ['-opt', path, '--force_yml', 'train:scheduler:eta_min=2e-7']
    opt = checked('train', root, *argv)
    assert opt['train']['optim_g']['lr'] == 4e-4 and opt['train']['scheduler']['eta_min'] == 2e-7
    from basicsr.utils.options import parse_options  # what the pipeline reads (use_yaml_floats applied)
    monkeypatch.setattr(sys, 'argv', ['train.py', *map(str, argv)])
    basicsr_opt, _ = parse_options(str(root), is_train=True)
    assert basicsr_opt['train']['optim_g']['lr'] == 4e-4 and basicsr_opt['train']['scheduler']['eta_min'] == 2e-7
    assert not os.listdir(root)


def test_text_numbers_and_non_finite_floats_are_refused_naming_the_key(tiny_gopro, tmp_path, root, monkeypatch,
                                                                       capsys):
    opt = srn_train(tiny_gopro)
    text = open(write_options(opt, tmp_path / 'plain.yml')).read()
    quoted = tmp_path / 'quoted.yml'
    quoted.write_text(re.sub(r'\n    lr: .*\n', "\n    lr: '4e-4'\n", text, count=1))
    one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', quoted),
                   "train: optim_g: lr: '4e-4' is text, not a number", 'quoted.yml')
    for section, key, value, fragment in [
            ('scheduler', 'eta_min', float('inf'), 'train: scheduler: eta_min: must be a finite number, got inf'),
            ('optim_g', 'betas', [0.9, float('nan')], 'train: optim_g: betas: [1]: must be a finite number')]:
        bad = srn_train(tiny_gopro)
        bad['train'][section][key] = value
        one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', write_options(bad, tmp_path / 'b.yml')),
                       fragment, 'b.yml')
    bad = dict(opt, network_g=dict(opt['network_g'], scale=float('nan')))
    one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', write_options(bad, tmp_path / 'b.yml')),
                   'network_g: scale: must be a finite number')
    assert not os.listdir(root)


def test_a_batch_larger_than_the_training_clips_is_refused(tiny_gopro, tmp_path, root, monkeypatch, capsys):
    opt = srn_train(tiny_gopro)
    opt['datasets']['train']['batch_size_per_gpu'] = 13
    proc = run_main(monkeypatch, capsys, 'train', root, '-opt', write_options(opt, tmp_path / 't.yml'))
    one_error_line(proc, 'batch_size_per_gpu 13', 'has 12', 'no iteration would train')
    monkeypatch.setenv('WORLD_SIZE', '3')  # torchrun: 3 processes of 5 clips with batch 6
    opt['datasets']['train']['batch_size_per_gpu'] = 6
    path = write_options(opt, tmp_path / 't.yml')
    one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', path, '--launcher', 'pytorch'),
                   'batch_size_per_gpu 6 x 3 processes needs 18 clips')
    monkeypatch.setenv('WORLD_SIZE', '1')
    assert checked('train', root, '-opt', path)['datasets']['train']['batch_size_per_gpu'] == 6
    assert not os.listdir(root)


def test_test_without_checkpoint_unknown_metric_and_bad_names_are_refused(tiny_gopro, tmp_path, root, monkeypatch,
                                                                         capsys):
    opt = load_options('options/demo/test_edvr_synth.yml')
    opt['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    opt['path']['pretrain_network_g'] = None
    path = write_options(opt, tmp_path / 'test.yml')
    one_error_line(run_main(monkeypatch, capsys, 'test', root, '-opt', path), 'pretrain_network_g', 'allow_random_init')
    assert checked('test', root, '-opt', write_options(dict(opt, allow_random_init=True), tmp_path / 'r.yml'))
    opt['val']['metrics']['psnr']['type'] = 'calculate_psnrr'
    opt['allow_random_init'] = True
    for kind in ('test', 'train'):
        bad = opt if kind == 'test' else dict(srn_train(tiny_gopro), val=opt['val'])
        one_error_line(run_main(monkeypatch, capsys, kind, root, '-opt', write_options(bad, tmp_path / 'm.yml')),
                       "val: metrics: psnr: type 'calculate_psnrr' is not a metric", 'calculate_psnr,')
    opt['val']['metrics']['psnr']['type'] = 'calculate_psnr'
    for name in ('../escaped', str(tmp_path / 'absolute'), 'a/b', '..', ''):
        one_error_line(run_main(monkeypatch, capsys, 'test', root, '-opt', write_options(dict(opt, name=name),
                                                                                          tmp_path / 'n.yml')),
                       'name: ')
    assert not os.listdir(root) and not (tmp_path / 'escaped').exists() and not (tmp_path / 'absolute').exists()


@pytest.mark.parametrize('option_file', ['options/demo/vdd_stage2b_synth.yml', 'options/demo/vdd_stage2_synth.yml'])
def test_the_readme_command_continuing_vdd_from_the_demo_checkpoint_passes_the_check(option_file, tiny_gopro, root,
                                                                                     monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the README's relative paths; nothing is written under REPO (root is elsewhere)
    data = ['datasets:train:dataroot=' + str(tiny_gopro / 'train'), 'datasets:train:num_frame=3',
            'datasets:train:gt_size=16', 'datasets:val:dataroot=' + str(tiny_gopro / 'test')]
    readme = ['path:pretrain_network_g=demo_checkpoints/vdd_synth.pth',
              'diffusion:timestep_sampling:uniform_fraction=0', 'train:optim_g:lr=1e-4',
              'train:scheduler:periods=[920]', 'train:scheduler:restart_weights=[1]', 'train:total_iter=920']
    opt = checked('train', root, '-opt', option_file, '--force_yml', *readme, *data)
    assert opt['path']['pretrain_network_g'] == 'demo_checkpoints/vdd_synth.pth'
    assert opt['train']['optim_g']['lr'] == 1e-4
    one_error_line(run_main(monkeypatch, capsys, 'train', root, '-opt', option_file, '--force_yml', *data),
                   'path: pretrain_network_g: experiments/')  # without the README's path: the stage before is missing
    assert not os.listdir(root)


@pytest.fixture
def fresh_basicsr_logger():
    from basicsr.utils import logger as basicsr_logger

    def reset():
        log = logging.getLogger('basicsr')
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()
        basicsr_logger.initialized_logger.pop('basicsr', None)
    reset()
    yield
    reset()


def test_auto_resume_skips_truncated_states_naming_them_in_the_log(tmp_path, fresh_basicsr_logger):
    from basicsr_vdd.compat import load_resume_state
    exp = tmp_path / 'experiments' / 'run'
    states = exp / 'training_states'
    states.mkdir(parents=True)
    for it in (4, 8, 12):
        torch.save({'epoch': 0, 'iter': it, 'optimizers': [], 'schedulers': []}, states / f'{it}.state')
    for it in (8, 12):  # killed while written (before writes were atomic)
        data = (states / f'{it}.state').read_bytes()
        (states / f'{it}.state').write_bytes(data[:len(data) // 2])

    def options(auto_resume, resume_state=None):
        return {'name': 'run', 'auto_resume': auto_resume, 'network_g': {},
                'path': {'training_states': str(states), 'log': str(exp), 'models': str(exp / 'models'),
                         'resume_state': resume_state}}

    opt = options(True)
    assert load_resume_state(opt)['iter'] == 4 and opt['path']['resume_state'] == str(states / '4.state')
    log = open(glob.glob(str(exp / 'train_run_*.log'))[0]).read()
    for it in (8, 12):
        assert f'WARNING: --auto_resume: skipped {states / f"{it}.state"}: not a readable training state' in log
    with pytest.raises(ValueError, match='path: resume_state .*12.state: not a readable training state'):
        load_resume_state(options(False, str(states / '12.state')))
    (states / '4.state').write_bytes(b'')
    with pytest.raises(ValueError, match='no training state loads .*12.state.*8.state.*4.state'):
        load_resume_state(options(True))


def test_interrupts_exit_130_or_143_with_one_line_and_no_folder(tiny_gopro, tmp_path, root, monkeypatch, capsys):
    import signal
    from basicsr_vdd import cli
    opt = load_options('options/demo/test_edvr_synth.yml')
    opt.update(name='interrupted', allow_random_init=True)
    opt['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    opt['path']['pretrain_network_g'] = None
    path = write_options(opt, tmp_path / 'test.yml')
    folder = root / 'results' / 'interrupted'

    def pipeline(interrupt):
        def run(_root):
            folder.mkdir(parents=True)
            (folder / 'test.log').write_text('started')
            interrupt()
        return lambda kind: run

    def ctrl_c():
        raise KeyboardInterrupt

    def swallowed_sigterm():  # a broad handler on the way (e.g. in a __del__) eats the exception
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        except BaseException:
            pass

    for interrupt, code, message in [(ctrl_c, 130, 'test.py: error: interrupted'),
                                     (swallowed_sigterm, 143, 'test.py: error: terminated by signal 15')]:
        monkeypatch.setattr(cli, '_pipeline', pipeline(interrupt))
        proc = run_main(monkeypatch, capsys, 'test', root, '-opt', path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == code and len(lines) == 1 and lines[0].startswith(message), proc.stderr
        assert os.listdir(root / 'results') == []
    assert signal.getsignal(signal.SIGTERM) is not None  # the caller's handler is back
