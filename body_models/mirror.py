"""Mirror images of posed bodies, in parameter space.

    mirrored = mirror.mirror_params(params, 'smpl')    # the body seen in a mirror (x -> -x)
    turned = mirror.facing_twin(params, 'smpl')        # the same 2D skeleton, other facing
    turned = mirror.facing_twin_rotmats(rotmats, 'smpl')   # the same on (..., J, 3, 3)
    twin = mirror.palm_twin(params, model.joint_template, model.pose_mean)   # MANO: tilt

Mirroring a mesh through the plane x = 0 of its frame gives the mesh of another body of
the same family: each joint takes its left/right twin's rotation with the axis-angle
(x, y, z) -> (x, -y, -z), shape and expression stay, and the translation's x flips.
This is exact when the model is its own mirror image (template, blend shapes, regressor
and the hand poses' mean); the stand-ins' meshes are, and their joints follow to within a
millimetre (the head joint's regressor is not quite symmetric). A MANO hand has no twins:
its mirror is the other hand's model with the mirrored parameters (left hands flipped to
right ones and back).
"""

import functools

import jax.numpy as jnp
import numpy as np

from body_models import rotations
from body_models import skeletons

# (x, y, z) -> (x, -y, -z): the axis-angle of M R M for the mirror M = diag(-1, 1, 1).
AXIS_ANGLE_SIGNS = np.array([1.0, -1.0, -1.0])
# Ry(pi): a half turn about the camera's vertical axis (OpenCV axes: y down).
HALF_TURN_Y = np.diag([-1.0, 1.0, -1.0])


@functools.lru_cache(maxsize=None)
def flip_permutation(family):
  """(J,) int: for each kinematic joint, the joint it becomes in a mirror image."""
  names = skeletons.KINEMATIC_JOINTS[family]
  index = {n: i for i, n in enumerate(names)}
  perm = []
  for name in names:
    if 'left' in name:
      twin = name.replace('left', 'right')
    elif 'right' in name:
      twin = name.replace('right', 'left')
    else:
      twin = name
    perm.append(index.get(twin, index[name]))
  return np.asarray(perm, np.int32)


def mirror_params(params, family):
  """Parameters of the mesh mirrored through x = 0 (see the module docstring).

  Args:
    params: {smplx name: (..., n)} with full (not PCA) hand poses; numpy or jax arrays.
      Every pose part of the family must be given when any is (a twin moves across parts:
      SMPL-X's left hand pose becomes the right one).
    family: 'smpl', 'smplx', 'mano' or 'flame'.
  Returns:
    a dict with the same keys and shapes.
  """
  xp = _namespace(params)
  parts = skeletons.POSE_PARTS[family]
  given = [name for name, _ in parts if name in params]
  out = dict(params)
  if given:
    missing = [name for name, _ in parts if name not in params]
    if missing:
      raise ValueError(f'mirror_params: {family} needs every pose part; missing {missing}')
    batch = xp.shape(params[parts[0][0]])[:-1]
    pose = xp.concatenate([xp.reshape(params[name], batch + (n, 3)) for name, n in parts], -2)
    pose = pose[..., flip_permutation(family), :] * xp.asarray(AXIS_ANGLE_SIGNS, pose.dtype)
    start = 0
    for name, n in parts:
      out[name] = xp.reshape(pose[..., start:start + n, :], xp.shape(params[name]))
      start += n
  if 'transl' in params:
    out['transl'] = params['transl'] * xp.asarray([-1.0, 1.0, 1.0], params['transl'].dtype)
  return out


def facing_twin(params, family):
  """The body whose labelled joints project where `params`' twins project: the other facing.

  The mirror image (x -> -x, left and right swapped) turned half round about the camera's
  vertical (x -> -x, z -> -z) is the depth reflection z -> -z with left and right swapped.
  Under a distant camera it therefore projects each joint onto the image point of its
  left/right twin: when a body seen from 2D joints faces the wrong way (its left side where
  the labels put the right one), this body faces the right way with the same skeleton
  outline. The root keeps its place up to the model's asymmetry about x = 0 ('transl' is
  returned unchanged; callers that need the exact root move it).

  Args / Returns: as `mirror_params` (global_orient in the camera frame).
  """
  xp = _namespace(params)
  out = mirror_params({k: v for k, v in params.items() if k != 'transl'}, family)
  rot = rotations.axis_angle_to_matrix(xp.asarray(out['global_orient']))
  turned = xp.asarray(HALF_TURN_Y, rot.dtype) @ rot
  out['global_orient'] = xp.asarray(rotations.matrix_to_axis_angle(turned), rot.dtype)
  if 'transl' in params:
    out['transl'] = params['transl']
  return out


