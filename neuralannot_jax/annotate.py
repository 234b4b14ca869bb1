"""The annotation pass: the trained annotator run once over the set it learned from.

NeuralAnnot's pseudo-GTs are the network's outputs on its own training set. `annotate`
runs a jitted inference step over every sample, in order, with no augmentation, and
returns one `Annotation` per sample keyed by its ann_id:

  * parameters in the smplx library's names, axis-angle, hands as full 45-d poses, for
    the body model as loaded (`forward(model, **params)` gives the mesh);
  * camera space: in-the-wild the network's virtual camera (focal 5000 on the crop, see
    `camera`), in MoCap mode the dataset's own camera, the translation placing the
    model's root joint on the GT root joint (the 3D joints are known there, the virtual
    camera's depth is not the real one);
  * the camera in original-image pixels (`cam_param` of the released files);
  * left hands, which the pipeline mirrors into right hands, mirrored back: parameters
    of the left MANO model.

`to_entries` turns the annotations into the released COCO-style layout for `export`.
"""

import dataclasses
import functools
import itertools
from typing import Any, Optional

import jax
import numpy as np
from absl import logging
from flax import nnx

import body_models
from body_models import mirror
from neuralannot_jax import export
from neuralannot_jax import quality as quality_lib
from neuralannot_jax import train as train_lib
from neuralannot_jax.data import pipeline
from neuralannot_jax.method import camera
from neuralannot_jax.method import decode
from neuralannot_jax.method import facing
from neuralannot_jax.method import finger_prior
from neuralannot_jax.method import losses
from neuralannot_jax.models import batch_norm
from neuralannot_jax.runtime import distributed



@dataclasses.dataclass
class Annotation:
  """The pseudo-GT of one sample.

  Attributes:
    params: {smplx name: 1-D float32 array}, camera space (see the module docstring).
    focal: (2,) and princpt: (2,): the camera in original-image pixels.
    family: the body-model family of `params`.
    hand_side: 'right' / 'left' for hand samples, else None.
    parent_id: the person's ann_id for hands and faces cut from a whole-body record.
    camera: 'dataset' (MoCap: the dataset's camera, transl from the GT root) or 'virtual'.
    quality: {'joint_residual_mm' or 'joint_residual_px': float, 'implausible': bool}
      (`quality.batch_quality`), or None.
  """
  params: dict
  focal: np.ndarray
  princpt: np.ndarray
  family: str
  hand_side: Optional[str] = None
  parent_id: Any = None
  camera: str = 'virtual'
  quality: Optional[dict] = None


@functools.partial(nnx.jit, static_argnames=('step_spec', 'check_facing', 'check_palm'))
def predict(model, body_model, batch, vposer_params=None, *, step_spec, check_facing=False,
            check_palm=False):
  """The network's parameters for one (sharded) batch, in inference mode.

  Args:
    model: the Annotator, in eval mode (`model.eval()`: BatchNorm running statistics).
    body_model: body_models.BodyModel of the family.
    batch: `train.step_batch` arrays.
    vposer_params: VPoser weights for 'wild' SMPL / SMPL-X, else None.
    step_spec: train.StepSpec (head spec and joint mapping).
    check_facing: in-the-wild bodies: keep each row's prediction or its facing twin,
      whichever projects nearer the batch's GT 2D joints (`facing.choose`).
    check_palm: hands from 2D joints: keep each row's hand or its palm twin, whichever
      bends its fingers less far backwards (`finger_prior.choose_palm`).
  Returns:
    {smplx name: (B, ...)} axis-angle parameters with full hand poses and 'transl' (B, 3)
    of the virtual crop camera; plus 'joints' (B, T, 3): the dataset's joints of the mesh
    without translation (T = the joint set's size), and with `check_facing`, 'turned'
    (B,) bool: the rows whose twin won (bodies: the facing twin; hands with `check_palm`:
    the palm twin).
  """
  spec, mapping = step_spec.spec, step_spec.mapping
  raw = model(*train_lib.network_inputs(model, batch, step_spec.root))
  parts = spec.split(raw)
  params = decode.decode(spec, parts, vposer_params=vposer_params,
                         hand_components=body_model.hand_components or None,
                         pose_mean=body_model.pose_mean)
  swapped = None
  if check_palm and palm_applies(spec):
    params, swapped = finger_prior.choose_palm(params, body_model.joint_template,
                                               body_model.pose_mean)
  pose = {k: v for k, v in params.items() if k != 'transl'}
  # A model loaded with use_pca takes PCA coefficients; the full poses go through a
  # model without PCA, which `forward` gets by the explicit hand pose width.
  out = body_models.forward(full_pose_model(body_model), **pose)
  params['joints'] = mapping.apply(out.joints, out.vertices)
  if check_facing and facing_applies(spec):
    joints = params.pop('joints')
    params, params['joints'], params['turned'] = facing.choose(
        full_pose_model(body_model), mapping, params, out.joints[:, 0], joints,
        batch['joints_2d'], batch['valid'], crop_size=spec.crop_size, focal=spec.focal)
  if swapped is not None:
    params['turned'] = swapped
  return params


