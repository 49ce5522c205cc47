"""Planning: the random, JSON-serialisable recipe of every video of a split (sources, scene kind,
motion, exposure, noise), drawn from ``numpy.random.Generator`` streams keyed by (seed, split, video)."""
import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from vdd_demo.synthetic.scene import SmoothPath
from vdd_demo.synthetic.sources import SPLIT_SOURCES, video_shots

REF_SIZE = 256  # motion amplitudes below are in pixels at this output size; they scale with the output
# Scene kinds, cycled over the videos of a split: which blur sources a video has besides camera shake.
KINDS = ('shake', 'object', 'parallax', 'object+parallax')


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


def video_rng(seed: int, *key: int) -> np.random.Generator:
    """The random stream of ``(seed, *key)``, e.g. ``(seed, SPLIT_CODES[split], video index, purpose)``."""
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
    video_rng(seed, SPLIT_CODES[split], 10 ** 6).shuffle(photos)
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
    rng = video_rng(seed, SPLIT_CODES[split], index)
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
