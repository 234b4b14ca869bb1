"""A restricted unpickler for the official body-model files.

The official SMPL, MANO and FLAME files are Python 2 pickles that hold numpy arrays,
scipy.sparse matrices (the joint regressors) and chumpy arrays (usually `shapedirs`).
Plain `pickle.load` would import and call whatever a file names, so a model file
downloaded from anywhere could run code. This unpickler resolves only the globals
those payloads need and refuses every other one, before anything is called.

scipy.sparse and chumpy classes are never imported: each is replaced by a stub that
records the pickled state, and `to_numpy` turns the stub into a dense numpy array.
So neither package is needed to read a file, and a chumpy pickle reads on any numpy.
"""

import functools
import pickle

import numpy as np


class ModelFileError(ValueError):
  """A model file that cannot be read: missing, corrupt, unsafe or of the wrong layout."""


class _Refused(Exception):
  """Raised inside the unpickler; `load_stream` adds the file name."""


# ---- the numpy callables an array pickle names ---------------------------------------


def _numpy_reducers():
  """numpy's own pickle helpers: (_reconstruct, _frombuffer, scalar).

  Asked from numpy itself rather than imported by module path, because that path
  moved from numpy.core (1.x) to numpy._core (2.x) and the old one warns.
  """
  array = np.zeros(1)
  reconstruct = array.__reduce__()[0]
  frombuffer = array.__reduce_ex__(5)[0]
  scalar = np.float64(0.0).__reduce__()[0]
  return reconstruct, frombuffer, scalar


def _latin1_encode(text, encoding='latin1', errors='strict'):
  """Python 3 pickles bytes under protocols 0-2 as `_codecs.encode(text, 'latin1')`.

  Only that use is allowed: other codecs (zlib, base64, ...) have no place in a model file.
  """
  if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
    raise _Refused(f'refused _codecs.encode with encoding {encoding!r}')
  return text.encode('latin1', errors)


def _reconstructor(cls, base, state):
  """copyreg._reconstructor, limited to what old (protocol 0/1) pickles of plain objects use.

  Python writes an instance of a plain class as `_reconstructor(cls, object, None)`
  followed by its state; the only classes that can reach here are our stubs.
  """
  if base is not object or state is not None or not (
      isinstance(cls, type) and issubclass(cls, (SparseStub, ChumpyStub))):
    raise _Refused(f'refused copyreg._reconstructor({cls!r}, {base!r}, ...)')
  return object.__new__(cls)


_RECONSTRUCT, _FROMBUFFER, _SCALAR = _numpy_reducers()

# (module, name) -> the object the unpickler hands back. Python 2 names (`__builtin__`,
# `copy_reg`) are listed beside the Python 3 ones: overriding find_class turns off
# pickle's own mapping of them.
_ALLOWED = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy.core.multiarray', 'scalar'): _SCALAR,
    ('numpy._core.multiarray', 'scalar'): _SCALAR,
    ('numpy.core.numeric', '_frombuffer'): _FROMBUFFER,
    ('numpy._core.numeric', '_frombuffer'): _FROMBUFFER,
    ('copy_reg', '_reconstructor'): _reconstructor,
    ('copyreg', '_reconstructor'): _reconstructor,
    ('__builtin__', 'object'): object,
    ('builtins', 'object'): object,
    ('__builtin__', 'set'): set,
    ('builtins', 'set'): set,
    ('__builtin__', 'frozenset'): frozenset,
    ('builtins', 'frozenset'): frozenset,
    ('_codecs', 'encode'): _latin1_encode,
}

# Every module path scipy has defined its compressed and coordinate formats under.
_SPARSE_MODULES = frozenset(
    ['scipy.sparse', 'scipy.sparse._arrays', 'scipy.sparse._matrix']
    + [f'scipy.sparse.{p}{fmt}' for fmt in ('csc', 'csr', 'coo') for p in ('', '_')])
_SPARSE_CLASSES = frozenset(f'{fmt}_{kind}' for fmt in ('csc', 'csr', 'coo')
                            for kind in ('matrix', 'array'))
# The only chumpy class whose stored `x` is its value. Other classes may also have an
# `x` (chumpy's sin, exp, ... take one as input) but their value is computed from it.
_PLAIN_CHUMPY = frozenset(['chumpy.ch.Ch', 'chumpy.Ch'])


# ---- stubs ------------------------------------------------------------------------------


class SparseStub:
  """Stands in for a pickled scipy.sparse matrix/array and keeps its state.

  `layout` ('csc', 'csr', 'coo') and `source` ('module.name') are set per subclass.
  """
  layout = None
  source = None

  def __setstate__(self, state):
    self.state = _state_dict(state)


class ChumpyStub:
  """Stands in for a pickled chumpy object and keeps its instance dict.

  chumpy's __getstate__ pickles the instance __dict__ minus two weak caches; for a
  plain `Ch` the array is under 'x'.
  """
  source = None

  def __setstate__(self, state):
    self.state = _state_dict(state)


def _state_dict(state):
  """Pickle BUILD state -> dict. A class with __slots__ pickles (dict, slots)."""
  if isinstance(state, tuple) and len(state) == 2:
    merged = dict(state[0] or {})
    merged.update(state[1] or {})
    return merged
  if not isinstance(state, dict):
    raise _Refused(f'unexpected pickled state of type {type(state).__name__}')
  return dict(state)


