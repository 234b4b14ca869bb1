"""Tests of neuralannot_jax.models.annotator on a tiny stand-in backbone (fast, CPU)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from neuralannot_jax.models.annotator import Annotator, JointEncoder, count_params

B, S, K, OUT = 4, 32, 5, 12


class TinyBackbone(nnx.Module):
  """Conv -> BatchNorm -> ReLU -> global mean pool: (B, H, W, 3) -> (B, 8), like a ResNet's API."""

  def __init__(self, *, rngs, dtype=jnp.float32):
    self.out_features = 8
    self.conv = nnx.Conv(3, 8, (3, 3), strides=(2, 2), dtype=dtype, rngs=rngs)
    self.bn = nnx.BatchNorm(8, dtype=dtype, rngs=rngs)

  def __call__(self, images):
    x = nnx.relu(self.bn(self.conv(images)))
    return x.mean(axis=(1, 2))


def make(mocap=True, dtype=jnp.float32, seed=0, **kw):
  rngs = nnx.Rngs(seed)
  return Annotator(TinyBackbone(rngs=rngs, dtype=dtype), OUT, num_joints_3d=K if mocap else None,
                   rngs=rngs, dtype=dtype, **kw)


def batch(seed=1):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  images = jax.random.uniform(k1, (B, S, S, 3))
  joints = 0.3 * jax.random.normal(k2, (B, K, 3))
  valid = jax.random.bernoulli(k3, 0.7, (B, K)).at[:, 0].set(True)
  return images, joints, valid


def test_shapes_both_modes():
  images, joints, valid = batch()
  out = make(mocap=True)(images, joints, valid)
  assert out.shape == (B, OUT) and out.dtype == jnp.float32
  out = make(mocap=False)(images)
  assert out.shape == (B, OUT) and out.dtype == jnp.float32
  out = make(mocap=True, hidden=16)(images, joints, valid)
  assert out.shape == (B, OUT)
  enc = JointEncoder(K, 32, 24, rngs=nnx.Rngs(0))
  assert enc(joints, valid).shape == (B, 24)


def test_small_initial_output_and_bias():
  images, joints, valid = batch()
  small = make()(images, joints, valid)
  large = make(init_scale=1.0)(images, joints, valid)
  assert float(jnp.abs(small).max()) < 0.05 * float(jnp.abs(large).max())
  mean = np.linspace(-1, 1, OUT)
  out = make(output_bias=mean)(images, joints, valid)
  np.testing.assert_allclose(out, np.broadcast_to(mean, (B, OUT)), atol=0.05)


def test_invalid_joints_do_not_matter():
  images, joints, valid = batch()
  valid = valid.at[:, 2].set(False)
  model = make()
  model.eval()  # no batch statistics: outputs are a pure function of the inputs
  ref = model(images, joints, valid)
  changed = model(images, joints.at[:, 2].set(jnp.array([5.0, -7.0, 100.0])), valid)
  np.testing.assert_array_equal(ref, changed)
  nan = model(images, joints.at[:, 2].set(jnp.nan), valid)
  np.testing.assert_array_equal(ref, nan)
  # A valid joint does matter (so the test above is not vacuous).
  moved = model(images, joints.at[:, 0].add(1.0), valid)
  assert not np.allclose(ref, moved)


def test_mode_errors():
  images, joints, valid = batch()
  with pytest.raises(ValueError, match='MoCap mode'):
    make(mocap=True)(images)
  with pytest.raises(ValueError, match='MoCap mode'):
    make(mocap=True)(images, joints)
  with pytest.raises(ValueError, match='in-the-wild'):
    make(mocap=False)(images, joints, valid)
  with pytest.raises(ValueError, match=r'\(B, 5, 3\)'):
    make(mocap=True)(images, joints[:, :3], valid[:, :3])
  with pytest.raises(TypeError, match='out_features'):
    Annotator(nnx.BatchNorm(2, rngs=nnx.Rngs(0)), OUT, rngs=nnx.Rngs(0))


def test_bfloat16_compute_float32_params_and_output():
  images, joints, valid = batch()
  # Same seed -> same float32 parameters; init_scale=1 so outputs are O(1) and the comparison bites.
  f32 = make(init_scale=1.0)
  b16 = make(dtype=jnp.bfloat16, init_scale=1.0)
  params = jax.tree.leaves(nnx.state(b16, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  ref, out = f32(images, joints, valid), b16(images, joints, valid)
  assert out.dtype == jnp.float32
  scale = float(jnp.abs(ref).max())
  np.testing.assert_allclose(out, ref, atol=0.03 * scale)


def test_adam_reduces_l2_loss():
  images, joints, valid = batch()
  target = 0.1 * jax.random.normal(jax.random.key(7), (B, OUT))
  model = make()
  optimizer = nnx.Optimizer(model, optax.adam(1e-4), wrt=nnx.Param)

  def loss_fn(model, images, joints, valid, target):
    return jnp.mean((model(images, joints, valid) - target) ** 2)

  @nnx.jit
  def train_step(model, optimizer, images, joints, valid, target):
    loss, grads = nnx.value_and_grad(loss_fn)(model, images, joints, valid, target)
    optimizer.update(model, grads)
    return loss

  mean_before = model.backbone.bn.mean[...]
  losses = [float(train_step(model, optimizer, images, joints, valid, target)) for _ in range(40)]
  # Measured: about 0.012x after 40 steps; 0.05x leaves margin for other platforms.
  assert losses[-1] < 0.05 * losses[0], losses[::10]
  assert int(optimizer.step[...]) == 40
  # Train mode (the default) updated the backbone's running statistics in place through nnx.jit.
  assert not np.allclose(model.backbone.bn.mean[...], mean_before)


def test_jit_and_split_merge_round_trip():
  images, joints, valid = batch()
  model = make(hidden=16)
  model.eval()
  eager = model(images, joints, valid)
  jitted = nnx.jit(lambda m, *a: m(*a))(model, images, joints, valid)
  np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)

  graphdef, state = nnx.split(model)
  clone = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))
  np.testing.assert_array_equal(clone(images, joints, valid), eager)

  # The functional form a jax.jit / sharded train step would use: state is a plain pytree.
  @jax.jit
  def apply(state, images, joints, valid):
    return nnx.merge(graphdef, state)(images, joints, valid)
  np.testing.assert_allclose(apply(state, images, joints, valid), eager, rtol=1e-5, atol=1e-6)
  assert count_params(clone) == count_params(model) > 0


def test_count_params():
  model = make(mocap=False)
  conv = 3 * 3 * 3 * 8 + 8
  bn = 8 + 8  # scale, bias; running mean/var are BatchStat, not Param
  head = 8 * OUT + OUT
  assert count_params(model) == conv + bn + head
  assert count_params(model, nnx.BatchStat) == 16


def test_train_eval_switch_reaches_backbone():
  images, joints, valid = batch()
  model = make(init_scale=1.0)
  assert model.backbone.bn.use_running_average is False

  def first_row(model, images):
    return model(images, joints, valid)[0]

  # Train mode: batch statistics, so sample 0's output depends on the rest of the batch.
  other = images.at[1:].set(images[1:] * 3.0)
  assert not np.allclose(first_row(model, images), first_row(model, other))

  model.eval()
  assert model.backbone.bn.use_running_average is True
  mean_before = model.backbone.bn.mean[...]
  np.testing.assert_allclose(first_row(model, images), first_row(model, other), rtol=1e-6)
  np.testing.assert_array_equal(model.backbone.bn.mean[...], mean_before)

  model.train()
  assert model.backbone.bn.use_running_average is False
