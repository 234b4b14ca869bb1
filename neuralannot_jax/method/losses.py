"""NeuralAnnot's training objective: L1 on the valid GT joints plus L2 regularisers.

  mode 'mocap' (GT 3D joints, e.g. Human3.6M): L1 between root-relative model joints and
    root-relative GT joints (metres). Root-relative because the absolute depth of a crop
    is not what the annotator should learn from 3D GT; the camera is trained by the
    optional 2D term (weight 'joints_2d'), which the exported `transl` needs, and only the
    camera: the body joints enter it without gradient.
  mode 'wild' (GT 2D joints only, e.g. COCO): the model joints plus the predicted camera
    translation, projected with the crop's virtual camera (`camera.crop_camera`), L1 to
    the GT 2D joints, in pixels of a `REFERENCE_CROP`-pixel crop (the paper's 256) whatever
    the crop the network sees: the weights then mean the same at 64 px as at 256 px (in
    crop pixels a 64 px crop's 2D term would weigh 1/4 against the priors, and the poses
    collapse to the prior's mean).
  Both: weight * mean square of named head outputs (the VPoser latent, hand PCA
    coefficients, betas, expression), which keeps the in-the-wild solutions near the
    priors' means where 2D joints leave them free.
  mode 'mocap' also: 'hinge', the off-hinge swing and overextension of elbows and knees
    (`hinge_swing`), and
    'pose_rot', an L2 on every rotation-predicted joint below the root
    (`rotation_l2`: |R - R_mean|_F^2 / 2 = 2 (1 - cos angle), the squared angle for small
    ones). The paper's Eq. 1 puts an L2 on every predicted parameter; without it the
    rotations 3D joints do not constrain (a limb's twist, the head, wrists, feet: leaves of
    the joint set) are free, and the meshes come out twisted although their joints fit.
  MANO in mode 'wild' also: 'finger_bend', finger joints bent backwards past an anatomical
    allowance (`finger_prior.overextension`), the hand's counterpart of SMPLify's elbow and
    knee prior.

The paper (Moon et al., "NeuralAnnot", CVPRW 2022) trains on exactly these terms; it does
not state loss weights, so `DEFAULT_WEIGHTS` are ours: chosen so that at typical converged
errors (centimetres, a few pixels) the joint terms dominate. Tune them per dataset.

One difference from the authors' code on purpose: their L1 is a mean over every entry,
invalid ones included as zeros, so its scale changes with how many joints a batch lacks;
`joint_l1` divides by the number of valid entries instead (and is 0 when there are none).
"""

from typing import Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from body_models import skeletons
from neuralannot_jax.method import camera
from neuralannot_jax.method import finger_prior

# The crop side (pixels) the 2D term is measured at: the paper's input size.
REFERENCE_CROP = 256

# Loss weights per mode. Keys: 'joints_3d' (metres), 'joints_2d' (crop pixels), and any
# name of the `params` dict given to `neuralannot_loss` (an L2 regulariser on it).
DEFAULT_WEIGHTS = {
    'mocap': {
        'joints_3d': 1.0,
        # Trains the camera (the 3D term is root-relative); ~1 px (of a 256 px crop, where
        # a body is ~200 px tall) weighs like ~1 cm.
        'joints_2d': 0.01,
        # Mean over joints of ~angle^2 (rad^2): at 0.3 rad its gradient is ~1/20 of what
        # the L1 3D term gives a joint that moves the set's joints, so it settles only
        # what the joints leave free.
        'pose_rot': 0.02,
        # Elbows and knees are hinges that bend one way: their off-hinge swing and
        # overextension (~angle^2) are what a joint set does not pin down when the
        # shoulder or hip turns to make up for them.
        'hinge': 0.1,
        'betas': 1e-3,
        'expression': 1e-3,
    },
    'wild': {
        'joints_2d': 1.0,
        'body_pose': 0.1,          # VPoser latent (N(0, I) prior)
        'left_hand_pose': 0.1,     # MANO PCA coefficients
        'right_hand_pose': 0.1,
        'hand_pose': 0.1,
        'betas': 0.1,
        'expression': 0.1,
    },
}

