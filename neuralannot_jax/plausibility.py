"""Is a fitted body humanly possible? Joint rotations against the synthetic sampler's limits.

A pseudo-GT can match its joints and still be a body no person could hold: a wrist turned
half round, a knee bent sideways, a head facing backwards. Joint errors do not see these
(the leaves of a joint set are free to turn), so the comparison and every output count
them separately. The synthetic pose sampler composes each joint from three angles within
limits (`data.synthetic.poses.JOINT_LIMITS`: per-joint order and limits in degrees). A
joint's excess is the angle from its rotation to the nearest rotation so composed, and a
body is implausible when some joint's excess is above `MARGIN_DEG`. Every sampled GT pose
lies inside the limits, so the GT scores 0 by construction.

The angle to the nearest allowed rotation, not how far the decomposed angles fall outside
their ranges: near the decomposition's singularity (a middle angle near +-90 deg, which the
shoulders' limits reach) the first and third angles trade off, and a rotation a few degrees
from an allowed one can decompose into angles 80 deg out of range. On the demo set four
shoulders were flagged that way, each within 10 deg of an allowed rotation.

SMPL and SMPL-X bodies only (the hands' and face's limits depend on the model's own axes).
"""

import numpy as np
from scipy import optimize

from neuralannot_jax.data.synthetic import poses

# Degrees beyond a limit that still count as plausible: the limits are the sampler's, not
# a measured range of motion, and real people exceed them a little.
MARGIN_DEG = 15.0
FAMILIES = ('smpl', 'smplx')


def _angle_deg(a, b):
  """Degrees of the rotation between (3, 3) rotations a and b."""
  return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0))))


def distance_to_limits(matrix, limit, start):
  """Degrees from `matrix` (3, 3) to the nearest rotation whose angles lie within `limit`.

  A bounded local search over the three angles, from `start` (radians, e.g. the matrix's
  own decomposition) clipped into the limits. Where it stops short of the nearest such
  rotation the result is larger than the true distance: it never passes a body that is
  out of range.
  """
  lo, hi = np.radians(limit.lo), np.radians(limit.hi)
  # 1 - cos of the angle between them: smooth, and 0 only where they coincide.
  gap = lambda e: (3.0 - np.trace(matrix.T @ poses.euler_to_matrix(e, limit.order))) / 2.0
  found = optimize.minimize(gap, np.clip(start, lo, hi), method='L-BFGS-B',
                            bounds=list(zip(lo, hi)), options={'ftol': 1e-14, 'gtol': 1e-10})
  return min(_angle_deg(matrix, poses.euler_to_matrix(np.clip(start, lo, hi), limit.order)),
             _angle_deg(matrix, poses.euler_to_matrix(found.x, limit.order)))


def joint_excess(body_pose, family='smpl'):
  """Degrees from each body joint's rotation to the nearest one within its limits (0 inside
  them).

  Turning one of the three angles by d turns the rotation by d, so clipping the angles into
  their limits moves it by at most the sum of their excesses. Where that sum is at most
  `MARGIN_DEG` it is returned as it is (an upper bound, already below the flag); above, the
  nearest allowed rotation is searched for (`distance_to_limits`).

  Args:
    body_pose: (N, 3 J) or (N, J, 3) axis-angle `body_pose` (J = 23 SMPL, 21 SMPL-X).
    family: 'smpl' or 'smplx'.
  Returns:
    (N, J) float64.
  """
  names = poses.body_joint_names(family)
  pose = np.asarray(body_pose, np.float64).reshape(-1, len(names), 3)
  mats = poses.axis_angle_to_matrix(pose)                          # (N, J, 3, 3)
  out = np.zeros(pose.shape[:2])
  for j, name in enumerate(names):
    lim = poses.JOINT_LIMITS[name]
    angles = poses.matrix_to_euler(mats[:, j], lim.order)           # (N, 3) radians
    deg = np.degrees(angles)
    bound = np.sum(np.maximum(np.maximum(np.array(lim.lo) - deg, deg - np.array(lim.hi)),
                              0.0), axis=-1)
    out[:, j] = bound
    for n in np.flatnonzero(bound > MARGIN_DEG):
      # Never above the bound: the search starts at the clipped angles it measures.
      out[n, j] = distance_to_limits(mats[n, j], lim, angles[n])
  return out


def implausible(body_pose, family='smpl', margin_deg=MARGIN_DEG):
  """(N,) bool: some joint exceeds its limits by more than `margin_deg` degrees."""
  return np.any(joint_excess(body_pose, family) > margin_deg, axis=-1)


__all__ = ['MARGIN_DEG', 'FAMILIES', 'distance_to_limits', 'joint_excess', 'implausible']
