"""Per-part scores of whole-body pseudo-GTs against GT SMPL-X parameters (synthetic sets).

    scores = wholebody_eval.score('gt_smplx.json', 'models/', body_file=..., hand_file=...,
                                  face_file=..., merged_file=...)

All errors in millimetres, all from `evaluate`'s metrics; every prediction is compared with
the same points of the GT SMPL-X mesh:

  body   the SMPL-X body annotation ('annotation') and the merged file ('merged'):
         `evaluate.evaluate_entries` on the H36M_17 joints SMPL-X gives (MPJPE, PA-MPJPE,
         pelvis-centred) and the whole mesh (MPVPE, PA-MPVPE).
  hands  the 21 HAND_21 keypoints of each annotated hand, wrist-centred (MPJPE: the hand's
         orientation and finger pose and size count) and Procrustes-aligned (PA-MPJPE:
         the finger pose), of the MANO annotation ('annotation', left hands on the left
         MANO model), the merged SMPL-X ('merged') and the SMPL-X body annotation alone
         ('body_only', its own hand estimate), over the same hands.
  face   the 51 inner FACE_68 landmarks (iBUG 18-68: the jaw-line contour depends on how
         each model picks it), centred on their mean (MPJPE: head orientation, shape,
         expression and jaw) and Procrustes-aligned (PA-MPJPE), of the FLAME annotation,
         the merged SMPL-X and the body-only SMPL-X, over the same faces.

The parts' own camera translations differ (each crop has its virtual camera), so no score
uses translation.
"""

import numpy as np

import body_models
from neuralannot_jax import evaluate
from neuralannot_jax import metrics
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.synthetic import common

HAND_SIDES = ('right', 'left')
BODY_JOINT_SET = 'H36M_17'
_CHUNK = 16


def model_points(model, mapping, entries, ids):
  """(N, T, 3) float64: `mapping`'s points of each entry's mesh, in `ids` order.

  Args:
    model: the `BodyModel` of the entries (full hand poses: loaded without PCA).
    mapping: a `joint_sets.JointMapping` of that model's output.
    entries: {id: {smplx name: (P,)}} (`evaluate.load_entries`).
    ids: the ids to take, N of them.
  """
  if not ids:
    return np.zeros((0, mapping.valid.shape[0], 3))
  # One fixed chunk shape (the last chunk padded): one compilation per model.
  forward = common.BatchedForward(model, _CHUNK)
  params = evaluate.stack_entries(entries, ids)
  out = []
  for rows in common.batches(len(ids), forward.batch_size):
    vertices, joints = forward(**{k: v[rows.start:rows.stop] for k, v in params.items()})
    out.append(mapping.apply(joints, vertices))
  return np.concatenate(out)


def _errors(pred, gt, valid, centre):
  """{'count', 'mpjpe', 'pa_mpjpe'}: means over samples of (N, T, 3) point sets.

  centre: 'root' subtracts point 0 of each set (the wrist), 'mean' the mean valid point.
  """
  if len(pred) == 0:
    return {'count': 0, 'mpjpe': None, 'pa_mpjpe': None}
  w = valid[None, :, None]
  if centre == 'root':
    pred_c, gt_c = metrics.root_align(pred, 0), metrics.root_align(gt, 0)
  else:
    pred_c = pred - (pred * w).sum(1, keepdims=True) / valid.sum()
    gt_c = gt - (gt * w).sum(1, keepdims=True) / valid.sum()
  return {'count': int(len(pred)),
          'mpjpe': float(np.mean(metrics.mpjpe(pred_c, gt_c, valid))),
          'pa_mpjpe': float(np.mean(metrics.pa_error(pred, gt, valid)))}


def _without_per_sample(result):
  return {k: v for k, v in result.items() if k != 'per_sample'}


def body_scores(pred, gt, smplx_model):
  """`evaluate.evaluate_entries` on H36M_17 and the mesh, without the per-sample lists."""
  return _without_per_sample(evaluate.evaluate_entries(
      pred, gt, 'smplx', smplx_model, joint_set=BODY_JOINT_SET))


def hand_scores(hands, smplx_sets, gt, smplx_model, mano_models):
  """Wrist-centred and PA errors of HAND_21 keypoints, per source, over the annotated hands.

  Args:
    hands: MANO annotation {f'{person}_{side}': params} (`load_entries(..., 'mano')`).
    smplx_sets: {label: {person: SMPL-X params}}, e.g. the merged and body-only files.
    gt: {person: GT SMPL-X params}.
    mano_models: {'right': BodyModel, 'left': BodyModel}.
  Returns:
    {'annotation' | label: {'count', 'mpjpe', 'pa_mpjpe', 'right': {...}, 'left': {...}}}.
  """
  sources = {'annotation': {}, **{label: {} for label in smplx_sets}}
  pooled = {name: {'pred': [], 'gt': []} for name in sources}
  valid = joint_sets.model_joint_mapping('mano', 'HAND_21').valid
  for side in HAND_SIDES:
    persons = [k[:-len(side) - 1] for k in hands if k.endswith(f'_{side}')]
    persons = [p for p in persons if p in gt and all(p in s for s in smplx_sets.values())]
    smplx_map = joint_sets.model_joint_mapping('smplx', 'HAND_21', side=side,
                                               num_landmarks=smplx_model.num_landmarks)
    target = model_points(smplx_model, smplx_map, gt, persons)
    preds = {'annotation': model_points(
        mano_models[side], joint_sets.model_joint_mapping('mano', 'HAND_21'),
        {p: hands[f'{p}_{side}'] for p in persons}, persons)}
    for label, entries in smplx_sets.items():
      preds[label] = model_points(smplx_model, smplx_map, entries, persons)
    for name, pred in preds.items():
      sources[name][side] = _errors(pred, target, valid, 'root')
      pooled[name]['pred'].append(pred)
      pooled[name]['gt'].append(target)
  for name, p in pooled.items():
    sources[name].update(_errors(np.concatenate(p['pred']), np.concatenate(p['gt']), valid,
                                 'root'))
  return sources


