"""The SMPLify-X style baseline as an annotator: same samples in, same `Annotation`s out.

`annotate` is the per-sample optimisation counterpart of `neuralannot_jax.annotate.annotate`:
it reads the samples through the same `pipeline.Loader` (in order, annotation crops, left
hands mirrored into right ones), fits each batch with `fit_3d` (MoCap: GT 3D joints) or
`fit_2d` (in the wild: GT 2D joints in crop pixels, the annotator's virtual crop camera),
and returns `Annotation`s in the same frames, so `annotate.write`, `write_mocap`, the
evaluation and the report treat both annotators alike (`--config.annotator=smplify`).

Frames, as the neural annotator's:
  * MoCap: the fit lives in the dataset camera's frame (the crop's, mirrored for left
    hands), so its translation is the real one and cam_param is the dataset's camera.
  * In the wild: the fit projects through the virtual crop camera (`camera.crop_camera`),
    which `camera.to_original_camera` maps to original-image pixels.
Rows of a MoCap set without GT 3D joints are fitted from their 2D joints instead.
"""

import dataclasses
import time

import jax
import numpy as np

from neuralannot_jax import annotate as annotate_lib
from neuralannot_jax import quality as quality_lib
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import pipeline
from neuralannot_jax.fitting import fit2d
from neuralannot_jax.fitting import fit3d
from neuralannot_jax.fitting import refine2d
from neuralannot_jax.method import camera
from neuralannot_jax.method import finger_prior

# SMPLify-X's weights and Geman-McClure scale (100 px) were set on whole photos, where a
# person is several hundred pixels tall and a hand about a tenth of that. The 2D fit
# measures its residuals in pixels of a crop of this side per family (a body ~800 px tall,
# a hand ~200 px), whatever crop the network sees. Measured in the pixels of the demo's
# 64 px crops instead, the body priors weigh ~250x more and the fitted poses keep half
# the GT's spread. Synthetic sets, MPJPE of the fit (mm) at reference 64 / 256 / 1024 px:
# COCO-style bodies 183 / 153 / 149, FreiHAND-style hands 54 / 55 / 66.
REFERENCE_CROP = {'smpl': 1024, 'smplx': 1024, 'mano': 256}


@dataclasses.dataclass(frozen=True)
class Settings:
  """Optimisation settings (`config.fitting` in experiment configs).

  steps_3d, lr_3d: Adam steps / step size of `fit_3d`.
  steps_per_stage, lr_2d: of `fit_2d` (one camera stage + SMPLify-X's four stages; in
    `refine_batch`, the four stages from the network's body).
  sigma_px: Geman-McClure scale in pixels of a `reference_crop` crop.
  reference_crop: the crop side (pixels) the 2D fit's residuals are measured at; 0: the
    family's `REFERENCE_CROP`.
  try_flip: `fit_2d`'s second start facing away from the camera.
  refine_steps, refine_lr: Adam steps / step size of `refine_batch` from 3D joints and,
    for hands (no VPoser), from 2D joints.
  check_palm: hands fitted to 2D joints: keep each fit or its palm twin, whichever bends
    its fingers less far backwards (`finger_prior.choose_palm`; the network's annotation
    does the same); the refinement of hands from 2D joints also starts from the twin.
  """
  steps_3d: int = fit3d.DEFAULT_NUM_STEPS
  lr_3d: float = fit3d.DEFAULT_LR
  steps_per_stage: int = fit2d.DEFAULT_STEPS_PER_STAGE
  lr_2d: float = fit2d.DEFAULT_LR
  sigma_px: float = fit2d.DEFAULTS['sigma']
  reference_crop: int = 0
  try_flip: bool = True
  refine_steps: int = 200
  refine_lr: float = 0.01
  check_palm: bool = True


def _full_hands(body_model, params):
  """PCA hand coefficients -> full 45-d axis-angle poses (the mean stays in the model)."""
  out = dict(params)
  for name, comps in body_model.hand_components.items():
    if name in out:
      out[name] = np.asarray(out[name]) @ np.asarray(comps)
  return out


