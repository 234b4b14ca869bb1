"""Tests of neuralannot_jax.models.batch_norm: running statistics recomputed under the current
weights, checked against numpy's statistics of the layer inputs and against train mode."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from neuralannot_jax.models import batch_norm


class _Tiny(nnx.Module):
  """conv -> BN -> relu -> conv -> BN: two BatchNorms, the second fed by the first."""

  def __init__(self, rngs):
    self.conv1 = nnx.Conv(3, 4, (3, 3), rngs=rngs)
    self.bn1 = nnx.BatchNorm(4, momentum=0.9, rngs=rngs)
    self.conv2 = nnx.Conv(4, 5, (3, 3), rngs=rngs)
    self.bn2 = nnx.BatchNorm(5, momentum=0.9, rngs=rngs)

  def __call__(self, x):
    return self.bn2(self.conv2(nnx.relu(self.bn1(self.conv1(x)))))


def _call(module, x):
  return module(x)


def _batches(seed=0):
  """Two batches with different means and spreads, so the union's variance differs from the
  mean of the two variances."""
  rng = np.random.default_rng(seed)
  a = rng.normal(0.0, 1.0, (6, 8, 8, 3)).astype(np.float32)
  b = rng.normal(2.0, 0.5, (6, 8, 8, 3)).astype(np.float32)
  return a, b


def _stale(module):
  """Running statistics far from any batch's, as a short run with a large lr leaves them."""
  for _, m in batch_norm.batch_norms(module):
    m.mean[...] = jnp.full_like(m.mean[...], 3.0)
    m.var[...] = jnp.full_like(m.var[...], 40.0)


def test_the_first_layer_gets_the_mean_and_variance_of_the_union_of_the_batches():
  model = _Tiny(nnx.Rngs(0))
  _stale(model)
  a, b = _batches()
  assert batch_norm.recalibrate(model, [a, b], _call) == 2
  features = np.asarray(model.conv1(np.concatenate([a, b])), np.float64).reshape(-1, 4)
  np.testing.assert_allclose(model.bn1.mean[...], features.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(model.bn1.var[...], features.var(0), rtol=1e-4, atol=1e-5)
  # Not the mean of the two batches' variances: the batches' means differ.
  per_batch = np.mean([features[:6 * 64].var(0), features[6 * 64:].var(0)], axis=0)
  assert np.min(np.abs(features.var(0) - per_batch) / features.var(0)) > 0.05


def test_on_one_batch_eval_mode_reproduces_train_mode_through_every_layer():
  model = _Tiny(nnx.Rngs(1))
  _stale(model)
  a, _ = _batches(1)
  model.eval()
  stale = np.asarray(model(a))
  batch_norm.recalibrate(model, [a], _call)
  recalibrated = np.asarray(model(a))
  train_copy = nnx.merge(*nnx.split(model))
  train_copy.train()
  reference = np.asarray(train_copy(a))
  np.testing.assert_allclose(recalibrated, reference, atol=1e-4)
  assert np.abs(stale - reference).max() > 0.5   # the stale statistics were far off


def test_only_the_statistics_change_and_the_module_keeps_its_mode_and_momentum():
  model = _Tiny(nnx.Rngs(2))
  model.eval()
  params = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
  before = jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))
  batch_norm.recalibrate(model, list(_batches(2)), _call)
  jax.tree.map(np.testing.assert_array_equal, params,
               jax.tree.map(np.asarray, nnx.state(model, nnx.Param)))
  assert model.bn1.use_running_average and model.bn2.use_running_average
  assert model.bn1.momentum == model.bn2.momentum == 0.9
  after = jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))
  assert not np.allclose(before['bn2']['var'], after['bn2']['var'])


def test_no_batches_leave_the_statistics_as_they_were():
  model = _Tiny(nnx.Rngs(3))
  _stale(model)
  assert batch_norm.recalibrate(model, iter(()), _call) == 0
  np.testing.assert_array_equal(model.bn1.mean[...], 3.0)
  np.testing.assert_array_equal(model.bn2.var[...], 40.0)
