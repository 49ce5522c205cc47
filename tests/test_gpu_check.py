"""scripts/gpu_check.py: the dry run on the CPU writes every file the GPU run writes, records each step,
and a failing step does not stop the ones after it."""
import json
import os.path as osp
import sys

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'scripts'))
import gpu_check  # noqa: E402


def test_dry_run_writes_the_files_of_a_gpu_run(tmp_path):
    out = tmp_path / 'check'
    assert gpu_check.main(['--out', str(out), '--dry-run', '--minutes', '5']) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {'environment.json', 'gpu_tests.log', 'paper_scale.json', 'paper_scale.md', 'summary.json',
                     'summary.md', 'log.txt'}
    summary = json.loads((out / 'summary.json').read_text())
    status = {r['step']: r['status'] for r in summary['steps']}
    assert status == {'environment': 'passed', 'gpu_tests': 'skipped', 'paper_scale': 'passed'}  # no GPU here
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
