"""Readers for the official SMPL, SMPL-X, MANO and FLAME model files.

    path = resolve_model_path('models', 'smplx', gender='neutral')
    model_file = read_model_file(path)              # ModelFile
    model_file.arrays['shapedirs']                  # (V, 3, S) float64

Whatever the format (a Python 2 pickle with chumpy and scipy.sparse payloads, a
chumpy-free pickle, an .npz), a file comes back in one canonical form: dense numpy
arrays under fixed keys, float64 for real values and int64 for indices (see
`canonical_keys`). Pickles are read with a restricted unpickler (`_unpickle`) that
refuses every global other than numpy, scipy.sparse and chumpy array payloads, and
needs neither scipy nor chumpy.

Shapes: V vertices, F faces, J joints, S shape (+ expression) directions,
P = 9 (J - 1) pose-corrective directions, L static and (C, K) contour landmarks.

This module tells the family and puts the pieces together; the work is done by
  _containers       pickle / .npz / .npy files -> dicts of raw values
  _canonical        the canonical layout per family, conversion and checks
  _flame_landmarks  FLAME's landmark embedding files
  _model_cache      the .npz cache of canonical arrays
  _paths            file names: gender and hand, finding the file in a directory
  _mano_left        the official MANO_LEFT.pkl's shapedirs sign error, told and undone

Imports numpy and the standard library only.
"""

import dataclasses
import logging
import os

import numpy as np

from body_models import _canonical
from body_models import _flame_landmarks
from body_models import _mano_left
from body_models import _model_cache
from body_models._canonical import FAMILIES
from body_models._canonical import NUM_JOINTS
from body_models._canonical import canonical_keys
from body_models._containers import file_kind
from body_models._containers import load_pickle
from body_models._containers import read_mapping
from body_models._paths import gender_from_name
from body_models._paths import hand_from_name
from body_models._paths import other_hand_path
from body_models._paths import resolve_model_path
from body_models._unpickle import ModelFileError

__all__ = ['ModelFile', 'ModelFileError', 'read_model_file', 'resolve_model_path',
           'canonical_keys', 'load_pickle', 'gender_from_name', 'hand_from_name',
           'other_hand_path']

_SMPLH_JOINTS = 52
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)  # eq would compare arrays
class ModelFile:
  """One model file in canonical form.

  Attributes:
    family: 'smpl' | 'smplx' | 'mano' | 'flame'.
    path: the file read.
    gender: 'neutral' | 'female' | 'male' when the file name says, else None.
    is_right_hand: MANO only: True / False when the file name says RIGHT / LEFT, else None.
    arrays: canonical key -> dense array (see `canonical_keys`):
      v_template (V, 3), f (F, 3) int64, shapedirs (V, 3, S), posedirs (V, 3, P),
      J_regressor (J, V), weights (V, J), kintree_table (2, J) int64 with -1 for the
      root's parent, parents (J,) int64 with -1 at the root;
      smplx: hands_componentsl/r (45, 45), hands_meanl/r (45,), lmk_faces_idx (L,) int64,
      lmk_bary_coords (L, 3), and when the file has them dynamic_lmk_faces_idx (C, K)
      int64 and dynamic_lmk_bary_coords (C, K, 3);
      mano: hands_components (45, 45), hands_mean (45,);
      flame: lmk_faces_idx, lmk_bary_coords and, when found, the dynamic pair, all read
      from the landmark embedding files.
      shapedirs keeps every direction the file has: for SMPL-X and FLAME the shape
      directions are followed by the expression directions.
  """
  family: str
  path: str
  gender: str | None
  is_right_hand: bool | None
  arrays: dict

  @property
  def num_vertices(self):
    return self.arrays['v_template'].shape[0]

  @property
  def num_joints(self):
    return self.arrays['parents'].shape[0]


