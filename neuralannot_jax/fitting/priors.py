"""Robust data term and priors of the SMPLify-X style fitter.

All functions are pure, jit/vmap/grad-safe, and reduce over the trailing axes only, so
they work on one sample or a batch alike.

Robustifier choice. `gmof` is applied elementwise to whatever residual it is given. The
fitters use it
  * in 2D per coordinate of the pixel residual, as SMPLify-X does (sigma 100 px), and
  * in 3D per joint on the Euclidean norm of the residual (metres), so the 3D term is
    invariant to the camera's rotation (a per-coordinate robustifier is not).
"""

import jax.numpy as jnp

# SMPLify-X's elbow/knee prior acts on these entries of the flat (69,) SMPL / (63,)
# SMPL-X `body_pose` (the global orient is not in it): left elbow y, right elbow y, left
# knee x, right knee x (SMPL joints 18, 19, 4, 5 minus the root).
BENDING_INDICES = (52, 55, 9, 12)
# exp(sign * angle) is small for the natural bend: the elbows bend forward with negative
# y on the left and positive y on the right (mirror image), the knees backwards with
# positive x on both sides. Checked on the stand-in model in tests/test_fitting.py.
BENDING_SIGNS = (1.0, -1.0, -1.0, -1.0)


def gmof(residual, sigma):
  """Geman-McClure robustifier rho(r) = sigma^2 r^2 / (sigma^2 + r^2), elementwise.

  Quadratic (r^2) for |r| << sigma, saturating at sigma^2 for |r| >> sigma: outliers
  (a wrong GT joint) cost at most sigma^2 and pull with a vanishing gradient.

  Args:
    residual: (...) array (a coordinate difference or a residual norm).
    sigma: scalar, in the residual's unit (100 px in 2D, 0.1 m in 3D by default).
  Returns:
    (...) same shape as `residual`.
  """
  sq = jnp.square(residual)
  sigma_sq = jnp.square(sigma)
  return sigma_sq * sq / (sigma_sq + sq)


def shape_prior(betas):
  """L2 shape prior: (..., S) -> (...) sum of squared betas (betas ~ N(0, I))."""
  return jnp.sum(jnp.square(betas), axis=-1)


def hand_pca_prior(coeffs):
  """L2 prior on MANO PCA coefficients: (..., C) -> (...) sum of squares."""
  return jnp.sum(jnp.square(coeffs), axis=-1)


def pose_l2_prior(pose):
  """Small L2 prior on axis-angle (or latent) pose numbers: (..., P) -> (...)."""
  return jnp.sum(jnp.square(pose), axis=-1)


def bending_prior(body_pose):
  """SMPLify's elbow/knee prior: sum of exp(sign * angle)^2 over the four joints.

  Penalises exponentially the elbows bending backwards and the knees bending forwards
  (hyper-extension), and leaves their natural bend nearly free. The angle is the
  axis-angle component about each joint's hinge axis, as in SMPLify-X.

  Args:
    body_pose: (..., 69) SMPL or (..., 63) SMPL-X body pose, flat axis-angle, without
      the global orient.
  Returns:
    (...) the prior.
  """
  body_pose = jnp.asarray(body_pose)
  angles = body_pose[..., jnp.array(BENDING_INDICES)]
  signs = jnp.asarray(BENDING_SIGNS, body_pose.dtype)
  return jnp.sum(jnp.exp(2.0 * signs * angles), axis=-1)


__all__ = ['BENDING_INDICES', 'BENDING_SIGNS', 'gmof', 'shape_prior', 'hand_pca_prior',
           'pose_l2_prior', 'bending_prior']