def facing_applies(spec):
  """Whether `predict`'s facing check runs for a head spec: bodies from 2D joints."""
  return spec.mode == 'wild' and spec.family in facing.FAMILIES


def palm_applies(spec):
  """Whether `predict`'s palm check runs for a head spec: MANO hands from 2D joints."""
  return spec.mode == 'wild' and spec.family == 'mano'


def full_pose_model(body_model):
  """The model with hand PCA switched off (decode already expanded the coefficients)."""
  if not body_model.hand_components:
    return body_model
  return dataclasses.replace(body_model, hand_components={})


def original_cameras(batch, dataset_camera, crop_size, focal=camera.FOCAL):
  """Each row's camera in original-image pixels (the released `cam_param`).

  Args:
    batch: the pipeline batch: focal, princpt (B, 2) of the dataset camera in crop pixels,
      inverse (B, 2, 3) the crop's inverse affine.
    dataset_camera: (B,) bool: the row keeps the dataset's camera; else the virtual crop
      camera (`camera.crop_camera(crop_size, focal)`).
  Returns:
    focal (B, 2) and princpt (B, 2), float64.
  """
  virtual_focal, virtual_princpt = (np.asarray(x, np.float32)
                                    for x in camera.crop_camera(crop_size, focal))
  rows = np.asarray(dataset_camera, bool)[:, None]
  focal = np.where(rows, batch['focal'], virtual_focal).astype(np.float32)
  princpt = np.where(rows, batch['princpt'], virtual_princpt).astype(np.float32)
  return tuple(np.asarray(x, np.float64) for x in camera.to_original_camera(
      focal, princpt, np.asarray(batch['inverse'], np.float32)))


def gt_translation(joints, gt_joints, valid, root):
  """(B, 3) the translation that puts the model's joints on the GT's by their anchors (the
  root, or the labelled joints' mean where the root is missing: `losses.anchor_relative`).

  Args:
    joints: (B, T, 3) the model's joints without translation; gt_joints: (B, T, 3).
    valid: (B, T) labelled GT joints (those the model has).
  """
  joints = np.asarray(joints, np.float64)
  gt_joints = np.asarray(gt_joints, np.float64)
  anchored = lambda x: x - np.asarray(losses.anchor_relative(x, valid, root))
  return (anchored(gt_joints) - anchored(joints))[:, 0]


def _finish(spec, step_spec, out, batch, samples):
  """Annotations of a batch's real rows from `predict`'s output and the host batch.

  Args:
    out: `predict` output on the host, {name: (B, ...)}.
    batch: the pipeline batch (numpy); rows with mask False are padding.
    samples: the loader's samples (indexed by batch['index']).
  Returns:
    list of `Annotation`, one per real row, in row order.
  """
  root = step_spec.root
  rows = np.flatnonzero(batch['mask'])
  valid3d = np.asarray(batch['valid3d'], np.float64) * np.asarray(step_spec.mapping.valid)[None]
  # MoCap rows with a camera and labelled GT 3D joints keep the dataset's camera.
  dataset_camera = ((spec.mode == 'mocap') & batch['has_camera'] & (batch['has_3d'] > 0)
                    & (valid3d.sum(-1) > 0))
  focal, princpt = original_cameras(batch, dataset_camera, spec.crop_size, spec.focal)
  # The model's root joint on the GT root (the labelled joints' mean on theirs where the
  # root is missing), in the crop's (possibly mirrored) camera frame.
  gt_transl = gt_translation(out['joints'], batch['joints_3d'], valid3d, root)
  scores = quality_lib.batch_quality(
      out['joints'], out, batch, family=spec.family, mapping=step_spec.mapping,
      from_3d=(spec.mode == 'mocap') & (batch['has_3d'] > 0), root=root,
      crop_size=spec.crop_size, focal=spec.focal)
  result = []
  for row in rows:
    params = {k: v[row] for k, v in out.items() if k != 'joints'}
    if dataset_camera[row]:
      params['transl'] = gt_transl[row]
    if batch['flipped'][row]:
      params = mirror.mirror_params(params, spec.family)   # a left hand seen as a right one
    sample = samples[int(batch['index'][row])]
    result.append(Annotation(
        params={k: np.asarray(v, np.float32) for k, v in params.items()},
        focal=focal[row], princpt=princpt[row], family=spec.family,
        hand_side=sample.hand_side, parent_id=sample.parent_id,
        camera='dataset' if dataset_camera[row] else 'virtual', quality=scores[row]))
  return result


