"""Write stand-in models to disk in the official file layouts.

    <out>/smpl/SMPL_NEUTRAL.pkl                  (SMPL_MALE.pkl, SMPL_FEMALE.pkl)
    <out>/smplx/SMPLX_NEUTRAL.npz, .pkl
    <out>/mano/MANO_RIGHT.pkl, MANO_LEFT.pkl (with the official file's shapedirs sign
          error: see `build.official_mano_left`)
    <out>/flame/FLAME_NEUTRAL.pkl, generic_model.pkl (same content, the FLAME 2020
          name), flame_static_embedding.pkl, flame_dynamic_embedding.npy

which is what `smplx.create(out, model_type=...)` looks for. Pickles hold a dict
of numpy arrays (and the strings bs_style, bs_type), protocol 2. SMPL, MANO and
FLAME pickles store J_regressor as a scipy.sparse.csc_matrix like the official
ones; the SMPL-X npz and pkl store it dense, like the official npz. If scipy is
not installed the regressor is written dense everywhere (the smplx library and
our loader read both). Every file is written to a temporary name and renamed, and
the bytes depend only on the arguments (the npz members carry a fixed timestamp).
"""

import io
import os
import pickle
import zipfile

import numpy as np

from body_models._atomic import write_bytes as _atomic_write
from body_models.synthetic import build

_SPARSE_REGRESSOR = ('smpl', 'mano', 'flame')


def _sparse(matrix):
  """The regressor as csc_matrix when scipy is available (imported lazily)."""
  try:
    import scipy.sparse   # pylint: disable=import-outside-toplevel
  except ImportError:
    return matrix
  return scipy.sparse.csc_matrix(matrix)


def pickle_bytes(arrays):
  return pickle.dumps(arrays, protocol=2)


def npz_bytes(arrays):
  """An uncompressed .npz, byte-for-byte reproducible (fixed member timestamps)."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_STORED) as zf:
    for key, value in arrays.items():
      info = zipfile.ZipInfo(key + '.npy', date_time=(1980, 1, 1, 0, 0, 0))
      with zf.open(info, 'w', force_zip64=True) as member:
        np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
  return buf.getvalue()


def _model_dict(arrays, sparse):
  out = dict(arrays)
  if sparse:
    out['J_regressor'] = _sparse(arrays['J_regressor'])
  return out


_LANDMARK_KEYS = ('lmk_faces_idx', 'lmk_bary_coords', 'dynamic_lmk_faces_idx',
                  'dynamic_lmk_bary_coords')


def write_model(family, out_dir, *, gender='neutral', seed=0, full_dims=False, ext=None,
                dtype=np.float64):
  """Write one family's stand-in model files under `out_dir/<family>/`.

  Args:
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    out_dir: the model root that `smplx.create` takes.
    gender: 'neutral', 'male' or 'female' (MANO has none).
    seed, full_dims, dtype: see `build.make_model_arrays`.
    ext: SMPL-X only: 'npz' (default), 'pkl', or 'both'.
  Returns:
    the path of the main file (SMPL-X: the npz unless ext='pkl'; MANO: the
    right hand, the left is written beside it; FLAME: FLAME_<GENDER>.pkl, with
    generic_model.pkl for the neutral model and the landmark embeddings beside it).
  """
  arrays = build.make_model_arrays(family, seed, gender=gender, full_dims=full_dims,
                                   dtype=dtype)
  folder = os.path.join(out_dir, family)
  if family == 'smpl':
    return _atomic_write(os.path.join(folder, f'SMPL_{gender.upper()}.pkl'),
                         pickle_bytes(_model_dict(arrays, sparse=True)))
  if family == 'smplx':
    ext = ext or 'npz'
    if ext not in ('npz', 'pkl', 'both'):
      raise ValueError(f"ext must be 'npz', 'pkl' or 'both', not {ext!r}")
    stem = os.path.join(folder, f'SMPLX_{gender.upper()}')
    if ext in ('pkl', 'both'):
      path = _atomic_write(stem + '.pkl', pickle_bytes(_model_dict(arrays, sparse=False)))
    if ext in ('npz', 'both'):
      path = _atomic_write(stem + '.npz', npz_bytes(arrays))
    return path
  if family == 'mano':
    left = build.official_mano_left(arrays)  # with the official file's shapedirs error
    _atomic_write(os.path.join(folder, 'MANO_LEFT.pkl'),
                  pickle_bytes(_model_dict(left, sparse=True)))
    return _atomic_write(os.path.join(folder, 'MANO_RIGHT.pkl'),
                         pickle_bytes(_model_dict(arrays, sparse=True)))
  if family == 'flame':
    lmk = {k: arrays.pop(k) for k in _LANDMARK_KEYS}
    static = {'lmk_face_idx': lmk['lmk_faces_idx'].astype(np.uint32),
              'lmk_b_coords': lmk['lmk_bary_coords']}
    _atomic_write(os.path.join(folder, 'flame_static_embedding.pkl'), pickle_bytes(static))
    dynamic = np.empty((), dtype=object)
    dynamic[()] = {'lmk_face_idx': lmk['dynamic_lmk_faces_idx'].astype(np.uint32),
                   'lmk_b_coords': lmk['dynamic_lmk_bary_coords']}
    buf = io.BytesIO()
    np.save(buf, dynamic, allow_pickle=True)
    _atomic_write(os.path.join(folder, 'flame_dynamic_embedding.npy'), buf.getvalue())
    data = pickle_bytes(_model_dict(arrays, sparse=True))
    if gender == 'neutral':
      _atomic_write(os.path.join(folder, 'generic_model.pkl'), data)
    return _atomic_write(os.path.join(folder, f'FLAME_{gender.upper()}.pkl'), data)
  raise ValueError(f'unknown family {family!r}')


def write_all(out_dir, *, seed=0, full_dims=False, genders=('neutral',), dtype=np.float64):
  """Write all four families (both hands, both SMPL-X extensions) under `out_dir`.

  Returns {family: path of the main file} for the first gender in `genders`.
  """
  paths = {}
  for family in ('smpl', 'smplx', 'mano', 'flame'):
    for gender in (('neutral',) if family == 'mano' else genders):
      path = write_model(family, out_dir, gender=gender, seed=seed, full_dims=full_dims,
                         ext='both', dtype=dtype)
      paths.setdefault(family, path)
  return paths
