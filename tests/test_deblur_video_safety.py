"""scripts/deblur_video.py never replaces or deletes what it did not write (issue 23): refusals before the
network loads, one line on stderr, exit 2, every file byte-for-byte as it was."""
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, tiny_vdd_test_options, user_frames

sys.path.insert(0, osp.join(REPO, 'scripts'))
import deblur_video  # noqa: E402


def snapshot(root):
    """``{relative path: bytes}`` of every file under ``root``."""
    out = {}
    for base, _, files in os.walk(root):
        for name in files:
            with open(osp.join(base, name), 'rb') as f:
                out[osp.relpath(osp.join(base, name), root)] = f.read()
    return out


@pytest.fixture
def no_network(monkeypatch):
    """The refusals must come before the network is loaded."""
    def refuse(*args, **kwargs):
        raise AssertionError('the network was loaded')
    monkeypatch.setattr(deblur_video, 'build_deblurrer', refuse)


@pytest.fixture
def opt(tmp_path):
    return tiny_vdd_test_options(tmp_path)


def refused(capsys, argv, *fragments):
    """Run the CLI in-process; assert exit 2 and one stderr line holding every fragment; returns it."""
    code = deblur_video.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('deblur_video: error: '), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_non_empty_folder_is_refused_even_with_overwrite(tmp_path, opt, capsys, no_network):
    clip = user_frames(tmp_path / 'clip')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'my_thesis.txt').write_text('four years of work')
    before = snapshot(tmp_path)
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out)], f'{out}: exists and is not empty',
            '--overwrite')
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out), '--overwrite'],
            f'{out}: has no manifest', 'never replaced')
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('where, message', [
    ('parent', 'contains the input'), ('same', 'is the input'), ('inside', 'lies inside the input folder')])
def test_output_that_is_contains_or_lies_inside_the_input(tmp_path, opt, capsys, no_network, where, message):
    clip = user_frames(tmp_path / 'videos' / 'clip')
    (tmp_path / 'videos' / 'sibling.txt').write_text('keep me')
    out = {'parent': tmp_path / 'videos', 'same': clip, 'inside': tmp_path / 'videos' / 'clip' / 'out'}[where]
    before = snapshot(tmp_path)
    for extra in ([], ['--overwrite']):
        refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out)] + extra, message, clip)
    assert snapshot(tmp_path) == before


def test_video_file_as_its_own_output(tmp_path, opt, capsys, no_network):
    from conftest import write_video
    import torch
    src = str(tmp_path / 'clip.mp4')
    write_video(torch.rand(3, 3, 16, 16), src)
    os.symlink(src, tmp_path / 'alias.mp4')
    before = snapshot(tmp_path)
    refused(capsys, ['-opt', opt, '--input', src, '--output', src, '--overwrite'], 'is the input')
    refused(capsys, ['-opt', opt, '--input', src, '--output', str(tmp_path / 'alias.mp4'), '--overwrite'],
            'is the input')
    assert snapshot(tmp_path) == before


def test_two_outputs_equal_or_nested(tmp_path, opt, capsys, no_network):
    a, b = user_frames(tmp_path / 'a'), user_frames(tmp_path / 'b', seed=1)
    for second in ('out', osp.join('out', 'sub')):
        refused(capsys, ['-opt', opt, '--input', a, '--output', str(tmp_path / 'out'), '--input', b, '--output',
                         str(tmp_path / second)], f'--output {tmp_path / second}', 'nested with --output')
    assert not (tmp_path / 'out').exists()


def test_duplicate_frame_stems_are_refused_naming_both(tmp_path, opt, capsys, no_network):
    clip = user_frames(tmp_path / 'clip', n=5)
    cv2.imwrite(osp.join(clip, '000002.jpg'), np.zeros((16, 20, 3), np.uint8))
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(tmp_path / 'out')],
            '000002.jpg', '000002.png', 'same name')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('kind', ['folder', 'video'])