def _backbone(model, images):
  return model.backbone(images)


def recalibrate_batch_norm(model, samples, *, crop_size, batch_size, num_batches, mesh,
                           num_workers=4):
  """Sets `model`'s BatchNorm statistics to those of the first `num_batches` batches of a
  seeded shuffle of `samples`, cropped as annotation crops them (`models.batch_norm`).

  The running averages of training trail the weights and mix in few, small batches (see
  `models.batch_norm` for what they cost on the comparison's hand set). Every process
  reads the same batches, so the statistics, and the annotations, do not depend on the
  process count. Returns the number of batches read (0 when the set fills no batch).
  """
  if num_batches <= 0:
    return 0
  loader = pipeline.Loader(samples, batch_size, train=True, out_size=crop_size,
                           augment=train_lib.NO_AUGMENT, seed=0, num_workers=num_workers,
                           num_devices=mesh.devices.size, process_index=0, process_count=1)
  batches = loader.epoch(0)
  try:
    images = (pipeline.shard({'image': np.asarray(b['image'], np.float32)}, mesh)['image']
              for b, _ in itertools.islice(batches, num_batches))
    return batch_norm.recalibrate(model, images, _backbone)
  finally:
    batches.close()   # stops the loader's decode threads


def annotate(model, body_model, samples, step_spec, *, batch_size, mesh=None,
             vposer_params=None, num_workers=4, progress=True, refine=None,
             batch_norm_batches=0, batch_norm_batch_size=None, check_facing=False,
             check_palm=False):
  """Run the annotator over this process's share of `samples`, in order.

  Inference needs no collectives, so each process runs on its own devices over its own
  contiguous share (`distributed.share`; all the samples on one process), and processes
  need not keep in step; `shards.annotate_in_shards` merges the shares.

  Args:
    model: the trained Annotator, replicated (on the global mesh or this process's); it is
      left as it is: a copy in eval mode runs on `mesh`.
    body_model: body_models.BodyModel of `step_spec.spec.family`.
    samples: all the `Sample`s of the joint set the model was trained on (list or sequence).
    step_spec: train.StepSpec of the training run (`train.make_step_spec(config)`).
    batch_size: per-process batch, a multiple of the local device count; the last
      batch is padded (padding rows are dropped).
    mesh: a mesh over this process's devices, axis 'data' (default
      `distributed.local_mesh()`).
    vposer_params: VPoser weights when the head predicts a latent.
    num_workers: decode threads of the Loader.
    progress: show a tqdm bar.
    refine: optional (predict's host output, host batch) -> the same refined, e.g.
      `fitting.annotator.refine_batch` with its settings bound.
    batch_norm_batches: recompute the BatchNorm statistics of the copy that annotates on
      this many batches of `samples` first (`recalibrate_batch_norm`); 0: keep the
      checkpoint's running averages.
    batch_norm_batch_size: their size (default `batch_size`); give the global annotation
      batch, so that runs on different numbers of processes get the same statistics.
    check_facing: in-the-wild bodies: turn the rows that face the wrong way by their 2D
      joints' left/right labels (`facing.choose`), before any refinement.
    check_palm: hands from 2D joints: mirror a hand's tilt in depth where that unbends the
      fingers (`finger_prior.choose_palm`), before any refinement.
  Returns:
    (annotations {ann_id: Annotation} of the share in sample order, loader): the loader's
    `skipped` lists the samples whose image could not be read.
  """
  spec = step_spec.spec
  mesh = distributed.local_mesh() if mesh is None else mesh
  foreign = [d for d in mesh.devices.flat if d.process_index != jax.process_index()]
  if foreign:
    raise ValueError(f'annotate: the mesh holds devices of other processes ({foreign[:2]}, '
                     '...); give a mesh of this process\'s devices (distributed.local_mesh())')
  graphdef, state = nnx.split(model)
  model = nnx.merge(graphdef, distributed.local_copy(state, mesh))
  recalibrate_batch_norm(model, samples, crop_size=_crop_side(spec.crop_size),
                         batch_size=batch_norm_batch_size or batch_size,
                         num_batches=batch_norm_batches, mesh=mesh,
                         num_workers=num_workers)
  model.eval()
  loader = pipeline.Loader(samples, batch_size, train=False,
                           out_size=_crop_side(spec.crop_size), num_workers=num_workers,
                           num_devices=jax.local_device_count())
  bar = None
  if progress:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    bar = tqdm(total=len(loader.order(0)), unit='img', desc='annotate')
  annotations = {}
  turned = 0
  try:
    for batch, ann_ids in loader:
      out = predict(model, body_model, pipeline.shard(train_lib.step_batch(batch), mesh),
                    vposer_params, step_spec=step_spec, check_facing=check_facing,
                    check_palm=check_palm)
      out = jax.device_get(out)
      turned += int(np.sum(np.asarray(out.pop('turned', False)) & np.asarray(batch['mask'])))
      if refine is not None:
        out = refine(out, batch)
      add_unique(annotations, ann_ids, _finish(spec, step_spec, out, batch, loader.samples),
                 'annotate')
      if bar is not None:
        bar.update(len(ann_ids))
  finally:
    if bar is not None:
      bar.close()
  if check_facing and facing_applies(spec):
    logging.info('annotate: the facing check turned %d of %d bodies round', turned,
                 len(annotations))
  if check_palm and palm_applies(spec):
    logging.info('annotate: the palm check mirrored the tilt of %d of %d hands', turned,
                 len(annotations))
  return annotations, loader