def fit_batch(body_model, mapping, batch, *, mode, crop_size, settings, vposer_params=None):
  """Fit one pipeline batch.

  Args:
    body_model: body_models.BodyModel (hands with PCA when loaded so).
    mapping: joint_sets.JointMapping of the model to the batch's joint set.
    batch: a `pipeline.make_batch` dict (numpy, B rows).
    mode: 'mocap' (fit 3D where a row has it) or 'wild' (fit 2D).
    crop_size: the crop side in pixels.
    settings: `Settings`.
    vposer_params: VPoser weights for the 2D body fit (None: axis-angle + L2 prior).
  Returns:
    (params {smplx name: (B, n) numpy, hands full}, from_3d (B,) bool: rows fitted to 3D).
  """
  b = batch['mask'].shape[0]
  from_3d = np.zeros(b, bool)
  if mode == 'mocap':
    from_3d = np.asarray(batch['has_3d'], bool) & (np.asarray(batch['valid3d']).sum(-1) > 0)
  params = None
  if from_3d.any():
    fit = fit3d.fit_3d(body_model, batch['joints_3d'], batch['valid3d'] * from_3d[:, None],
                       mapping, num_steps=settings.steps_3d, lr=settings.lr_3d)
    params = _params_only(body_model, fit)
  if not from_3d.all():
    focal, princpt = camera.crop_camera(crop_size)
    reference = settings.reference_crop or REFERENCE_CROP[body_model.family]
    options = {'sigma': settings.sigma_px, 'pixel_scale': reference / float(crop_size)}
    fit = fit2d.fit_2d(body_model, batch['joints_2d'], batch['valid'], mapping,
                       focal=focal, princpt=princpt, vposer_params=vposer_params,
                       steps_per_stage=settings.steps_per_stage, lr=settings.lr_2d,
                       options=options, try_flip=settings.try_flip)
    fit2 = _params_only(body_model, fit)
    params = fit2 if params is None else {
        k: np.where(from_3d.reshape((b,) + (1,) * (v.ndim - 1)), params[k], v)
        for k, v in fit2.items()}
  params = _full_hands(body_model, params)
  if settings.check_palm and body_model.family == 'mano' and not from_3d.all():
    checked, _ = finger_prior.choose_palm(params, body_model.joint_template,
                                          body_model.pose_mean)
    params = {k: np.where(from_3d[:, None], v, np.asarray(checked[k]))
              for k, v in params.items()}
  return params, from_3d


def refine_batch(body_model, mapping, out, batch, *, root, settings, crop_size,
                 focal=camera.FOCAL, vposer_params=None):
  """The network's prediction refined per sample, started from it
  (`--config.annotator=neuralannot_refine`).

  Rows with at least three labelled GT 3D joints are refined by `fit_3d` in the GT joints'
  frame, with an anchor to the prediction in place of the zero-pose prior. The others,
  with labelled 2D joints, are refined in the virtual crop camera (the prediction's own
  frame), trying the prediction turned around too, as the fitter tries both facings:
    * bodies, given a VPoser: `fit2d.fit_2d` started from the prediction, the fitter's
      own stages and prior. On the comparison's COCO-style set this scored 141.5 mm
      MPJPE, 0.4% implausible, against 182.0 mm, 28% for the anchored refinement and
      154.2 mm for the fitter from the mean pose: the network gives the basin, the
      prior keeps the pose plausible (anchoring the latent to the network's instead:
      166.5 mm, 15%);
    * hands (and bodies without a VPoser): `refine2d.refine_2d`, kept near the prediction.

  Args:
    body_model: the model the network predicts for.
    mapping: its `JointMapping` to the batch's set; root: the set's root index.
    out: `annotate.predict`'s output on the host: {smplx name: (B, n)}, 'transl' (B, 3)
      of the virtual crop camera, 'joints' (B, T, 3) without translation.
    batch: the pipeline batch (numpy), 2D joints in pixels of a `crop_size` crop.
    settings: `Settings` (refine_steps, refine_lr; sigma_px, reference_crop, try_flip for
      the 2D rows).
    crop_size: the crop side in pixels; focal: the virtual camera's focal length.
    vposer_params: the pose prior the network's body latent decodes through (None: bodies
      from 2D are refined as hands are).
  Returns:
    `out` with the refined parameters and joints on the rows refined (the others, e.g.
    padding and rows without any labelled joint, as they were).
  """
  model = annotate_lib.full_pose_model(body_model)
  names = [k for k in model.param_shapes() if k != 'expression']
  valid3d = np.asarray(batch['valid3d'], np.float32) * np.asarray(mapping.valid)[None]
  mask = np.asarray(batch['mask'], bool)
  # Three labelled joints fix a rigid pose; the anchor stands in for a missing root.
  rows_3d = (np.asarray(batch['has_3d']) > 0) & ((valid3d > 0).sum(-1) >= 3) & mask
  valid2d = np.asarray(batch['valid'], np.float32) * np.asarray(mapping.valid)[None]
  rows_2d = ~rows_3d & mask & ((valid2d > 0).sum(-1) >= 2)
  refined = {k: np.asarray(v) for k, v in out.items()}

  def take(fit, rows, with_transl=False):
    fit = {k: np.asarray(jax.device_get(v)) for k, v in fit.items()}
    pick = lambda new, old: np.where(rows.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)
    for k in names:
      if k != 'transl' or with_transl:
        refined[k] = pick(fit[k].reshape(np.shape(refined[k])), refined[k])
    refined['joints'] = pick(fit['joints'] - fit['transl'][:, None], refined['joints'])

  if rows_3d.any():
    start = {k: refined[k] for k in names if k != 'transl'}
    # In the GT joints' frame: the predicted root on the GT root, as the annotation does.
    start['transl'] = annotate_lib.gt_translation(refined['joints'], batch['joints_3d'],
                                                  valid3d, root)
    take(fit3d.fit_3d(model, batch['joints_3d'], valid3d * rows_3d[:, None], mapping,
                      num_steps=settings.refine_steps, lr=settings.refine_lr, start=start),
         rows_3d)
  if rows_2d.any():
    cam_focal, princpt = camera.crop_camera(crop_size, focal)
    reference = settings.reference_crop or REFERENCE_CROP[model.family]
    options = {'sigma': settings.sigma_px, 'pixel_scale': reference / float(crop_size)}
    start = {k: refined[k] for k in names}
    rows = valid2d * rows_2d[:, None]
    if vposer_params is not None and model.family in ('smpl', 'smplx'):
      # Bodies: the fitter's own staged schedule and VPoser prior, started from the
      # network's body instead of the mean pose (as SPIN starts SMPLify from its regressor).
      fit = fit2d.fit_2d(model, batch['joints_2d'], rows, mapping, focal=cam_focal,
                         princpt=princpt, vposer_params=vposer_params,
                         steps_per_stage=settings.steps_per_stage, lr=settings.lr_2d,
                         options=options, try_flip=settings.try_flip, start=start)
    else:
      fit = refine2d.refine_2d(model, batch['joints_2d'], rows, mapping, start, focal=cam_focal,
                            princpt=princpt, steps=settings.refine_steps,
                            lr=settings.refine_lr, options=options,
                            try_flip=settings.try_flip, try_palm=settings.check_palm)
    take(fit, rows_2d, with_transl=True)
  return refined


