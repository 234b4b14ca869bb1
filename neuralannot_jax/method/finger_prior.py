"""Fingers bend toward the palm: a prior against hyperextended finger joints (MANO).

2D joints leave each finger bone's depth open, and with it which way the hand's plane
leans: the hand with its tilt mirrored in depth and its fingers bent backwards projects
close to the true hand (`body_models.mirror.palm_twin`). On
the synthetic FreiHAND-style set from 2D joints, the hands whose global rotation ended over
90 degrees from the GT had a finger joint hyperextended by over 15 degrees beyond the pose
sampler's limits in 59% (fitter) and 74% (two-stage network) of cases, against 6% and 7%
of the hands turned the right way. SMPLify's elbow and knee prior does the same job for
bodies (`fitting.priors.bending_prior`).

Each finger joint is taken as a hinge about the axis `bone x palm normal` of the rest hand,
so positive flexion moves the bone below it toward the palm side. The prior is zero while
a joint's backward bend stays within an anatomical allowance (`HYPEREXTENSION_DEG`: a
range of motion, looser than the synthetic sampler's limits), and grows as the square of
the sine beyond it. The thumb's base (a saddle joint that also turns) is left free.

The axes come from the model's rest joints alone (no vertex indices), so they hold for the
stand-in, the official MANO and vertex-subset models alike. Right hands (the annotators
mirror left hands into right ones).
"""

import jax.numpy as jnp
import numpy as np

from body_models import mirror
from body_models import rotations
from body_models import skeletons

# Degrees a joint may bend backwards before the prior pulls, by level (1: MCP, 2: PIP,
# 3: DIP; the thumb's 2: MCP, 3: IP). Active ranges of motion: MCP hyperextension up to
# ~30 degrees, PIP ~0-10, DIP ~5-15; the thumb's MCP ~20 and IP ~25.
HYPEREXTENSION_DEG = {'finger': {1: 30.0, 2: 10.0, 3: 15.0}, 'thumb': {2: 20.0, 3: 25.0}}


def _hinge_table():
  """(indices into MANO's 15 finger joints, parent kinematic index per joint, child kinematic
  index (-1: none, the bone continues its parent's), allowance degrees) of the hinged joints."""
  names = list(skeletons.MANO_JOINTS)
  rows = []
  for j, name in enumerate(names[1:], start=1):
    finger, level = name[:-1], int(name[-1])
    table = HYPEREXTENSION_DEG['thumb' if finger == 'thumb' else 'finger']
    if level not in table:
      continue
    parent = 0 if level == 1 else names.index(f'{finger}{level - 1}')
    child = names.index(f'{finger}{level + 1}') if level < 3 else -1
    rows.append((j - 1, parent, j, child, table[level]))
  return rows


def finger_hinges(rest_joints):
  """The hinges of a right MANO hand at rest.

  Args:
    rest_joints: (16, 3) MANO's kinematic joints at zero pose (`model.joint_template`);
      a jax or numpy array (traced inside jit is fine).
  Returns:
    (index (H,) int: positions among the 15 finger joints (kinematic index - 1),
     bone (H, 3): unit direction of the bone below each joint, at rest,
     bend (H, 3): unit direction that bone moves in when the joint flexes,
     allowance (H,): sin of the hyperextension left free).
  """
  j = jnp.asarray(rest_joints)
  palm = mirror.palm_normal(j, jnp)
  rows = _hinge_table()
  index = np.array([r[0] for r in rows], np.int32)
  below = jnp.stack([j[c] - j[k] if c >= 0 else j[k] - j[p] for _, p, k, c, _ in rows])
  bone = below / jnp.linalg.norm(below, axis=-1, keepdims=True)
  # bone x palm is the flexion axis; (bone x palm) x bone is palm's part across the bone.
  bend = jnp.cross(jnp.cross(bone, palm[None]), bone)
  bend = bend / jnp.linalg.norm(bend, axis=-1, keepdims=True)
  allowance = np.sin(np.radians([r[4] for r in rows])).astype(np.float32)
  return index, bone, bend, jnp.asarray(allowance, bone.dtype)


def overextension(rotmats, hinges):
  """Mean over the hinged finger joints of min(0, bend . R bone + allowance)^2.

  Zero while each joint bends toward the palm or backwards within its allowance; beyond
  it, the square of (sine of the backward bend - sine of the allowance).

  Args:
    rotmats: (..., 15, 3, 3) local rotations of MANO's finger joints (no global orient).
    hinges: `finger_hinges(rest_joints)`.
  Returns:
    (...) per hand.
  """
  index, bone, bend, allowance = hinges
  rotmats = jnp.asarray(rotmats)
  moved = jnp.einsum('...hij,hj->...hi', rotmats[..., np.asarray(index), :, :],
                     bone.astype(rotmats.dtype))
  forward = jnp.einsum('...hi,hi->...h', moved, bend.astype(rotmats.dtype))
  return jnp.mean(jnp.square(jnp.minimum(forward + allowance.astype(rotmats.dtype), 0.0)),
                  axis=-1)


# `choose_palm` takes the twin only when it lowers the prior by this much: about one joint
# 2 degrees past its allowance, so float noise on two near-equal hands decides nothing.
PALM_MARGIN = 1e-4


def hand_overextension(hand_pose, rest_joints, pose_mean):
  """`overextension` of full MANO hand poses: (..., 45) relative to the model's mean ->
  (...)."""
  pose = jnp.asarray(hand_pose)
  absolute = pose.reshape(pose.shape[:-1] + (15, 3)) + jnp.asarray(
      pose_mean, pose.dtype).reshape(16, 3)[1:]
  return overextension(rotations.axis_angle_to_matrix(absolute), finger_hinges(rest_joints))


def choose_palm(params, rest_joints, pose_mean):
  """Each hand or its palm twin (`body_models.mirror.palm_twin`: the same 2D finger joints,
  the tilt mirrored in depth), whichever bends its fingers less far backwards.

  2D joints leave open which way a hand leans in depth; the fingers' bend does not, since
  they curl toward the palm. The choice reads the fingers alone: the twin's thumb lands a
  few centimetres off its 2D joint, which only a fit puts back (the refinement's twin
  start), and scoring the 2D joints would favour whichever reading the network fitted. On
  the comparison's FreiHAND-style set from 2D joints (480 hands), applied to the previous
  run's files, the check took the twin for 26% of the two-stage network's hands and
  brought its MPJPE from 64.7 to 37.8 mm (the fitter's, checked alike: 53.0 to 48.4 mm).

  Args:
    params: {'global_orient': (B, 3), 'hand_pose': (B, 45) full, relative to the mean,
      ...} (jax or numpy).
    rest_joints: (16, 3) the model's `joint_template`; pose_mean: its `pose_mean`.
  Returns:
    (params with the chosen global_orient and hand_pose, swapped (B,) bool).
  """
  twin = mirror.palm_twin(params, rest_joints, pose_mean)
  own = hand_overextension(params['hand_pose'], rest_joints, pose_mean)
  other = hand_overextension(twin['hand_pose'], rest_joints, pose_mean)
  swapped = other + PALM_MARGIN < own
  out = dict(params)
  for name in ('global_orient', 'hand_pose'):
    out[name] = jnp.where(swapped[:, None], jnp.asarray(twin[name]),
                          jnp.asarray(params[name])).astype(jnp.asarray(params[name]).dtype)
  return out, swapped


__all__ = ['HYPEREXTENSION_DEG', 'PALM_MARGIN', 'finger_hinges', 'overextension',
           'hand_overextension', 'choose_palm']
