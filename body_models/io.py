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

Imports numpy and the standard library only.
"""

import ast
import dataclasses
import hashlib
import json
import os
import re
import struct
import tempfile
import warnings
import zipfile

import numpy as np

from body_models import _unpickle
from body_models._unpickle import ModelFileError

__all__ = ['ModelFile', 'ModelFileError', 'read_model_file', 'resolve_model_path',
           'canonical_keys', 'load_pickle', 'gender_from_name', 'hand_from_name']

FAMILIES = ('smpl', 'smplx', 'mano', 'flame')
NUM_JOINTS = {'smpl': 24, 'smplx': 55, 'mano': 16, 'flame': 5}
_SMPLH_JOINTS = 52
_GENDERS = ('neutral', 'female', 'male')
# Marks a joint without a parent: -1 as the official files store it, in an unsigned
# 32-bit field.
_NO_PARENT = (-1, 2**32 - 1)

# ---- canonical layout ---------------------------------------------------------------------
# (key, 'float' | 'int', shape) with symbolic dimensions; see the module docstring.

_COMMON_SPEC = (
    ('v_template', 'float', ('V', 3)),
    ('f', 'int', ('F', 3)),
    ('shapedirs', 'float', ('V', 3, 'S')),
    ('posedirs', 'float', ('V', 3, 'P')),
    ('J_regressor', 'float', ('J', 'V')),
    ('weights', 'float', ('V', 'J')),
    ('kintree_table', 'int', (2, 'J')),
)
_LANDMARK_SPEC = (
    ('lmk_faces_idx', 'int', ('L',)),
    ('lmk_bary_coords', 'float', ('L', 3)),
)
_CONTOUR_SPEC = (
    ('dynamic_lmk_faces_idx', 'int', ('C', 'K')),
    ('dynamic_lmk_bary_coords', 'float', ('C', 'K', 3)),
)
_FAMILY_SPEC = {
    'smpl': (),
    'smplx': (('hands_componentsl', 'float', (45, 45)),
              ('hands_componentsr', 'float', (45, 45)),
              ('hands_meanl', 'float', (45,)),
              ('hands_meanr', 'float', (45,))) + _LANDMARK_SPEC,
    'mano': (('hands_components', 'float', (45, 45)),
             ('hands_mean', 'float', (45,))),
    'flame': (),  # Its landmarks live in separate embedding files.
}
# Every key read from a model file; the rest (J, vt, joint2num, ...) are ignored.
_SOURCE_KEYS = frozenset(k for spec in (_COMMON_SPEC, _LANDMARK_SPEC, _CONTOUR_SPEC,
                                        *_FAMILY_SPEC.values()) for k, _, _ in spec)
# FLAME's embedding files name their arrays differently.
_EMBEDDING_KEYS = {'lmk_face_idx': 'faces_idx', 'lmk_b_coords': 'bary_coords'}


def canonical_keys(family, with_contour=False):
  """The keys of `ModelFile.arrays` for `family`, in a fixed order."""
  spec = _COMMON_SPEC + _FAMILY_SPEC[family]
  if family == 'flame':
    spec = spec + _LANDMARK_SPEC
  if with_contour and family in ('smplx', 'flame'):
    spec = spec + _CONTOUR_SPEC
  return tuple(k for k, _, _ in spec) + ('parents',)


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


# ---- names --------------------------------------------------------------------------------


def _name_tokens(path):
  """'basicModel_f_lbs_10_207_0_v1.0.0.pkl' -> ['basicmodel', 'f', 'lbs', '10', ...]."""
  return [t for t in re.split(r'[^a-z0-9]+', os.path.basename(os.fspath(path)).lower()) if t]


def gender_from_name(path):
  """'female' | 'male' | 'neutral' when the file name says, else None.

  Knows the smplx library's names (SMPL_NEUTRAL.pkl, SMPLX_FEMALE.npz), the official
  SMPL ones (basicModel_f_lbs_..., basicmodel_m_lbs_..., basicModel_neutral_lbs_...)
  and FLAME 2020's (female_model.pkl). FLAME's generic_model.pkl says nothing: None.
  """
  tokens = _name_tokens(path)
  for gender in _GENDERS:
    if gender in tokens:
      return gender
  if len(tokens) > 1 and tokens[0] == 'basicmodel':
    return {'f': 'female', 'm': 'male', 'n': 'neutral'}.get(tokens[1])
  return None


def hand_from_name(path):
  """True for a right hand (MANO_RIGHT.pkl), False for a left one, None if the name is silent."""
  tokens = _name_tokens(path)
  if 'right' in tokens:
    return True
  if 'left' in tokens:
    return False
  return None


# ---- reading containers -----------------------------------------------------------------

_NPY_MAGIC = b'\x93NUMPY'
_ZIP_MAGICS = (b'PK\x03\x04', b'PK\x05\x06')


def _file_kind(path):
  """'npz' | 'npy' | 'pickle', from the first bytes (extensions are often wrong)."""
  try:
    with open(path, 'rb') as f:
      head = f.read(8)
  except OSError as e:
    raise ModelFileError(f'{path}: cannot be read ({e})') from e
  if not head:
    raise ModelFileError(f'{path}: the file is empty')
  if head[:4] in _ZIP_MAGICS:
    return 'npz'
  if head[:6] == _NPY_MAGIC:
    return 'npy'
  return 'pickle'


def _read_npy_header(fp, name):
  """Parse an .npy header from a binary stream. -> (shape, fortran_order, dtype).

  Parsed here rather than by np.load so that object arrays, which .npy stores as a
  pickle, can go to the restricted unpickler instead of plain pickle.
  """
  magic = fp.read(8)
  if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
    raise ModelFileError(f'{name}: not an .npy array (bad magic bytes)')
  formats = {1: ('<H', 'latin1'), 2: ('<I', 'latin1'), 3: ('<I', 'utf8')}
  if magic[6] not in formats:
    raise ModelFileError(f'{name}: unknown .npy format version {magic[6]}.{magic[7]}')
  size_format, encoding = formats[magic[6]]
  size_bytes = fp.read(struct.calcsize(size_format))
  if len(size_bytes) != struct.calcsize(size_format):
    raise ModelFileError(f'{name}: truncated .npy header')
  size = struct.unpack(size_format, size_bytes)[0]
  if size > 1 << 20:
    raise ModelFileError(f'{name}: .npy header of {size} bytes is implausibly large')
  try:
    header = ast.literal_eval(fp.read(size).decode(encoding))
    dtype = np.lib.format.descr_to_dtype(header['descr'])
    shape = tuple(int(n) for n in header['shape'])
    fortran = bool(header['fortran_order'])
  except Exception as e:  # literal_eval and descr_to_dtype raise several kinds.
    raise ModelFileError(f'{name}: malformed .npy header ({e})') from e
  return shape, fortran, dtype


def _read_npy_stream(fp, name):
  """One .npy array from a binary stream; object arrays through the restricted unpickler."""
  shape, fortran, dtype = _read_npy_header(fp, name)
  if dtype.hasobject:
    # numpy writes an object array as a pickle of the whole array after the header.
    array = _unpickle.load_stream(fp, name)
    if not isinstance(array, np.ndarray):
      raise ModelFileError(f'{name}: object payload is a {type(array).__name__}, not an array')
    return array
  count = int(np.prod(shape, dtype=np.int64))
  nbytes = count * dtype.itemsize
  data = fp.read(nbytes)
  if len(data) != nbytes:
    raise ModelFileError(f'{name}: truncated .npy data ({len(data)} of {nbytes} bytes)')
  return np.frombuffer(data, dtype=dtype, count=count).reshape(
      shape, order='F' if fortran else 'C')


def _read_npz(path, wanted):
  """Members of an .npz. -> ({name: array} for names in `wanted` (all if None), all names)."""
  try:
    with zipfile.ZipFile(path) as archive:
      members = {n[:-4]: n for n in archive.namelist() if n.endswith('.npy')}
      if not members:
        raise ModelFileError(f'{path}: a zip archive with no .npy members, not an .npz file')
      arrays = {}
      for key, member in members.items():
        if wanted is None or key in wanted:
          with archive.open(member) as fp:
            arrays[key] = _read_npy_stream(fp, f'{path}[{key}]')
  except ModelFileError:
    raise
  except Exception as e:  # BadZipFile, zlib.error, EOFError, OSError on a damaged archive.
    raise ModelFileError(f'{path}: not a readable .npz archive ({type(e).__name__}: {e})') from e
  return arrays, set(members)


def _read_mapping(path, wanted=None):
  """A dict-like file (pickle, .npz, or .npy holding a 0-d object dict).

  Returns ({key: value with stubs converted} for keys in `wanted` (all if None),
  set of every key in the file).
  """
  kind = _file_kind(path)
  if kind == 'npz':
    return _read_npz(path, wanted)
  if kind == 'npy':
    try:
      with open(path, 'rb') as fp:
        content = _read_npy_stream(fp, path)
    except OSError as e:
      raise ModelFileError(f'{path}: cannot be read ({e})') from e
    # FLAME's flame_dynamic_embedding.npy is np.save of a dict: a 0-d object array.
    if content.dtype.hasobject and content.shape == ():
      content = content.item()
  else:
    content = _unpickle.load(path)
  if not isinstance(content, dict):
    raise ModelFileError(f'{path}: holds a {type(content).__name__}, expected a dict of arrays')
  keys = set(content)
  return ({k: _unpickle.to_numpy(v, path, k) for k, v in content.items()
           if wanted is None or k in wanted}, keys)


def load_pickle(path):
  """Unpickle `path` safely; for a dict, every value with stubs converted to numpy.

  Refuses every global other than numpy, scipy.sparse and chumpy array payloads.
  """
  content = _unpickle.load(path)
  return _unpickle.to_numpy(content, path, '<top level>')


# ---- canonical arrays ---------------------------------------------------------------------


def _shape_text(spec, dims):
  """('V', 3) with V bound to 30 -> '(V=30, 3)'."""
  parts = [f'{d}={dims[d]}' if isinstance(d, str) and d in dims else str(d) for d in spec]
  return '(' + ', '.join(parts) + (',)' if len(parts) == 1 else ')')


def _as_numeric(value, path, key, kind):
  """Any array-like -> float64 or int64 array, or an error naming file and key."""
  try:
    array = np.asarray(value)
  except Exception as e:
    raise ModelFileError(f'{path}: {key!r} is not an array ({e})') from e
  if array.dtype.kind not in 'iuf':
    raise ModelFileError(f'{path}: {key!r} has dtype {array.dtype}, expected numbers')
  if array.dtype.kind == 'f' and not np.all(np.isfinite(array)):
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    raise ModelFileError(f'{path}: {key!r} has {bad} non-finite values')
  if kind == 'float':
    return array.astype(np.float64)
  if array.dtype.kind == 'f' and not np.all(array == np.round(array)):
    raise ModelFileError(f'{path}: {key!r} should hold integers, found fractions')
  if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
    raise ModelFileError(f'{path}: {key!r} holds integers too large for int64')
  return array.astype(np.int64)


def _check_shape(array, path, key, spec, dims):
  """Check `array.shape` against `spec`; on success bind its new symbolic dims in `dims`."""
  bound = {}
  ok = array.ndim == len(spec)
  for d, n in zip(spec, array.shape) if ok else ():
    if isinstance(d, int):
      expected = d
    elif d in dims:
      expected = dims[d]
    else:
      expected = bound.setdefault(d, n)  # a dim seen twice in one spec must agree with itself
    ok = ok and n == expected
  if not ok:
    raise ModelFileError(f'{path}: {key!r} has shape {tuple(array.shape)}, expected '
                         f'{_shape_text(spec, dims)}')
  dims.update(bound)


def _canonical_posedirs(array, dims):
  """Bring a 2-D posedirs to (V, 3, P).

  (V*3, P): rows ordered vertex-major (v * 3 + xyz), i.e. (V, 3, P) flattened in C order.
  (P, V*3): the transposed form, as the smplx library holds it in memory.
  """
  if array.ndim == 2 and 'V' in dims:
    v3, p = 3 * dims['V'], dims['P']
    if array.shape == (v3, p):
      return array.reshape(dims['V'], 3, p)
    if array.shape == (p, v3):
      return array.T.reshape(dims['V'], 3, p)
  return array


def _canonical(values, path, spec, dims, optional=False):
  """Convert and check the arrays of `spec` found in `values`. -> {key: array}."""
  out = {}
  for key, kind, shape in spec:
    if key not in values:
      if optional:
        continue
      raise ModelFileError(f'{path}: missing the key {key!r}')
    array = _as_numeric(values[key], path, key, kind)
    if key == 'posedirs':
      array = _canonical_posedirs(array, dims)
    _check_shape(array, path, key, shape, dims)
    out[key] = array
  return out


def _check_optional_pair(values, path, spec):
  """The contour landmarks come as a pair: both or neither."""
  present = [k for k, _, _ in spec if k in values]
  if len(present) == 1:
    missing = [k for k, _, _ in spec if k not in values][0]
    raise ModelFileError(f'{path}: has {present[0]!r} but is missing the key {missing!r}')


def _parents(kintree, path):
  """(2, J) kintree_table -> ((2, J) table with -1 at the root, (J,) parents)."""
  num_joints = kintree.shape[1]
  if not np.array_equal(kintree[1], np.arange(num_joints)):
    raise ModelFileError(f'{path}: kintree_table[1] should list the joints 0..{num_joints - 1} '
                         f'in order, got {kintree[1].tolist()}')
  parents = kintree[0].copy()
  if parents[0] not in _NO_PARENT:
    raise ModelFileError(f'{path}: joint 0 should be the root, but kintree_table gives it '
                         f'the parent {parents[0]}')
  parents[0] = -1
  # The skinning code visits joints in index order, so a parent must come first.
  bad = [j for j in range(1, num_joints) if not 0 <= parents[j] < j]
  if bad:
    raise ModelFileError(f'{path}: joint {bad[0]} has the parent {parents[bad[0]]}; every '
                         'joint but the root needs a parent with a smaller index')
  return np.stack([parents, kintree[1]]), parents


def _check_indices(array, bound, path, key, what):
  if array.size and (array.min() < 0 or array.max() >= bound):
    raise ModelFileError(f'{path}: {key!r} holds indices outside [0, {bound}) ({what})')


def _detect_family(values, keys, path, family):
  """The family from the joint count, cross-checked with the keys and with `family`."""
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


def _read_landmarks(path, prefix, model_path):
  """A FLAME landmark embedding file -> {prefix + 'faces_idx' | 'bary_coords': array}, unchecked."""
  values, _ = _read_mapping(path, wanted=set(_EMBEDDING_KEYS))
  renamed = {prefix + new: values[old] for old, new in _EMBEDDING_KEYS.items() if old in values}
  for old, new in _EMBEDDING_KEYS.items():
    if prefix + new not in renamed:
      raise ModelFileError(f'{path}: missing the key {old!r} (landmark embedding of '
                           f'{model_path})')
  return renamed


def _flame_embedding_paths(path, landmarks_path, contour_path):
  """(static path, contour path or None if absent) for a FLAME model at `path`."""
  folder = os.path.dirname(os.path.abspath(path))
  if landmarks_path is None:
    landmarks_path = os.path.join(folder, 'flame_static_embedding.pkl')
  if contour_path is None:
    default = os.path.join(folder, 'flame_dynamic_embedding.npy')
    contour_path = default if os.path.isfile(default) else None
  return os.fspath(landmarks_path), None if contour_path is None else os.fspath(contour_path)


def _read_canonical(path, family, landmarks_path, contour_path, fix_left, is_right_hand):
  """Read and check `path`. -> (family, {canonical key: array})."""
  kind = _file_kind(path)
  if kind == 'npy':
    raise ModelFileError(f'{path}: a single .npy array, not a model file (.pkl or .npz)')
  values, keys = _read_mapping(path, wanted=_SOURCE_KEYS)
  family = _detect_family(values, keys, path, family)
  num_joints = NUM_JOINTS[family]
  dims = {'J': num_joints, 'P': 9 * (num_joints - 1)}
  arrays = _canonical(values, path, _COMMON_SPEC + _FAMILY_SPEC[family], dims)
  arrays['kintree_table'], arrays['parents'] = _parents(arrays['kintree_table'], path)
  _check_indices(arrays['f'], dims['V'], path, 'f', 'vertex indices')
  landmarks = {}  # file -> its landmark arrays
  if family == 'smplx':
    _check_optional_pair(values, path, _CONTOUR_SPEC)
    landmarks[path] = {k: arrays[k] for k, _, _ in _LANDMARK_SPEC}
    landmarks[path].update(_canonical(values, path, _CONTOUR_SPEC, dims, optional=True))
  if family == 'flame':
    static_path, dynamic_path = _flame_embedding_paths(path, landmarks_path, contour_path)
    if not os.path.isfile(static_path):
      raise ModelFileError(f'{path}: a FLAME model needs its landmark embedding; '
                           f'{static_path} was not found (pass landmarks_path=)')
    landmarks[static_path] = _canonical(_read_landmarks(static_path, 'lmk_', path),
                                         static_path, _LANDMARK_SPEC, dims)
    if dynamic_path is not None:
      landmarks[dynamic_path] = _canonical(_read_landmarks(dynamic_path, 'dynamic_lmk_', path),
                                           dynamic_path, _CONTOUR_SPEC, dims)
  for source, found in landmarks.items():
    for key in ('lmk_faces_idx', 'dynamic_lmk_faces_idx'):
      if key in found:
        _check_indices(found[key], arrays['f'].shape[0], source, key, 'face indices')
    arrays.update(found)

  if family == 'mano' and fix_left and is_right_hand is False:
    # The left MANO file's shape directions have the x component's sign flipped
    # (documented in the smplx README). The smplx users' fix compares with the right
    # file first; here the caller asked for it, so apply it to every left hand.
    arrays['shapedirs'][:, 0, :] *= -1.0
  return family, arrays


# ---- cache ----------------------------------------------------------------------------------

_CACHE_VERSION = 1
_FAMILY_ENTRY = '__family__'


def _hash_file(digest, path):
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)


def _cache_name(path, aux_paths, options):
  """File name of the cache entry: a hash of the bytes read and of the options."""
  digest = hashlib.sha256(f'neuralannot-jax model cache v{_CACHE_VERSION}\n'.encode())
  digest.update(json.dumps(options, sort_keys=True).encode())
  for aux in [path] + list(aux_paths):
    digest.update(b'\0file\0')
    if aux is not None and os.path.isfile(aux):
      _hash_file(digest, aux)
  return digest.hexdigest()[:40] + '.npz'


def _read_cache(cache_path):
  """-> (family, arrays) or None when the entry is absent or unreadable."""
  if not os.path.isfile(cache_path):
    return None
  try:
    with np.load(cache_path, allow_pickle=False) as entry:
      arrays = {k: entry[k] for k in entry.files if k != _FAMILY_ENTRY}
      family = str(entry[_FAMILY_ENTRY])
  except Exception as e:  # A damaged entry is rebuilt, never trusted.
    warnings.warn(f'ignoring unreadable model cache entry {cache_path} ({e})')
    return None
  return (family, arrays) if family in FAMILIES else None


def _write_cache(cache_path, family, arrays):
  """Write the entry atomically: a temporary file in the same folder, then os.replace."""
  folder = os.path.dirname(cache_path)
  tmp = None
  try:
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix='.npz')
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, **{_FAMILY_ENTRY: np.array(family)}, **arrays)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, cache_path)
  except OSError as e:  # The cache only saves time; a read-only folder must not stop a load.
    warnings.warn(f'could not write the model cache entry {cache_path} ({e})')
    if tmp is not None and os.path.exists(tmp):
      os.unlink(tmp)


# ---- public readers -------------------------------------------------------------------------


def read_model_file(path, family=None, *, landmarks_path=None, contour_path=None,
                    fix_mano_left_shapedirs=False, cache_dir=None):
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
    fix_mano_left_shapedirs: negate shapedirs[:, 0, :] of a left MANO hand (one whose
      file name says LEFT), undoing the sign error of the official MANO_LEFT.pkl.
    cache_dir: when given, the canonical arrays are kept there as .npz, named by a hash
      of the bytes read and the options, and reused while those are unchanged.
  Returns:
    ModelFile.
  Raises:
    ModelFileError (a ValueError) naming the file, and the key where one is at fault.
  """
  path = os.fspath(path)
  if family is not None and family not in FAMILIES:
    raise ModelFileError(f'{path}: unknown family {family!r}; expected one of {FAMILIES}')
  if os.path.isdir(path):
    raise ModelFileError(f'{path}: is a directory; find the file with resolve_model_path()')
  if not os.path.isfile(path):
    raise ModelFileError(f'{path}: no such file')
  gender = gender_from_name(path)
  is_right_hand = hand_from_name(path)

  cache_path = None
  if cache_dir is not None:
    options = {'family': family, 'fix_mano_left_shapedirs': bool(fix_mano_left_shapedirs),
               'is_right_hand': is_right_hand}
    # Only a FLAME model uses these, but the family is known only after reading.
    aux = _flame_embedding_paths(path, landmarks_path, contour_path)
    cache_path = os.path.join(os.fspath(cache_dir), _cache_name(path, aux, options))
    cached = _read_cache(cache_path)
    if cached is not None:
      found, arrays = cached
      return ModelFile(found, path, gender, is_right_hand if found == 'mano' else None, arrays)

  found, arrays = _read_canonical(path, family, landmarks_path, contour_path,
                                  fix_mano_left_shapedirs, is_right_hand)
  if cache_path is not None:
    _write_cache(cache_path, found, arrays)
  return ModelFile(found, path, gender, is_right_hand if found == 'mano' else None, arrays)


