"""scripts/check_paper_scale.py on CPU at 2 frames x 64² with the paper's full widths: the real
VDDModel trains a stage-1 step and samples a guided window, and the report says so."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO

UNET_PARAMETERS = 1_411_256_900 + 5_248_000  # TF-T2V UNet + image projection (1,416,504,900 in VGen)


@pytest.mark.slow
def test_paper_size_network_trains_and_samples_on_cpu(tmp_path):
    out = tmp_path / 'paper_scale'
    proc = subprocess.run([sys.executable, 'scripts/check_paper_scale.py', '-opt', 'options/vdd_stage2.yml',
                           '--frames', '2', '--size', '64', '--stages', '1', '--steps', '1', '--sample-steps', '1',
                           '--out', str(out)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.with_suffix('.json').read_text())
    (stage,) = result['stages']
    assert stage['stage'] == 1 and stage['parameters'] == 2_166_399_811
    assert stage['trainable'] == 34_164_248  # stage 1: the blur encoder only
    assert stage['parameters'] - stage['trainable'] - UNET_PARAMETERS == 83_653_863 + 632_076_800  # VAE + ViT-H
    assert stage['loss'] > 0
    # the option file holds the frozen parts (UNet, VAE, CLIP in stage 1) in bf16: 3.97 GiB instead of 7.94
    assert result['args']['frozen_dtype'] == 'bf16' and 4.0 < stage['built_gib'] < 6.0
    sampling = result['sampling']
    assert sampling['autocast'] == 'bf16'  # the option file's sampling: autocast
    assert sampling['unet_calls'] == 1 and sampling['guidance_batched'] and sampling['unet_batch'] == [2]
    assert sampling['output_finite']
    assert '| 1 | 2,166,399,811 | 34,164,248 |' in out.with_suffix('.md').read_text()


def test_both_stages_in_one_process_and_a_clear_stop_when_memory_runs_out(tmp_path, monkeypatch, capsys):
    """``--stages 1 2`` builds stage 2 after stage 1 from the same option file (BasicSR pops ``type`` from
    the option dicts it is given: each stage gets its own copy); a stage whose optimizer state does not
    fit stops the run with one line, keeping what was measured before."""
    sys.path.insert(0, osp.join(REPO, 'scripts'))
    import check_paper_scale

    opt = osp.join(REPO, 'options', 'demo', 'vdd_stage2_synth.yml')
    argv = ['-opt', opt, '--frames', '2', '--size', '64', '--steps', '1', '--sample-steps', '1']
    assert check_paper_scale.main(argv + ['--out', str(tmp_path / 'both')]) == 0
    result = json.loads((tmp_path / 'both.json').read_text())
    one, two = result['stages']
    assert (one['stage'], two['stage']) == (1, 2) and one['parameters'] == two['parameters']
    assert one['trainable'] < two['trainable'] < two['parameters']  # stage 2 also trains the UNet
    assert result['sampling']['output_finite'] and result['device'] == 'cpu'

    trainable = {1: one['trainable'], 2: two['trainable']}
    # as if only stage 1's gradients and AdamW moments fitted (12 bytes per trained parameter)
    monkeypatch.setattr(check_paper_scale, 'available_memory', lambda device: (trainable[1] + trainable[2]) * 6 / 2 ** 30)
    capsys.readouterr()
    assert check_paper_scale.main(argv + ['--out', str(tmp_path / 'oom')]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('check_paper_scale: error: stage 2:') and 'GiB' in err[0]
    result = json.loads((tmp_path / 'oom.json').read_text())
    assert [r['stage'] for r in result['stages']] == [1] and 'sampling' not in result
    assert result['error'].startswith('stage 2:')
    assert 'Stopped: stage 2' in (tmp_path / 'oom.md').read_text()
