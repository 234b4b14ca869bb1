"""Rotation conversions in pure JAX, for any leading batch shape.

Conventions
- Axis-angle: (..., 3), the rotation vector (unit axis times angle in radians).
- Matrix: (..., 3, 3), acting on column vectors (x' = R x).
- 6D: (..., 6), the first two *columns* of the matrix, stored row-major as a (3, 2)
  block: ``r6 = R[..., :, :2].reshape(..., 6)``. This is the layout VPoser and the
  NeuralAnnot code use, so their weights decode unchanged.

All functions keep the input dtype and have finite gradients at the identity.
"""

import jax.numpy as jnp


def _skew(v):
  """(..., 3) -> (..., 3, 3) cross-product matrix [v]x."""
  x, y, z = v[..., 0], v[..., 1], v[..., 2]
  o = jnp.zeros_like(x)
  return jnp.stack([
      jnp.stack([o, -z, y], -1),
      jnp.stack([z, o, -x], -1),
      jnp.stack([-y, x, o], -1),
  ], -2)


def axis_angle_to_matrix(aa):
  """Rodrigues' formula. (..., 3) -> (..., 3, 3).

  R = I + a [v]x + b [v]x^2 with a = sin t / t, b = (1 - cos t) / t^2 written
  on the unnormalised vector v, so there is no division by the angle. Near t = 0
  the Taylor series is used; the `where` trick keeps gradients finite there.
  """
  theta2 = jnp.sum(aa * aa, axis=-1)
  small = theta2 < 1e-8
  safe_t2 = jnp.where(small, 1.0, theta2)
  safe_t = jnp.sqrt(safe_t2)
  a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(safe_t) / safe_t)
  b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(safe_t)) / safe_t2)
  k = _skew(aa)
  eye = jnp.eye(3, dtype=aa.dtype)
  return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_quaternion(m):
  """(..., 3, 3) -> (..., 4) unit quaternion (w, x, y, z), w >= 0.

  Picks, per element, the best conditioned of the four standard formulas, so it
  is accurate for every angle including pi.
  """
  m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
  # 4 * q_i^2 for each component, from the diagonal.
  cands = jnp.stack([
      1.0 + m00 + m11 + m22,
      1.0 + m00 - m11 - m22,
      1.0 - m00 + m11 - m22,
      1.0 - m00 - m11 + m22,
  ], -1)
  best = jnp.argmax(cands, axis=-1)
  r = jnp.sqrt(jnp.maximum(jnp.take_along_axis(cands, best[..., None], -1)[..., 0], 1e-12))
  # Each row is 2*q (up to sign) computed from the component with the largest magnitude.
  rows = jnp.stack([
      jnp.stack([r, (m[..., 2, 1] - m[..., 1, 2]) / r, (m[..., 0, 2] - m[..., 2, 0]) / r,
                 (m[..., 1, 0] - m[..., 0, 1]) / r], -1),
      jnp.stack([(m[..., 2, 1] - m[..., 1, 2]) / r, r, (m[..., 0, 1] + m[..., 1, 0]) / r,
                 (m[..., 0, 2] + m[..., 2, 0]) / r], -1),
      jnp.stack([(m[..., 0, 2] - m[..., 2, 0]) / r, (m[..., 0, 1] + m[..., 1, 0]) / r, r,
                 (m[..., 1, 2] + m[..., 2, 1]) / r], -1),
      jnp.stack([(m[..., 1, 0] - m[..., 0, 1]) / r, (m[..., 0, 2] + m[..., 2, 0]) / r,
                 (m[..., 1, 2] + m[..., 2, 1]) / r, r], -1),
  ], -2)
  q = 0.5 * jnp.take_along_axis(rows, best[..., None, None], -2)[..., 0, :]
  q = q * jnp.where(q[..., :1] < 0, -1.0, 1.0).astype(q.dtype)
  return q / jnp.linalg.norm(q, axis=-1, keepdims=True)


def quaternion_to_axis_angle(q):
  """(..., 4) (w, x, y, z) -> (..., 3). Uses atan2, so it is exact near pi."""
  q = q * jnp.where(q[..., :1] < 0, -1.0, 1.0).astype(q.dtype)
  xyz = q[..., 1:]
  s2 = jnp.sum(xyz * xyz, axis=-1)
  small = s2 < 1e-12
  s = jnp.sqrt(jnp.where(small, 1.0, s2))
  angle = 2.0 * jnp.arctan2(s, q[..., 0])
  # angle / sin(angle / 2); its limit at 0 is 2 / w.
  scale = jnp.where(small, 2.0 / q[..., 0], angle / s)
  return xyz * scale[..., None]


def matrix_to_axis_angle(m):
  """(..., 3, 3) -> (..., 3), angle in [0, pi]; accurate near 0 and pi."""
  return quaternion_to_axis_angle(matrix_to_quaternion(m))


def rot6d_to_matrix(r6):
  """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two stored columns (Zhou et al.)."""
  cols = r6.reshape(r6.shape[:-1] + (3, 2))
  a1, a2 = cols[..., 0], cols[..., 1]
  b1 = a1 / jnp.linalg.norm(a1, axis=-1, keepdims=True)
  a2 = a2 - jnp.sum(b1 * a2, axis=-1, keepdims=True) * b1
  b2 = a2 / jnp.linalg.norm(a2, axis=-1, keepdims=True)
  b3 = jnp.cross(b1, b2)
  return jnp.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(m):
  """(..., 3, 3) -> (..., 6), the inverse of `rot6d_to_matrix` on rotations."""
  return m[..., :, :2].reshape(m.shape[:-2] + (6,))


def rot6d_to_axis_angle(r6):
  """(..., 6) -> (..., 3)."""
  return matrix_to_axis_angle(rot6d_to_matrix(r6))


def axis_angle_to_rot6d(aa):
  """(..., 3) -> (..., 6)."""
  return matrix_to_rot6d(axis_angle_to_matrix(aa))


__all__ = [
    'axis_angle_to_matrix', 'matrix_to_axis_angle', 'matrix_to_quaternion',
    'quaternion_to_axis_angle', 'rot6d_to_matrix', 'matrix_to_rot6d',
    'rot6d_to_axis_angle', 'axis_angle_to_rot6d',
]
