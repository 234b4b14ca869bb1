"""Random plausible SMPL / SMPL-X body poses, shapes and global orientations.

Every joint's local rotation is built from three angles about the axes of the rest-pose
frame (y up, x = the model's left, z = forward; the stand-in and official models share
it), composed in a per-joint order `R = R_a(t_a) @ R_b(t_b) @ R_c(t_c)` for order 'abc'.
The middle axis of each order is always one with a range inside (-90, 90) degrees, so the
three angles of any sampled rotation are recovered uniquely by `matrix_to_euler`, which is
how the tests check the limits.

Limits, in degrees, for the model's left side and the centre (`JOINT_LIMITS`); right-side
joints are mirror images (x angle kept, y and z angles negated):

  joint      order  x (flex/ext)   y              z              notes
  hip        xzy    [-120, 30]     [-40, 40]      [-30, 50]      x<0 thigh forward; z>0 abducts
  knee       xzy    [0, 150]       [-15, 15]      [-5, 5]        bends backwards only
  ankle      xzy    [-30, 45]      [-20, 20]      [-20, 20]      x<0 toes up
  foot       xzy    [-20, 30]      [-5, 5]        [-5, 5]        toes
  spine1     xzy    [-20, 40]      [-20, 20]      [-20, 20]      x>0 bends forward
  spine2/3   xzy    [-15, 30]      [-15, 15]      [-15, 15]      twist (y) limited
  neck       xzy    [-30, 40]      [-45, 45]      [-25, 25]
  head       xzy    [-30, 30]      [-40, 40]      [-20, 20]
  collar     zyx    [-10, 10]      [-20, 20]      [-15, 30]      z>0 shrugs
  shoulder   zyx    [-60, 60]      [-85, 35]      [-90, 80]      z<0 arm down; y<0 forward
  elbow      yzx    [-40, 40]      [-145, 0]      [-5, 5]        bends forward only
  wrist      zyx    [-45, 45]      [-25, 35]      [-70, 60]
  hand       zyx    [-15, 15]      [-15, 15]      [-15, 15]      SMPL only (finger base)

Angles are drawn from a normal around a per-joint mean (shifted by a random activity:
standing, walking, sitting, reaching) and clipped to the limits, which puts realistic mass
on straight knees and elbows.
"""

import dataclasses

import numpy as np

from body_models import skeletons

_AXES = 'xyz'


@dataclasses.dataclass(frozen=True)
class JointLimit:
  """Angle limits of one joint, degrees, indexed by axis x, y, z.

  order: composition order, outermost first ('xzy' means Rx @ Rz @ Ry).
  lo, hi: (3,) bounds; mean, sd: (3,) of the sampling normal (before clipping).
  """
  order: str
  lo: tuple
  hi: tuple
  mean: tuple
  sd: tuple

  def mirrored(self):
    """The same limits for the other side: x angles kept, y and z negated."""
    sign = np.array([1.0, -1.0, -1.0])
    lo, hi = sign * np.array(self.lo), sign * np.array(self.hi)
    return JointLimit(self.order, tuple(np.minimum(lo, hi)), tuple(np.maximum(lo, hi)),
                      tuple(sign * np.array(self.mean)), self.sd)


def _limit(order, x, y, z):
  """Each axis as (lo, hi, mean, sd)."""
  cols = list(zip(x, y, z))
  return JointLimit(order, cols[0], cols[1], cols[2], cols[3])


_LEFT_AND_CENTRE = {
    'left_hip': _limit('xzy', (-120, 30, -10, 25), (-40, 40, 0, 12), (-30, 50, 5, 10)),
    'left_knee': _limit('xzy', (0, 150, 15, 30), (-15, 15, 0, 5), (-5, 5, 0, 2)),
    'left_ankle': _limit('xzy', (-30, 45, 5, 12), (-20, 20, 0, 8), (-20, 20, 0, 8)),
    'left_foot': _limit('xzy', (-20, 30, 0, 8), (-5, 5, 0, 2), (-5, 5, 0, 2)),
    'spine1': _limit('xzy', (-20, 40, 5, 12), (-20, 20, 0, 8), (-20, 20, 0, 7)),
    'spine2': _limit('xzy', (-15, 30, 3, 8), (-15, 15, 0, 6), (-15, 15, 0, 5)),
    'spine3': _limit('xzy', (-15, 30, 3, 8), (-15, 15, 0, 6), (-15, 15, 0, 5)),
    'neck': _limit('xzy', (-30, 40, 5, 12), (-45, 45, 0, 15), (-25, 25, 0, 8)),
    'head': _limit('xzy', (-30, 30, 0, 10), (-40, 40, 0, 15), (-20, 20, 0, 7)),
    'left_collar': _limit('zyx', (-10, 10, 0, 4), (-20, 20, 0, 6), (-15, 30, 0, 8)),
    'left_shoulder': _limit('zyx', (-60, 60, 0, 20), (-85, 35, -10, 25), (-90, 80, -55, 30)),
    'left_elbow': _limit('yzx', (-40, 40, 0, 15), (-145, 0, -30, 35), (-5, 5, 0, 2)),
    'left_wrist': _limit('zyx', (-45, 45, 0, 15), (-25, 35, 0, 10), (-70, 60, 0, 20)),
    'left_hand': _limit('zyx', (-15, 15, 0, 5), (-15, 15, 0, 5), (-15, 15, 0, 5)),
}


