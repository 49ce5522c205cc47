"""scripts/deblur_video.py: a user's own video file or frame folder, any length and size."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from basicsr_vdd.data.video_io import VideoDataError, list_frames
from conftest import REPO, load_options, read_video, tiny_vdd_test_options, write_video

sys.path.insert(0, osp.join(REPO, 'scripts'))
import deblur_video  # noqa: E402


@pytest.fixture
def tiny_setup(tmp_path):
    return tiny_vdd_test_options(tmp_path)


def test_video_file_in_frame_folder_out_any_size(tiny_setup, tmp_path):
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.random((6, 3, 36, 50)).astype(np.float32))
    src = str(tmp_path / 'in.mp4')
    write_video(frames, src, fps=12)
    decoded, fps = read_video(src)
    assert decoded.shape == (6, 3, 36, 50) and fps == pytest.approx(12)
    out = str(tmp_path / 'out')
    assert deblur_video.main(['-opt', tiny_setup, '--input', src, '--output', out, '--device', 'cpu']) == 0
    written = list_frames(out)
    assert len(written) == 6
    result, _ = read_video(out)
    assert result.shape == (6, 3, 36, 50)
    # deterministic for the seed: a second run writes the same frames
    out2 = str(tmp_path / 'out2')
    deblur_video.main(['-opt', tiny_setup, '--input', src, '--output', out2, '--device', 'cpu'])
    assert torch.equal(read_video(out2)[0], result)


def _cli(args, capsys):
    code = deblur_video.main(args)
    err = capsys.readouterr().err
    return code, err


def test_missing_and_corrupt_inputs_are_one_line_errors(tiny_setup, tmp_path, capsys):
    code, err = _cli(['-opt', tiny_setup, '--input', str(tmp_path / 'nowhere.mp4'), '--output', str(tmp_path / 'o')],
                     capsys)
    assert code == 2 and err.strip().endswith('nowhere.mp4: no such video file or frame folder')
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video')
    code, err = _cli(['-opt', tiny_setup, '--input', str(bad), '--output', str(tmp_path / 'o')], capsys)
    assert code == 2 and 'bad.mp4: cannot decode video' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'o').exists()
    with pytest.raises(VideoDataError, match='bad.mp4: cannot decode video'):  # --debug: the exception itself
        deblur_video.main(['-opt', tiny_setup, '--input', str(bad), '--output', str(tmp_path / 'o'), '--debug'])


@pytest.mark.parametrize('extra, message', [
    (['--steps', '0'], 'sampling: steps must be an integer >= 1, got 0'),
    (['--guidance', '-1'], 'sampling: guidance_scale must be >= 0'),
    (['--window', '4', '--overlap', '4'], 'sampling: overlap must be in [0, window = 4)'),
    (['--tile', '16', '--tile_overlap', '16'], 'sampling: tile_overlap must be in [0, tile = 16)'),
    (['--strength', '0'], 'sampling: strength must be in (0, 1]'),
])
def test_bad_options_fail_before_any_work(tiny_setup, tmp_path, capsys, extra, message):
    frames = tmp_path / 'frames'
    write_video(torch.rand(3, 3, 16, 16), str(frames))
    code, err = _cli(['-opt', tiny_setup, '--input', str(frames), '--output', str(tmp_path / 'out')] + extra, capsys)
    assert code == 2 and err.startswith(f'deblur_video: error: {message}') and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'out').exists()


def test_unwritable_or_wrong_kind_of_output_fails_before_any_work(tiny_setup, tmp_path, capsys):
    frames = tmp_path / 'frames'
    write_video(torch.rand(3, 3, 16, 16), str(frames))
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    code, err = _cli(['-opt', tiny_setup, '--input', str(frames), '--output', str(blocker / 'sub' / 'out.mp4')], capsys)
    assert code == 2 and 'is not a writable folder' in err and str(blocker) in err
    code, err = _cli(['-opt', tiny_setup, '--input', str(frames), '--output', str(frames) + '.mp4', '--input',
                      str(frames), '--output', str(blocker)], capsys)
    assert code == 2 and 'a_file: exists and is a file; the output is a frame folder' in err
    assert not osp.exists(str(frames) + '.mp4')  # the check of the second output ran before the first was written


def test_streaming_equals_the_whole_video_path_bit_for_bit(tiny_setup, tmp_path):
    from basicsr_vdd.pipelines.inference import load_vdd
    net, diffusion, sampling = load_vdd(tiny_setup)
    g = torch.Generator().manual_seed(3)
    video = torch.rand(1, 11, 3, 20, 28, generator=g)
    for change in ({}, {'tile': 16, 'tile_overlap': 4}):
        options = dict(sampling, **change)
        whole = diffusion.deblur_video(net, video, options, 'clip')
        streamed = list(diffusion.deblur_stream(net, (video[:, i] for i in range(11)), 11, options, 'clip'))
        assert len(streamed) == 11
        assert torch.equal(torch.stack(streamed, 1), whole)


def test_outputs_keep_fps_frame_count_size_and_names(tiny_setup, tmp_path):
    import av
    from basicsr_vdd.pipelines.inference import VideoSource
    rng = np.random.default_rng(1)
    folder = tmp_path / 'frames'
    folder.mkdir()
    names = ['shot_7', 'shot_8', 'shot_9', 'shot_10', 'shot_11']
    import cv2
    for name in names:
        cv2.imwrite(str(folder / f'{name}.png'), (rng.random((18, 30, 3)) * 255).astype(np.uint8))
    out = tmp_path / 'deblurred'
    assert deblur_video.main(['-opt', tiny_setup, '--input', str(folder), '--output', str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([f'{n}.png' for n in names] + ['.deblur_video.json'])

    src = str(tmp_path / 'in.mp4')
    write_video(torch.rand(7, 3, 18, 30, generator=torch.Generator().manual_seed(0)), src, fps=25)
    for crf, dst in ((None, 'out.mp4'), (0, 'lossless.mkv')):
        dst = str(tmp_path / dst)
        args = ['-opt', tiny_setup, '--input', src, '--output', dst] + (['--crf', str(crf)] if crf is not None else [])
        assert deblur_video.main(args) == 0
        result = VideoSource(dst)
        assert len(result) == 7 and result.fps == pytest.approx(25) and result.size == (30, 18)
        with av.open(dst) as container:
            codec = container.streams.video[0].codec_context.name
        assert codec == ('mpeg4' if crf is None else 'h264')
    # --crf 0 is lossless: the decoded video holds exactly the frames written as PNG
    frames_out = str(tmp_path / 'as_frames')
    assert deblur_video.main(['-opt', tiny_setup, '--input', src, '--output', frames_out]) == 0
    assert torch.equal(read_video(str(tmp_path / 'lossless.mkv'))[0], read_video(frames_out)[0])
    assert not list(tmp_path.glob('*.partial*'))


@pytest.mark.parametrize('method', ['edvr', 'stfan', 'srn'])
def test_every_baseline_streams_through_the_cli(method, tmp_path):
    """The committed demo checkpoints through the same CLI: a video file and a frame folder, odd sizes."""
    from basicsr_vdd.pipelines.inference import VideoSource
    opt = f'options/demo/test_{method}_synth.yml'
    src = str(tmp_path / 'in.mp4')
    frames = torch.rand(6, 3, 38, 42, generator=torch.Generator().manual_seed(0))
    write_video(frames, src, fps=30)
    out = str(tmp_path / 'out.mp4')
    assert deblur_video.main(['-opt', opt, '--input', src, '--output', out]) == 0
    result = VideoSource(out)
    assert len(result) == 6 and result.fps == pytest.approx(30) and result.size == (42, 38)

    folder = tmp_path / 'frames'
    write_video(frames[:4], str(folder))
    out_folder = tmp_path / 'out_frames'
    assert deblur_video.main(['-opt', opt, '--input', str(folder), '--output', str(out_folder)]) == 0
    assert sorted(p.name for p in out_folder.iterdir()) == ['.deblur_video.json'] + [f'{i:06d}.png' for i in range(4)]
    with pytest.raises(ValueError, match='apply to VDD only'):
        deblur_video.run(deblur_video.parse_args(['-opt', opt, '--input', str(folder), '--output',
                                                  str(tmp_path / 'x'), '--steps', '4']))


def test_stfan_stream_equals_its_whole_video_forward(tmp_path):
    from basicsr_vdd.pipelines.streaming import build_deblurrer
    deblurrer = build_deblurrer('options/demo/test_stfan_synth.yml')
    video = torch.rand(1, 5, 3, 22, 30, generator=torch.Generator().manual_seed(2))
    from basicsr_vdd.pipelines.streaming import load_network  # the same weights, the whole-video path
    net = load_network(load_options('options/demo/test_stfan_synth.yml'), None, 'cpu')
    with torch.no_grad():
        whole = net.forward_video(video)
        streamed = torch.stack(list(deblurrer.run((video[:, i] for i in range(5)), 5, 'v')), 1)
    assert torch.equal(streamed, whole)


def _saved(net, path):
    torch.save({'params': net.state_dict()}, path)
    return str(path)


def test_pvdnet_stream_equals_its_whole_video_recurrence(tmp_path):
    """PVDNet streams with a look-ahead of one frame; the last frame's next neighbour is itself."""
    from basicsr_vdd.archs.pvdnet_arch import PVDNet
    from basicsr_vdd.pipelines.streaming import build_deblurrer
    torch.manual_seed(0)
    net = PVDNet(feat=8, img_feat=8, mid=8, num_blocks=1).eval()
    opt = load_options('options/demo/test_pvdnet_synth.yml')
    opt['network_g'].update(feat=8, img_feat=8, mid=8, num_blocks=1)
    deblurrer = build_deblurrer(opt, _saved(net, tmp_path / 'pvdnet.pth'))
    video = torch.rand(1, 4, 3, 34, 38, generator=torch.Generator().manual_seed(2))  # padded to 36 x 40
    with torch.no_grad():
        whole = net.forward_video(video)
        streamed = torch.stack(list(deblurrer.run((video[:, i] for i in range(4)), 4, 'v')), 1)
    assert streamed.shape == video.shape
    assert torch.equal(streamed, whole)