def test_leftover_partial_is_named_before_the_network(tmp_path, opt, capsys, no_network, kind):
    clip = user_frames(tmp_path / 'clip')
    out = tmp_path / ('out' if kind == 'folder' else 'out.mp4')
    partial = tmp_path / ('out.partial' if kind == 'folder' else 'out.mp4.partial.mp4')
    partial.mkdir() if kind == 'folder' else partial.write_bytes(b'half a video')
    for extra in ([], ['--overwrite']):
        line = refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out)] + extra,
                       f'{partial}: exists: left by an interrupted run')
        assert 'Errno' not in line
    assert partial.exists() and not out.exists()


@pytest.mark.parametrize('extra, fragment', [
    (['--guidance', 'inf'], 'argument --guidance: must be a finite number, got inf'),
    (['--guidance=-inf'], 'argument --guidance: must be a finite number'),
    (['--strength', 'nan'], 'argument --strength: must be a finite number, got nan'),
    (['--guidance', 'lots'], "argument --guidance: not a number: 'lots'"),
    (['--device', 'gpu0'], '--device gpu0: not a device'),
    (['--output', 'x'], 'give one --output per --input'),
    (['--crf', '60'], '--crf must be in [0, 51]'),
])
def test_bad_arguments_are_one_line(tmp_path, opt, capsys, no_network, extra, fragment):
    clip = user_frames(tmp_path / 'clip')
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(tmp_path / 'out')] + extra, fragment)
    assert not (tmp_path / 'out').exists()


def test_cuda_without_a_gpu_names_device(tmp_path, opt, capsys, no_network, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    clip = user_frames(tmp_path / 'clip')
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(tmp_path / 'out'), '--device', 'cuda'],
            '--device cuda: no CUDA GPU is available')


@pytest.mark.parametrize('text, fragment', [
    ('name: [unclosed\n', 'not a valid YAML option file at line 2'), ('', 'holds NoneType'), ('- a\n- b\n', 'holds list'),
    ('name: x\n', 'needs model_type:'), (None, 'no such option file')])
def test_bad_option_files_are_one_line(tmp_path, capsys, no_network, text, fragment):
    path = tmp_path / 'opt.yml'
    if text is not None:
        path.write_text(text)
    clip = user_frames(tmp_path / 'clip')
    refused(capsys, ['-opt', str(path), '--input', clip, '--output', str(tmp_path / 'out')], f'-opt {path}', fragment)


def test_debug_shows_the_traceback(tmp_path, opt, no_network):
    from basicsr_vdd.pipelines.inference import OutputRefused
    clip = user_frames(tmp_path / 'clip')
    with pytest.raises(OutputRefused, match='is the input'):
        deblur_video.main(['-opt', opt, '--input', clip, '--output', clip, '--debug'])


def test_output_kinds_that_cannot_hold_the_result(tmp_path, opt, capsys, no_network):
    clip = user_frames(tmp_path / 'clip', n=3)
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(tmp_path / 'out.webm')], 'cannot encode .webm')
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(tmp_path / 'single.png')],
            'an image file holds one frame', 'has 3')
    assert sorted(os.listdir(tmp_path)) == ['clip', 'test.yml', 'vdd.pth']


def _deblur(opt, src, dst, *extra):
    return deblur_video.main(['-opt', opt, '--input', str(src), '--output', str(dst), '--device', 'cpu', *extra])


def test_overwrite_replaces_only_an_unchanged_earlier_output(tmp_path, opt, capsys):
    clip = user_frames(tmp_path / 'clip')
    out = tmp_path / 'out'
    assert _deblur(opt, clip, out) == 0
    manifest = json.loads((out / '.deblur_video.json').read_text())
    assert sorted(manifest['files']) == ['000000.png', '000001.png', '000002.png']
    capsys.readouterr()
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out)], 'exists and is not empty')  # a 2nd run
    assert _deblur(opt, clip, out, '--overwrite') == 0
    (out / 'notes.txt').write_text('mine')
    before = snapshot(out)
    capsys.readouterr()
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out), '--overwrite'],
            'holds notes.txt, which deblur_video did not write', 'never replaced')
    assert snapshot(out) == before
    os.remove(out / 'notes.txt')
    manifest_text = (out / '.deblur_video.json').read_text()
    for fake in ('[1, 2]', '{"files": {}}', 'not json'):  # a manifest this tool did not write
        (out / '.deblur_video.json').write_text(fake)
        refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out), '--overwrite'], 'has no manifest')
    (out / '.deblur_video.json').write_text(manifest_text)
    cv2.imwrite(str(out / '000001.png'), np.zeros((16, 20, 3), np.uint8))  # retouched by hand
    before = snapshot(out)
    refused(capsys, ['-opt', opt, '--input', clip, '--output', str(out), '--overwrite'],
            '000001.png changed since deblur_video wrote it')
    assert snapshot(out) == before


