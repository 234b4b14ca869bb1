"""Pseudo-GT files in the layout of the released NeuralAnnot annotations.

Existing regressors (Hand4Whole, Pose2Pose, OSX, ...) read the files released at
github.com/mks0601/NeuralAnnot_RELEASE with a few fixed lines (see its `*/demo_*.py`);
files written here load through those same lines, unchanged. Verified layouts:

* COCO-style sets (MSCOCO, MPII, CrowdPose, InstaVariety, FFHQ), keyed by str(ann_id):
    SMPL   {aid: {'smpl_param': {'pose' 72, 'shape' 10, 'trans' 3}, 'cam_param': ...}}
    SMPL-X {aid: {'smplx_param': {'root_pose' 3, 'body_pose' 63, 'lhand_pose' 45,
                                  'rhand_pose' 45, 'jaw_pose' 3, 'shape' 10, 'expr' 10,
                                  'trans' 3}, 'cam_param': ...}}
    MANO   {aid: {'right': {'mano_param': {'pose' 48, 'shape' 10, 'trans' 3},
                            'cam_param': ...} or None, 'left': ... or None}}
    FLAME  {aid: {'flame_param': {'root_pose' 3, 'jaw_pose' 3, 'expr' 10, 'shape' 10,
                                  'trans' 3}, 'cam_param': ...}}          (no neck, no eyes)
  with cam_param {'focal': [fx, fy], 'princpt': [cx, cy]} in original-image pixels and
  every parameter camera-space (`model(transl=trans)` gives camera-space metres).
  SMPL-X parameters also hold the bools 'lhand_valid', 'rhand_valid', 'face_valid'
  (`SMPLX_PART_FLAGS`; MoCap leaves too): Hand4Whole's `process_human_model_output` reads
  them whenever 'lhand_pose' / 'rhand_pose' / 'expr' are there. True only where the part
  was annotated from its own data (`wholebody.merge`); a body-only fit writes False.
  SMPL 'pose' is global_orient ++ body_pose; MANO 'pose' is global_orient ++ hand_pose
  (axis-angle, full 45-d hand pose, smplx `use_pca=False`). Missing hands are JSON null,
  as Hand4Whole's MSCOCO loader tests `mano_param['right'] is not None`.
* MoCap sets: the parameter dict itself is the leaf (no 'smpl_param' wrapper, no
  cam_param: the dataset's own cameras are used), in *world* coordinates:
    Human3.6M       Human36M_subject{S}_SMPL_NeuralAnnot.json: [action][subaction][frame]
                    (one file per subject; also _SMPLX_ with root_pose/body_pose/shape/trans)
    MPI-INF-3DHP    MPI-INF-3DHP_SMPL_NeuralAnnot.json: [subject][seq][frame]
  The demos rebuild camera space as: global_orient_cam = R @ global_orient_world, and
  the mesh made with (that orient, trans_world) moved so that its root joint lands on
  R @ root + t/1000, with R, t the dataset's world -> camera extrinsics (t in mm).
  `camera_to_world` is the inverse of that, in closed form.

Files are written atomically (temporary file in the same folder, then `os.replace`), so a
run that stops half-way leaves the previous file whole.
"""

import json
import os

import jax
import numpy as np

from body_models import rotations
from body_models._atomic import atomic_open

# Compiled once per shape: `_change_frame` runs per sample, and op by op each call cost
# 5.5 ms (and ~3 s of small compilations in a fresh process).
_to_matrix = jax.jit(rotations.axis_angle_to_matrix)
_to_axis_angle = jax.jit(rotations.matrix_to_axis_angle)

# Released parameter keys, in the order the files list them, and their flat lengths
# (None: as long as the model's coefficients, 10 in the release).
RELEASED_LAYOUT = {
    'smpl': (('pose', 72), ('shape', None), ('trans', 3)),
    'smplx': (('root_pose', 3), ('body_pose', 63), ('lhand_pose', 45), ('rhand_pose', 45),
              ('jaw_pose', 3), ('shape', None), ('expr', None), ('trans', 3)),
    'mano': (('pose', 48), ('shape', None), ('trans', 3)),
    'flame': (('root_pose', 3), ('jaw_pose', 3), ('expr', None), ('shape', None),
              ('trans', 3)),
}

