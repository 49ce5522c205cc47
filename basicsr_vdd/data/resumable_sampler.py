"""Training data that a resumed run replays exactly, from any iteration (also mid-epoch).

BasicSR restarts a resumed epoch from its first batch, and its datasets draw crops and flips from
the worker's global RNG, which BasicSR reseeds identically at every epoch. A run resumed at
iteration 20 of an epoch therefore sees other samples than the uninterrupted run did. Here:

* :class:`ResumableSampler` (BasicSR's ``EnlargedSampler``, same order) can start ``start``
  positions into an epoch, and hands out :class:`SampleIndex` ints that carry a seed derived from
  (manual seed, epoch, position in the epoch's global order): the sample's randomness no longer
  depends on which worker or rank loads it or on what was drawn before (two ranks with batch B see
  the same samples, crops and flips as one process with batch 2B).
* :func:`seeded_random` seeds Python's ``random`` (used by BasicSR's ``augment``) for one sample
  and restores the previous state afterwards.
"""
import contextlib
import random

import numpy as np

from basicsr.data.data_sampler import EnlargedSampler


class SampleIndex(int):
    """A dataset index with the seed of the sample's random choices (crop, flips, reversal)."""

    def __new__(cls, index, seed):
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):  # pickled to DataLoader workers with its seed
        return SampleIndex, (int(self), self.seed)


def sample_seed(seed, epoch, position):
    """A 63-bit seed for one sample, a pure function of its place in training."""
    state = np.random.SeedSequence([int(seed) % 2 ** 32, int(epoch), int(position)])
    return int(state.generate_state(2, np.uint32).astype(np.uint64) @ np.array([2 ** 31, 1], np.uint64))


@contextlib.contextmanager
def seeded_random(seed):
    """Python's ``random`` seeded with ``seed`` inside the block (unchanged when ``seed`` is None)."""
    if seed is None:
        yield
        return
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


class ResumableSampler(EnlargedSampler):
    """``EnlargedSampler`` whose indices carry per-sample seeds and that can start mid-epoch.

    ``seed``: the run's manual seed. ``start``: positions of epoch ``start_epoch`` to skip (set on
    resume; BasicSR's prefetcher may create more than one iterator for that epoch: each skips).
    """

    def __init__(self, dataset, num_replicas, rank, ratio=1, seed=0):
        super().__init__(dataset, num_replicas, rank, ratio)
        self.seed = seed
        self.start, self.start_epoch = 0, None

    def __iter__(self):
        indices = list(super().__iter__())
        start = self.start if self.epoch == self.start_epoch else 0
        # rank r holds positions r, r + R, r + 2R, ... of the epoch's global order (EnlargedSampler)
        return iter([SampleIndex(index, sample_seed(self.seed, self.epoch, position * self.num_replicas + self.rank))
                     for position, index in enumerate(indices) if position >= start])
