"""Camera and layers: smooth random motion paths, the layer stack of a scene, and the affine map from
an output pixel to a layer pixel at any time (plus the geometric probes used to fit motion to a source).

Time is measured in output frames; frame ``k`` is exposed over ``k + exposure * [-1/2, 1/2]``.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np


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


@dataclass
class Layer:
    """One premultiplied RGBA layer, linear light, float32 [H, W, 4] (colour * alpha, alpha in [0, 1]).

    ``kind``: 'background' (opaque; depth 1), 'near' (parallax occluder, static in the world at
    ``depth`` > 1) or 'object' (moves on its own ``path``, at ``depth``). ``origin``: layer pixel (x, y)
    seen at the window centre with zero camera translation, rotation and zoom (objects: the patch
    centre). ``frames``: for video backgrounds, one image per output frame ([N, H, W, 4]); otherwise
    ``None`` and ``rgba`` is used for every frame.
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


def subframe_times(frame: int, num_subframes: int, exposure: float) -> np.ndarray:
    """Times (frames) of the ``S`` sub-frames of output frame ``frame``; the middle one is exactly ``frame``."""
    if num_subframes < 1 or num_subframes % 2 == 0:
        raise ValueError(f'the number of sub-frames must be odd, got {num_subframes}')
    half = (num_subframes - 1) / 2.0
    j = np.arange(num_subframes, dtype=np.float64)
    return frame + exposure * (j - half) / max(2 * half, 1.0)


def corner_points(size: Tuple[int, int], margin: float = 0.0) -> np.ndarray:
    h, w = size
    return np.array([[-margin, -margin], [w - 1 + margin, -margin], [-margin, h - 1 + margin],
                     [w - 1 + margin, h - 1 + margin]], dtype=np.float64)


def grid_points(size: Tuple[int, int], n: int = 5) -> np.ndarray:
    h, w = size
    xs, ys = np.meshgrid(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def apply_affine(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def exposure_times(num_frames: int, exposure: float, steps: int = 17) -> np.ndarray:
    """Dense times covering every exposure: [num_frames, steps]."""
    return np.stack([subframe_times(k, steps, exposure) for k in range(num_frames)])


def layer_extent(layer: Layer, camera: Trajectory, size, times: np.ndarray, kernel_margin: float = 3.0):
    """(min_xy, max_xy) of layer pixels sampled by the window over ``times`` with ``origin = 0``."""
    probe = Layer(layer.kind, None, layer.depth, (0.0, 0.0), layer.path)
    corners = corner_points(size, kernel_margin)
    pts = np.concatenate([apply_affine(layer_matrix(probe, camera, size, float(t)), corners) for t in times.ravel()])
    return pts.min(axis=0), pts.max(axis=0)