# Released key -> smplx-library names whose flat concatenation it is.
_SOURCES = {
    'smpl': {'pose': ('global_orient', 'body_pose'), 'shape': ('betas',),
             'trans': ('transl',)},
    'smplx': {'root_pose': ('global_orient',), 'body_pose': ('body_pose',),
              'lhand_pose': ('left_hand_pose',), 'rhand_pose': ('right_hand_pose',),
              'jaw_pose': ('jaw_pose',), 'shape': ('betas',), 'expr': ('expression',),
              'trans': ('transl',)},
    'mano': {'pose': ('global_orient', 'hand_pose'), 'shape': ('betas',),
             'trans': ('transl',)},
    'flame': {'root_pose': ('global_orient',), 'jaw_pose': ('jaw_pose',),
              'expr': ('expression',), 'shape': ('betas',), 'trans': ('transl',)},
}

# Per-part flags of SMPL-X parameters, as the whole-body release has them. Hand4Whole-family
# readers test `'lhand_pose' in p and p['lhand_valid']` (and rhand / face alike): with the
# pose there and the flag absent they raise KeyError, so every SMPL-X dict we write has them.
SMPLX_PART_FLAGS = ('lhand_valid', 'rhand_valid', 'face_valid')

# The wrapper key of each family in COCO-style files.
PARAM_KEY = {'smpl': 'smpl_param', 'smplx': 'smplx_param', 'mano': 'mano_param',
             'flame': 'flame_param'}

# Default coefficient count where a parameter is absent (the release's 10).
# The smplx parameters that are axis-angle rotations (mirrored, averaged on SO(3)).
ROTATION_PARAMS = ('global_orient', 'body_pose', 'hand_pose', 'left_hand_pose',
                   'right_hand_pose', 'jaw_pose', 'leye_pose', 'reye_pose', 'neck_pose')
_DEFAULT_COEFFS = 10


def _check_family(family):
  if family not in RELEASED_LAYOUT:
    raise ValueError(f'unknown family {family!r}; expected one of {sorted(RELEASED_LAYOUT)}')


def _flat(value):
  """Any array-like -> a 1-D numpy array, dtype kept."""
  return np.asarray(value).reshape(-1)


def _as_floats(array):
  """1-D array -> list of Python floats that JSON writes and reads back bit-exactly.

  float32 values are written in their shortest round-trip decimal ('0.1', not
  '0.10000000149011612'): half the file size, and float32(json value) is the original.
  """
  array = _flat(array)
  if array.dtype == np.float32:
    return [float(str(v)) for v in array]
  return [float(v) for v in array.astype(np.float64)]


def to_released_params(family, params):
  """One sample's smplx-name parameters -> the released flat parameter dict.

  Args:
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    params: {smplx name: array} for one sample (no batch axis), axis-angle, hand poses
      full (45,) not PCA. Absent parts are zeros (as `body_models.forward` takes them).
      Parts the release has no key for (eye poses, FLAME's neck) must be absent or zero.
  Returns:
    {released key: 1-D numpy array} in the family's released order and lengths.
  """
  _check_family(family)
  used = {name for names in _SOURCES[family].values() for name in names}
  for name, value in params.items():
    if name not in used and value is not None and np.any(np.asarray(value) != 0):
      raise ValueError(f'{family}: parameter {name!r} has no key in the released layout '
                       f'and is not zero; it would be lost')
  out = {}
  for key, length in RELEASED_LAYOUT[family]:
    parts = [params.get(name) for name in _SOURCES[family][key]]
    if all(p is None for p in parts):
      value = np.zeros(length or _DEFAULT_COEFFS, np.float32)
    elif any(p is None for p in parts):
      # Only SMPL / MANO 'pose' joins two parts; a missing one is a zero pose.
      sizes = {'global_orient': 3, 'body_pose': 69, 'hand_pose': 45}
      value = np.concatenate([
          _flat(p) if p is not None else np.zeros(sizes[n], np.float32)
          for p, n in zip(parts, _SOURCES[family][key])])
    else:
      value = np.concatenate([_flat(p) for p in parts])
    if length is not None and value.shape[0] != length:
      raise ValueError(f'{family}: released {key!r} needs {length} numbers from '
                       f'{_SOURCES[family][key]}, got {value.shape[0]}')
    out[key] = value
  return out


