"""Scores of pseudo-GT parameters against known GT: MPJPE, PA-MPJPE, MPVPE, PA-MPVPE, AUC.

    python -m neuralannot_jax.evaluate --pred ours.json --gt gt.json --family smpl \
        --model_path models/ [--joint_set H36M_17 --regressor J_regressor_h36m.npy] \
        [--out result.json]

Three layers, each usable alone:
  * `neuralannot_jax.metrics`: pure numpy functions of point sets (MPJPE, Procrustes,
    PCK, AUC), metres in, millimetres out.
  * `evaluate_params`: two stacked parameter sets of one family -> one jitted, chunked
    forward pass each -> per-sample errors and their means.
  * `evaluate_files` / `evaluate_entries`: released-layout files (see `export`) or
    {id: params} dicts, matched by id; MANO left hands use the left model. A GT record
    with a 'gender' (3DPW's: `gt_from_samples`, or a file's `<family>_param.gender`) is
    posed on that gender's model from the same model folder; predictions stay on the
    model they were annotated with.

Conventions (those of the hand and body papers):
  MPJPE / MPVPE   joints / vertices of both meshes moved so that the model's root joint
                  (Output.joints[root_index], the pelvis / wrist / head root) is at the
                  origin, then the mean Euclidean distance. Translation cancels out;
                  global rotation does not.
  PA-*            the prediction aligned to the GT by the best similarity transform
                  (rotation, uniform scale, translation; Umeyama), then the mean distance.
  AUC             MANO only by default: area under the PCK curve of the PA-aligned joints
                  (and vertices), thresholds 0..50 mm in 20 steps of 2.5 mm, pooled over
                  every valid point of every sample, normalised to [0, 1].
"""

import argparse
import collections
import json
import os
import sys

from absl import logging
import jax
import numpy as np

import body_models
from neuralannot_jax import export
from neuralannot_jax import metrics
from neuralannot_jax import plausibility
from neuralannot_jax.data import joint_sets

METRICS = ('mpjpe', 'pa_mpjpe', 'mpvpe', 'pa_mpvpe')
HAND_SIDES = ('right', 'left')
# The key of a record that names the model its parameters are for. Gendered GT betas
# (3DPW's) on another gender's template make another body, so GT meshes need it.
GENDER_KEY = 'gender'
GENDERS = ('neutral', 'male', 'female')
# A parameter beyond this is no pose or shape (angles are radians, betas standard
# deviations, translations metres): the mesh it gives is garbage or overflows, and one such
# entry would swamp the means or stop the SVD of the alignment.
ABSURD_PARAM = 1e6
# Entries named in the warning about skipped ones; the result lists them all.
NAMED_SKIPS = 5
# Families with a face contour: the 17 pose-dependent jaw-line landmarks. Without it the
# jaw line of FACE_68 / COCO_WHOLEBODY_133 has no model point, so it goes unsupervised and
# unscored.
FACE_CONTOUR_FAMILIES = ('smplx', 'flame')


class EvaluationError(ValueError):
  """Bad evaluation input: the message names the file, the entry and the key."""


# ------------------------------------------------------------------------ parameter sets


_FORWARD = jax.jit(body_models.forward)


def _bucket(n, chunk_size):
  """Padded batch size for n samples: a power of two >= 8, at most chunk_size.

  Few distinct sizes means few compilations of the forward pass.
  """
  size = 8
  while size < n:
    size *= 2
  return max(n, min(size, chunk_size))


def _stack_params(params, model, what):
  """{name: (N, ...) array} -> {name: (N, size) float32} with every model parameter.

  Absent parameters are zeros and short betas / expression are zero padded, so that every
  call has the same pytree and shapes (one compilation per bucket size).
  """
  shapes = model.param_shapes()
  unknown = sorted(set(params) - set(shapes))
  if unknown:
    raise EvaluationError(f'{what}: {model.family} takes no parameter(s) {unknown}; '
                          f'it takes {sorted(shapes)}')
  counts = {k: np.asarray(v).shape[0] for k, v in params.items() if v is not None}
  if len(set(counts.values())) > 1:
    raise EvaluationError(f'{what}: parameters have different sample counts {counts}')
  n = next(iter(counts.values()), 0)
  out = {}
  for name, (size,) in shapes.items():
    value = params.get(name)
    if value is None:
      out[name] = np.zeros((n, size), np.float32)
      continue
    with np.errstate(over='ignore'):   # beyond float32 is inf: `row_problems` names it
      value = np.asarray(value, np.float32).reshape(n, -1)
    if value.shape[1] > size or (value.shape[1] < size and name not in ('betas', 'expression')):
      raise EvaluationError(f'{what}: {name} has {value.shape[1]} numbers per sample; the '
                            f'{model.family} model takes {size}')
    out[name] = np.pad(value, ((0, 0), (0, size - value.shape[1])))
  return n, out


