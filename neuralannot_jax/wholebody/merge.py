"""Body + hands + face -> whole-body SMPL-X pseudo-GTs, as NeuralAnnot releases them.

NeuralAnnot annotates each part with its own model and network: the body with SMPL-X, each
hand with MANO (left hands as mirrored right hands, mirrored back: `body_models.mirror.mirror_params`),
the face with FLAME. The released COCO-WholeBody file merges them per person into one
SMPL-X parameter set:

  root_pose, body_pose, shape, trans   the SMPL-X body annotation;
  body_pose's two wrists               each hand's global rotation (MANO global_orient)
                                       turned into the wrist's local rotation by the inverse
                                       of the elbow's global rotation from the body result:
                                       R_wrist = R_elbow_global^T R_hand;
  lhand_pose, rhand_pose               the MANO finger rotations (45 axis-angle each);
  jaw_pose, expr                       the FLAME jaw rotation and expression;
  lhand_valid, rhand_valid, face_valid whether the part came from its own annotation, in
                                       `smplx_param` as the release's readers (Hand4Whole's
                                       `process_human_model_output`, OSX, SMPLer-X) look
                                       them up; False keeps the body annotation's own values.

Conventions this relies on (checked by tests/test_wholebody.py on the stand-in models):
  * SMPL-family joints have no rest orientation: a joint's local rotation acts in the same
    axes as the world frame, so MANO's root rotation is directly the hand's global rotation,
    and SMPL-X's finger joints (left 25..39, right 40..54, fingers index, middle, pinky,
    ring, thumb) take MANO's 15 finger rotations in the same order and axes, per side.
  * The final rotation of a joint is its parameter plus the model's pose mean (the hand
    mean unless flat_hand_mean), added in axis-angle. Fingers are carried over so that the
    *final* rotations agree: smplx_param = mano_param + mano_mean - smplx_mean. With both
    loaded with flat_hand_mean=False (as the release's readers and this project do) and
    SMPL-X's hand means equal to MANO's (true of the stand-ins; expected of the official
    files, whose SMPL-X hand PCA comes from MANO, but not checked here for lack of them)
    this is the identity. Passing the MANO models makes it exact for any loading.
  * The camera frames of the parts differ only in intrinsics (focal, principal point of
    each crop's virtual camera, mapped back to the image): their axes are the image's, so
    rotations from different parts compare directly. Translations do not, and hand / face
    translations and shapes are not used. All parts must be camera-space (COCO-style)
    annotations; a MoCap body in world coordinates must be brought to camera space first.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from body_models import rotations
from body_models import skeletons
from neuralannot_jax import export

SIDES = ('right', 'left')
# smplx-library parameter of each side's fingers, and the released key / valid flag.
_HAND_PARAM = {'right': 'right_hand_pose', 'left': 'left_hand_pose'}
_VALID_KEY = {'right': 'rhand_valid', 'left': 'lhand_valid'}
FACE_VALID_KEY = 'face_valid'


def _part_offsets(family):
  """{pose parameter: (first kinematic joint, joint count)} from `skeletons.POSE_PARTS`."""
  offsets, first = {}, 0
  for name, count in skeletons.POSE_PARTS[family]:
    offsets[name] = (first, count)
    first += count
  return offsets


def _part_of_joint(family, joint):
  """(pose parameter, row inside it) that holds kinematic joint `joint`'s rotation."""
  for name, (first, count) in _part_offsets(family).items():
    if first <= joint < first + count:
      return name, joint - first
  raise ValueError(f'{family} has no kinematic joint {joint}')


def wrist_joint(side):
  """SMPL-X kinematic index of a side's wrist (left 20, right 21), from the joint names."""
  if side not in SIDES:
    raise ValueError(f"side must be 'right' or 'left', not {side!r}")
  return skeletons.SMPLX_JOINTS.index(f'{side}_wrist')


def _joint_axis_angle(params, model, joint):
  """(..., 3) final axis-angle of one joint: its parameter (zero if absent) + pose mean."""
  name, row = _part_of_joint(model.family, joint)
  value = params.get(name)
  mean = jnp.asarray(model.pose_mean[joint], jnp.float32)
  if value is None:
    return mean
  value = jnp.asarray(value, jnp.float32)
  value = value.reshape(value.shape[:-1] + (-1, 3))
  return value[..., row, :] + mean


def global_rotation(body_params, smplx_model, joint):
  """Global rotation of one SMPL-X joint, composed along the kinematic chain.

  Args:
    body_params: {smplx name: (..., n) array}, axis-angle (global_orient (..., 3),
      body_pose (..., 63), ...); absent parts are zero (as `body_models.forward` takes them).
    smplx_model: the `body_models.BodyModel` the parameters are for (its parents and
      pose mean are used).
    joint: kinematic joint index.
  Returns:
    (..., 3, 3): R_root @ ... @ R_joint, what `forward(...).global_rotations[..., joint]`
    gives, without skinning the mesh.
  """
  chain = skeletons.kinematic_chain(joint, smplx_model.parents)   # joint ... root
  rot = None
  for j in chain:
    local = rotations.axis_angle_to_matrix(_joint_axis_angle(body_params, smplx_model, j))
    rot = local if rot is None else local @ rot
  return rot