def from_released_params(family, released, dtype=np.float32):
  """The released flat parameter dict -> {smplx name: 1-D array}; inverse of the above.

  Args:
    released: {released key: list or array}, e.g. `json.load(f)[aid]['smpl_param']`.
    dtype: dtype of the arrays returned.
  """
  _check_family(family)
  out = {}
  for key, length in RELEASED_LAYOUT[family]:
    if key not in released:
      raise KeyError(f'{family}: released parameters have no {key!r} '
                     f'(keys: {sorted(released)})')
    value = np.asarray(released[key], dtype).reshape(-1)
    if length is not None and value.shape[0] != length:
      raise ValueError(f'{family}: released {key!r} has {value.shape[0]} numbers, '
                       f'expected {length}')
    names = _SOURCES[family][key]
    if len(names) == 1:
      out[names[0]] = value
    else:  # SMPL / MANO 'pose': the root's 3 numbers, then the rest
      out[names[0]], out[names[1]] = value[:3], value[3:]
  return out


def camera_entry(focal, princpt):
  """cam_param of a released entry: {'focal': [fx, fy], 'princpt': [cx, cy]}, pixels."""
  return {'focal': _flat(focal).astype(np.float64).tolist(),
          'princpt': _flat(princpt).astype(np.float64).tolist()}


def with_part_flags(family, released, valid=False):
  """A released parameter dict with the SMPL-X part flags (`SMPLX_PART_FLAGS`) filled in.

  Flags already there are kept (a whole-body merge's); absent ones become bool(valid).
  Other families are returned unchanged: their readers look up no flags.
  """
  if family != 'smplx':
    return released
  return {**released, **{k: bool(released.get(k, valid)) for k in SMPLX_PART_FLAGS}}


def to_released_entry(family, params, focal, princpt, *, parts_valid=False):
  """One sample -> its COCO-style entry, e.g. {'smpl_param': {...}, 'cam_param': {...}}.

  Args:
    params: {smplx name: array}, one sample, camera space (see `to_released_params`).
    focal: (2,) and princpt: (2,) of the camera in original-image pixels
      (`camera.to_original_camera`).
    parts_valid: SMPL-X only, the value of every `SMPLX_PART_FLAGS` flag: whether the
      hands and face were annotated from their own data. A body-only fit's are not.
  Returns:
    a JSON-ready dict (lists of floats, SMPL-X flags as bools). For MANO this is one
    hand's entry: put it under 'right' / 'left' with `hand_entry`.
  """
  released = {k: _as_floats(v) for k, v in to_released_params(family, params).items()}
  return {PARAM_KEY[family]: with_part_flags(family, released, parts_valid),
          'cam_param': camera_entry(focal, princpt)}


def from_released_entry(family, entry, dtype=np.float32):
  """A COCO-style entry -> ({smplx name: array}, focal (2,), princpt (2,)).

  `entry` may also be a bare parameter dict (MoCap layout); focal and princpt are
  then None.
  """
  _check_family(family)
  inner = entry.get(PARAM_KEY[family], entry)
  params = from_released_params(family, inner, dtype)
  cam = entry.get('cam_param')
  if cam is None:
    return params, None, None
  return params, np.asarray(cam['focal'], dtype), np.asarray(cam['princpt'], dtype)


def hand_entry(right=None, left=None):
  """{'right': entry or None, 'left': entry or None}: a MANO annotation's value."""
  return {'right': right, 'left': left}


# ----------------------------------------------------------------------------- writing


def _jsonable(obj, where='entries'):
  """numpy arrays / scalars inside dicts and lists -> plain JSON values."""
  if isinstance(obj, dict):
    return {str(k): _jsonable(v, f'{where}[{k!r}]') for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v, where) for v in obj]
  if isinstance(obj, np.ndarray):
    return _as_floats(obj) if obj.dtype.kind == 'f' else obj.tolist()
  if isinstance(obj, np.generic):
    return obj.item()
  if obj is None or isinstance(obj, (str, int, float, bool)):
    return obj
  if hasattr(obj, '__array__'):  # a jax array
    return _jsonable(np.asarray(obj), where)
  raise TypeError(f'{where}: cannot write a {type(obj).__name__} to JSON')