@functools.lru_cache(maxsize=None)
def _stub_class(base, module, name):
  """One stub subclass per pickled class name, so error messages can name it."""
  layout = name[:3] if base is SparseStub else None
  return type(name, (base,), {'source': f'{module}.{name}', 'layout': layout,
                              '__module__': __name__})


def resolve_global(module, name):
  """The object a pickle's GLOBAL (module, name) is allowed to mean; refuses the rest."""
  if (module, name) in _ALLOWED:
    return _ALLOWED[(module, name)]
  if module in _SPARSE_MODULES and name in _SPARSE_CLASSES:
    return _stub_class(SparseStub, module, name)
  if module == 'chumpy' or module.startswith('chumpy.'):
    return _stub_class(ChumpyStub, module, name)
  raise _Refused(f"refused to load the global '{module}.{name}': model files may only hold "
                 'numpy arrays, scipy.sparse matrices and chumpy arrays')


class RestrictedUnpickler(pickle.Unpickler):
  """pickle.Unpickler that resolves globals through `resolve_global` only.

  encoding='latin1' decodes Python 2 `str` payloads (numpy's raw array bytes among
  them) byte for byte, which is what numpy expects when it rebuilds the arrays.
  """

  def __init__(self, file):
    super().__init__(file, encoding='latin1')

  def find_class(self, module, name):
    return resolve_global(module, name)


def load_stream(stream, path):
  """Unpickle one object from a binary stream. Stubs are left in place (see to_numpy).

  Any failure becomes a ModelFileError naming `path`.
  """
  try:
    return RestrictedUnpickler(stream).load()
  except ModelFileError:
    raise
  except _Refused as e:
    raise ModelFileError(f'{path}: {e}') from None
  except Exception as e:  # A corrupt stream fails in many ways (EOF, bad opcode, numpy).
    raise ModelFileError(f'{path}: not a readable pickle ({type(e).__name__}: {e})') from e


def load(path):
  """Unpickle the file at `path` with the restricted unpickler. Stubs are left in place."""
  try:
    with open(path, 'rb') as f:
      return load_stream(f, path)
  except OSError as e:
    raise ModelFileError(f'{path}: cannot be read ({e})') from e


# ---- stubs -> numpy -----------------------------------------------------------------------


def to_numpy(value, path, key):
  """Replace stubs in `value` (recursively through dicts, lists, tuples) by numpy arrays.

  Args:
    value: anything the unpickler returned.
    path, key: the file and the dict key, for error messages.
  Returns:
    `value` with SparseStub -> dense (M, N) array and plain chumpy Ch -> its array.
  """
  if isinstance(value, SparseStub):
    return sparse_to_dense(value, path, key)
  if isinstance(value, ChumpyStub):
    return _chumpy_to_numpy(value, path, key)
  if isinstance(value, dict):
    return {k: to_numpy(v, path, f'{key}.{k}') for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return type(value)(to_numpy(v, path, key) for v in value)
  return value


def _chumpy_to_numpy(stub, path, key):
  if stub.source not in _PLAIN_CHUMPY:
    raise ModelFileError(
        f'{path}: key {key!r} holds a chumpy expression ({stub.source}), not a stored array; '
        'only plain chumpy.ch.Ch values can be read without chumpy. Re-save the file with '
        'the value evaluated (np.array(value)).')
  if 'x' not in stub.state:
    raise ModelFileError(f'{path}: key {key!r} holds a {stub.source} object without a '
                         "stored value 'x'")
  return np.asarray(to_numpy(stub.state['x'], path, key))


def sparse_to_dense(stub, path, key):
  """SparseStub -> dense (M, N) numpy array, summing duplicate entries as scipy does."""
  s = stub.state
  try:
    shape = s['_shape'] if '_shape' in s else s['shape']
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2 or min(shape) < 0:
      raise ValueError(f'shape {shape} is not 2-D')
    data = np.asarray(s['data'])
    if stub.layout == 'coo':
      row, col = s['coords'] if 'coords' in s else (s['row'], s['col'])
      row, col = np.asarray(row, np.int64), np.asarray(col, np.int64)
    else:
      indptr = np.asarray(s['indptr'], np.int64)
      indices = np.asarray(s['indices'], np.int64)
      n_major = shape[1] if stub.layout == 'csc' else shape[0]
      if (indptr.shape != (n_major + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0)
          or indptr[-1] != len(indices)):
        raise ValueError('index pointer does not match the shape and indices')
      # Compressed formats store, per column (csc) or row (csr), a run of entries.
      major = np.repeat(np.arange(n_major), np.diff(indptr))
      row, col = (indices, major) if stub.layout == 'csc' else (major, indices)
    if not (data.ndim == row.ndim == col.ndim == 1 and len(data) == len(row) == len(col)):
      raise ValueError('data and indices differ in length')
    if len(data) and (row.min() < 0 or col.min() < 0 or row.max() >= shape[0]
                      or col.max() >= shape[1]):
      raise ValueError(f'an index lies outside the shape {shape}')
    dense = np.zeros(shape, dtype=data.dtype)
    np.add.at(dense, (row, col), data)
    return dense
  except (KeyError, TypeError, ValueError, MemoryError) as e:
    raise ModelFileError(
        f'{path}: key {key!r} holds a malformed {stub.source} payload ({e})') from e