def _all_limits():
  limits = dict(_LEFT_AND_CENTRE)
  for name, lim in _LEFT_AND_CENTRE.items():
    if name.startswith('left_'):
      limits['right_' + name[5:]] = lim.mirrored()
  return limits


JOINT_LIMITS = _all_limits()

# Activities shift the mean angles (degrees, axis order x, y, z, in each joint's own
# convention). With probability 1/2 left and right are exchanged (mirrored), so 'walk'
# swings either leg forward and 'reach' raises either arm.
_ACTIVITIES = {
    'stand': {},
    'walk': {'left_hip': (-25, 0, 0), 'right_hip': (15, 0, 0), 'left_knee': (30, 0, 0),
             'left_shoulder': (0, 20, -10), 'right_shoulder': (0, 20, 10)},
    'sit': {'left_hip': (-80, 0, 5), 'right_hip': (-80, 0, -5), 'left_knee': (85, 0, 0),
            'right_knee': (85, 0, 0)},
    'reach': {'left_shoulder': (0, -30, 70), 'left_elbow': (0, 20, 0)},
}
_ACTIVITY_PROBS = {'stand': 0.4, 'walk': 0.3, 'sit': 0.15, 'reach': 0.15}


def body_joint_names(family='smpl'):
  """Joints that `body_pose` rotates: SMPL's 23, SMPL-X's 21 (no hands)."""
  count = {'smpl': 23, 'smplx': 21}.get(family)
  if count is None:
    raise ValueError(f'body poses exist for smpl and smplx, not {family!r}')
  return skeletons.KINEMATIC_JOINTS[family][1:1 + count]


# ---- rotations (numpy) -------------------------------------------------------------------

def axis_rotation(axis, angle):
  """(...,) radians about axis 'x', 'y' or 'z' -> (..., 3, 3)."""
  angle = np.asarray(angle, np.float64)
  c, s = np.cos(angle), np.sin(angle)
  o, i = np.zeros_like(angle), np.ones_like(angle)
  rows = {'x': ((i, o, o), (o, c, -s), (o, s, c)),
          'y': ((c, o, s), (o, i, o), (-s, o, c)),
          'z': ((c, -s, o), (s, c, o), (o, o, i))}[axis]
  return np.stack([np.stack(r, -1) for r in rows], -2)


def euler_to_matrix(angles, order):
  """(..., 3) radians about x, y, z -> (..., 3, 3) = R_a @ R_b @ R_c for order 'abc'."""
  angles = np.asarray(angles, np.float64)
  out = None
  for axis in order:
    r = axis_rotation(axis, angles[..., _AXES.index(axis)])
    out = r if out is None else out @ r
  return out


def matrix_to_euler(matrix, order):
  """(..., 3, 3) -> (..., 3) radians about x, y, z, inverting `euler_to_matrix`.

  Unique while the middle angle is inside (-90, 90) degrees.
  """
  m = np.asarray(matrix, np.float64)
  i, j, k = (_AXES.index(a) for a in order)
  # +1 for a cyclic order (xyz, yzx, zxy), -1 otherwise: fixes the signs below.
  s = 1.0 if (j - i) % 3 == 1 else -1.0
  out = np.zeros(m.shape[:-2] + (3,))
  out[..., j] = np.arcsin(np.clip(s * m[..., i, k], -1.0, 1.0))
  out[..., i] = np.arctan2(-s * m[..., j, k], m[..., k, k])
  out[..., k] = np.arctan2(-s * m[..., i, j], m[..., i, i])
  return out


