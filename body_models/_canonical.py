"""The canonical layout of a model file's arrays, per family, and the checks into it.

    dims = {'J': 24, 'P': 207}
    arrays = canonicalize(values, path, COMMON_SPEC, dims)   # dims gains V, F, S

A spec is a tuple of (key, 'float' | 'int', shape) with symbolic dimensions: V vertices,
F faces, J joints, S shape (+ expression) directions, P = 9 (J - 1) pose-corrective
directions, L static and (C, K) contour landmarks. Canonical arrays are dense, float64
for real values and int64 for indices; every failed check is a ModelFileError naming
the file and the key.

Imports numpy and the standard library only (`skeletons` is plain Python).
"""

import numpy as np

from body_models import skeletons
from body_models._unpickle import ModelFileError

FAMILIES = skeletons.FAMILIES
NUM_JOINTS = {family: len(skeletons.PARENTS[family]) for family in FAMILIES}
# Marks a joint without a parent: -1 as the official files store it, in an unsigned
# 32-bit field.
_NO_PARENT = (-1, 2**32 - 1)

COMMON_SPEC = (
    ('v_template', 'float', ('V', 3)),
    ('f', 'int', ('F', 3)),
    ('shapedirs', 'float', ('V', 3, 'S')),
    ('posedirs', 'float', ('V', 3, 'P')),
    ('J_regressor', 'float', ('J', 'V')),
    ('weights', 'float', ('V', 'J')),
    ('kintree_table', 'int', (2, 'J')),
)
LANDMARK_SPEC = (
    ('lmk_faces_idx', 'int', ('L',)),
    ('lmk_bary_coords', 'float', ('L', 3)),
)
CONTOUR_SPEC = (
    ('dynamic_lmk_faces_idx', 'int', ('C', 'K')),
    ('dynamic_lmk_bary_coords', 'float', ('C', 'K', 3)),
)
FAMILY_SPEC = {
    'smpl': (),
    'smplx': (('hands_componentsl', 'float', (45, 45)),
              ('hands_componentsr', 'float', (45, 45)),
              ('hands_meanl', 'float', (45,)),
              ('hands_meanr', 'float', (45,))) + LANDMARK_SPEC,
    'mano': (('hands_components', 'float', (45, 45)),
             ('hands_mean', 'float', (45,))),
    'flame': (),  # Its landmarks live in separate embedding files.
}
# Every key read from a model file; the rest (J, vt, joint2num, ...) are ignored.
SOURCE_KEYS = frozenset(k for spec in (COMMON_SPEC, LANDMARK_SPEC, CONTOUR_SPEC,
                                       *FAMILY_SPEC.values()) for k, _, _ in spec)


def canonical_keys(family, with_contour=False):
  """The keys of `ModelFile.arrays` for `family`, in a fixed order."""
  spec = COMMON_SPEC + FAMILY_SPEC[family]
  if family == 'flame':
    spec = spec + LANDMARK_SPEC
  if with_contour and family in ('smplx', 'flame'):
    spec = spec + CONTOUR_SPEC
  return tuple(k for k, _, _ in spec) + ('parents',)


def check_family(family, prefix=''):
  """Raise a ModelFileError, starting with `prefix`, unless `family` is None or known."""
  if family is not None and family not in FAMILIES:
    raise ModelFileError(f'{prefix}unknown family {family!r}; expected one of {FAMILIES}')


def _shape_text(spec, dims):
  """('V', 3) with V bound to 30 -> '(V=30, 3)'."""
  parts = [f'{d}={dims[d]}' if isinstance(d, str) and d in dims else str(d) for d in spec]
  return '(' + ', '.join(parts) + (',)' if len(parts) == 1 else ')')


def _as_numeric(value, path, key, kind):
  """Any array-like -> float64 or int64 array of the same shape, or an error naming file and key."""
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


def canonicalize(values, path, spec, dims, optional=False):
  """Convert and check the arrays of `spec` found in `values`. -> {key: array}.

  Args:
    values: key -> raw value, as read from the file.
    path: the file, for error messages.
    spec: (key, 'float' | 'int', shape) triples.
    dims: symbolic dimension -> size; the sizes first seen here are added to it.
    optional: skip the keys `values` lacks instead of raising.
  """
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


def check_optional_pair(values, path, spec):
  """The contour landmarks come as a pair: both or neither."""
  present = [k for k, _, _ in spec if k in values]
  if len(present) == 1:
    missing = [k for k, _, _ in spec if k not in values][0]
    raise ModelFileError(f'{path}: has {present[0]!r} but is missing the key {missing!r}')


def parents_from_kintree(kintree, path):
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


def check_indices(array, bound, path, key, what):
  """Every entry of the int array `array` (any shape) must lie in [0, bound)."""
  if array.size and (array.min() < 0 or array.max() >= bound):
    raise ModelFileError(f'{path}: {key!r} holds indices outside [0, {bound}) ({what})')