def _dispatch_chunk(model, params, start, stop, chunk_size):
  """Start the forward pass of samples start:stop; JAX runs it while Python goes on."""
  n = stop - start
  size = _bucket(n, chunk_size)
  batch = {k: np.pad(v[start:stop], ((0, size - n), (0, 0))) for k, v in params.items()}
  return n, _FORWARD(model, **batch)


def _fetch_chunk(dispatched):
  """Output.joints (n, K, 3) and vertices (n, V, 3), float64, of a dispatched chunk."""
  n, out = dispatched
  return np.asarray(out.joints, np.float64)[:n], np.asarray(out.vertices, np.float64)[:n]


def row_problems(params, what):
  """{row: why} for the rows of stacked params {name: (N, P)} that cannot be scored.

  A row is unscorable when a value is NaN or infinite, or beyond ABSURD_PARAM.
  """
  problems = {}
  for name in sorted(params):
    value = params[name]
    with np.errstate(invalid='ignore'):
      size = np.abs(value).max(1, initial=0.0)
    for row in np.flatnonzero(~np.isfinite(value).all(1)):
      problems.setdefault(int(row), f'{what} {name} is not finite')
    for row in np.flatnonzero(np.isfinite(size) & (size > ABSURD_PARAM)):
      problems.setdefault(int(row), f'{what} {name} has |value| {size[row]:.3g} > '
                          f'{ABSURD_PARAM:g}')
  return problems


def _zero_rows(params, rows):
  """params with the given rows zeroed: those samples still pass (cheaply) through the
  forward pass, so that every chunk keeps its shape, and are dropped afterwards."""
  out = {k: v.copy() for k, v in params.items()}
  for v in out.values():
    v[rows] = 0.0
  return out


def _finite_samples(*points):
  """(n,) True where every (n, ..., 3) array holds only finite numbers for that sample."""
  return np.logical_and.reduce([np.isfinite(p).reshape(len(p), -1).all(1) for p in points])


def _pck_counts(errors_mm, valid, thresholds):
  """(n, T) number of valid points per sample with error <= each threshold."""
  w = metrics.point_weights(valid, errors_mm.shape + (1,)) > 0
  return ((errors_mm[..., None] <= thresholds) & w[..., None]).sum(-2)


def _chunk_metrics(pred_out, gt_out, model, mapping, root_index, thresholds):
  """Per-sample metrics of one chunk: {name: (n,) or (n, T)}, millimetres."""
  (pj, pv), (gj, gv) = pred_out, gt_out
  # A non-finite mesh (from finite but extreme parameters) would stop the batched SVD
  # for the whole chunk: it is zeroed here and the sample dropped by `_summarise`.
  finite = _finite_samples(pj, pv, gj, gv)
  if not finite.all():
    pj, pv, gj, gv = (np.where(finite[:, None, None], p, 0.0) for p in (pj, pv, gj, gv))
  # The root comes from the model's own joints, whatever set is scored, so that joints
  # and vertices are centred on the same point.
  p_root, g_root = pj[:, root_index], gj[:, root_index]
  if mapping is None:
    pjs, gjs, valid = pj[:, :model.num_joints], gj[:, :model.num_joints], None
  else:
    pjs, gjs, valid = mapping.apply(pj, pv), mapping.apply(gj, gv), mapping.valid
  mm = metrics.MM_PER_M
  joint_err = metrics.point_errors(metrics.root_align(pjs, p_root),
                                   metrics.root_align(gjs, g_root))
  vert_err = metrics.point_errors(metrics.root_align(pv, p_root), metrics.root_align(gv, g_root))
  pa_joint_err = metrics.point_errors(metrics.procrustes_align(pjs, gjs, valid), gjs) * mm
  pa_vert_err = metrics.point_errors(metrics.procrustes_align(pv, gv), gv) * mm
  out = {'mpjpe': metrics.mean_error(joint_err, valid, mm),
         'pa_mpjpe': metrics.mean_error(pa_joint_err, valid, 1.0),
         'mpvpe': metrics.mean_error(vert_err, None, mm),
         'pa_mpvpe': metrics.mean_error(pa_vert_err, None, 1.0),
         '_finite_mesh': finite}
  if thresholds is not None:
    out['_pck_joints'] = _pck_counts(pa_joint_err, valid, thresholds)
    out['_pck_vertices'] = _pck_counts(pa_vert_err, None, thresholds)
    out['_num_joints'] = metrics.point_weights(valid, pa_joint_err.shape + (1,)).sum(-1)
    out['_num_vertices'] = np.full(len(pv), float(pv.shape[1]))
  return out


def _default_thresholds(family, auc_thresholds):
  if auc_thresholds is None:
    return metrics.HAND_AUC_THRESHOLDS_MM if family == 'mano' else None
  thresholds = metrics.as_float64(auc_thresholds).reshape(-1)
  return thresholds if thresholds.size else None


