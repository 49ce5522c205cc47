"""Fitting a recipe to its sources: shrink the motion until the window never leaves an opaque layer and
no pixel moves more than ``max_step`` between sub-frames, then pick the number of sub-frames."""
import math
from typing import Optional, Tuple

import numpy as np

from vdd_demo.synthetic.layers import background_layer, near_layer, object_layer
from vdd_demo.synthetic.planning import SPLIT_CODES, video_rng
from vdd_demo.synthetic.scene import (Layer, Scene, SmoothPath, Trajectory, apply_affine, corner_points,
                                      exposure_times, grid_points, layer_extent, layer_matrix, subframe_times)


def max_path_length(scene: Scene, num_frames: int, exposure: float) -> float:
    """Longest path (output pixels) any probe point travels during one exposure, over all frames and layers.

    Measured in layer coordinates (layers are at ~output scale) on a 5x5 grid of output pixels by
    summing displacements over 33 sub-steps of each exposure. Divided by ``S - 1`` it bounds the step
    between consecutive sub-frames (the ghosting gap).
    """
    pts = grid_points(scene.size)
    fine = exposure_times(num_frames, exposure, steps=33)
    worst = 0.0
    for layer in scene.layers:
        for row in fine:
            track = np.stack([apply_affine(layer_matrix(layer, scene.camera, scene.size, float(t)), pts) for t in row])
            worst = max(worst, float(np.linalg.norm(np.diff(track, axis=0), axis=2).sum(axis=0).max()))
    return worst


def check_coverage(scene: Scene, times: np.ndarray, margin: float = 2.0) -> None:
    """Raise if any opaque-edged layer (background, near) would be sampled within ``margin`` px of its border."""
    corners = corner_points(scene.size, margin)
    for layer in scene.layers:
        if layer.kind == 'object':
            continue  # object masks are zero on their border: sampling outside is transparent anyway
        h, w = layer.shape
        pts = np.concatenate([apply_affine(layer_matrix(layer, scene.camera, scene.size, float(t)), corners)
                              for t in np.ravel(times)])
        if pts.min() < 0 or pts[:, 0].max() > w - 1 or pts[:, 1].max() > h - 1:
            raise AssertionError(f'{layer.kind} layer sampled outside its {w}x{h} image')


def _trajectory(cam: dict) -> Trajectory:
    return Trajectory(*(SmoothPath(**cam[k]) for k in ('tx', 'ty', 'rot', 'zoom')))


def _place(layer: Layer, camera: Trajectory, size, times, rng) -> Optional[Tuple[float, float]]:
    """A random origin such that the window never samples outside ``layer``; ``None`` if impossible."""
    lo, hi = layer_extent(layer, camera, size, times)
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
    rng = video_rng(spec['seed'], SPLIT_CODES[spec['split']], spec['index'], 1)
    n = spec['num_frames']
    times = exposure_times(n, spec['exposure'])
    background = background_layer(spec, size)
    base_cam = _trajectory(spec['camera'])
    obj_base = object_layer(spec, rng) if 'object' in spec else None
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
                layers.append(near_layer(spec, camera, size, times, rng))
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