def _params_only(body_model, fit):
  names = body_model.param_shapes()
  return {k: np.asarray(jax.device_get(v)) for k, v in fit.items() if k in names}


def _annotations(body_model, mapping, params, from_3d, batch, samples, crop_size, root):
  """`Annotation`s of a batch's real rows (same frames and camera as the neural annotator)."""
  dataset_camera = from_3d & np.asarray(batch['has_camera'], bool)
  focal, princpt = annotate_lib.original_cameras(batch, dataset_camera, crop_size)
  full = annotate_lib.full_pose_model(body_model)
  scores = quality_lib.batch_quality(
      quality_lib.mapped_joints(full, mapping, params), params, batch,
      family=body_model.family, mapping=mapping, from_3d=from_3d, root=root,
      crop_size=crop_size)
  result = []
  for row in np.flatnonzero(batch['mask']):
    row_params = {k: v[row] for k, v in params.items()}
    if batch['flipped'][row]:
      row_params = annotate_lib.mirror_params(row_params)
    sample = samples[int(batch['index'][row])]
    result.append(annotate_lib.Annotation(
        params={k: np.asarray(v, np.float32) for k, v in row_params.items()},
        focal=focal[row], princpt=princpt[row], family=body_model.family,
        hand_side=sample.hand_side, parent_id=sample.parent_id,
        camera='dataset' if dataset_camera[row] else 'virtual', quality=scores[row]))
  return result


def annotate(body_model, samples, mapping, *, mode, crop_size, batch_size, settings=None,
             vposer_params=None, num_workers=4, progress=True):
  """Fit every sample, in order, batch by batch.

  Args:
    body_model: body_models.BodyModel (SMPL, SMPL-X or MANO).
    samples: `Sample`s of one joint set (list or sequence).
    mapping: joint_sets.JointMapping of the model to that set (`train.make_step_spec`'s).
    mode: 'mocap' or 'wild' (see `fit_batch`).
    crop_size: crop side in pixels (the 2D fit works in crop pixels).
    batch_size: samples per compiled fit (the last batch is padded).
    settings: `Settings` (default: the fitters' defaults).
    vposer_params: VPoser weights for 2D body fits.
    num_workers: decode threads of the Loader.
    progress: show a tqdm bar.
  Returns:
    (annotations {ann_id: Annotation} in sample order, loader, seconds spent).
  """
  if body_model.family == 'flame':
    raise ValueError('annotator smplify: the baseline fits SMPL, SMPL-X and MANO; FLAME faces '
                     'are annotated by the neural annotator only')
  if mode not in ('mocap', 'wild'):
    raise ValueError(f'annotator smplify: mode {mode!r}; expected mocap or wild')
  settings = settings or Settings()
  loader = pipeline.Loader(samples, batch_size, train=False, out_size=crop_size,
                           num_workers=num_workers, num_devices=1)
  bar = None
  if progress:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    bar = tqdm(total=len(loader.samples), unit='img', desc='fit')
  annotations = {}
  root = joint_sets.get(mapping.joint_set).root or 0
  start = time.perf_counter()
  try:
    for batch, ann_ids in loader:
      params, from_3d = fit_batch(body_model, mapping, batch, mode=mode, crop_size=crop_size,
                                  settings=settings, vposer_params=vposer_params)
      annotate_lib.add_unique(
          annotations, ann_ids,
          _annotations(body_model, mapping, params, from_3d, batch, loader.samples,
                       crop_size, root),
          'annotator smplify')
      if bar is not None:
        bar.update(len(ann_ids))
  finally:
    if bar is not None:
      bar.close()
  return annotations, loader, time.perf_counter() - start


__all__ = ['Settings', 'fit_batch', 'refine_batch', 'annotate']