# MANO's MoCap weights where they differ from the bodies'. A finger joint turns the joints it
# moves on a lever of ~3 cm, a limb joint on ~40 cm, so the same L2 on rotations weighs ~10x
# more against the 3D term on a hand and holds the fingers near the mean pose (the fitter's
# hand priors are 10x weaker for the same reason, `fitting.fit3d.HAND_WEIGHTS`). The hand
# network's joint branch alone, on the comparison's FreiHAND-style set with its defects:
# MPJPE 11.2 mm at 0.02, 8.9 mm at 0.002.
# From 2D joints, 'finger_bend' (`finger_prior.overextension`, ~sin^2 of a backward bend
# beyond its allowance, a mean over 14 joints) weighs like the 2D term: three joints 30
# degrees past their allowance cost ~5 px of a 256 px crop, about what the mirrored-tilt
# reading of a hand saves in 2D.
HAND_WEIGHTS = {'mocap': {'pose_rot': 0.002}, 'wild': {'finger_bend': 100.0}}

# 'pose_rot' multipliers of joints that move much less than their neighbours. A clavicle
# turns about a third as far as the shoulder below it (tens of degrees against ~90), and no
# body joint set marks it apart from the shoulder, so an even L2 splits a raised arm between
# the two (half each at equal weights): a shrug no one holds. On the demo set every mesh
# flagged implausible was a collar past its limits. A third of the range is ~10x the
# weight of a squared angle, so the shoulder takes the arm.
STIFF_JOINTS = {'left_collar': 10.0, 'right_collar': 10.0}


def pose_rot_joint_weights(joint_names):
  """(J,) float32 'pose_rot' weights of the named joints: `STIFF_JOINTS`, else 1."""
  return np.array([STIFF_JOINTS.get(n, 1.0) for n in joint_names], np.float32)


def default_weights(mode, family):
  """{term: weight}: `DEFAULT_WEIGHTS[mode]`, with `HAND_WEIGHTS` for MANO."""
  if mode not in DEFAULT_WEIGHTS:
    raise ValueError(f'default_weights: unknown mode {mode!r}; expected one of '
                     f'{tuple(DEFAULT_WEIGHTS)}')
  weights = dict(DEFAULT_WEIGHTS[mode])
  if family == 'mano':
    weights.update(HAND_WEIGHTS.get(mode, {}))
  return weights



def joint_l1(pred, target, valid):
  """Mean absolute error over the valid entries.

  Args:
    pred, target: (B, K, D).
    valid: (B, K) (or (B, K, D)) weights in [0, 1]; fold per-sample masks (padding,
      has_3d) into it.
  Returns:
    scalar: sum(|pred - target| * valid) / (number of valid entries); 0 when none is
    valid (the gradient is then 0, not NaN).
  """
  pred, target = jnp.asarray(pred), jnp.asarray(target)
  valid = jnp.asarray(valid, pred.dtype)
  if valid.ndim == pred.ndim - 1:
    valid = valid[..., None]
  valid = jnp.broadcast_to(valid, pred.shape)
  total = jnp.sum(jnp.abs(pred - target) * valid)
  return total / jnp.maximum(jnp.sum(valid), 1.0)


def reference_pixels(crop_size):
  """Pixels of a `REFERENCE_CROP` crop per pixel of a crop of side S (or (H, W): the
  larger side), so 2D errors read the same at any crop size."""
  side = max(crop_size) if isinstance(crop_size, (tuple, list)) else crop_size
  return REFERENCE_CROP / float(side)


def root_relative(joints, root_index: Union[int, Sequence[int]]):
  """Subtract the root joint.

  Args:
    joints: (..., K, D).
    root_index: the root's index, or several indices whose mean is the root (e.g. the two
      hips of a set with no pelvis).
  Returns:
    (..., K, D).
  """
  joints = jnp.asarray(joints)
  idx = [root_index] if isinstance(root_index, int) else list(root_index)
  return joints - jnp.mean(joints[..., idx, :], axis=-2, keepdims=True)