def _per_sample(pred, gt, model, *, joint_mapping, root_index, chunk_size, thresholds,
                gt_model=None):
  """{metric: (N,) mm, '_pck_*': (N, T) counts, ...} for stacked pred / gt params.

  gt_model: the model the GT is posed on when not `model` (a gendered one, same family).
  """
  gt_model = model if gt_model is None else gt_model
  if gt_model.family != model.family or gt_model.num_vertices != model.num_vertices:
    raise EvaluationError(f'the GT model ({gt_model}) and the prediction model ({model}) '
                          'are not of one family and mesh')
  n, pred = _stack_params(pred, model, 'pred')
  n_gt, gt = _stack_params(gt, gt_model, 'gt')
  if n != n_gt:
    raise EvaluationError(f'pred has {n} samples and gt {n_gt}')
  problems = {**row_problems(gt, 'gt'), **row_problems(pred, 'pred')}
  if problems:
    pred, gt = _zero_rows(pred, sorted(problems)), _zero_rows(gt, sorted(problems))
  num_out = len(model.joint_names)
  if not 0 <= root_index < num_out:
    raise EvaluationError(f'root_index {root_index} is outside the {model.family} '
                          f'model\'s {num_out} output joints')
  if joint_mapping is not None and joint_mapping.num_model_joints != num_out:
    raise EvaluationError(f'the {joint_mapping.family} mapping to {joint_mapping.joint_set} '
                          f'expects {joint_mapping.num_model_joints} model joints; this '
                          f'{model.family} model outputs {num_out}')
  starts = list(range(0, n, chunk_size))
  dispatch = lambda start: tuple(
      _dispatch_chunk(m, p, start, min(n, start + chunk_size), chunk_size)
      for m, p in ((model, pred), (gt_model, gt)))
  chunks, pending = [], dispatch(starts[0]) if starts else None
  for k in range(len(starts)):
    current = pending
    # The next chunk's forward passes run on the device while numpy scores this one.
    pending = dispatch(starts[k + 1]) if k + 1 < len(starts) else None
    chunks.append(_chunk_metrics(_fetch_chunk(current[0]), _fetch_chunk(current[1]),
                                 model, joint_mapping, root_index, thresholds))
  if not chunks:
    return {m: np.zeros(0) for m in METRICS}
  out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  finite_mesh = out.pop('_finite_mesh')
  # Why each sample cannot be scored, '' for those that can (`_summarise` drops the rest).
  out['_problem'] = np.array([problems.get(k, '' if finite_mesh[k] else 'the mesh is not '
                                           'finite') for k in range(n)], dtype=object)
  if model.family in plausibility.FAMILIES and 'body_pose' in pred:
    out['implausible'] = plausibility.implausible(pred['body_pose'],
                                                  model.family).astype(np.float64)
  return out


def _drop_unscorable(per_sample, ids):
  """(per_sample, ids) without the samples `_per_sample` flagged, and {id: why} of those."""
  problem = per_sample.pop('_problem', None)
  if problem is None or not any(problem):
    return per_sample, list(ids), {}
  keep = np.array([not p for p in problem])
  skipped = {ids[k]: problem[k] for k in np.flatnonzero(~keep)}
  return ({k: v[keep] for k, v in per_sample.items()},
          [i for i, ok in zip(ids, keep) if ok], skipped)


def _report_skipped(skipped, total):
  """Log the skipped entries (the first few by name); EvaluationError when none is left."""
  named = ', '.join(f'{i!r} ({why})' for i, why in list(skipped.items())[:NAMED_SKIPS])
  more = f' and {len(skipped) - NAMED_SKIPS} more' if len(skipped) > NAMED_SKIPS else ''
  if len(skipped) == total:
    raise EvaluationError(f'none of the {total} entries can be scored: every one has '
                          f'non-finite or absurd values, e.g. {named}{more}')
  logging.warning('evaluate: skipped %d of %d entries with non-finite or absurd values '
                  '(|value| > %g): %s%s', len(skipped), total, ABSURD_PARAM, named, more)


def _summarise(per_sample, ids, info, thresholds):
  """Means and AUCs of per-sample metrics -> the result dict (see `evaluate_params`).

  Samples flagged unscorable are left out and counted ('skipped_nonfinite', with their
  ids and why in 'skipped_nonfinite_ids').
  """
  total = len(ids)
  per_sample, ids, skipped = _drop_unscorable(dict(per_sample), list(ids))
  if skipped:
    _report_skipped(skipped, total)
  count = len(per_sample['mpjpe'])
  result = dict(info, count=count, units='mm')
  if skipped:
    result['skipped_nonfinite'] = len(skipped)
    result['skipped_nonfinite_ids'] = {str(i): why for i, why in skipped.items()}
  for m in METRICS:
    values = per_sample[m]
    result[m] = float(np.nanmean(values)) if np.any(np.isfinite(values)) else float('nan')
  if thresholds is not None and '_pck_joints' in per_sample:
    for kind in ('joints', 'vertices'):
      total = per_sample[f'_num_{kind}'].sum()
      curve = per_sample[f'_pck_{kind}'].sum(0) / total if total else np.full(
          len(thresholds), np.nan)
      result[f'auc_pa_{kind}'] = metrics.auc_of_curve(curve, thresholds)
    result['auc_thresholds_mm'] = [float(t) for t in thresholds]
  result['per_sample'] = {'ids': list(ids), **{m: per_sample[m] for m in METRICS}}
  if 'implausible' in per_sample:
    # Percent of bodies with a joint beyond the pose sampler's limits (`plausibility`).
    result['implausible_pct'] = 100.0 * float(np.mean(per_sample['implausible']))
    result['per_sample']['implausible'] = per_sample['implausible'].astype(bool)
  return result


