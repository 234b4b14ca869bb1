"""Container files read into dicts of raw values: pickles, .npz archives, .npy arrays.

    values, keys = read_mapping('SMPL_NEUTRAL.pkl', wanted={'v_template', 'f'})
    values['v_template']                           # (V, 3) array, as stored

The kind of a file is told from its first bytes (`file_kind`), since the extensions of
the files in circulation are often wrong. Pickles, and the object arrays an .npy can
hold, go through the restricted unpickler (`_unpickle`); its scipy.sparse and chumpy
stubs come back as dense numpy arrays. Nothing here knows about model layouts.

Imports numpy and the standard library only.
"""

import ast
import struct
import zipfile

import numpy as np

from body_models import _unpickle
from body_models._unpickle import ModelFileError

_NPY_MAGIC = b'\x93NUMPY'
_ZIP_MAGICS = (b'PK\x03\x04', b'PK\x05\x06')


def _read_file(path, read):
  """`read(binary stream)` on the file at `path`; an OSError becomes a ModelFileError."""
  try:
    with open(path, 'rb') as f:
      return read(f)
  except OSError as e:
    raise ModelFileError(f'{path}: cannot be read ({e})') from e


def file_kind(path):
  """'npz' | 'npy' | 'pickle', from the first bytes (extensions are often wrong)."""
  head = _read_file(path, lambda f: f.read(8))
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
  """One .npy array, of the header's shape, from a binary stream.

  Object arrays go through the restricted unpickler; their stubs are left in place.
  """
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


def read_mapping(path, wanted=None, kind=None):
  """A dict-like file (pickle, .npz, or .npy holding a 0-d object dict).

  Args:
    path: the file.
    wanted: the keys to return, or None for all of them.
    kind: `file_kind(path)` when the caller has already told it, else None.
  Returns:
    ({key: value with stubs converted to numpy} for keys in `wanted`,
     set of every key in the file).
  """
  kind = file_kind(path) if kind is None else kind
  if kind == 'npz':
    return _read_npz(path, wanted)
  if kind == 'npy':
    content = _read_file(path, lambda fp: _read_npy_stream(fp, path))
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