def anchor_relative(joints, valid, root_index: Union[int, Sequence[int]]):
  """Joints relative to an anchor that a missing root does not remove: the root where every
  root joint is labelled, else the mean of the labelled joints.

  Real sets lose joints (occlusion, capture failure), the root among them: relative to a
  missing root a sample would lose all its 3D joints. The anchor is a function of the
  joints and `valid` alone, so the prediction and the GT anchored with the same `valid`
  compare translation-free.

  Args:
    joints: (..., K, D).
    valid: (..., K) weights (0 = missing).
    root_index: as `root_relative`.
  Returns:
    (..., K, D).
  """
  joints = jnp.asarray(joints)
  valid = jnp.asarray(valid, joints.dtype)
  idx = [root_index] if isinstance(root_index, int) else list(root_index)
  root_ok = jnp.prod(valid[..., idx] > 0, axis=-1).astype(bool)[..., None]
  root = jnp.mean(joints[..., idx, :], axis=-2)
  w = (valid > 0).astype(joints.dtype)[..., None]
  centroid = jnp.sum(w * joints, -2) / jnp.maximum(jnp.sum(w, -2), 1.0)
  return joints - jnp.where(root_ok, root, centroid)[..., None, :]


def param_l2(params, weights):
  """Sum over names of weight * mean(params[name] ** 2).

  Args:
    params: {name: array}; names absent from `weights` are ignored.
    weights: {name: float}; names absent from `params` are ignored (e.g. 'expression' for
      SMPL), as are zero weights.
  Returns:
    (scalar total, {name: weighted term}).
  """
  terms = {}
  for name, w in weights.items():
    if name in params and w:
      terms[name] = w * jnp.mean(jnp.square(jnp.asarray(params[name])))
  total = sum(terms.values()) if terms else jnp.zeros(())
  return total, terms


# Hinge joints of the SMPL family, in the rest pose's frame (y up, facing +z, the model's
# left = +x): (hinge axis, bone direction below the joint, the way that bone moves when the
# joint bends the right way). An elbow bends about y, the forearm along +-x swinging
# forward; a knee about x, the shin along -y swinging backward (SMPLify's bending prior
# penalises the other way about the same axes).
HINGES = {'left_elbow': ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
          'right_elbow': ((0.0, 1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
          'left_knee': ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),
          'right_knee': ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))}


def hinge_joints(family):
  """(indices (H,) into the kinematic joints, axes (H, 3, 3): hinge, bone and bending
  direction per joint) of the family's elbows and knees; empty for MANO and FLAME."""
  names = skeletons.KINEMATIC_JOINTS[family]
  rows = [(names.index(n), axes) for n, axes in HINGES.items() if n in names]
  if not rows:
    return np.zeros(0, np.int32), np.zeros((0, 3, 3), np.float32)
  idx, axes = zip(*rows)
  return np.array(idx, np.int32), np.array(axes, np.float32)


def hinge_swing(rotmats, axes):
  """Mean over hinge joints of (hinge . R bone)^2 + min(0, bend . R bone)^2.

  The first part is 0 for a rotation about the hinge axis or a twist about the bone, and
  sin^2 of the angle the bone leaves its bending plane; the second is 0 when the joint
  bends the right way, and sin^2 of the overextension when it bends backwards.

  Args:
    rotmats: (B, H, 3, 3) local rotations of the hinge joints.
    axes: (H, 3, 3) hinge, bone and bending directions in the rest frame (`hinge_joints`).
  Returns:
    scalar.
  """
  rotmats = jnp.asarray(rotmats)
  axes = jnp.asarray(axes, rotmats.dtype)
  moved = jnp.einsum('bhij,hj->bhi', rotmats, axes[:, 1])
  off_plane = jnp.einsum('bhi,hi->bh', moved, axes[:, 0])
  bend = jnp.einsum('bhi,hi->bh', moved, axes[:, 2])
  return jnp.mean(jnp.square(off_plane) + jnp.square(jnp.minimum(bend, 0.0)))


