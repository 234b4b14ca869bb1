"""Per-sample quality of a pseudo-GT: how far it lies from the GT joints, and whether the
body is humanly possible. NeuralAnnot's release has no such field; ours carry it in an
extra 'quality' key of every entry (readers of the released layout ignore it), so users
can filter bad fits:

  {'joint_residual_mm': 12.3}  MoCap rows: mean distance of the root-relative joints to
                               the GT 3D joints, mm (relative to the labelled joints'
                               mean where the root is missing);
  {'joint_residual_px': 4.1}   in-the-wild rows: mean distance of the projected joints to
                               the GT 2D joints, original-image pixels;
  'implausible': true / false  SMPL / SMPL-X: a joint beyond the pose limits
                               (`plausibility`).

Both annotators (the network's `annotate._finish`, the fitter's `fitting.annotator`) call
`batch_quality` on the batch they annotated, before any left hand is mirrored back.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

import body_models
from neuralannot_jax import plausibility
from neuralannot_jax.method import camera
from neuralannot_jax.method import losses


@functools.partial(jax.jit, static_argnames=('mapping',))
def _mapped_joints(body_model, params, *, mapping):
  out = body_models.forward(body_model, **params)
  return mapping.apply(out.joints, out.vertices)


def mapped_joints(body_model, mapping, params):
  """(B, T, 3) numpy: the joint set's joints of {smplx name: (B, n)} parameters, without
  their 'transl' (hands as full axis-angle poses: a model without PCA)."""
  pose = {k: jnp.asarray(v) for k, v in params.items() if k != 'transl'}
  return np.asarray(_mapped_joints(body_model, pose, mapping=mapping), np.float64)


def batch_quality(joints, params, batch, *, family, mapping, from_3d, root, crop_size,
                  focal=camera.FOCAL):
  """One quality dict per row of an annotated batch (see the module docstring).

  Args:
    joints: (B, T, 3) the pseudo-GTs' joints of the batch's set, without translation
      (`mapped_joints`, or the network's own).
    params: {smplx name: (B, n)} in the crop's camera frame: 'transl' (that of the virtual
      crop camera for in-the-wild rows) and, for bodies, 'body_pose'.
    batch: the pipeline batch (numpy): joints_3d, valid3d, joints_2d, valid (crop pixels),
      inverse (B, 2, 3).
    family: the body-model family; mapping: the `JointMapping` the joints come from.
    from_3d: (B,) bool: rows scored against 3D joints (MoCap), else against 2D.
    root: the joint set's root index (3D residuals are root-relative).
    crop_size: the crop side, pixels; focal: the virtual camera's focal length.
  Returns:
    list of B dicts.
  """
  joints = np.asarray(joints, np.float64)
  model_valid = np.asarray(mapping.valid, np.float64)[None]
  valid3d = np.asarray(batch['valid3d'], np.float64) * model_valid
  # Anchored as the training loss anchors them (the root, else the labelled joints' mean).
  rel = lambda x: np.asarray(losses.anchor_relative(x, valid3d, root), np.float64)
  dist3d = np.linalg.norm(rel(joints) - rel(np.asarray(batch['joints_3d'], np.float64)), axis=-1)
  count3d = valid3d.sum(-1)
  residual_mm = 1000.0 * (dist3d * valid3d).sum(-1) / np.maximum(count3d, 1.0)
  cam_focal, princpt = camera.crop_camera(crop_size, focal)
  transl = np.asarray(params['transl'], np.float64)[:, None]
  proj = np.asarray(camera.project(joints + transl, np.asarray(cam_focal, np.float64),
                                   np.asarray(princpt, np.float64)))
  valid2d = np.asarray(batch['valid'], np.float64) * model_valid
  dist2d = np.linalg.norm(proj - np.asarray(batch['joints_2d'], np.float64), axis=-1)
  # Crop pixels -> original pixels: the inverse affine's scale.
  scale = np.linalg.norm(np.asarray(batch['inverse'], np.float64)[:, :, 0], axis=-1)
  count2d = valid2d.sum(-1)
  residual_px = scale * (dist2d * valid2d).sum(-1) / np.maximum(count2d, 1.0)
  flags = None
  if family in plausibility.FAMILIES and 'body_pose' in params:
    flags = plausibility.implausible(np.asarray(params['body_pose']), family)
  out = []
  for row in range(joints.shape[0]):
    # No key where no GT joint is labelled: there is nothing to measure against.
    entry = {}
    if from_3d[row] and count3d[row] > 0:
      entry['joint_residual_mm'] = round(float(residual_mm[row]), 2)
    elif not from_3d[row] and count2d[row] > 0:
      entry['joint_residual_px'] = round(float(residual_px[row]), 2)
    if flags is not None:
      entry['implausible'] = bool(flags[row])
    out.append(entry)
  return out


def summary(annotations):
  """{'joint_residual_mm' / '_px': (median, 90th percentile), 'implausible_pct'} over
  `Annotation`s that carry a quality, for logs and the report."""
  out = {}
  for key in ('joint_residual_mm', 'joint_residual_px'):
    values = [a.quality[key] for a in annotations if a.quality and key in a.quality]
    if values:
      out[key] = (float(np.median(values)), float(np.percentile(values, 90)))
  flags = [a.quality['implausible'] for a in annotations
           if a.quality and 'implausible' in a.quality]
  if flags:
    out['implausible_pct'] = 100.0 * float(np.mean(flags))
  return out


__all__ = ['mapped_joints', 'batch_quality', 'summary']
