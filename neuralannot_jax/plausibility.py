"""Is a fitted body humanly possible? Joint rotations against the synthetic sampler's limits.

A pseudo-GT can match its joints and still be a body no person could hold: a wrist turned
half round, a knee bent sideways, a head facing backwards. Joint errors do not see these
(the leaves of a joint set are free to turn), so the comparison and every output count
them separately. A body is implausible when any joint's angles, decomposed as the synthetic
pose sampler composes them (`data.synthetic.poses.JOINT_LIMITS`: per-joint order and
limits in degrees), fall outside those limits by more than `MARGIN_DEG`. Every sampled GT
pose lies inside the limits, so the GT scores 0 by construction.

SMPL and SMPL-X bodies only (the hands' and face's limits depend on the model's own axes).
"""

import numpy as np

from neuralannot_jax.data.synthetic import poses

# Degrees beyond a limit that still count as plausible: the limits are the sampler's, not
# a measured range of motion, and real people exceed them a little.
MARGIN_DEG = 15.0
FAMILIES = ('smpl', 'smplx')


def joint_excess(body_pose, family='smpl'):
  """Degrees by which each body joint exceeds its limits (0 inside them).

  Args:
    body_pose: (N, 3 J) or (N, J, 3) axis-angle `body_pose` (J = 23 SMPL, 21 SMPL-X).
    family: 'smpl' or 'smplx'.
  Returns:
    (N, J) float64, the largest excess over the joint's three angles.
  """
  names = poses.body_joint_names(family)
  pose = np.asarray(body_pose, np.float64).reshape(-1, len(names), 3)
  mats = poses.axis_angle_to_matrix(pose)                          # (N, J, 3, 3)
  out = np.zeros(pose.shape[:2])
  for j, name in enumerate(names):
    lim = poses.JOINT_LIMITS[name]
    deg = np.degrees(poses.matrix_to_euler(mats[:, j], lim.order))   # (N, 3)
    below = np.array(lim.lo) - deg
    above = deg - np.array(lim.hi)
    out[:, j] = np.max(np.maximum(np.maximum(below, above), 0.0), axis=-1)
  return out


def implausible(body_pose, family='smpl', margin_deg=MARGIN_DEG):
  """(N,) bool: some joint exceeds its limits by more than `margin_deg` degrees."""
  return np.any(joint_excess(body_pose, family) > margin_deg, axis=-1)


__all__ = ['MARGIN_DEG', 'FAMILIES', 'joint_excess', 'implausible']