def rotation_l2(rotmats, reference=None, joint_weights=None):
  """Mean over joints of w_j |R - R_ref|_F^2 / 2 = w_j 2 (1 - cos of the angle between them).

  Equals angle^2 to second order and stays bounded (at most 4) and smooth everywhere,
  unlike the norm of the axis-angle, whose gradient is undefined at a half turn.

  Args:
    rotmats: (B, J, 3, 3) local rotations.
    reference: (J, 3, 3) or (B, J, 3, 3) rotations they are pulled towards; None = identity.
    joint_weights: (J,) per-joint multipliers (`pose_rot_joint_weights`); None = all 1.
  Returns:
    scalar.
  """
  rotmats = jnp.asarray(rotmats)
  if reference is None:
    reference = jnp.eye(3, dtype=rotmats.dtype)
  per_joint = 0.5 * jnp.sum(jnp.square(rotmats - jnp.asarray(reference, rotmats.dtype)),
                            axis=(-2, -1))                                     # (B, J)
  if joint_weights is not None:
    per_joint = per_joint * jnp.asarray(joint_weights, rotmats.dtype)
  return jnp.mean(per_joint)


def neuralannot_loss(joints, batch, cam_trans, mode, weights=None, *, params=None,
                     root_index: Union[int, Sequence[int]] = 0, joint_valid=None,
                     focal=camera.FOCAL, crop_size=None, rotmats=None,
                     pose_reference=None, pose_weights=None, hinges=None,
                     finger_hinges=None):
  """The NeuralAnnot objective for one batch.

  Args:
    joints: (B, K, 3) model joints mapped to the dataset's joint set
      (`JointMapping.apply`), camera space without the camera translation.
    batch: the pipeline's batch: joints_2d (B, K, 2) crop pixels, valid (B, K),
      joints_3d (B, K, 3) metres, valid3d (B, K), has_3d (B,), image (B, H, W, 3) (for
      the crop size); optional mask (B,) (padding rows count for nothing).
    cam_trans: (B, 3) camera translation (`decode(...)['transl']`); None when `joints`
      already include it.
    mode: 'mocap' or 'wild': picks the default weights (the 'mocap' defaults hold the
      3D term, the 'wild' ones do not).
    weights: {term: weight}; None = DEFAULT_WEIGHTS[mode]. Terms with weight 0 (or absent)
      are not computed, so the mode's terms are exactly those with a weight.
    params: {name: array} the head outputs to regularise (e.g. `HeadSpec.split(raw)`:
      the VPoser latent, PCA coefficients, betas, expression). None: no regulariser.
    root_index: the joint set's root (an index or indices, see `root_relative`), for the
      3D term (`JointSet.root` where the set has one).
    joint_valid: (K,) `JointMapping.valid`: 0 where the model has no such joint.
    focal: virtual focal length of the crop camera.
    crop_size: S or (H, W); None = read from batch['image']. The 2D term is measured in
      pixels of a `REFERENCE_CROP` crop (`reference_pixels`).
    rotmats: (B, J, 3, 3) the predicted local rotations below the root, for 'pose_rot'
      (`rotation_l2`); None: no such term.
    pose_reference: (J, 3, 3) the rotations 'pose_rot' pulls towards (the model's mean
      pose); None = identity.
    pose_weights: (J,) 'pose_rot' multipliers per joint (`pose_rot_joint_weights`).
    hinges: `hinge_joints(family)` with indices into `rotmats` (below the root, so the
      kinematic index - 1), for 'hinge'; None: no such term.
    finger_hinges: MANO: `finger_prior.finger_hinges(model.joint_template)`, for
      'finger_bend' on `rotmats`; None: no such term.
  Returns:
    (total scalar, {term name: weighted scalar}); regularisers are named 'l2_<name>'.
  """
  if mode not in DEFAULT_WEIGHTS:
    raise ValueError(f'neuralannot_loss: unknown mode {mode!r}; expected one of '
                     f'{tuple(DEFAULT_WEIGHTS)}')
  weights = DEFAULT_WEIGHTS[mode] if weights is None else weights
  joints = jnp.asarray(joints)
  dtype = joints.dtype
  # Per-sample weight: padded rows of the last annotation batch count for nothing.
  row = jnp.ones(joints.shape[:1], dtype)
  if 'mask' in batch:
    row = row * jnp.asarray(batch['mask'], dtype)
  per_joint = 1.0 if joint_valid is None else jnp.asarray(joint_valid, dtype)[None]
  terms = {}

  if weights.get('joints_3d', 0.0):
    valid3d = jnp.asarray(batch['valid3d'], dtype) * per_joint
    # Both anchored alike (the root, or the labelled joints' mean where the root is missing).
    pred = anchor_relative(joints, valid3d, root_index)
    target = anchor_relative(batch['joints_3d'], valid3d, root_index)
    has_3d = jnp.asarray(batch.get('has_3d', True), dtype)
    valid3d = valid3d * jnp.broadcast_to(has_3d * row, row.shape)[:, None]
    terms['joints_3d'] = weights['joints_3d'] * joint_l1(pred, target, valid3d)

  if weights.get('joints_2d', 0.0):
    if crop_size is None:
      crop_size = tuple(batch['image'].shape[-3:-1])
    cam_focal, princpt = camera.crop_camera(crop_size, focal)
    body = joints
    if mode == 'mocap' and cam_trans is not None:
      # The 2D term places the camera; the body is the 3D term's. Its gradient into the
      # pose (at 0.01 per 256-crop pixel it outweighed the 3D term ~3x) cost the demo
      # 22.7 -> 28.3 mm MPJPE.
      body = jax.lax.stop_gradient(joints)
    points = body if cam_trans is None else body + jnp.asarray(cam_trans, dtype)[:, None]
    proj = camera.project(points, cam_focal, princpt)
    valid = jnp.asarray(batch['valid'], dtype) * per_joint * row[:, None]
    terms['joints_2d'] = weights['joints_2d'] * reference_pixels(crop_size) * joint_l1(
        proj, batch['joints_2d'], valid)

  if rotmats is not None and weights.get('pose_rot', 0.0):
    terms['pose_rot'] = weights['pose_rot'] * rotation_l2(rotmats, pose_reference,
                                                          pose_weights)
  if rotmats is not None and hinges is not None and len(hinges[0]) and weights.get('hinge'):
    idx, axes = hinges
    terms['hinge'] = weights['hinge'] * hinge_swing(jnp.asarray(rotmats)[:, np.asarray(idx)],
                                                    axes)

  if rotmats is not None and finger_hinges is not None and weights.get('finger_bend'):
    bend = finger_prior.overextension(rotmats, finger_hinges)                 # (B,)
    terms['finger_bend'] = weights['finger_bend'] * jnp.sum(bend * row) / jnp.maximum(
        jnp.sum(row), 1.0)

  if params is not None:
    reg_weights = {k: w for k, w in weights.items()
                   if k not in ('joints_2d', 'joints_3d', 'pose_rot', 'hinge', 'finger_bend')}
    _, reg = param_l2(params, reg_weights)
    terms.update({f'l2_{k}': v for k, v in reg.items()})

  total = sum(terms.values()) if terms else jnp.zeros((), dtype)
  return total, terms


__all__ = ['REFERENCE_CROP', 'DEFAULT_WEIGHTS', 'HAND_WEIGHTS', 'STIFF_JOINTS',
           'pose_rot_joint_weights', 'default_weights', 'joint_l1',
           'reference_pixels', 'root_relative', 'anchor_relative', 'param_l2',
           'HINGES', 'hinge_joints', 'hinge_swing', 'rotation_l2', 'neuralannot_loss']