_DEFAULT_EXTS = {'smpl': ('pkl', 'npz'), 'smplx': ('npz', 'pkl'), 'mano': ('pkl', 'npz'),
                 'flame': ('pkl', 'npz')}
# Names of the files as their authors ship them (matched ignoring case: the SMPL
# downloads mix basicModel_ and basicmodel_).
_OFFICIAL_NAMES = {
    'smpl': {g: [f'basicmodel_{a}_lbs_10_207_0_v{v}.pkl' for v in ('1.1.0', '1.0.0')]
             for g, a in (('neutral', 'neutral'), ('female', 'f'), ('male', 'm'))},
    'flame': {'neutral': ['generic_model.pkl'], 'female': ['female_model.pkl'],
              'male': ['male_model.pkl']},
}


def _candidate_names(family, gender, ext, is_right_hand):
  exts = (ext,) if ext else _DEFAULT_EXTS[family]
  if family == 'mano':
    return [f"MANO_{'RIGHT' if is_right_hand else 'LEFT'}.{e}" for e in exts]
  names = [f'{family.upper()}_{gender.upper()}.{e}' for e in exts]
  official = _OFFICIAL_NAMES.get(family, {}).get(gender, [])
  return names + [n for n in official if ext in (None, 'pkl')]


def _find_in_dir(folder, name):
  """`folder/name` if it exists, matching the name ignoring case; else None."""
  exact = os.path.join(folder, name)
  if os.path.isfile(exact):
    return exact
  if not os.path.isdir(folder):
    return None
  for entry in sorted(os.listdir(folder)):
    if entry.lower() == name.lower() and os.path.isfile(os.path.join(folder, entry)):
      return os.path.join(folder, entry)
  return None


