"""Two-stage training (the paper's Table 7): supervise the annotator with initial pseudo-GTs.

Stage one makes pseudo-GTs (NeuralAnnot itself, or the SMPLify-X style baseline); stage two
trains the annotator again with full supervision on those parameters, an L1 on the joint
rotations and on the shape, on top of the usual weak joint terms
(`--config.train.two_stage.init=<stage-one pseudo_gt.json>`).

The initial parameters live in each sample's camera frame; the network sees an augmented
crop, so the targets are moved into the crop's frame the same way the 3D joints are
(`data.crop.to_crop`: p' = F Rz p, F the x-mirror when the crop is flipped):
  * not flipped: the root rotation G -> Rz G; the other joints' local rotations unchanged;
  * flipped: G -> F Rz G F, every local rotation R_j -> F R_perm(j) F, perm swapping each
    'left_*' joint with its 'right_*' twin (a mirrored body is the other side's joints,
    mirrored). A left hand mirrored into a right one is the MANO case (no twins).
This module builds the per-sample target arrays on the host (`Targets`); `loss` compares
them with the predicted rotation matrices inside the jitted step.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from body_models import mirror
from body_models import model as model_lib
from body_models import rotations
from neuralannot_jax import evaluate

# Loss weights of the parameter terms (ours; the paper gives none): the mean absolute
# rotation-matrix entry and the mean absolute beta. At 20 / 2 the comparison's body network
# from 2D joints, trained from scratch on stage one's refined file, reached 137.7 mm MPJPE
# (stage one 203.7, the fitter 154.2); at 0.1 / 0.01 the parameters were a minor term
# beside the 2D joints.
DEFAULT_WEIGHTS = {'param_rot': 20.0, 'param_betas': 2.0}
MIRROR = np.diag([-1.0, 1.0, 1.0])


def _mirror_axis_angle(aa):
  return aa * np.array([1.0, -1.0, -1.0], aa.dtype)


class Targets:
  """Initial pseudo-GT parameters of the training samples, as final joint rotations.

  Args:
    path: a released-layout pseudo-GT file of the body model's family (ours or the
      baseline's; `evaluate.load_entries` reads it).
    body_model: the training body model (its pose mean and number of betas).
    samples: the training samples; they are matched to the file by ann_id (hands by
      '{id}_{side}', as `evaluate.gt_from_samples` keys them).
  Raises:
    ValueError naming the file when it matches none of the samples.
  """

  def __init__(self, path, body_model, samples):
    self.family = body_model.family
    self.num_betas = body_model.num_betas
    entries = evaluate.load_entries(path, self.family, what='initial pseudo-GT file')
    full_model = dataclasses.replace(body_model, hand_components={})
    mean = np.asarray(body_model.pose_mean, np.float32)                  # (J, 3)
    names = set(full_model.param_shapes())
    self.pose, self.betas = {}, {}
    for index in range(len(samples)):
      sample = samples[index]
      key = evaluate.sample_key(sample)
      params = entries.get(str(key))
      if params is None:
        continue
      pose = np.asarray(model_lib.full_pose(
          full_model, {k: v[None] for k, v in params.items() if k in names}, (1,)))[0]
      if self.family == 'mano' and evaluate.hand_side(key) == 'left':
        # The file holds left-MANO parameters: its mean is the right mean mirrored.
        pose = pose - mean + _mirror_axis_angle(mean)
      betas = np.zeros(self.num_betas, np.float32)
      given = np.asarray(params.get('betas', betas), np.float32)[:self.num_betas]
      betas[:len(given)] = given
      self.pose[sample.ann_id] = pose.astype(np.float32)
      self.betas[sample.ann_id] = betas
    if not self.pose:
      raise ValueError(f'{path}: none of its entries matches a training sample (ids such '
                       f'as {list(entries)[:3]} vs {[evaluate.sample_key(samples[0])]})')
    self.num_joints = mean.shape[0]

  def __len__(self):
    return len(self.pose)

  def arrays(self, ann_ids, batch):
    """Target arrays of a training batch (rows in `ann_ids` order, then padding).

    Args:
      ann_ids: the batch's real rows' ann_ids (`Loader` order).
      batch: the pipeline batch: 'rotation' (B,) degrees and 'flipped' (B,) of each crop.
    Returns:
      {'target_pose': (B, J, 3) final axis-angle rotations in the sample's camera frame,
       'target_betas': (B, n), 'has_target': (B,), 'rotation': (B,), 'flipped': (B,)},
      float32; rows without a target (or padding) have has_target 0.
    """
    b = len(batch['rotation'])
    pose = np.zeros((b, self.num_joints, 3), np.float32)
    betas = np.zeros((b, self.num_betas), np.float32)
    has = np.zeros(b, np.float32)
    for row, ann_id in enumerate(ann_ids):
      if ann_id in self.pose:
        pose[row], betas[row], has[row] = self.pose[ann_id], self.betas[ann_id], 1.0
    return {'target_pose': pose, 'target_betas': betas, 'has_target': has,
            'rotation': np.asarray(batch['rotation'], np.float32),
            'flipped': np.asarray(batch['flipped'], np.float32)}


def crop_frame_rotations(target_pose, rotation_deg, flipped, family):
  """Final rotations in the crop's frame (see the module docstring).

  Args:
    target_pose: (B, J, 3) axis-angle, the sample's camera frame.
    rotation_deg: (B,) the crop's in-plane rotation; flipped: (B,) 1 where mirrored.
    family: the body model family (for the left/right twins).
  Returns:
    (B, J, 3, 3) rotation matrices.
  """
  mats = rotations.axis_angle_to_matrix(target_pose)
  reflect = jnp.asarray(MIRROR, mats.dtype)
  twins = reflect @ mats[:, mirror.flip_permutation(family)] @ reflect
  flip = jnp.asarray(flipped, mats.dtype)[:, None, None, None] > 0
  mats = jnp.where(flip, twins, mats)
  # F Rz G F = (F Rz F)(F G F) and F Rz F = Rz(-angle): the root turns the other way.
  angle = jnp.deg2rad(rotation_deg) * jnp.where(jnp.asarray(flipped) > 0, -1.0, 1.0)
  c, s = jnp.cos(angle), jnp.sin(angle)
  zero, one = jnp.zeros_like(c), jnp.ones_like(c)
  # `data.crop.rotation_3d`: [[c, s, 0], [-s, c, 0], [0, 0, 1]].
  rz = jnp.stack([jnp.stack([c, s, zero], -1), jnp.stack([-s, c, zero], -1),
                  jnp.stack([zero, zero, one], -1)], -2).astype(mats.dtype)
  return mats.at[:, 0].set(rz @ mats[:, 0])


def loss(rotmats, betas, batch, family, weights=None, row=None):
  """The parameter terms: weighted mean |R - R_target| and mean |betas - betas_target|.

  Args:
    rotmats: (B, J, 3, 3) predicted final rotations (`decode.decode_rotmats`'s 'rotmats').
    betas: (B, n) predicted shape.
    batch: with `Targets.arrays`' keys.
    family: the body model family.
    weights: {'param_rot', 'param_betas'} (default DEFAULT_WEIGHTS).
    row: (B,) row weights (padding 0), or None.
  Returns:
    {'param_rot': scalar, 'param_betas': scalar}.
  """
  weights = {**DEFAULT_WEIGHTS, **(weights or {})}
  target = crop_frame_rotations(batch['target_pose'], batch['rotation'], batch['flipped'],
                                family)
  has = jnp.asarray(batch['has_target'], rotmats.dtype)
  if row is not None:
    has = has * jnp.asarray(row, rotmats.dtype)
  count = jnp.maximum(jnp.sum(has), 1.0)
  rot = jnp.mean(jnp.abs(rotmats - target.astype(rotmats.dtype)), axis=(1, 2, 3))
  n = min(betas.shape[-1], batch['target_betas'].shape[-1])
  shape = jnp.mean(jnp.abs(betas[:, :n] - batch['target_betas'][:, :n]), axis=-1)
  return {'param_rot': weights['param_rot'] * jnp.sum(rot * has) / count,
          'param_betas': weights['param_betas'] * jnp.sum(shape * has) / count}


__all__ = ['DEFAULT_WEIGHTS', 'Targets', 'crop_frame_rotations', 'loss']
