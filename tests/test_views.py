"""Lazy views of sample sequences: a prefix, and seeded joint noise."""

import numpy as np
import pytest

from neuralannot_jax.data import sample as sample_lib
from neuralannot_jax.data import views


class _Source:
  """A sequence with extras(), like `builders.open_source`."""

  def __init__(self, items):
    self.items = items

  def __len__(self):
    return len(self.items)

  def __getitem__(self, i):
    return self.items[i]

  def extras(self):
    return {s.ann_id: {'frame': i} for i, s in enumerate(self.items)}


def _samples(n, k=17):
  rng = np.random.default_rng(0)
  return [sample_lib.Sample(
      dataset='test', ann_id=f'a{i}', image_path='x.jpg', bbox=np.array([0, 0, 50, 50.]),
      joint_set='COCO_17', joints_2d=rng.uniform(0, 100, (k, 2)).astype(np.float32),
      joints_2d_valid=np.ones(k, np.float32),
      joints_3d=rng.normal(size=(k, 3)).astype(np.float32),
      joints_3d_valid=np.ones(k, np.float32)) for i in range(n)]


def test_noise_has_the_asked_spread_is_repeatable_and_leaves_the_rest():
  clean = _samples(400)
  noisy = views.NoisyJoints(_Source(clean), px=2.0, mm=15.0, seed=3)
  d2 = np.stack([noisy[i].joints_2d - clean[i].joints_2d for i in range(len(clean))])
  d3 = np.stack([noisy[i].joints_3d - clean[i].joints_3d for i in range(len(clean))])
  # 400 x 17 x 2 draws: the sample std is within a few percent of the asked one.
  assert abs(d2.std() - 2.0) < 0.1 and abs(d2.mean()) < 0.05
  assert abs(d3.std() - 0.015) < 0.0008
  # Same noise on every read, in any order; another seed gives other noise.
  np.testing.assert_array_equal(noisy[7].joints_2d, noisy[7].joints_2d)
  assert not np.allclose(views.NoisyJoints(clean, px=2.0, seed=4)[7].joints_2d,
                         noisy[7].joints_2d)
  assert noisy[7].ann_id == clean[7].ann_id and noisy[7].bbox is clean[7].bbox
  assert noisy.extras() == _Source(clean).extras()
  assert views.NoisyJoints(clean)[0] is clean[0]          # no noise: the sample itself
  with pytest.raises(ValueError, match='>= 0'):
    views.NoisyJoints(clean, px=-1)


def test_swaps_exchange_one_mirror_pair_and_drops_mark_joints_missing():
  from neuralannot_jax.data import joint_sets  # pylint: disable=import-outside-toplevel
  clean = _samples(400)
  pairs = set(joint_sets.get('COCO_17').flip_pairs)
  defective = views.NoisyJoints(clean, swap=0.25, drop=0.1, seed=5)
  swapped = 0
  for c, d in zip(clean, defective):
    moved = np.flatnonzero(np.any(d.joints_2d != c.joints_2d, axis=-1))
    if moved.size:
      swapped += 1
      i, j = moved
      assert (i, j) in pairs                      # exactly one left/right pair, exchanged
      np.testing.assert_array_equal(d.joints_2d[[i, j]], c.joints_2d[[j, i]])
  assert abs(swapped / 400 - 0.25) < 0.06
  missing2d = 1 - np.stack([d.joints_2d_valid for d in defective]).mean()
  missing3d = 1 - np.stack([d.joints_3d_valid for d in defective]).mean()
  assert abs(missing2d - 0.1) < 0.015 and abs(missing3d - 0.1) < 0.015
  assert np.all(clean[3].joints_2d_valid == 1)    # the source is untouched
  with pytest.raises(ValueError, match='probabilities'):
    views.NoisyJoints(clean, swap=1.5)


def test_prefix_keeps_the_first_items_and_their_extras():
  clean = _samples(5)
  head = views.Prefix(_Source(clean), 3)
  assert len(head) == 3 and [s.ann_id for s in head] == ['a0', 'a1', 'a2']
  assert set(head.extras()) == {'a0', 'a1', 'a2'}
  with pytest.raises(IndexError):
    head[3]
