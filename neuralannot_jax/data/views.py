"""Lazy views of a sample sequence (a list, or `builders.open_source`'s decoded records).

  Prefix(samples, n)                the first n samples (a trial run on part of a set)
  NoisyJoints(samples, px=, mm=,    the GT joints with the defects of real annotations,
              swap=, drop=)         seeded: Gaussian noise, left/right swaps in 2D, joints
                                    missing; simulated on synthetic sets to compare
                                    annotators under them (the GT parameters the evaluation
                                    uses stay clean)

Both keep `extras()` (per-ann_id side data such as MoCap frame keys) of what they wrap.
"""

import dataclasses

import numpy as np

from neuralannot_jax.data import joint_sets


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
  """Samples whose GT joints carry the defects of real annotations, the same on every read.

  Args:
    items: the samples.
    px: standard deviation of Gaussian noise per 2D coordinate, original-image pixels.
    mm: the same per 3D coordinate, millimetres.
    swap: probability that a sample's 2D joints have one left/right pair exchanged (one of
      the joint set's mirror pairs with both joints labelled), as COCO annotators do.
    drop: probability that each labelled joint is missing (occlusion, truncation and
      capture failures beyond those the set already has), in 2D and 3D alike.
    seed: the defects of sample i are drawn from (seed, i), so they do not depend on the
      order or the number of reads.
  """

  def __init__(self, items, *, px=0.0, mm=0.0, swap=0.0, drop=0.0, seed=0):
    if px < 0 or mm < 0 or not 0 <= swap <= 1 or not 0 <= drop <= 1:
      raise ValueError(f'joint defects: noise must be >= 0 and probabilities in [0, 1]; '
                       f'got px={px}, mm={mm}, swap={swap}, drop={drop}')
    self._items, self.px, self.mm, self.seed = items, float(px), float(mm), int(seed)
    self.swap, self.drop = float(swap), float(drop)

  def __len__(self):
    return len(self._items)

  def __getitem__(self, index):
    if not 0 <= index < len(self._items):
      raise IndexError(index)
    sample = self._items[index]
    rng = np.random.default_rng((self.seed, index))
    changes = {}
    if sample.joints_2d is not None and self.swap > 0 and rng.uniform() < self.swap:
      valid = sample.joints_2d_valid
      pairs = [(i, j) for i, j in joint_sets.get(sample.joint_set).flip_pairs
               if valid is None or (valid[i] > 0 and valid[j] > 0)]
      if pairs:
        i, j = pairs[rng.integers(len(pairs))]
        joints = np.array(sample.joints_2d)
        joints[[i, j]] = joints[[j, i]]
        changes['joints_2d'] = joints
    if self.drop > 0:
      for key in ('joints_2d', 'joints_3d'):
        if getattr(sample, key) is None:
          continue
        valid = getattr(sample, key + '_valid')
        valid = np.ones(len(getattr(sample, key)), np.float32) if valid is None else valid
        keep = rng.uniform(size=valid.shape) >= self.drop
        changes[key + '_valid'] = (np.asarray(valid) * keep).astype(np.asarray(valid).dtype)
    if sample.joints_2d is not None and self.px > 0:
      base = changes.get('joints_2d', sample.joints_2d)
      changes['joints_2d'] = (base + rng.normal(0.0, self.px, base.shape)
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