def _mapping_info(model, joint_mapping, root_index):
  if joint_mapping is None:
    scored = f'model ({model.num_joints} kinematic joints)'
  else:
    scored = f'{joint_mapping.joint_set} ({int(joint_mapping.valid.sum())} of ' \
             f'{len(joint_mapping.sources)} joints from the model)'
  return {'family': model.family, 'joints': scored, 'root_index': int(root_index),
          'root_joint': model.joint_names[root_index]}


def evaluate_params(pred, gt, body_model, *, joint_mapping=None, root_index=0, ids=None,
                    chunk_size=128, auc_thresholds=None):
  """Score predicted parameters against GT parameters of the same family and model.

  Both sets go through one jitted `body_models.forward`, `chunk_size` samples at a time
  (the last chunk padded to a power of two, so few shapes compile and memory stays
  bounded for any N); only per-sample numbers are kept.

  Args:
    pred, gt: {smplx name: (N, ...) array} (`export.from_released_params` per sample,
      stacked); absent parameters are zero.
    body_model: the `BodyModel` both are for.
    joint_mapping: a `joint_sets.JointMapping` (`model_joint_mapping(family, set,
      num_landmarks=model.num_landmarks)`): score that joint set, over its valid joints.
      None: the model's `num_joints` kinematic joints.
    root_index: index into `Output.joints` of the root that MPJPE and MPVPE subtract
      (0: pelvis, wrist, FLAME's root).
    ids: (N,) names of the samples for the per-sample lists; default 0..N-1.
    chunk_size: samples per forward pass.
    auc_thresholds: (T,) mm for the PCK AUC of the PA-aligned joints and vertices;
      None: `metrics.HAND_AUC_THRESHOLDS_MM` for MANO, no AUC for the others.
  Returns:
    {'count': N, 'mpjpe', 'pa_mpjpe', 'mpvpe', 'pa_mpvpe': means over samples (mm),
     'auc_pa_joints', 'auc_pa_vertices', 'auc_thresholds_mm' (with thresholds),
     'family', 'joints' (what was scored), 'root_index', 'root_joint', 'units': 'mm',
     'per_sample': {'ids': [...], 'mpjpe': (N,), 'pa_mpjpe': (N,), 'mpvpe': (N,),
     'pa_mpvpe': (N,)}}. A sample with no valid joint has NaN, left out of the means.
    A sample with a NaN, infinite or absurd (> ABSURD_PARAM) parameter, or a non-finite
    mesh, is skipped: not in 'count' nor 'per_sample', counted in 'skipped_nonfinite'
    with {id: why} in 'skipped_nonfinite_ids' (both only when one is), first few logged.
  Raises:
    EvaluationError when every sample is skipped.
  """
  thresholds = _default_thresholds(body_model.family, auc_thresholds)
  per_sample = _per_sample(pred, gt, body_model, joint_mapping=joint_mapping,
                           root_index=root_index, chunk_size=chunk_size, thresholds=thresholds)
  n = len(per_sample['mpjpe'])
  ids = list(range(n)) if ids is None else list(ids)
  if len(ids) != n:
    raise EvaluationError(f'{len(ids)} ids for {n} samples')
  return _summarise(per_sample, ids, _mapping_info(body_model, joint_mapping, root_index),
                    thresholds)


# ------------------------------------------------------------------------------ entries


def _guess_family(value):
  """(family, what was seen) of one entry dict, or (None, None) when it matches none."""
  for family, key in export.PARAM_KEY.items():
    if key in value:
      return family, repr(key)
  if 'right' in value or 'left' in value:
    return 'mano', "'right' / 'left' hands"
  keys = set(value)
  for family, layout in export.RELEASED_LAYOUT.items():
    names = {k for k, _ in layout}
    if names <= keys:
      if 'pose' in names:   # SMPL and MANO share their keys; the pose length tells
        length = np.size(value['pose'])
        if length != dict(layout)['pose']:
          continue
      return family, f'bare keys {sorted(names)}'
  return None, None


def _entry_params(value, family, path, name):
  """{smplx name: array} of one entry, plus GENDER_KEY where its parameters name one."""
  try:
    params, _, _ = export.from_released_entry(family, value)
  except (KeyError, ValueError, TypeError) as e:
    raise EvaluationError(f'{path}: entry {name!r}: {e}') from None
  inner = value.get(export.PARAM_KEY[family], value)
  if family != 'mano' and GENDER_KEY in inner:
    where = f'{path}: entry {name!r}: {export.PARAM_KEY[family]}.{GENDER_KEY}'
    params[GENDER_KEY] = check_gender(inner[GENDER_KEY], where)
  return params