def test_video_and_image_outputs_carry_a_manifest_and_keep_odd_sizes(tmp_path, opt, capsys):
    from basicsr_vdd.pipelines.inference import VideoSource
    for (h, w) in ((1, 1), (17, 31)):
        clip = user_frames(tmp_path / f'clip{h}', n=3, size=(h, w))
        for extra, name in (([], 'a.mp4'), (['--crf', '18'], 'b.mp4'), (['--crf', '0'], 'c.mkv')):
            out = tmp_path / f'{h}_{name}'
            assert _deblur(opt, clip, out, *extra) == 0
            result = VideoSource(str(out))
            assert result.size == (w, h) and len(result) == 3
    out = tmp_path / '17_a.mp4'
    side = tmp_path / '17_a.mp4.deblur_video.json'
    assert list(json.loads(side.read_text())['files']) == ['17_a.mp4']
    capsys.readouterr()
    refused(capsys, ['-opt', opt, '--input', str(tmp_path / 'clip17'), '--output', str(out)], f'{out}: exists;')
    assert _deblur(opt, tmp_path / 'clip17', out, '--overwrite') == 0
    with open(out, 'ab') as f:
        f.write(b'edited elsewhere')
    before = out.read_bytes()
    capsys.readouterr()
    refused(capsys, ['-opt', opt, '--input', str(tmp_path / 'clip17'), '--output', str(out), '--overwrite'],
            '17_a.mp4 changed since deblur_video wrote it')
    assert out.read_bytes() == before
    # one image in, one image out (a one-frame video), and an image in, a folder out
    photo = tmp_path / 'photo.jpg'
    cv2.imwrite(str(photo), np.full((21, 13, 3), 128, np.uint8))
    assert _deblur(opt, photo, tmp_path / 'sharp.png') == 0
    assert cv2.imread(str(tmp_path / 'sharp.png')).shape == (21, 13, 3) and (tmp_path / 'sharp.png').is_file()
    assert _deblur(opt, photo, tmp_path / 'as_folder') == 0
    assert sorted(os.listdir(tmp_path / 'as_folder')) == ['.deblur_video.json', 'photo.png']
    assert not list(tmp_path.glob('*.partial*'))


def test_files_that_appear_during_the_run_are_never_replaced(tmp_path):
    """The output is checked again when the finished result is moved in: the run may have taken hours."""
    import torch
    from basicsr_vdd.pipelines.inference import OutputRefused, VideoSink
    out = tmp_path / 'out'
    out.mkdir()  # an empty folder is replaced
    with VideoSink(str(out)) as sink:
        sink.write(torch.rand(3, 8, 8))
    assert sorted(os.listdir(out)) == ['.deblur_video.json', '000000.png']
    late = tmp_path / 'late'
    with pytest.raises(OutputRefused, match='late: exists and is not empty'):
        with VideoSink(str(late)) as sink:
            sink.write(torch.rand(3, 8, 8))
            late.mkdir()
            (late / 'made_meanwhile.txt').write_text('mine')
    assert os.listdir(late) == ['made_meanwhile.txt'] and not (tmp_path / 'late.partial').exists()


def test_option_file_without_checkpoint_or_path_section(tmp_path, capsys):
    from conftest import load_options, write_options
    clip = user_frames(tmp_path / 'clip')
    opt = load_options(tiny_vdd_test_options(tmp_path))
    del opt['path']
    refused(capsys, ['-opt', write_options(opt, tmp_path / 'no_path.yml'), '--input', clip, '--output',
                     str(tmp_path / 'out')], 'no checkpoint: give --checkpoint or path: pretrain_network_g')
    assert deblur_video.main(['-opt', str(tmp_path / 'no_path.yml'), '--input', clip, '--output', str(tmp_path / 'out'),
                              '--checkpoint', str(tmp_path / 'vdd.pth')]) == 0
