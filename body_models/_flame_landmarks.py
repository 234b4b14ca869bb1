"""FLAME's landmark embeddings, which live in files beside the model file.

    found = read_flame_landmarks('models/flame/generic_model.pkl', None, None, dims)
    found['.../flame_static_embedding.pkl']   # lmk_faces_idx (L,), lmk_bary_coords (L, 3)
    found['.../flame_dynamic_embedding.npy']  # dynamic_lmk_faces_idx (C, K),
                                              # dynamic_lmk_bary_coords (C, K, 3)

Imports numpy and the standard library only.
"""

import os

from body_models import _canonical
from body_models._containers import read_mapping
from body_models._unpickle import ModelFileError

STATIC_NAME = 'flame_static_embedding.pkl'
CONTOUR_NAME = 'flame_dynamic_embedding.npy'
# The embedding files name their arrays differently from the canonical keys.
_EMBEDDING_KEYS = {'lmk_face_idx': 'faces_idx', 'lmk_b_coords': 'bary_coords'}


def embedding_paths(path, landmarks_path, contour_path):
  """(static path, contour path or None if absent) for a FLAME model at `path`.

  Either one not given is looked for beside the model file; the static one is
  returned even when absent (it is required), the contour one only when present.
  """
  folder = os.path.dirname(os.path.abspath(path))
  if landmarks_path is None:
    landmarks_path = os.path.join(folder, STATIC_NAME)
  if contour_path is None:
    default = os.path.join(folder, CONTOUR_NAME)
    contour_path = default if os.path.isfile(default) else None
  return os.fspath(landmarks_path), None if contour_path is None else os.fspath(contour_path)


def _read_embedding(path, prefix, model_path):
  """An embedding file -> {prefix + 'faces_idx' | 'bary_coords': raw value}, unchecked."""
  values, _ = read_mapping(path, wanted=set(_EMBEDDING_KEYS))
  renamed = {prefix + new: values[old] for old, new in _EMBEDDING_KEYS.items() if old in values}
  for old, new in _EMBEDDING_KEYS.items():
    if prefix + new not in renamed:
      raise ModelFileError(f'{path}: missing the key {old!r} (landmark embedding of '
                           f'{model_path})')
  return renamed


def read_flame_landmarks(model_path, landmarks_path, contour_path, dims):
  """The landmark arrays of the FLAME model at `model_path`, converted and shape-checked.

  Args:
    model_path: the model file.
    landmarks_path, contour_path: the embedding files, or None for the defaults (see
      `embedding_paths`).
    dims: the model's symbolic dimensions; L, C and K are added to it.
  Returns:
    {embedding file: {canonical key: array}}: the static pair lmk_faces_idx (L,) int64,
    lmk_bary_coords (L, 3) and, when a contour file is found, the dynamic pair
    dynamic_lmk_faces_idx (C, K) int64, dynamic_lmk_bary_coords (C, K, 3).
    The face indices are not yet checked against F.
  """
  static_path, dynamic_path = embedding_paths(model_path, landmarks_path, contour_path)
  if not os.path.isfile(static_path):
    raise ModelFileError(f'{model_path}: a FLAME model needs its landmark embedding; '
                         f'{static_path} was not found (pass landmarks_path=)')
  found = {static_path: _canonical.canonicalize(
      _read_embedding(static_path, 'lmk_', model_path), static_path,
      _canonical.LANDMARK_SPEC, dims)}
  if dynamic_path is not None:
    found[dynamic_path] = _canonical.canonicalize(
        _read_embedding(dynamic_path, 'dynamic_lmk_', model_path), dynamic_path,
        _canonical.CONTOUR_SPEC, dims)
  return found
