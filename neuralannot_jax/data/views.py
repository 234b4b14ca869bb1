"""Lazy views of a sample sequence (a list, or `builders.open_source`'s decoded records).

  Prefix(samples, n)                the first n samples (a trial run on part of a set)
  NoisyJoints(samples, px=, mm=)    the GT joints with seeded Gaussian noise added: the
                                    annotation noise of real sets, simulated on synthetic
                                    ones, to compare annotators under it (the GT parameters
                                    the evaluation uses stay clean)

Both keep `extras()` (per-ann_id side data such as MoCap frame keys) of what they wrap.
"""

import dataclasses

import numpy as np


class Prefix:
  """The first n items of a sequence."""

  def __init__(self, items, n):
    self._items, self._n = items, min(n, len(items))

  def __len__(self):
    return self._n

  def __getitem__(self, index):
    if not 0 <= index < self._n:
      raise IndexError(index)
    return self._items[index]

  def __iter__(self):
    return (self._items[i] for i in range(self._n))

  def extras(self):
    ids = {self._items[i].ann_id for i in range(self._n)}
    return {k: v for k, v in _extras(self._items).items() if k in ids}


class NoisyJoints:
  """Samples whose GT joints carry i.i.d. Gaussian noise, the same on every read.

  Args:
    items: the samples.
    px: standard deviation per 2D coordinate, pixels of the original image.
    mm: standard deviation per 3D coordinate, millimetres.
    seed: the noise of sample i is drawn from (seed, i), so it does not depend on the
      order or the number of reads.
  """

  def __init__(self, items, *, px=0.0, mm=0.0, seed=0):
    if px < 0 or mm < 0:
      raise ValueError(f'joint noise must be >= 0; got px={px}, mm={mm}')
    self._items, self.px, self.mm, self.seed = items, float(px), float(mm), int(seed)

  def __len__(self):
    return len(self._items)

  def __getitem__(self, index):
    if not 0 <= index < len(self._items):
      raise IndexError(index)
    sample = self._items[index]
    rng = np.random.default_rng((self.seed, index))
    changes = {}
    if sample.joints_2d is not None and self.px > 0:
      changes['joints_2d'] = (sample.joints_2d
                              + rng.normal(0.0, self.px, sample.joints_2d.shape)
                              ).astype(sample.joints_2d.dtype)
    if sample.joints_3d is not None and self.mm > 0:
      changes['joints_3d'] = (sample.joints_3d
                              + rng.normal(0.0, self.mm / 1000.0, sample.joints_3d.shape)
                              ).astype(sample.joints_3d.dtype)
    return dataclasses.replace(sample, **changes) if changes else sample

  def __iter__(self):
    return (self[i] for i in range(len(self)))

  def extras(self):
    return _extras(self._items)


def _extras(items):
  return items.extras() if hasattr(items, 'extras') else {}


__all__ = ['Prefix', 'NoisyJoints']