def _detect_family(values, keys, path, family):
  """The family from the joint count, cross-checked with the keys and with `family`.

  Args:
    values: key -> raw value; kintree_table (2, J) or else J_regressor (J, V) gives J.
    keys: every key of the file.
    path: the file, for error messages.
    family: the family the caller asked for, or None.
  """
  count = None
  if 'kintree_table' in values:
    kintree = np.asarray(values['kintree_table'])
    if kintree.ndim == 2 and kintree.shape[0] == 2:
      count = kintree.shape[1]
  if count is None and 'J_regressor' in values:
    count = np.shape(values['J_regressor'])[0]
  if count is None:
    raise ModelFileError(f'{path}: missing the key \'kintree_table\' (cannot tell the '
                         'number of joints)')
  if count == _SMPLH_JOINTS:
    raise ModelFileError(f'{path}: has {count} joints: an SMPL+H model, which is not '
                         'supported (use SMPL-X, or SMPL with MANO)')
  by_count = {n: f for f, n in NUM_JOINTS.items()}.get(count)
  if by_count is None:
    raise ModelFileError(f'{path}: has {count} joints, which is none of SMPL (24), SMPL-X '
                         '(55), MANO (16), FLAME (5)')
  if 'hands_componentsl' in keys:
    by_keys = 'smplx'
  elif 'hands_components' in keys:
    by_keys = 'mano'
  else:
    by_keys = None
  if by_keys is not None and by_keys != by_count:
    raise ModelFileError(f'{path}: has {count} joints like {by_count}, but keys of {by_keys} '
                         f"('hands_components{'l' if by_keys == 'smplx' else ''}')")
  if family is not None and family != by_count:
    raise ModelFileError(f'{path}: asked to read a {family} model, but the file holds a '
                         f'{by_count} model ({count} joints)')
  return by_count


def _right_shapedirs(right_path):
  """(V, 3, S) shape directions of the right MANO file, or None when it cannot be read."""
  try:
    values, _ = read_mapping(right_path, wanted={'shapedirs'})
    spec = (('shapedirs', 'float', ('V', 3, 'S')),)
    return _canonical.canonicalize(values, right_path, spec, {})['shapedirs']
  except ModelFileError as e:
    _log.warning('%s: unreadable (%s)', right_path, e)
    return None


def _fix_left_shapedirs(shapedirs, path, mode, right_path):
  """The left hand's (V, 3, S) shapedirs with the official file's sign error undone if present.

  mode True negates the x rows, False keeps them; 'auto' compares them with the right
  file's (`right_path`, beside the left one, or None) by `_mano_left.left_sign_error`.
  """
  if mode is True:
    return _mano_left.undo_sign_error(shapedirs)
  if mode is False:
    return shapedirs
  verdict = None
  if right_path is not None:
    right = _right_shapedirs(right_path)
    verdict = None if right is None else _mano_left.left_sign_error(shapedirs, right)
  if verdict:
    _log.info('%s: the x rows of shapedirs equal those of %s (the official MANO_LEFT sign '
              'error); negated them', path, right_path)
    return _mano_left.undo_sign_error(shapedirs)
  if verdict is None:
    _log.warning('%s: cannot tell whether this left MANO has the official file\'s shapedirs '
                 'sign error (%s); left as is. Pass fix_mano_left_shapedirs=True or False',
                 path, 'no right MANO file beside it' if right_path is None
                 else f'it is not the mirror of {right_path}, with or without the error')
  return shapedirs


def _read_canonical(path, family, landmarks_path, contour_path, fix_left, is_right_hand,
                    right_path=None):
  """Read and check `path`. -> (family, {canonical key: array}); see `ModelFile.arrays`."""
  kind = file_kind(path)
  if kind == 'npy':
    raise ModelFileError(f'{path}: a single .npy array, not a model file (.pkl or .npz)')
  values, keys = read_mapping(path, wanted=_canonical.SOURCE_KEYS, kind=kind)
  family = _detect_family(values, keys, path, family)
  num_joints = NUM_JOINTS[family]
  dims = {'J': num_joints, 'P': 9 * (num_joints - 1)}
  arrays = _canonical.canonicalize(
      values, path, _canonical.COMMON_SPEC + _canonical.FAMILY_SPEC[family], dims)
  arrays['kintree_table'], arrays['parents'] = _canonical.parents_from_kintree(
      arrays['kintree_table'], path)
  _canonical.check_indices(arrays['f'], dims['V'], path, 'f', 'vertex indices')
  landmarks = {}  # file -> its landmark arrays
  if family == 'smplx':
    _canonical.check_optional_pair(values, path, _canonical.CONTOUR_SPEC)
    landmarks[path] = {k: arrays[k] for k, _, _ in _canonical.LANDMARK_SPEC}
    landmarks[path].update(_canonical.canonicalize(values, path, _canonical.CONTOUR_SPEC, dims,
                                                   optional=True))
  if family == 'flame':
    landmarks = _flame_landmarks.read_flame_landmarks(path, landmarks_path, contour_path, dims)
  for source, found in landmarks.items():
    for key in ('lmk_faces_idx', 'dynamic_lmk_faces_idx'):
      if key in found:
        _canonical.check_indices(found[key], arrays['f'].shape[0], source, key, 'face indices')
    arrays.update(found)

  if family == 'mano' and is_right_hand is False:
    arrays['shapedirs'] = _fix_left_shapedirs(arrays['shapedirs'], path, fix_left, right_path)
  return family, arrays