def matrix_to_axis_angle(matrix):
  """(..., 3, 3) rotation -> (..., 3) axis * angle, angle in [0, pi]."""
  m = np.asarray(matrix, np.float64)
  cos = np.clip((np.trace(m, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
  angle = np.arccos(cos)
  skew = np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                   m[..., 1, 0] - m[..., 0, 1]], -1)
  sin = np.sin(angle)
  small = sin < 1e-6
  # Near 0 the skew part is 2 * angle * axis; near pi it vanishes and the axis comes
  # from the symmetric part instead: (R + I) / 2 = axis axis^T.
  axis = skew / np.where(small, 1.0, 2.0 * sin)[..., None]
  near_pi = small & (cos < 0)
  if np.any(near_pi):
    sym = (m[near_pi] + np.eye(3)) / 2.0
    col = np.argmax(np.diagonal(sym, axis1=-2, axis2=-1), axis=-1)
    v = sym[np.arange(len(col)), :, col]
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    axis[near_pi] = v
  return np.where(small[..., None] & ~near_pi[..., None], skew / 2.0, axis * angle[..., None])


def axis_angle_to_matrix(axis_angle):
  """(..., 3) -> (..., 3, 3), Rodrigues' formula."""
  aa = np.asarray(axis_angle, np.float64)
  angle = np.linalg.norm(aa, axis=-1, keepdims=True)
  axis = aa / np.maximum(angle, 1e-12)
  x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
  o = np.zeros_like(x)
  k = np.stack([np.stack([o, -z, y], -1), np.stack([z, o, -x], -1),
                np.stack([-y, x, o], -1)], -2)
  s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
  return np.eye(3) + s * k + (1.0 - c) * (k @ k)


# ---- samplers --------------------------------------------------------------------------

def sample_activity(rng):
  names = list(_ACTIVITY_PROBS)
  return names[rng.choice(len(names), p=list(_ACTIVITY_PROBS.values()))]


def _activity_shift(activity, name, swap):
  """Mean shift in degrees for a joint; `swap` exchanges left and right (walk phase)."""
  shifts = _ACTIVITIES[activity]
  if swap and name.startswith(('left_', 'right_')):
    other = ('right_' + name[5:]) if name.startswith('left_') else ('left_' + name[6:])
    shift = shifts.get(other)
    return None if shift is None else np.array(shift) * [1, -1, -1]
  return None if shifts.get(name) is None else np.array(shifts[name], np.float64)


def sample_body_pose(rng, family='smpl', activity=None):
  """A random body pose within `JOINT_LIMITS`.

  Args:
    rng: numpy Generator (the only source of randomness).
    family: 'smpl' (23 joints) or 'smplx' (21).
    activity: one of 'stand', 'walk', 'sit', 'reach', or None to draw one.
  Returns:
    (J, 3) axis-angle of the body joints (flatten for `body_pose`), float64.
  """
  names = body_joint_names(family)
  activity = sample_activity(rng) if activity is None else activity
  swap = bool(rng.integers(2))
  noise = rng.standard_normal((len(names), 3))
  rots = []
  for name, z in zip(names, noise):
    lim = JOINT_LIMITS[name]
    mean = np.array(lim.mean, np.float64)
    shift = _activity_shift(activity, name, swap)
    if shift is not None:
      mean = mean + shift
    deg = np.clip(mean + z * np.array(lim.sd), lim.lo, lim.hi)
    rots.append(euler_to_matrix(np.radians(deg), lim.order))
  return matrix_to_axis_angle(np.stack(rots))


def within_limits(body_pose, family='smpl', tol_deg=1e-3):
  """(J, 3) or flat axis-angle -> (J,) bool: each joint's angles inside its limits."""
  names = body_joint_names(family)
  mats = axis_angle_to_matrix(np.asarray(body_pose, np.float64).reshape(len(names), 3))
  ok = []
  for name, m in zip(names, mats):
    lim = JOINT_LIMITS[name]
    deg = np.degrees(matrix_to_euler(m, lim.order))
    ok.append(bool(np.all(deg >= np.array(lim.lo) - tol_deg) and
                   np.all(deg <= np.array(lim.hi) + tol_deg)))
  return np.array(ok)


def sample_betas(rng, num_betas=10, clip=2.5):
  """(num_betas,) shape coefficients ~ N(0, 1) clipped to [-clip, clip]."""
  return np.clip(rng.standard_normal(num_betas), -clip, clip)


def sample_global_orient(rng, upright_prob=0.9):
  """A random body orientation in the model's own frame (y up), (3, 3).

  Any yaw about the vertical; mostly upright (tilt ~ N(0, 6 deg), clipped to 15 deg);
  otherwise leaning or lying (pitch and roll up to 70 deg).
  """
  yaw = rng.uniform(-np.pi, np.pi)
  if rng.uniform() < upright_prob:
    pitch, roll = np.clip(rng.normal(0.0, np.radians(6), 2), -np.radians(15), np.radians(15))
  else:
    pitch, roll = rng.uniform(-np.radians(70), np.radians(70), 2)
  return axis_rotation('x', pitch) @ axis_rotation('z', roll) @ axis_rotation('y', yaw)
