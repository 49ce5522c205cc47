"""EDVR (BasicSR's arch and model) through our datasets and BasicSR's own train/test pipelines on CPU."""
import glob
import json
import math
import os.path as osp

import pytest

from conftest import load_options, run_pipeline, write_options


def _finite_summary(path, metrics=('psnr', 'ssim')):
    with open(path) as f:
        summary = json.load(f)
    for name in metrics:
        values = summary['metrics'][name]
        assert math.isfinite(values['per_video_mean']) and math.isfinite(values['all_frame_mean'])
        assert set(values['per_video']) == {'vid_c', 'vid_d'}
    return summary


@pytest.mark.slow
def test_edvr_train_then_test(tiny_gopro, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    opt = load_options('options/demo/train_edvr_synth.yml')
    opt['name'] = 'edvr_tiny'
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(dataroot=str(tiny_gopro / 'train'), gt_size=32, batch_size_per_gpu=2, num_worker_per_gpu=0)
    val['dataroot'] = str(tiny_gopro / 'test')
    opt['network_g'].update(num_feat=16, deformable_groups=4, num_extract_block=1, num_reconstruct_block=1)
    opt['train']['total_iter'] = 4
    opt['train']['scheduler']['periods'] = [4]
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt_path = write_options(opt, tmp_path / 'train.yml')
    run_pipeline('train', opt_path, root)

    exp = root / 'experiments' / 'edvr_tiny'
    for name in ('net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'):
        assert (exp / 'models' / name).is_file()
    assert (exp / 'training_states' / '4.state').is_file()
    assert glob.glob(str(exp / 'train_edvr_tiny_*.log'))
    summary = _finite_summary(exp / 'metrics_SynthGoPro_test_4.json')
    assert summary['frames'] == 11 and summary['videos'] == 2
    # the mean over videos weighs each video equally; the mean over all frames weighs each frame
    per_video = summary['metrics']['psnr']['per_video']
    assert abs(summary['metrics']['psnr']['per_video_mean'] - sum(per_video.values()) / 2) < 1e-9

    # --auto_resume from the state under the root: test_resume.py (kill -9 mid-epoch, the same losses)

    test = load_options('options/demo/test_edvr_synth.yml')
    test['name'] = 'edvr_tiny_test'
    test['datasets']['test']['dataroot'] = str(tiny_gopro / 'test')
    test['network_g'] = opt['network_g']
    test['path']['pretrain_network_g'] = str(exp / 'models' / 'net_g_latest.pth')
    test['val']['save_img'] = True
    test['val']['metrics'].pop('lpips')
    test_path = write_options(test, tmp_path / 'test.yml')
    run_pipeline('test', test_path, root)
    results = root / 'results' / 'edvr_tiny_test'
    _finite_summary(results / 'metrics_SynthGoPro_test_edvr_tiny_test.json')
    pngs = sorted(glob.glob(str(results / 'visualization' / 'SynthGoPro_test' / '*' / '*.png')))
    assert len(pngs) == 11
    assert osp.basename(pngs[0]) == '000000_edvr_tiny_test.png'