def read_model_file(path, family=None, *, landmarks_path=None, contour_path=None,
                    fix_mano_left_shapedirs='auto', cache_dir=None):
  """Read an official model file into canonical form.

  Args:
    path: a model file: SMPL .pkl (v1.0 with chumpy, v1.1, chumpy-free) or .npz,
      SMPL-X .npz or .pkl, MANO .pkl, FLAME .pkl. The format is told from the bytes.
    family: 'smpl' | 'smplx' | 'mano' | 'flame', or None to tell it from the joint
      count; given and different from the file's, an error.
    landmarks_path: FLAME only: the static landmark embedding; default
      `flame_static_embedding.pkl` beside the model file (required).
    contour_path: FLAME only: the contour embedding; default
      `flame_dynamic_embedding.npy` beside the model file, used when it exists.
    fix_mano_left_shapedirs: undo the official MANO_LEFT.pkl's sign error (the x rows
      of its shapedirs are the right hand's, not their mirror) in a left MANO hand, one
      whose file name says LEFT. 'auto': when the file's x rows equal those of the right
      MANO file beside it (MANO_RIGHT.pkl for MANO_LEFT.pkl), as in the official pair;
      left as is when they are already the mirror, with a warning when that cannot be
      told (no right file, or not a mirrored pair). True: always; False: never.
    cache_dir: when given, the canonical arrays are kept there as .npz, named by a hash
      of the bytes read and the options, and reused while those are unchanged.
  Returns:
    ModelFile.
  Raises:
    ModelFileError (a ValueError) naming the file, and the key where one is at fault.
  """
  path = os.fspath(path)
  _canonical.check_family(family, f'{path}: ')
  _mano_left.check_mode(fix_mano_left_shapedirs)
  if os.path.isdir(path):
    raise ModelFileError(f'{path}: is a directory; find the file with resolve_model_path()')
  if not os.path.isfile(path):
    raise ModelFileError(f'{path}: no such file')
  gender = gender_from_name(path)
  is_right_hand = hand_from_name(path)
  # Only a left MANO model uses it, but the family is known only after reading.
  right_path = (other_hand_path(path)
                if is_right_hand is False and fix_mano_left_shapedirs == 'auto' else None)

  cache_path = cached = None
  if cache_dir is not None:
    options = {'family': family, 'fix_mano_left_shapedirs': fix_mano_left_shapedirs,
               'is_right_hand': is_right_hand}
    # Only a FLAME model uses the embeddings and only a left MANO the right file, but
    # the family is known only after reading.
    aux = _flame_landmarks.embedding_paths(path, landmarks_path, contour_path)
    aux = list(aux) + [right_path]
    cache_path = _model_cache.entry_path(cache_dir, path, aux, options)
    cached = _model_cache.read_entry(cache_path)
  if cached is not None:
    found, arrays = cached
  else:
    found, arrays = _read_canonical(path, family, landmarks_path, contour_path,
                                    fix_mano_left_shapedirs, is_right_hand, right_path)
    if cache_path is not None:
      _model_cache.write_entry(cache_path, found, arrays)
  return ModelFile(found, path, gender, is_right_hand if found == 'mano' else None, arrays)