def resolve_model_path(path, family=None, gender='neutral', ext=None, is_right_hand=True):
  """The model file that `path` names: itself if a file, else found in a directory.

  In a directory, looks in `<dir>/<family>/` then `<dir>/` for the smplx library's
  names (SMPL_NEUTRAL.pkl, SMPLX_NEUTRAL.npz then .pkl, MANO_RIGHT.pkl / MANO_LEFT.pkl,
  FLAME_NEUTRAL.pkl) and then the official ones (basicModel_neutral_lbs_10_207_0_v1.0.0.pkl
  and the v1.1.0 names; FLAME 2020's generic_model.pkl, female_model.pkl, male_model.pkl).

  Args:
    path: a file or a directory.
    family: which family to look for; None tries all and needs exactly one to be there.
    gender: 'neutral' | 'female' | 'male' (not used for MANO).
    ext: 'pkl' | 'npz' to look for that extension only.
    is_right_hand: MANO: right (MANO_RIGHT) or left (MANO_LEFT).
  Returns:
    str, the path of an existing file.
  Raises:
    ModelFileError listing every path tried.
  """
  path = os.fspath(path)
  if os.path.isfile(path):
    return path
  if not os.path.isdir(path):
    raise ModelFileError(f'{path}: no such file or directory')
  if family is not None and family not in FAMILIES:
    raise ModelFileError(f'unknown family {family!r}; expected one of {FAMILIES}')
  gender = str(gender).lower()
  if gender not in _GENDERS:
    raise ModelFileError(f'unknown gender {gender!r}; expected one of {_GENDERS}')
  if ext is not None:
    ext = ext.lstrip('.').lower()
  tried, found = [], {}
  for fam in (family,) if family else FAMILIES:
    for folder in (os.path.join(path, fam), path):
      for name in _candidate_names(fam, gender, ext, is_right_hand):
        tried.append(os.path.join(folder, name))
        hit = _find_in_dir(folder, name)
        if hit is not None and fam not in found:
          found[fam] = hit
  if len(found) > 1:
    raise ModelFileError(f'{path}: holds models of several families ({", ".join(found)}); '
                         'pass family=')
  if not found:
    raise ModelFileError(f'{path}: no model file found; tried:\n  ' + '\n  '.join(tried))
  return next(iter(found.values()))