def write_json(path, obj):
  """Write `obj` (numpy allowed inside) as compact JSON, atomically. Returns path."""
  # Convert first: a bad value fails before the temporary file exists.
  obj = _jsonable(obj)
  with atomic_open(path, 'w') as f:
    json.dump(obj, f, separators=(',', ':'))
  return path


def write_coco_style(path, entries):
  """Write {ann_id: entry} as a released COCO-style file, keys str(ann_id).

  Args:
    entries: ann_id -> `to_released_entry(...)` (or `hand_entry(...)` for MANO).
  """
  return write_json(path, {str(aid): entry for aid, entry in entries.items()})


def _leaves(tree, prefix=''):
  """Nested dict -> [(dotted path, value)], None subtrees as (path, None)."""
  if isinstance(tree, dict):
    out = []
    for k, v in tree.items():
      out += _leaves(v, f'{prefix}.{k}' if prefix else str(k))
    return out
  return [(prefix, tree)]


def entries_to_arrays(entries):
  """{ann_id: entry} -> {dotted key: (N, ...) array} + 'ann_ids' (N,).

  Keys follow the nesting ('smpl_param.pose' (N, 72), 'cam_param.focal' (N, 2),
  'right.mano_param.pose' (N, 48), ...). Where an entry has None for a subtree (a
  missing hand), its rows are NaN and '<subtree>.valid' (N,) bool is False.
  """
  ids = list(entries)
  per_entry = [dict(_leaves(entries[aid])) for aid in ids]
  shapes, nullable = {}, set()
  for leaves in per_entry:
    for key, value in leaves.items():
      if value is None:
        nullable.add(key)
      else:
        shapes.setdefault(key, np.asarray(value).shape)
  arrays = {}
  for key, shape in shapes.items():
    rows = np.full((len(ids),) + shape, np.nan, np.float32)
    for i, leaves in enumerate(per_entry):
      if leaves.get(key) is not None:
        rows[i] = np.asarray(leaves[key], np.float32).reshape(shape)
    arrays[key] = rows
  for key in sorted(nullable):
    # Valid where the subtree was a dict, i.e. expanded into leaves under it.
    arrays[f'{key}.valid'] = np.array(
        [any(k.startswith(key + '.') for k in leaves) for leaves in per_entry])
  try:
    arrays['ann_ids'] = np.array([int(a) for a in ids], np.int64)
  except (TypeError, ValueError):  # non-numeric ids stay strings
    arrays['ann_ids'] = np.array([str(a) for a in ids])
  return arrays


def write_npz(path, entries):
  """Write every array of {ann_id: entry} (see `entries_to_arrays`) as one .npz, atomically."""
  arrays = entries_to_arrays(entries)
  with atomic_open(path, 'wb') as f:
    np.savez(f, **arrays)
  return path


# ------------------------------------------------------------------------------ MoCap


def camera_to_world(params, R, t_mm, j0):
  """Camera-space global_orient / transl -> the world coordinates of the MoCap releases.

  Camera extrinsics as the Human3.6M / MPI-INF-3DHP camera files give them:
  x_cam_mm = R @ x_world_mm + t_mm. The body model rotates about its rest-pose root
  joint j0, not the origin, so a rigid change of frame moves transl by more than R, t:
  from x_cam = R x_world + t/1000 for every vertex,
      global_orient_world = R^T global_orient_cam
      transl_world = R^T (transl_cam + j0 - t/1000) - j0.

  Args:
    params: {smplx name: array}, one sample, camera space, metres.
    R: (3, 3) world -> camera rotation. t_mm: (3,) translation in millimetres.
    j0: (3,) rest-pose root joint for this sample's betas (and expression for SMPL-X),
      metres: `model(betas=...).joints[0]` with zero pose and no transl.
  Returns:
    a copy of params with global_orient (3,) and transl (3,) in world coordinates.
  """
  return _change_frame(params, np.asarray(R, np.float64).T,
                       -np.asarray(R, np.float64).T @ (np.asarray(t_mm, np.float64) / 1000),
                       j0)