def _collect(tree, family, path, prefix, out, depth=0):
  """Walk a released file's dicts into out {id: params}; nested MoCap levels join with '/'."""
  for key, value in tree.items():
    name = f'{prefix}/{key}' if prefix else str(key)
    if value is None:   # an annotation without a fit
      continue
    if not isinstance(value, dict):
      raise EvaluationError(f'{path}: entry {name!r} is a {type(value).__name__}, not a '
                            'dict of parameters')
    found, seen = _guess_family(value)
    if found is not None and found != family:
      raise EvaluationError(f'{path}: entry {name!r} holds {seen}: a {found} file, not '
                            f'{family}; pass --family {found}')
    if found is None:
      if depth < 4 and value and all(isinstance(v, dict) or v is None for v in value.values()):
        _collect(value, family, path, name, out, depth + 1)   # MoCap [subject][seq][frame]
        continue
      wanted = ', '.join(k for k, _ in export.RELEASED_LAYOUT[family])
      raise EvaluationError(f'{path}: entry {name!r} has keys {sorted(value)[:8]}: not a '
                            f'{family} entry ({export.PARAM_KEY[family]!r}, or bare '
                            f'{wanted})')
    if family == 'mano' and ('right' in value or 'left' in value):
      for side in HAND_SIDES:
        if value.get(side) is not None:
          out[f'{name}_{side}'] = _entry_params(value[side], family, path, f'{name}.{side}')
    else:
      out[name] = _entry_params(value, family, path, name)