def hand_to_wrist(body_params, smplx_model, hand_global_orient, side):
  """The SMPL-X wrist parameter that gives a hand this global rotation on this body.

  R_wrist_local = R_elbow_global^T @ R_hand_global, with R_elbow_global from the body's
  own kinematic chain (the wrist's parent is the elbow: `smplx_model.parents`). The wrist's
  pose mean (zero for the official body) is subtracted so that `forward` adds it back.

  Args:
    body_params: {smplx name: (..., n)} of the SMPL-X body, camera space, axis-angle.
    smplx_model: its `body_models.BodyModel`.
    hand_global_orient: (..., 3) axis-angle: MANO's global_orient of that side's hand in
      the same camera frame (a left hand: the left MANO model's, i.e. after
      `body_models.mirror.mirror_params` undid the pipeline's flip).
    side: 'right' or 'left'.
  Returns:
    (..., 3) float32 axis-angle for body_pose's row of that wrist.
  """
  wrist = wrist_joint(side)
  parent = smplx_model.parents[wrist]
  parent_rot = global_rotation(body_params, smplx_model, parent)
  hand_rot = rotations.axis_angle_to_matrix(jnp.asarray(hand_global_orient, jnp.float32))
  local = jnp.swapaxes(parent_rot, -1, -2) @ hand_rot
  return rotations.matrix_to_axis_angle(local) - jnp.asarray(smplx_model.pose_mean[wrist],
                                                             jnp.float32)


# Compiled once per shapes: `merge` runs per person, and op by op each wrist cost 42 ms
# (jitted 0.17 ms; COCO-WholeBody has ~10^5 people with hands).
_hand_to_wrist = jax.jit(hand_to_wrist, static_argnames=('side',))


def fingers_to_smplx(hand_pose, smplx_model, side, mano_model=None):
  """MANO finger parameters (..., 45) -> SMPL-X's for the same final finger rotations.

  Args:
    hand_pose: (..., 45) axis-angle, full (not PCA), for `mano_model` (or, when None, for
      a MANO model loaded with the same hand-mean convention as `smplx_model`).
    smplx_model: the SMPL-X `BodyModel`.
    side: 'right' or 'left'.
    mano_model: that side's MANO `BodyModel`, or None.
  Returns:
    (..., 45) float32: hand_pose + mano_mean - smplx_mean, per joint.
  """
  first, count = _part_offsets('smplx')[_HAND_PARAM[side]]
  pose = np.asarray(hand_pose, np.float32).reshape(np.shape(hand_pose)[:-1] + (count, 3))
  if mano_model is not None:
    if mano_model.family != 'mano':
      raise ValueError(f'mano_model for the {side} hand is a {mano_model.family} model')
    pose = pose + np.asarray(mano_model.pose_mean, np.float32)[1:]   # MANO joint 0 = root
    pose = pose - np.asarray(smplx_model.pose_mean, np.float32)[first:first + count]
  return pose.reshape(pose.shape[:-2] + (3 * count,))


def _fit_length(value, length, what, where):
  """(n,) coefficients -> (length,): zero padded; refuses to drop nonzero ones."""
  value = np.asarray(value, np.float32).reshape(-1)
  if value.shape[0] > length and np.any(value[length:] != 0):
    raise ValueError(f'{where}: {what} has {value.shape[0]} coefficients, the body '
                     f'annotation {length}; the extra nonzero ones would be lost')
  out = np.zeros(length, np.float32)
  n = min(length, value.shape[0])
  out[:n] = value[:n]
  return out