def facing_twin_rotmats(rotmats, family):
  """`facing_twin` on (..., J, 3, 3) local rotation matrices (every kinematic joint).

  Each joint takes F R_twin F (F = diag(-1, 1, 1)), and the root is then turned by Ry(pi).
  """
  flip = jnp.asarray(np.diag([-1.0, 1.0, 1.0]), rotmats.dtype)
  twins = flip @ rotmats[..., flip_permutation(family), :, :] @ flip
  root = jnp.asarray(HALF_TURN_Y, rotmats.dtype) @ twins[..., 0, :, :]
  return twins.at[..., 0, :, :].set(root)


def palm_normal(rest_joints, xp=np):
  """(3,) unit normal out of a right hand's palm from MANO's rest joints (16, 3)."""
  j = xp.asarray(rest_joints)
  names = skeletons.MANO_JOINTS
  at = lambda n: j[names.index(n)]
  normal = xp.cross(at('index1') - at('wrist'), at('pinky1') - at('wrist'))
  return normal / xp.linalg.norm(normal)


def palm_twin(params, rest_joints, pose_mean):
  """The MANO hand whose finger joints project where `params`' do, its tilt mirrored in depth.

  A hand's finger joints lie close to one plane, the palm's. Reflecting the posed hand
  through its palm plane (H = I - 2 n n^T in the hand's frame, n = `palm_normal`) and then
  through the wrist's depth (z -> -z in the camera frame) moves no joint of a flat hand in
  x or y: under a distant camera both project alike (a Necker reversal: the same side of the
  hand faces the camera, the palm's plane leans the other way in depth), and 2D finger
  joints cannot tell them apart. Both reflections together are a rotation: the global orient
  becomes D R H (D = diag(1, 1, -1)), each finger joint's absolute rotation H R H
  (axis-angle a -> -H a), so fingers curled toward the palm come out bent backwards, and
  the other way round. The thumb sits off the palm plane (its joints 1-2 cm on the stand-in),
  so its joints move 2-4 cm in the image and the other joints under a millimetre: a fit to
  the 2D joints (`refine2d.refine_2d`'s twin start) puts the thumb back. 'transl' and 'betas'
  are kept; the wrist (the root) stays put.

  Args:
    params: {'global_orient': (..., 3), 'hand_pose': (..., 45) full, relative to the
      model's mean, ...}; numpy or jax arrays (traced ones too).
    rest_joints: (16, 3) the model's rest joints (`model.joint_template`).
    pose_mean: (16, 3) or (48,) the model's `pose_mean` (its hand mean).
  Returns:
    a dict with the same keys and shapes.
  """
  xp = _namespace(params)
  orient, pose = xp.asarray(params['global_orient']), xp.asarray(params['hand_pose'])
  n = palm_normal(xp.asarray(rest_joints, pose.dtype), xp)
  reflect = xp.eye(3, dtype=pose.dtype) - 2.0 * n[:, None] * n[None, :]
  mean = xp.asarray(pose_mean, pose.dtype).reshape(16, 3)[1:]
  rot = rotations.axis_angle_to_matrix(orient)
  depth = xp.asarray(np.diag([1.0, 1.0, -1.0]), rot.dtype)
  out = dict(params)
  out['global_orient'] = xp.asarray(
      rotations.matrix_to_axis_angle(depth @ rot @ xp.asarray(reflect, rot.dtype)), orient.dtype)
  absolute = pose.reshape(pose.shape[:-1] + (15, 3)) + mean
  out['hand_pose'] = (-(absolute @ reflect.T) - mean).reshape(pose.shape)
  return out


def _namespace(params):
  """numpy for numpy inputs, jax.numpy otherwise (the module works on both)."""
  return np if all(isinstance(v, np.ndarray) for v in params.values()) else jnp