def read_json_tree(path, what='file'):
  """The dict at the top of a json file keyed by annotation id; errors name `what` and path."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} {path}: no such file')
  with open(path) as f:
    try:
      tree = json.load(f)
    except json.JSONDecodeError as e:
      raise EvaluationError(f'{path}: not valid JSON ({e})') from None
  if not isinstance(tree, dict):
    raise EvaluationError(f'{path}: the top level is a {type(tree).__name__}, expected '
                          'a dict keyed by annotation id')
  return tree


def load_entries(path, family, *, what='file'):
  """Read a released-layout file into {id: {smplx name: 1-D float32 array}}.

  Accepts the COCO-style layout ({ann_id: {'smpl_param' | 'smplx_param' | 'flame_param':
  ..., 'cam_param': ...}}), MANO's ({ann_id: {'right': entry or null, 'left': ...}}: ids
  f'{ann_id}_right' / f'{ann_id}_left' for the non-null hands, as the readers name hand
  samples; a hand entry given directly under an id keeps that id), and bare parameter
  dicts per id, also nested as the MoCap releases are (ids 'action/subaction/frame').

  Raises:
    FileNotFoundError, or EvaluationError naming the file, the entry and the key, e.g.
    for a file of another family.
  """
  _check_family(family)
  out = {}
  _collect(read_json_tree(path, what), family, os.fspath(path), '', out)
  return out


def hand_side(sample_id):
  """'left' for ids ending in '_left', else 'right' (plain ids: FreiHAND is right hands)."""
  return 'left' if str(sample_id).endswith('_left') else 'right'


def gt_from_samples(samples, family=None):
  """{ann_id: Sample.gt_params + {GENDER_KEY: Sample.gt_gender}} of the samples with GT.

  Args:
    samples: iterable of `Sample`.
    family: keep only samples whose gt_family is this; None keeps all.
  The gender is left out where the sample has none (its GT is then on the scoring model).
  Hand samples are keyed as `load_entries` names MANO hands, '{id}_left' / '{id}_right'
  (COCO-WholeBody hand ids already are; hand-only sets such as FreiHAND get the suffix of
  their side), so that `evaluate_entries` matches them and picks the left MANO model.
  """
  out = {}
  for s in samples:
    if s.gt_params is None or (family is not None and s.gt_family != family):
      continue
    record = dict(s.gt_params)
    if s.gt_gender is not None:
      record[GENDER_KEY] = s.gt_gender
    out[sample_key(s)] = record
  return out


def check_gender(value, where):
  """value as one of GENDERS, or EvaluationError naming `where`."""
  if not isinstance(value, str) or value.lower() not in GENDERS:
    raise EvaluationError(f'{where}: gender {value!r} is not one of {list(GENDERS)}')
  return value.lower()


def split_genders(entries):
  """{id: record} -> ({id: record without GENDER_KEY}, {id: its gender or None})."""
  params = {i: {k: v for k, v in r.items() if k != GENDER_KEY} for i, r in entries.items()}
  return params, {i: r.get(GENDER_KEY) for i, r in entries.items()}


def sample_key(sample):
  """The id of a sample's entry in what `load_entries` reads: its ann_id, for hands
  '{id}_left' / '{id}_right' (COCO-WholeBody hand ids already end so; hand-only sets such
  as FreiHAND get the suffix of their side)."""
  key = sample.ann_id
  if sample.part == 'hand' and not str(key).endswith(('_left', '_right')):
    key = f'{key}_{sample.hand_side or "right"}'
  return key


def _check_family(family):
  if family not in export.RELEASED_LAYOUT:
    raise EvaluationError(f'unknown family {family!r}; expected one of '
                          f'{sorted(export.RELEASED_LAYOUT)}')


def stack_entries(entries, ids):
  """{id: {name: (P,)}} -> {name: (N, P)} over ids; names any entry has (others zero).

  A record's GENDER_KEY is not a parameter: it is left out.
  """
  names = sorted({k for i in ids for k in entries[i] if k != GENDER_KEY})
  out = {}
  for name in names:
    rows = [entries[i].get(name) for i in ids]
    size = max(np.size(r) for r in rows if r is not None)
    out[name] = np.stack([np.zeros(size, np.float32) if r is None
                          else np.asarray(r, np.float32).reshape(-1) for r in rows])
  return out


def load_with_face_contour(path, family, **options):
  """`body_models.load(path, family, **options)`, for SMPL-X and FLAME with the face contour.

  A FLAME file without its contour embedding (flame_dynamic_embedding.npy beside it) loads
  without, with a warning: its jaw-line points are then left out, as they were before.
  """
  if family not in FACE_CONTOUR_FAMILIES:
    return body_models.load(path, family, **options)
  try:
    return body_models.load(path, family, use_face_contour=True, **options)
  except ValueError as e:
    if 'dynamic_lmk_faces_idx' not in str(e):   # body_models' "no contour embedding"
      raise
  logging.warning('%s: the %s model has no face-contour embedding (for FLAME '
                  'flame_dynamic_embedding.npy beside the model file): the 17 jaw-line '
                  'points of the face are left out', path, family)
  return body_models.load(path, family, **options)


def load_models(model_path, family, *, gender='neutral', sides=HAND_SIDES):
  """{side: BodyModel} for MANO (the sides asked for), else {None: BodyModel} (SMPL-X and
  FLAME with the face contour: `load_with_face_contour`).

  Args:
    model_path: a model file or a folder in the smplx layout. For MANO a folder gives
      MANO_RIGHT and MANO_LEFT; a single file serves only the side its name says.
  """
  if family != 'mano':
    return {None: load_with_face_contour(model_path, family, gender=gender)}
  models = {}
  for side in sides:
    if os.path.isfile(model_path):
      named = body_models.io.hand_from_name(model_path)
      if named is not None and named != (side == 'right'):
        raise EvaluationError(f'{model_path} is one MANO file for the '
                              f'{"right" if named else "left"} hand, but {side} hands are '
                              'to be scored: pass the folder holding MANO_RIGHT and '
                              'MANO_LEFT')
    models[side] = body_models.load(model_path, 'mano', is_right_hand=side == 'right')
  return models


def _as_models(model, family, gender, sides):
  """A path, a BodyModel, or {side: BodyModel} -> {side or None: BodyModel}."""
  if isinstance(model, body_models.BodyModel):
    if family == 'mano' and set(sides) - {'right'}:
      raise EvaluationError('left hands need the left MANO model: pass '
                            "{'right': model, 'left': model} or a model folder")
    return {s: model for s in (sides if family == 'mano' else (None,))}
  if isinstance(model, dict):
    return model
  return load_models(model, family, gender=gender, sides=sides)


def gt_model_of(model, pred_model, family, gender, gt_gender, example):
  """The model that GT records of gender `gt_gender` are posed on.

  Args:
    model: what `evaluate_entries` was given (a path, a BodyModel, ...).
    pred_model: the loaded model the predictions are scored on.
    gender: the predictions' gender (`evaluate_entries`'s), where pred_model names none.
    gt_gender: one of GENDERS, or None for GT that names no gender.
    example: a GT id of that gender, for the error message.
  Returns:
    pred_model where the genders agree (or the GT names none), else the gendered file of
    the folder `model` is (or is in).
  Raises:
    EvaluationError naming the files looked for where it is missing: a neutral body in its
    place would score the gendered GT against another mesh.
  """
  own = pred_model.gender or gender
  if gt_gender is None or gt_gender == own:
    return pred_model
  if isinstance(model, (str, os.PathLike)):
    folder = model if os.path.isdir(model) else os.path.dirname(os.path.abspath(model))
    try:
      return load_with_face_contour(folder, family, gender=gt_gender)
    except (OSError, ValueError) as e:   # ModelFileError is a ValueError
      raise EvaluationError(f'GT sample {example!r} is {gt_gender}: it is scored on the '
                            f'{gt_gender} {family} model, which is missing: {e}') from None
  raise EvaluationError(f'GT sample {example!r} is {gt_gender}, but the {family} model '
                        f'given is a loaded {own} one: pass the model folder, holding the '
                        f'{gt_gender} model, instead')


def evaluate_entries(pred, gt, family, model, *, gender='neutral', joint_set=None,
                     regressor=None, root_index=0, chunk_size=128, auc_thresholds=None):
  """Score {id: params} predictions against {id: params} GT over the ids in both.

  Args:
    pred, gt: {id: {smplx name: (P,) array}} (`load_entries`, `gt_from_samples`). A GT
      record's GENDER_KEY ('neutral', 'male', 'female'; not for MANO) poses that record
      on the model of its gender (`gt_model_of`); a prediction's is ignored.
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    model: a model path (file or smplx-layout folder), a BodyModel, or for MANO
      {'right': BodyModel, 'left': BodyModel}. MANO ids ending in '_left' use the left.
    gender: which model of the family to load from a path: the predictions' (and that of
      GT records without a gender).
    joint_set: a `joint_sets` name to score instead of the model's kinematic joints.
    regressor: (T, V) array or .npy path of a vertex regressor for joint_set.
    root_index, chunk_size, auc_thresholds: see `evaluate_params`.
  Returns:
    `evaluate_params`'s dict over the common ids (as strings, in GT order), plus 'gender'
    (the predictions'), 'gt_genders' ({gender: scored GT records of it}, where the GT
    names genders), 'missing_in_pred' (GT ids without a prediction) and 'missing_in_gt'
    (the reverse).
  Raises:
    EvaluationError when no id is in both, or a GT gender's model is missing.
  """
  _check_family(family)
  # Ids compare as strings: JSON keys are strings, Sample.ann_id often an int.
  pred, _ = split_genders({str(k): v for k, v in pred.items()})
  gt, gt_genders = split_genders({str(k): v for k, v in gt.items()})
  gt_genders = {i: None if g is None or family == 'mano'   # MANO has no gendered models
                else check_gender(g, f'GT record {i!r}') for i, g in gt_genders.items()}
  ids = [i for i in gt if i in pred]
  missing_in_pred = len(gt) - len(ids)
  missing_in_gt = len([i for i in pred if i not in gt])
  if not ids:
    raise EvaluationError(f'no sample id is in both the predictions ({len(pred)} ids, e.g. '
                          f'{list(pred)[:3]}) and the GT ({len(gt)} ids, e.g. {list(gt)[:3]})')
  groups = {}   # (hand side or None, GT gender or None) -> ids
  for i in ids:
    groups.setdefault((hand_side(i) if family == 'mano' else None, gt_genders[i]),
                      []).append(i)
  models = _as_models(model, family, gender,
                      [s for s in HAND_SIDES if any(side == s for side, _ in groups)])
  thresholds = _default_thresholds(family, auc_thresholds)
  parts, order, info = [], [], None
  for (side, gt_gender), group in groups.items():
    body_model = models[side]
    gt_model = gt_model_of(model, body_model, family, gender, gt_gender, group[0])
    mapping = None
    if joint_set is not None:
      mapping = joint_sets.model_joint_mapping(
          family, joint_set, num_landmarks=body_model.num_landmarks, regressor=regressor)
    parts.append(_per_sample(stack_entries(pred, group), stack_entries(gt, group), body_model,
                             joint_mapping=mapping, root_index=root_index,
                             chunk_size=chunk_size, thresholds=thresholds,
                             gt_model=gt_model))
    order += group
    info = info or _mapping_info(body_model, mapping, root_index)
  # Back to GT order: sides and genders were scored group by group.
  position = {i: k for k, i in enumerate(order)}
  perm = np.array([position[i] for i in ids])
  per_sample = {k: np.concatenate([p[k] for p in parts])[perm] for k in parts[0]}
  result = _summarise(per_sample, ids, info, thresholds)
  result.update(gender=None if family == 'mano' else gender,
                missing_in_pred=missing_in_pred, missing_in_gt=missing_in_gt)
  counts = collections.Counter(gt_genders[i] for i in ids if gt_genders[i] is not None)
  if counts:
    result['gt_genders'] = dict(sorted(counts.items()))
  return result


def evaluate_files(pred_path, gt_path, family, model_path, *, gender='neutral',
                   joint_set=None, regressor=None, root_index=0, chunk_size=128,
                   auc_thresholds=None):
  """Score a released-layout prediction file against a GT file of the same layout.

  Args: see `load_entries` and `evaluate_entries`; model_path is a model file or folder.
  Returns:
    `evaluate_entries`'s dict plus 'pred_path' and 'gt_path'.
  """
  for path, what in ((pred_path, 'prediction file'), (gt_path, 'GT file')):
    if not os.path.isfile(path):   # both checked before the slow reading of either
      raise FileNotFoundError(f'{what} {os.fspath(path)}: no such file')
  gt = load_entries(gt_path, family, what='GT file')
  pred = load_entries(pred_path, family, what='prediction file')
  result = evaluate_entries(pred, gt, family, model_path, gender=gender, joint_set=joint_set,
                            regressor=regressor, root_index=root_index,
                            chunk_size=chunk_size, auc_thresholds=auc_thresholds)
  result.update(pred_path=os.fspath(pred_path), gt_path=os.fspath(gt_path))
  return result


# ---------------------------------------------------------------------------------- CLI


def format_table(result):
  """The text summary of an `evaluate_*` result: count, errors in mm, AUC where present."""
  lines = [f'{result["count"]} {result.get("family", "")} samples scored on '
           f'{result.get("joints", "?")}, root joint {result.get("root_joint", "?")}']
  rows = [('MPJPE', 'mpjpe'), ('PA-MPJPE', 'pa_mpjpe'), ('MPVPE', 'mpvpe'),
          ('PA-MPVPE', 'pa_mpvpe')]
  width = 28
  lines.append(f'  {"metric":<{width}} {"value":>8}')
  for label, key in rows:
    lines.append(f'  {label + " (mm)":<{width}} {result[key]:8.2f}')
  thresholds = result.get('auc_thresholds_mm')
  if thresholds:
    span = f'{thresholds[0]:g}-{thresholds[-1]:g} mm'
    for label, key in (('AUC PA joints', 'auc_pa_joints'),
                       ('AUC PA vertices', 'auc_pa_vertices')):
      lines.append(f'  {f"{label} ({span})":<{width}} {result[key]:8.3f}')
  if 'implausible_pct' in result:
    label = f'implausible (%, >{plausibility.MARGIN_DEG:g} deg)'
    lines.append(f'  {label:<{width}} {result["implausible_pct"]:8.1f}')
  if result.get('skipped_nonfinite'):
    named = ', '.join(list(result['skipped_nonfinite_ids'])[:NAMED_SKIPS])
    lines.append(f'skipped: {result["skipped_nonfinite"]} entries with non-finite or absurd '
                 f'values (e.g. {named})')
  if 'missing_in_pred' in result:
    lines.append(f'missing: {result["missing_in_pred"]} GT ids have no prediction, '
                 f'{result["missing_in_gt"]} predictions have no GT')
  return '\n'.join(lines)


def _parser():
  parser = argparse.ArgumentParser(
      prog='python -m neuralannot_jax.evaluate',
      description='Score pseudo-GT parameters against known GT parameters of the same '
      'family: MPJPE and MPVPE (both meshes centred on the model\'s root joint), PA-MPJPE '
      'and PA-MPVPE (prediction aligned by the best similarity transform), all in mm; '
      'for MANO also the AUC of the PCK curve over 0-50 mm. Both files are in the '
      'released NeuralAnnot layout (as neuralannot_jax.export writes them): COCO-style '
      '{ann_id: {"smpl_param": ..., "cam_param": ...}}, MANO {ann_id: {"right": ..., '
      '"left": ...}} (ids <ann_id>_right / _left), or bare parameters per id. Samples '
      'are matched by id; the counts missing on either side are reported.')
  parser.add_argument('--pred', required=True, help='prediction file (.json)')
  parser.add_argument('--gt', required=True, help='ground-truth file (.json), same layout')
  parser.add_argument('--family', required=True, choices=sorted(export.RELEASED_LAYOUT),
                      help='body-model family of both files')
  parser.add_argument('--model_path', required=True,
                      help='model file, or folder in the smplx layout (<dir>/smpl/'
                      'SMPL_NEUTRAL.pkl, <dir>/mano/MANO_RIGHT.pkl and MANO_LEFT.pkl, ...)')
  parser.add_argument('--gender', default='neutral', choices=('neutral', 'male', 'female'),
                      help='which model of the family (not MANO) the predictions are '
                      'scored on; GT entries naming a gender (<family>_param.gender) are '
                      'posed on that gender\'s model from the same folder; default neutral')
  parser.add_argument('--joint_set', default=None,
                      help='score this dataset joint set (e.g. H36M_17, COCO_17) instead of '
                      'the model\'s kinematic joints (hands: HAND_21 or MANO_21 to add the '
                      'fingertips); joints the model lacks are left out')
  parser.add_argument('--regressor', default=None,
                      help='.npy (T, V) vertex regressor for --joint_set, e.g. '
                      'J_regressor_h36m_correct.npy')
  parser.add_argument('--out', default=None,
                      help='write the result (summary and per-sample errors) here as JSON')
  return parser


def main(argv=None):
  """CLI entry; returns the exit status (0 ok, 1 bad input)."""
  args = _parser().parse_args(argv)
  try:
    result = evaluate_files(args.pred, args.gt, args.family, args.model_path,
                            gender=args.gender, joint_set=args.joint_set,
                            regressor=args.regressor)
  except (OSError, ValueError, KeyError) as e:   # ModelFileError is a ValueError
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f'error: {message}', file=sys.stderr)
    return 1
  print(format_table(result))
  if args.out:
    export.write_json(args.out, result)
    print(f'wrote {args.out}')
  return 0


__all__ = [
    'ABSURD_PARAM', 'EvaluationError', 'evaluate_params', 'load_entries', 'hand_side',
    'gt_from_samples', 'sample_key', 'stack_entries', 'GENDER_KEY', 'GENDERS', 'check_gender',
    'split_genders', 'gt_model_of', 'load_models', 'FACE_CONTOUR_FAMILIES',
    'load_with_face_contour', 'evaluate_entries', 'evaluate_files', 'row_problems',
    'format_table', 'main',
]


if __name__ == '__main__':
  sys.exit(main())