def world_to_camera(params, R, t_mm, j0):
  """Inverse of `camera_to_world`: what the release's demos do to world parameters."""
  return _change_frame(params, np.asarray(R, np.float64),
                       np.asarray(t_mm, np.float64) / 1000, j0)


def _change_frame(params, rot, shift, j0):
  """Parameters of the mesh moved by x -> rot x + shift (rot (3, 3), shift (3,) metres)."""
  go = np.asarray(params.get('global_orient', np.zeros(3)), np.float64).reshape(3)
  transl = np.asarray(params.get('transl', np.zeros(3)), np.float64).reshape(3)
  j0 = np.asarray(j0, np.float64).reshape(3)
  orient = rot @ np.asarray(_to_matrix(go.astype(np.float32)), np.float64)
  # The rotation helpers run in JAX's default float32 (about 1e-7 rad): far below
  # what a pseudo-GT means, and the float32 the files hold anyway.
  go_new = np.asarray(_to_axis_angle(orient.astype(np.float32)), np.float64)
  transl_new = rot @ (transl + j0) + shift - j0
  dtype = np.asarray(params.get('transl', np.zeros(3, np.float32))).dtype
  out = dict(params)
  out['global_orient'] = go_new.astype(dtype)
  out['transl'] = transl_new.astype(dtype)
  return out


def _unwrap_leaf(leaf, family):
  """A MoCap leaf: a released flat dict; a {'smpl_param': {...}} wrapper is unwrapped.

  SMPL-X leaves get the part flags (False where absent): a MoCap fit annotates the body.
  """
  if isinstance(leaf, dict) and PARAM_KEY[family] in leaf:
    leaf = leaf[PARAM_KEY[family]]
  leaf = {k: _as_floats(v) if isinstance(v, np.ndarray) else v for k, v in leaf.items()}
  return with_part_flags(family, leaf)


def _map_leaves(tree, depth, fn):
  """Apply fn to the values `depth` dict levels down; keys become strings."""
  if depth == 0:
    return fn(tree)
  return {str(k): _map_leaves(v, depth - 1, fn) for k, v in tree.items()}


def write_mocap_style(path, nested, depth, family='smpl'):
  """Write a MoCap release file: `depth` levels of str keys, then the flat parameters.

  MPI-INF-3DHP: depth 3 ([subject][seq][frame]). Leaves are `to_released_params` dicts
  in world coordinates (`camera_to_world`).
  """
  _check_family(family)
  return write_json(path, _map_leaves(nested, depth, lambda x: _unwrap_leaf(x, family)))


def h36m_filename(subject, family='smpl'):
  """The released name: Human36M_subject{S}_SMPL_NeuralAnnot.json (SMPLX for SMPL-X)."""
  return f'Human36M_subject{int(subject)}_{family.upper()}_NeuralAnnot.json'


def write_h36m_style(out_dir, nested, family='smpl'):
  """Write Human3.6M pseudo-GTs as released: one file per subject, [action][subaction][frame].

  Args:
    out_dir: folder for the files (`h36m_filename`).
    nested: subject -> action -> subaction -> frame -> world-space released parameters
      (flat, or wrapped as {'smpl_param': {...}}).
  Returns:
    the paths written, one per subject.
  """
  return [write_mocap_style(os.path.join(out_dir, h36m_filename(subject, family)),
                            actions, 3, family)
          for subject, actions in nested.items()]


__all__ = ['RELEASED_LAYOUT', 'PARAM_KEY', 'SMPLX_PART_FLAGS', 'ROTATION_PARAMS',
           'to_released_params', 'from_released_params', 'with_part_flags',
           'camera_entry', 'to_released_entry', 'from_released_entry', 'hand_entry',
           'atomic_open', 'write_json', 'write_coco_style', 'entries_to_arrays',
           'write_npz', 'camera_to_world', 'world_to_camera', 'write_mocap_style',
           'h36m_filename', 'write_h36m_style']
