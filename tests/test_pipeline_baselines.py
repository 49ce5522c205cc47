"""STFAN and SRN through BasicSR's train/test pipelines with our datasets (tiny widths; only YAML differs)."""
import glob
import json
import math

import pytest

from conftest import load_options, run_pipeline, write_options


@pytest.mark.parametrize('method, width', [('stfan', {'channels': [8, 8, 16]}), ('srn', {'channels': [8, 8, 16]})])
def test_train_then_test_whole_videos(method, width, tiny_gopro, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    opt = load_options(f'options/demo/train_{method}_synth.yml')
    opt['name'] = f'{method}_tiny'
    opt['network_g'].update(width)
    opt['datasets']['train'].update(dataroot=str(tiny_gopro / 'train'), gt_size=32, num_frame=3,
                                    batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['datasets']['val'].update(dataroot=str(tiny_gopro / 'test'))
    opt['train']['total_iter'] = 2
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    run_pipeline('train', write_options(opt, tmp_path / 'train.yml'), root)
    exp = root / 'experiments' / f'{method}_tiny'
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    logs = open(glob.glob(str(exp / f'train_{method}_tiny_*.log'))[0]).read()
    assert 'l_pix' in logs and 'Validation SynthGoPro_test (2 videos, 11 frames' in logs

    test = load_options(f'options/demo/test_{method}_synth.yml')
    test['name'] = f'{method}_tiny_test'
    test['network_g'].update(width)
    test['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    test['path']['pretrain_network_g'] = str(exp / 'models' / 'net_g_latest.pth')
    test['val']['metrics'].pop('lpips')
    run_pipeline('test', write_options(test, tmp_path / 'test.yml'), root)
    results = root / 'results' / f'{method}_tiny_test'
    summary = json.load(open(glob.glob(str(results / 'metrics_*.json'))[0]))
    assert summary['frames'] == 11 and math.isfinite(summary['metrics']['psnr']['all_frame_mean'])
    assert len(glob.glob(str(results / 'visualization' / 'SynthGoPro_test' / '*' / '*.png'))) == 11
