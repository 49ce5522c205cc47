"""scripts/gpu_check.py: the dry run on the CPU writes every file the GPU run writes, records each step,
and a failing step does not stop the ones after it."""
import json
import os.path as osp
import sys

import pytest

from conftest import REPO, write_paired_videos

sys.path.insert(0, osp.join(REPO, 'scripts'))
import gpu_check  # noqa: E402


@pytest.mark.slow
def test_dry_run_writes_the_files_of_a_gpu_run(tmp_path):
    data = tmp_path / 'data'
    write_paired_videos(str(data / 'train'), [f'v{i}' for i in range(8)], 6, size=(64, 64), seed=1)  # 8 clips: one batch
    write_paired_videos(str(data / 'test'), ['c'], 6, size=(64, 64), seed=2)
    out, work = tmp_path / 'check', tmp_path / 'work'
    assert gpu_check.main(['--out', str(out), '--dry-run', '--minutes', '5', '--data', str(data), '--methods', 'EDVR',
                           '--train-minutes', '0.05', '--work', str(work)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {'environment.json', 'gpu_tests.log', 'paper_scale.json', 'paper_scale.md', 'summary.json',
                     'summary.md', 'log.txt', 'demo_training.md'}
    summary = json.loads((out / 'summary.json').read_text())
    status = {r['step']: r['status'] for r in summary['steps']}
    assert status == {'environment': 'passed', 'gpu_tests': 'skipped', 'paper_scale': 'passed',  # no GPU here
                      'demo_training': 'passed'}
    row = next(line for line in (out / 'demo_training.md').read_text().splitlines() if line.startswith('| EDVR |'))
    iterations = int(row.split('|')[2].split(' x ')[0])
    assert iterations >= 1 and (work / 'experiments' / 'gpu_demo_EDVR_SynthGoPro' / 'models' / 'net_g_latest.pth').is_file()
    assert (work / 'results' / 'gpu_demo_EDVR_SynthGoPro').is_dir()  # tested with the method's test option file
    assert 'skipped' in (out / 'gpu_tests.log').read_text()
    env = json.loads((out / 'environment.json').read_text())
    assert env['cuda_available'] is False and env['packages']['basicsr'] == '1.4.2'
    scale = json.loads((out / 'paper_scale.json').read_text())
    assert [r['stage'] for r in scale['stages']] == [1, 2] and scale['sampling']['output_finite']
    detail = next(r['detail'] for r in summary['steps'] if r['step'] == 'paper_scale')
    assert detail.startswith('stage 1: ') and 'stage 2: ' in detail and 's/window' in detail
    assert '| paper_scale | passed |' in (out / 'summary.md').read_text()


def test_a_failing_step_is_recorded_and_the_next_still_runs(tmp_path, monkeypatch, capsys):
    def broken():
        raise RuntimeError('CUDA error: out of memory')

    ran = []
    monkeypatch.setattr(gpu_check, 'steps', lambda args, out, log: [
        ('first', broken), ('second', lambda: ran.append(1) or ('passed', 'fine'))])
    out = tmp_path / 'check'
    assert gpu_check.main(['--out', str(out), '--dry-run']) == 1
    rows = json.loads((out / 'summary.json').read_text())['steps']
    assert [(r['step'], r['status']) for r in rows] == [('first', 'failed'), ('second', 'passed')] and ran
    assert rows[0]['detail'] == 'RuntimeError: CUDA error: out of memory'

    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'notes.txt').write_text('mine')
    assert gpu_check.main(['--out', str(tmp_path / 'full'), '--dry-run']) == 2  # never writes into other files
    assert 'not an empty folder' in capsys.readouterr().err
    assert [p.name for p in (tmp_path / 'full').iterdir()] == ['notes.txt']
