"""Which way a body faces, checked against the labelled left/right sides of its 2D joints.

From 2D joints alone a network can face a person the wrong way: a skeleton seen from the
front and the same outline seen from behind differ only in which side carries the 'left'
labels, and an image at 64 px shows little of it. The labels do show it. For each body the
annotation pass therefore also scores its facing twin (`body_models.mirror.facing_twin`:
the depth reflection with left and right swapped, the body whose joints project onto
their twins' image points) and keeps whichever projects nearer the GT 2D joints.

A body that faces the right way keeps its place: its twin then puts every left joint where
the right one is labelled, a residual of about the shoulder or hip width. Only a body
whose left side lies where the labels put the right one is turned.

The check alone cannot mend a network that never learnt which way people face: trained on
the plain 2D loss, such a network predicts a compromise (shoulders and hips seen edge-on,
a twisted spine) that is wrong either way. So in-the-wild training scores each body by the
nearer of the two facings (`either_facing_joints`, `train.either_facing`): the network is
then free to learn the pose and the outline up to the facing, and the labels settle the
facing when the set is annotated.
"""

import jax
import jax.numpy as jnp

import body_models
from body_models import mirror
from neuralannot_jax.method import camera

FAMILIES = ('smpl', 'smplx')   # a hand's mirror is the other hand: no twin to try


def mean_residual(joints, transl, joints_2d, valid, focal, princpt):
  """(B,) mean pixel distance of the projected joints to the valid GT 2D joints.

  Args:
    joints: (B, K, 3) the set's joints without translation; transl: (B, 3).
    joints_2d: (B, K, 2) pixels; valid: (B, K) weights.
    focal, princpt: (2,) the camera of the pixels.
  """
  proj = camera.project(joints + transl[:, None], focal, princpt)
  dist = jnp.linalg.norm(proj - joints_2d, axis=-1)
  return jnp.sum(dist * valid, -1) / jnp.maximum(jnp.sum(valid, -1), 1.0)


def _nearer(joints, transl, joints_twin, transl_twin, joints_2d, valid, crop_size, focal):
  """(B,) bool: the twin projects nearer the valid GT 2D joints than the body."""
  cam_focal, princpt = camera.crop_camera(crop_size, focal)
  residual = mean_residual(joints, transl, joints_2d, valid, cam_focal, princpt)
  residual_twin = mean_residual(joints_twin, transl_twin, joints_2d, valid, cam_focal,
                                princpt)
  return residual_twin < residual


def either_facing_joints(body_model, mapping, rotmats, out, joints, transl, joints_2d, valid,
                         *, crop_size, focal, betas=None, expression=None):
  """(B, K, 3) each row's joints, or its facing twin's where they fit the 2D joints better.

  For the in-the-wild loss: the 2D term then scores the nearer facing, and its gradient
  flows into the chosen body (the choice itself is a comparison, not differentiated).

  Args:
    body_model: the family's model; mapping: its `JointMapping` to the batch's set.
    rotmats: (B, J, 3, 3) the predicted local rotations; betas, expression: as predicted.
    out: `forward_rotmats`' output for them; joints: (B, K, 3) `mapping.apply` of it.
    transl: (B, 3) the predicted camera translation (crop camera).
    joints_2d: (B, K, 2) GT joints in crop pixels; valid: (B, K) weights (mapping's
      validity and padding folded in).
    crop_size: S or (H, W); focal: the crop camera's focal length.
  """
  twin = body_models.forward_rotmats(body_model, mirror.facing_twin_rotmats(
      rotmats, body_model.family), betas=betas, expression=expression)
  # The twin turns about its own root joint: put it on the body's.
  joints_twin = (mapping.apply(twin.joints, twin.vertices)
                 + (out.joints[:, 0] - twin.joints[:, 0])[:, None])
  turned = jax.lax.stop_gradient(_nearer(joints, transl, joints_twin, transl, joints_2d,
                                         valid, crop_size, focal))
  return jnp.where(turned[:, None, None], joints_twin, joints)


def choose(body_model, mapping, params, root, joints, joints_2d, valid, *, crop_size, focal):
  """Each row's prediction or its facing twin, whichever fits the GT 2D joints better.

  Args:
    body_model: the family's model with full hand poses (no PCA).
    mapping: its `JointMapping` to the batch's joint set.
    params: {smplx name: (B, n)} with 'transl' (B, 3) of the crop's virtual camera.
    root: (B, 3) the kinematic root joint of `params`' body without translation (the
      caller has posed it already).
    joints: (B, K, 3) the set's joints of `params` without translation.
    joints_2d: (B, K, 2) GT joints in crop pixels; valid: (B, K).
    crop_size: S or (H, W) of the crop; focal: the virtual camera's focal length.
  Returns:
    (params, joints, turned (B,) bool): the twin's rows where it won. A twin keeps the
    prediction's root joint where it was (its 'transl' absorbs the model's asymmetry).
  """
  if body_model.family not in FAMILIES:
    raise ValueError(f'facing.choose: {body_model.family} has no facing twin')
  pose = {k: v for k, v in params.items() if k != 'transl'}
  twin = mirror.facing_twin(pose, body_model.family)
  theirs = body_models.forward(body_model, **twin)
  # Same root joint: the kinematic root of both meshes at the same camera point.
  transl_twin = params['transl'] + root - theirs.joints[:, 0]
  joints_twin = mapping.apply(theirs.joints, theirs.vertices)
  valid = jnp.asarray(valid, joints.dtype) * jnp.asarray(mapping.valid, joints.dtype)[None]
  turned = _nearer(joints, params['transl'], joints_twin, transl_twin, joints_2d, valid,
                   crop_size, focal)
  pick = lambda a, b: jnp.where(turned.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)
  out = {k: pick(params[k], twin[k]) for k in pose}
  out['transl'] = pick(params['transl'], transl_twin)
  return out, pick(joints, joints_twin), turned


__all__ = ['FAMILIES', 'mean_residual', 'either_facing_joints', 'choose']