def test_frame_by_frame_networks_stream_and_a_clip_network_under_videobasemodel_is_refused(tmp_path):
    from basicsr_vdd.archs.nafnet_arch import NAFNet
    from basicsr_vdd.pipelines.streaming import build_deblurrer
    opt = load_options('options/demo/test_nafnet_synth.yml')
    net = NAFNet(**{k: v for k, v in opt['network_g'].items() if k != 'type'}).eval()
    deblurrer = build_deblurrer(opt, _saved(net, tmp_path / 'nafnet.pth'))
    video = torch.rand(1, 3, 3, 21, 27, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        streamed = torch.stack(list(deblurrer.run((video[:, i] for i in range(3)), 3, 'v')), 1)
        assert torch.equal(streamed[:, 1], net(video[:, 1]))
    assert deblurrer.name == 'NAFNet' and streamed.shape == video.shape
    opt['datasets']['test']['num_frame'] = 5
    with pytest.raises(ValueError, match='num_frame: 5'):
        build_deblurrer(opt, str(tmp_path / 'nafnet.pth'))
    with pytest.raises(ValueError, match="model_type 'EDVRModelX' has no streaming deblurrer"):
        build_deblurrer(dict(opt, model_type='EDVRModelX'))


def test_every_demo_method_streams(capsys):
    """deblur_video takes the test option file of every method the demo compares."""
    from basicsr_vdd.pipelines.streaming import STREAMERS
    from vdd_demo.runner import methods, repo_options
    kinds = {name: repo_options(spec['test'])['model_type'] for name, spec in methods().items()}
    assert {k for k, kind in kinds.items() if kind not in STREAMERS} == set(), kinds
    assert deblur_video.read_options(osp.join(REPO, 'options/demo/test_pvdnet_synth.yml'))['model_type'] == 'PVDNetModel'