def face_scores(faces, smplx_sets, gt, smplx_model, flame_model):
  """Centred and PA errors of the inner face landmarks, per source, over the annotated faces.

  Args:
    faces: FLAME annotation {f'{person}_face' or person: params} (`load_entries`).
    smplx_sets, gt, smplx_model: as `hand_scores`.
    flame_model: the FLAME `BodyModel` of the annotation.
  Returns:
    {'annotation' | label: {'count', 'mpjpe', 'pa_mpjpe'}}.
  """
  keys = {str(k)[:-len('_face')] if str(k).endswith('_face') else str(k): k for k in faces}
  persons = [p for p in keys if p in gt and all(p in s for s in smplx_sets.values())]
  smplx_map = joint_sets.model_joint_mapping('smplx', 'FACE_68',
                                             num_landmarks=smplx_model.num_landmarks)
  flame_map = joint_sets.model_joint_mapping('flame', 'FACE_68',
                                             num_landmarks=flame_model.num_landmarks)
  # Contour landmarks are model-specific: only the inner ones both models give.
  valid = smplx_map.valid * flame_map.valid
  valid[:17] = 0
  target = model_points(smplx_model, smplx_map, gt, persons)
  preds = {'annotation': model_points(flame_model, flame_map,
                                      {p: faces[keys[p]] for p in persons}, persons)}
  for label, entries in smplx_sets.items():
    preds[label] = model_points(smplx_model, smplx_map, entries, persons)
  return {name: _errors(pred, target, valid, 'mean') for name, pred in preds.items()}


def score(gt_file, model_root, *, body_file, hand_file, face_file, merged_file,
          gender='neutral'):
  """Every part's scores (module docstring) from the released-layout files.

  Args:
    gt_file: GT SMPL-X {ann_id: {'smplx_param': ..., ...}} (the synthetic set's gt_smplx.json).
    model_root: the folder holding smplx/, mano/ and flame/ models (smplx library layout).
    body_file, merged_file: SMPL-X files keyed by ann_id; hand_file: MANO {person: {'right',
      'left'}}; face_file: FLAME keyed f'{person}_face'. A missing part file (None) is
      left out of the scores.
  Returns:
    {'body': {'annotation', 'merged'}, 'hands': {...}, 'face': {...}, 'units': 'mm'}.
  """
  gt = evaluate.load_entries(gt_file, 'smplx', what='GT file')
  smplx_model = body_models.load(model_root, 'smplx', gender=gender)
  body = evaluate.load_entries(body_file, 'smplx', what='body annotation file')
  merged = evaluate.load_entries(merged_file, 'smplx', what='merged file')
  result = {'units': 'mm', 'body': {'annotation': body_scores(body, gt, smplx_model),
                                    'merged': body_scores(merged, gt, smplx_model)}}
  smplx_sets = {'merged': merged, 'body_only': body}
  if hand_file is not None:
    hands = evaluate.load_entries(hand_file, 'mano', what='hand annotation file')
    result['hands'] = hand_scores(hands, smplx_sets, gt, smplx_model,
                                  evaluate.load_models(model_root, 'mano'))
  if face_file is not None:
    faces = evaluate.load_entries(face_file, 'flame', what='face annotation file')
    result['face'] = face_scores(faces, smplx_sets, gt, smplx_model,
                                 body_models.load(model_root, 'flame'))
  return result


def format_scores(result):
  """The text table of `score`'s result."""
  lines = ['whole-body scores (mm)      MPJPE   PA-MPJPE   MPVPE   PA-MPVPE']
  for label, r in result['body'].items():
    lines.append(f'  body, {label:<19} {r["mpjpe"]:7.1f} {r["pa_mpjpe"]:9.1f} '
                 f'{r["mpvpe"]:8.1f} {r["pa_mpvpe"]:9.1f}   ({r["count"]} persons, '
                 f'{BODY_JOINT_SET})')
  for part, what in (('hands', 'wrist-centred HAND_21'), ('face', 'centred inner FACE_68')):
    for label, r in result.get(part, {}).items():
      if r['count']:
        lines.append(f'  {part}, {label:<{18 - len(part) + 4}} {r["mpjpe"]:7.1f} '
                     f'{r["pa_mpjpe"]:9.1f}        -         -   ({r["count"]}, {what})')
  return '\n'.join(lines)


__all__ = ['BODY_JOINT_SET', 'model_points', 'body_scores', 'hand_scores', 'face_scores',
           'score', 'format_scores']