def add_unique(annotations, ann_ids, finished, who):
  """Add a batch's annotations to {ann_id: Annotation}; outputs are keyed by ann_id, so a
  repeated id is an error (naming `who`, the annotator)."""
  for ann_id, annotation in zip(ann_ids, finished):
    if ann_id in annotations:
      raise ValueError(f'{who}: ann_id {ann_id!r} appears twice in the samples; outputs are '
                       'keyed by it')
    annotations[ann_id] = annotation


def _crop_side(crop_size):
  if isinstance(crop_size, (tuple, list)):
    if crop_size[0] != crop_size[1]:
      raise ValueError(f'annotate: the pipeline makes square crops, not {crop_size}')
    return int(crop_size[0])
  return int(crop_size)


# ----------------------------------------------------------------------------- files


def to_entries(annotations):
  """{ann_id: Annotation} -> the released COCO-style {key: entry}.

  SMPL / SMPL-X / FLAME: keyed by ann_id, {'<family>_param': ..., 'cam_param': ...}.
  MANO: keyed by the person (`parent_id`, e.g. COCO-WholeBody), or by the ann_id for
  hand-only sets, {'right': entry or None, 'left': entry or None}.
  """
  entries = {}
  for ann_id, ann in annotations.items():
    entry = export.to_released_entry(ann.family, ann.params, ann.focal, ann.princpt)
    if ann.quality is not None:
      entry['quality'] = dict(ann.quality)   # an extra key: released-layout readers skip it
    if ann.family != 'mano':
      entries[ann_id] = entry
      continue
    key = ann.parent_id if ann.parent_id is not None else ann_id
    hands = entries.setdefault(key, export.hand_entry())
    side = ann.hand_side or 'right'
    if hands[side] is not None:
      raise ValueError(f'to_entries: two {side} hands for {key!r} (second from {ann_id!r})')
    hands[side] = entry
  return entries


def write(annotations, out_dir, name):
  """Write `<out_dir>/<name>.json` (released layout) and `<name>.npz`, atomically.

  Returns:
    (json path, npz path).
  """
  entries = to_entries(annotations)
  json_path = export.write_coco_style(f'{out_dir}/{name}.json', entries)
  npz_path = export.write_npz(f'{out_dir}/{name}.npz', entries)
  return json_path, npz_path




__all__ = ['Annotation', 'predict', 'full_pose_model', 'original_cameras',
           'add_unique',
           'annotate', 'to_entries', 'write']