def merge(body_entry, hands=None, face=None, smplx_model=None, *, mano_models=None,
          where='merge'):
  """One person's body, hand and face annotations -> the released SMPL-X entry.

  Args:
    body_entry: the SMPL-X body annotation, released layout: {'smplx_param': {root_pose
      (3), body_pose (63), lhand_pose (45), rhand_pose (45), jaw_pose (3), shape, expr,
      trans (3)}, 'cam_param': {...}}.
    hands: the MANO annotation of that person, {'right': entry or None, 'left': entry or
      None}, each entry {'mano_param': {pose (48) = global_orient ++ hand_pose, shape,
      trans}, 'cam_param': ...} (`annotate.to_entries`); None: no hands.
    face: the FLAME annotation, {'flame_param': {root_pose, jaw_pose (3), expr, shape,
      trans}, 'cam_param': ...}, or None.
    smplx_model: the SMPL-X `body_models.BodyModel` of the body annotation (loaded as the
      release's readers load it: flat_hand_mean=False).
    mano_models: optional {'right': BodyModel, 'left': BodyModel} of the hand annotation,
      to carry the finger rotations over exactly whatever hand mean each was loaded with;
      None assumes MANO was loaded like `smplx_model` (same hand means per side).
    where: names the record in error messages.
  Returns:
    {'smplx_param': {released keys: lists of floats, lhand_valid, rhand_valid, face_valid:
    bool}, 'cam_param': the body's} (no 'cam_param' when the body entry has none).
  """
  if smplx_model is None or smplx_model.family != 'smplx':
    raise ValueError(f'{where}: merge needs the SMPL-X body model (smplx_model=...)')
  params, focal, princpt = export.from_released_entry('smplx', body_entry)
  hands = hands or {}
  unknown = set(hands) - set(SIDES)
  if unknown:
    raise ValueError(f'{where}: hands has keys {sorted(unknown)}; expected right / left')
  body = {k: params[k] for k in ('global_orient', 'body_pose')}
  body_pose = params['body_pose'].reshape(-1, 3).copy()
  valid = {}
  for side in SIDES:
    entry = hands.get(side)
    valid[_VALID_KEY[side]] = entry is not None
    if entry is None:
      continue
    mano, _, _ = export.from_released_entry('mano', entry)
    # The elbow's global rotation depends only on joints above the wrists, so one body
    # pose serves both hands.
    wrist_name, row = _part_of_joint('smplx', wrist_joint(side))
    assert wrist_name == 'body_pose', wrist_name
    body_pose[row] = np.asarray(_hand_to_wrist(
        {k: np.asarray(v, np.float32) for k, v in body.items()}, smplx_model,
        np.asarray(mano['global_orient'], np.float32), side=side), np.float32)
    model = (mano_models or {}).get(side)
    params[_HAND_PARAM[side]] = fingers_to_smplx(mano['hand_pose'], smplx_model, side, model)
  params['body_pose'] = body_pose.reshape(-1)
  valid[FACE_VALID_KEY] = face is not None
  if face is not None:
    flame, _, _ = export.from_released_entry('flame', face)
    # FLAME's jaw is a child of its neck, SMPL-X's of the head; both local rotations in
    # the world-aligned rest frame, and neither model has a jaw mean: copied as is.
    params['jaw_pose'] = np.asarray(flame['jaw_pose'], np.float32)
    params['expression'] = _fit_length(flame['expression'], params['expression'].shape[0],
                                       'the face expression', where)
  # The MoCap layout has no camera: write a placeholder one and drop it again.
  out = export.to_released_entry('smplx', params, np.zeros(2) if focal is None else focal,
                                 np.zeros(2) if princpt is None else princpt)
  out[export.PARAM_KEY['smplx']].update(valid)
  if focal is None:
    del out['cam_param']
  return out


def face_key(person_id, faces):
  """The key of a person's face in a FLAME file: f'{id}_face' (COCO-WholeBody face samples,
  `data/coco.py`) or the person's own id; None when neither is there."""
  for key in (f'{person_id}_face', str(person_id)):
    if key in faces:
      return key
  return None


def _load(path, what):
  if path is None:
    return {}
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path}: cannot read the {what} annotation file: {e}') from e
  if not isinstance(data, dict):
    raise ValueError(f'{path}: the {what} file is not a JSON object keyed by ann_id')
  return data


def merge_entries(bodies, hands=None, faces=None, smplx_model=None, *, mano_models=None):
  """{person id: body entry} (+ hand and face files' dicts) -> {person id: merged entry}.

  Args:
    bodies: SMPL-X body file contents, str(ann_id) -> entry.
    hands: MANO file contents, str(person id) -> {'right': ..., 'left': ...}, or None.
    faces: FLAME file contents, keyed f'{id}_face' or str(id), or None.
  Returns:
    {str(ann_id): `merge` result}, in the body file's order.
  """
  hands, faces = hands or {}, faces or {}
  out = {}
  for person, body in bodies.items():
    key = face_key(person, faces)
    out[str(person)] = merge(body, hands.get(str(person)),
                             None if key is None else faces[key], smplx_model,
                             mano_models=mano_models, where=f'person {person}')
  return out


def merge_files(body_file, hand_file, face_file, out_file, smplx_model, *, mano_models=None):
  """Merge released-layout body (SMPL-X), hand (MANO) and face (FLAME) files per person.

  Args:
    body_file: SMPL-X body annotations {str(ann_id): entry}; one output entry each.
    hand_file: MANO annotations {str(person id): {'right': ..., 'left': ...}}, or None.
    face_file: FLAME annotations keyed f'{id}_face' or str(id), or None.
    out_file: where the merged {str(ann_id): SMPL-X entry} goes (written atomically).
    smplx_model, mano_models: see `merge`.
  Returns:
    (out_file, counts {'persons', 'rhand', 'lhand', 'face'}: how many got each part).
  """
  merged = merge_entries(_load(body_file, 'body'), _load(hand_file, 'hand'),
                         _load(face_file, 'face'), smplx_model, mano_models=mano_models)
  export.write_coco_style(os.fspath(out_file), merged)
  counts = {'persons': len(merged)}
  for name, key in (('rhand', 'rhand_valid'), ('lhand', 'lhand_valid'),
                    ('face', FACE_VALID_KEY)):
    counts[name] = sum(bool(e['smplx_param'][key]) for e in merged.values())
  return out_file, counts


__all__ = ['SIDES', 'FACE_VALID_KEY', 'wrist_joint', 'global_rotation', 'hand_to_wrist',
           'fingers_to_smplx', 'merge', 'face_key', 'merge_entries', 'merge_files']
