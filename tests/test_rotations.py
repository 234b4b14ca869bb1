"""Rotation conversions against scipy (an independent implementation) and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from body_models import rotations as R


def _random_axis_angle(rng, n, max_angle=np.pi):
  axis = rng.normal(size=(n, 3))
  axis /= np.linalg.norm(axis, axis=1, keepdims=True)
  return axis * rng.uniform(0, max_angle, size=(n, 1))


def test_axis_angle_to_matrix_matches_scipy():
  aa = _random_axis_angle(np.random.default_rng(0), 500)
  with jax.enable_x64(True):
    got = R.axis_angle_to_matrix(jnp.asarray(aa))
  np.testing.assert_allclose(got, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)


def test_closed_form_quarter_turn_about_z():
  m = R.axis_angle_to_matrix(jnp.array([0.0, 0.0, np.pi / 2]))
  np.testing.assert_allclose(m @ jnp.array([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize('max_angle', [1e-6, 1.0, np.pi])
def test_matrix_to_axis_angle_round_trip(max_angle):
  rng = np.random.default_rng(1)
  aa = _random_axis_angle(rng, 500, max_angle)
  with jax.enable_x64(True):
    back = R.matrix_to_axis_angle(jnp.asarray(Rotation.from_rotvec(aa).as_matrix()))
    # Compare rotations, not vectors: at exactly pi, v and -v are the same rotation.
    np.testing.assert_allclose(Rotation.from_rotvec(np.array(back)).as_matrix(),
                               Rotation.from_rotvec(aa).as_matrix(), atol=1e-10)
  if max_angle < np.pi:
    np.testing.assert_allclose(back, aa, atol=1e-9)


def test_matrix_to_axis_angle_near_pi_is_accurate():
  # Angles within 1e-7 of pi: the naive arccos((tr - 1) / 2) formula loses the axis here.
  rng = np.random.default_rng(2)
  axis = rng.normal(size=(200, 3))
  axis /= np.linalg.norm(axis, axis=1, keepdims=True)
  aa = axis * (np.pi - rng.uniform(0, 1e-7, size=(200, 1)))
  with jax.enable_x64(True):
    back = np.asarray(R.matrix_to_axis_angle(jnp.asarray(Rotation.from_rotvec(aa).as_matrix())))
  sign = np.sign(np.sum(back * aa, axis=1, keepdims=True))
  np.testing.assert_allclose(back * sign, aa, atol=1e-7)


def test_quaternion_matches_scipy():
  aa = _random_axis_angle(np.random.default_rng(3), 300)
  with jax.enable_x64(True):
    q = np.asarray(R.matrix_to_quaternion(jnp.asarray(Rotation.from_rotvec(aa).as_matrix())))
  ref = Rotation.from_rotvec(aa).as_quat(scalar_first=True)
  ref *= np.sign(ref[:, :1])
  np.testing.assert_allclose(q, ref, atol=1e-10)


def test_rot6d_round_trip_and_gram_schmidt():
  rng = np.random.default_rng(4)
  aa = _random_axis_angle(rng, 200)
  with jax.enable_x64(True):
    m = R.axis_angle_to_matrix(jnp.asarray(aa))
    np.testing.assert_allclose(R.rot6d_to_matrix(R.matrix_to_rot6d(m)), m, atol=1e-12)
    np.testing.assert_allclose(R.rot6d_to_axis_angle(R.axis_angle_to_rot6d(jnp.asarray(aa))),
                               aa, atol=1e-9)
    # Any non-degenerate 6D vector decodes to a proper rotation.
    m = R.rot6d_to_matrix(jnp.asarray(rng.normal(size=(100, 6))))
    np.testing.assert_allclose(m @ jnp.swapaxes(m, -1, -2),
                               np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(jnp.linalg.det(m), 1.0, atol=1e-12)


def test_rot6d_layout_is_first_two_columns_row_major():
  m = jnp.arange(9.0).reshape(3, 3)
  np.testing.assert_array_equal(R.matrix_to_rot6d(m), [0, 1, 3, 4, 6, 7])


def test_gradients_finite_at_identity():
  zero = jnp.zeros(3)
  g = jax.grad(lambda a: jnp.sum(R.axis_angle_to_matrix(a) * jnp.arange(9.0).reshape(3, 3)))(zero)
  assert np.all(np.isfinite(g))
  # d/da of R(a) at 0 is the skew matrix: <R(a), M> has gradient (M32-M23, M13-M31, M21-M12).
  np.testing.assert_allclose(g, [7 - 5, 2 - 6, 3 - 1], atol=1e-6)
  g = jax.grad(lambda m: jnp.sum(R.matrix_to_axis_angle(m)))(jnp.eye(3))
  assert np.all(np.isfinite(g))
  g = jax.grad(lambda a: jnp.sum(R.matrix_to_axis_angle(R.axis_angle_to_matrix(a))))(zero)
  np.testing.assert_allclose(g, [1.0, 1.0, 1.0], atol=1e-5)


def test_batch_shapes_and_dtypes():
  x = jnp.zeros((2, 5, 3), jnp.float32)
  assert R.axis_angle_to_matrix(x).shape == (2, 5, 3, 3)
  assert R.axis_angle_to_matrix(x).dtype == jnp.float32
  assert R.matrix_to_axis_angle(R.axis_angle_to_matrix(x)).shape == (2, 5, 3)
  assert R.rot6d_to_matrix(jnp.ones((4, 1, 6))).shape == (4, 1, 3, 3)
  with jax.enable_x64(True):
    assert R.axis_angle_to_matrix(jnp.zeros(3, jnp.float64)).dtype == jnp.float64
