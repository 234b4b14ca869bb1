"""Tests of body_models.io: the restricted unpickler and the canonical model-file reader.

The fixtures are tiny random models (V=30 vertices, the real joint count of each family)
written in each official layout, including Python 2 style pickles: `Py2Pickler` writes
bytes as Python 2 `str` opcodes and uses Python 2 / old numpy / old scipy module names,
as the official SMPL, MANO and FLAME files do.
"""

import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from body_models import io
from body_models import skeletons
from body_models.io import ModelFileError

V, F = 30, 20
NUM_SHAPE = {'smpl': 10, 'smplx': 20, 'mano': 10, 'flame': 20}
# Canonical keys that come straight from a model file (parents is derived).
FILE_KEYS = ('v_template', 'f', 'shapedirs', 'posedirs', 'J_regressor', 'weights')


# ---- writing pickles the way Python 2 did ---------------------------------------------------

_PY2_MODULES = {
    'builtins': '__builtin__', 'copyreg': 'copy_reg',
    'numpy._core.multiarray': 'numpy.core.multiarray',
    'numpy._core.numeric': 'numpy.core.numeric',
    'scipy.sparse._csc': 'scipy.sparse.csc', 'scipy.sparse._csr': 'scipy.sparse.csr',
    'scipy.sparse._coo': 'scipy.sparse.coo',
}


class Py2Pickler(pickle._Pickler):
  """Pickles as Python 2 with numpy 1.x and old scipy wrote them.

  bytes become `str` opcodes (STRING / BINSTRING), read back by Python 3 only with
  encoding='latin1'; module names are the Python 2 / numpy.core / scipy.sparse.csc ones.
  """
  dispatch = pickle._Pickler.dispatch.copy()

  def save_py2_str(self, obj):
    if self.proto == 0:
      self.write(b'S' + repr(obj)[1:].encode('ascii') + b'\n')
    elif len(obj) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
    else:
      self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
    self.memoize(obj)

  dispatch[bytes] = save_py2_str

  def save_global(self, obj, name=None):
    module = obj.__module__
    self.write(pickle.GLOBAL + f'{_PY2_MODULES.get(module, module)}\n'
               f'{name or obj.__qualname__}\n'.encode())
    self.memoize(obj)


def py2_dump(obj, path, protocol=2):
  with open(path, 'wb') as f:
    Py2Pickler(f, protocol).dump(obj)


class FakeCh:
  """Pickles like chumpy.ch.Ch: its __getstate__ is the instance dict minus two weak caches."""

  def __init__(self, x):
    # What chumpy's Ch.__new__ and set(x=...) leave in the instance dict.
    self.__dict__.update(_dirty_vars={'x'}, _itr=None, _parents={}, _cache={'r': None},
                         _make_dense=False, _make_sparse=False, _depends_on_deps={},
                         x=np.asarray(x, np.float64))

  def __getstate__(self):
    state = dict(self.__dict__)
    del state['_parents'], state['_cache']
    return state


FakeCh.__module__, FakeCh.__name__, FakeCh.__qualname__ = 'chumpy.ch', 'Ch', 'Ch'


class FakeSin(FakeCh):
  """A derived chumpy expression (chumpy.ch_ops.sin): it has an `x`, but its value is sin(x)."""


FakeSin.__module__, FakeSin.__name__, FakeSin.__qualname__ = 'chumpy.ch_ops', 'sin', 'sin'


class FakeAdd:
  def __init__(self, a, b):
    self.__dict__.update(a=a, b=b, _dirty_vars=set(), _itr=None)


FakeAdd.__module__, FakeAdd.__name__, FakeAdd.__qualname__ = 'chumpy.ch_ops', 'add', 'add'


# ---- tiny models in the official layouts ----------------------------------------------------


def make_model(family, seed=0):
  """A random model dict in the official key layout (chumpy-free, dense J_regressor)."""
  rng = np.random.default_rng(seed)
  parents = np.array(skeletons.PARENTS[family])
  num_joints = len(parents)
  regressor = rng.random((num_joints, V)) * (rng.random((num_joints, V)) < 0.3)
  regressor[:, 0] += 0.1
  weights = rng.random((V, num_joints))
  model = {
      'v_template': rng.normal(size=(V, 3)),
      'f': rng.integers(0, V, size=(F, 3)).astype(np.uint32),
      'shapedirs': rng.normal(size=(V, 3, NUM_SHAPE[family])) * 1e-2,
      'posedirs': rng.normal(size=(V, 3, 9 * (num_joints - 1))) * 1e-3,
      'J_regressor': regressor / regressor.sum(1, keepdims=True),
      'weights': weights / weights.sum(1, keepdims=True),
      # The official files store the root's missing parent as -1 in uint32.
      'kintree_table': np.stack([np.where(parents < 0, 2**32 - 1, parents),
                                 np.arange(num_joints)]).astype(np.int64),
      'J': rng.normal(size=(num_joints, 3)),          # extra keys, ignored
      'bs_style': 'lbs', 'bs_type': 'lrotmin', 'vert_sym_idxs': np.arange(V),
  }
  if family == 'smplx':
    model.update(
        hands_componentsl=rng.normal(size=(45, 45)), hands_componentsr=rng.normal(size=(45, 45)),
        hands_meanl=rng.normal(size=45), hands_meanr=rng.normal(size=45),
        lmk_faces_idx=rng.integers(0, F, 51).astype(np.uint32),
        lmk_bary_coords=rng.dirichlet(np.ones(3), 51),
        dynamic_lmk_faces_idx=rng.integers(0, F, (79, 17)),
        dynamic_lmk_bary_coords=rng.dirichlet(np.ones(3), (79, 17)))
  if family == 'mano':
    model.update(hands_components=rng.normal(size=(45, 45)), hands_mean=rng.normal(size=45),
                 hands_coeffs=rng.normal(size=(5, 45)))
  return model


def make_flame_embeddings(seed=0):
  rng = np.random.default_rng(seed + 1)
  static = {'lmk_face_idx': rng.integers(0, F, 51).astype(np.uint32),
            'lmk_b_coords': rng.dirichlet(np.ones(3), 51)}
  dynamic = {'lmk_face_idx': rng.integers(0, F, (79, 17)),
             'lmk_b_coords': rng.dirichlet(np.ones(3), (79, 17))}
  return static, dynamic


def with_sparse_regressor(model):
  sparse = pytest.importorskip('scipy.sparse')
  if 'J_regressor' not in model:
    return model
  return dict(model, J_regressor=sparse.csc_matrix(model['J_regressor']))


def write_official_v1(model, path, protocol=2):
  """The SMPL v1.0 / MANO / FLAME layout: Python 2 pickle, chumpy shapedirs, csc regressor."""
  py2_dump(dict(with_sparse_regressor(model), shapedirs=FakeCh(model['shapedirs'])), path,
           protocol)


def write_chumpy_free(model, path):
  """What the smplx library's tools write: a Python 3 pickle, regressor still scipy."""
  with open(path, 'wb') as f:
    pickle.dump(with_sparse_regressor(model), f)


def write_npz(model, path):
  extra = {'joint2num': np.array({'pelvis': 0}, dtype=object)}  # as in SMPLX_*.npz
  with open(path, 'wb') as f:  # a file object: np.savez would append '.npz' to a path
    np.savez(f, **model, **extra)


def write_py2_npy_object(obj, path):
  """np.save of a dict under Python 2, as FLAME's flame_dynamic_embedding.npy."""
  array = np.empty((), dtype=object)
  array[()] = obj
  with open(path, 'wb') as f:
    np.lib.format.write_array_header_1_0(f, {'descr': '|O', 'fortran_order': False,
                                             'shape': ()})
    Py2Pickler(f, 2).dump(array)


def write_flame_dir(folder, model, writer=write_official_v1, name='generic_model.pkl'):
  """FLAME's model file with its two landmark embeddings beside it. -> (path, static, dynamic)."""
  folder.mkdir(parents=True, exist_ok=True)
  static, dynamic = make_flame_embeddings()
  writer(model, folder / name)
  py2_dump(static, folder / 'flame_static_embedding.pkl')
  write_py2_npy_object(dynamic, folder / 'flame_dynamic_embedding.npy')
  return folder / name, static, dynamic


def assert_canonical(model_file, model, family):
  arrays = model_file.arrays
  assert model_file.family == family
  for key in FILE_KEYS:
    np.testing.assert_allclose(arrays[key], np.asarray(model[key]), rtol=0, atol=0, err_msg=key)
  for key, array in arrays.items():
    assert array.dtype in (np.float64, np.int64), key
  parents = np.array(skeletons.PARENTS[family])
  np.testing.assert_array_equal(arrays['parents'], parents)
  np.testing.assert_array_equal(arrays['kintree_table'],
                                np.stack([parents, np.arange(len(parents))]))
  assert arrays['f'].dtype == np.int64
  with_contour = 'dynamic_lmk_faces_idx' in arrays
  assert set(arrays) == set(io.canonical_keys(family, with_contour=with_contour))


# ---- 1. the restricted unpickler ------------------------------------------------------------


@pytest.mark.parametrize('protocol', [0, 1, 2])
def test_py2_numpy_pickles_read_with_latin1(tmp_path, protocol):
  arrays = {'f8': np.linspace(-1, 1, 7), 'u4': np.array([[4294967295, 0, 1]], np.uint32),
            'big': np.arange(6, dtype='>i8').reshape(2, 3), 'fortran': np.asfortranarray(
                np.arange(12.).reshape(3, 4)), 'bytes': np.frombuffer(bytes(range(256)), np.uint8),
            'scalar': np.float64(2.5), 'zero_d': np.array(3.0)}
  path = tmp_path / 'py2.pkl'
  py2_dump(arrays, path, protocol)
  assert b'numpy.core.multiarray' in path.read_bytes()
  with pytest.raises(UnicodeDecodeError):  # why the reader must use latin1
    pickle.loads(path.read_bytes())
  loaded = io.load_pickle(path)
  for key, value in arrays.items():
    np.testing.assert_array_equal(loaded[key], value)
    # numpy itself may hand back a big-endian array in native order, values intact.
    assert np.asarray(loaded[key]).dtype == np.asarray(value).dtype.newbyteorder('=')


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_py3_numpy_pickles_every_protocol(tmp_path, protocol):
  arrays = {'a': np.random.default_rng(0).normal(size=(4, 3)), 'i': np.arange(5),
            'set': {1, 2}, 'o': np.array([{'k': np.arange(2)}], dtype=object)}
  path = tmp_path / 'py3.pkl'
  path.write_bytes(pickle.dumps(arrays, protocol=protocol))
  loaded = io.load_pickle(path)
  np.testing.assert_array_equal(loaded['a'], arrays['a'])
  np.testing.assert_array_equal(loaded['i'], arrays['i'])
  assert loaded['set'] == {1, 2}
  np.testing.assert_array_equal(loaded['o'][0]['k'], np.arange(2))


class CallsBack:
  """__reduce__ asks the unpickler to call a function: the classic pickle exploit."""
  calls = []

  def __reduce__(self):
    return (record_call, ('pwned',))


def record_call(arg):
  CallsBack.calls.append(arg)


def test_refuses_os_system_without_running_it(tmp_path):
  marker = tmp_path / 'marker'
  path = tmp_path / 'evil.pkl'
  path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
  with pytest.raises(ModelFileError, match=r"os\.system") as info:
    io.load_pickle(path)
  assert str(path) in str(info.value)
  assert not marker.exists()
  with pytest.raises(ModelFileError, match=r"os\.system"):
    io.read_model_file(path)
  assert not marker.exists()


def test_refuses_reduce_call_inside_a_model(tmp_path):
  model = dict(make_model('smpl'), pose_training_info=CallsBack())
  path = tmp_path / 'model.pkl'
  path.write_bytes(pickle.dumps(model, protocol=2))
  with pytest.raises(ModelFileError, match=r'test_io\.record_call') as info:
    io.read_model_file(path)
  assert str(path) in str(info.value)
  assert CallsBack.calls == []


@pytest.mark.parametrize('payload, refused', [
    (b"c__builtin__\neval\n(S'1'\ntR.", '__builtin__.eval'),
    (b"cbuiltins\nexec\n(S'1'\ntR.", 'builtins.exec'),
    (b"cnumpy\nload\n(S'x'\ntR.", 'numpy.load'),
    (b"c_codecs\nencode\n(S'x'\nS'zlib_codec'\ntR.", "encoding 'zlib_codec'"),
    (b"ccopy_reg\n_reconstructor\n(c__builtin__\nset\nc__builtin__\nset\nNtR.",
     'copyreg._reconstructor'),
])
def test_refuses_other_globals(tmp_path, payload, refused):
  path = tmp_path / 'evil.pkl'
  path.write_bytes(payload)
  with pytest.raises(ModelFileError) as info:
    io.load_pickle(path)
  assert refused in str(info.value) and str(path) in str(info.value)


@pytest.fixture
def fake_chumpy():
  """Registers `chumpy` and `chumpy.ch` while a test pickles; the test removes them."""
  module = types.ModuleType('chumpy.ch')
  module.Ch = FakeCh
  ops = types.ModuleType('chumpy.ch_ops')
  ops.sin, ops.add = FakeSin, FakeAdd
  saved = {k: sys.modules.get(k) for k in ('chumpy', 'chumpy.ch', 'chumpy.ch_ops')}
  sys.modules.update({'chumpy': types.ModuleType('chumpy'), 'chumpy.ch': module,
                      'chumpy.ch_ops': ops})

  def remove():
    for key, value in saved.items():
      if value is None:
        sys.modules.pop(key, None)
      else:
        sys.modules[key] = value

  yield remove
  remove()


def test_chumpy_pickle_protocol_2_without_chumpy(tmp_path, fake_chumpy):
  model = make_model('smpl')
  data = pickle.dumps(dict(model, shapedirs=FakeCh(model['shapedirs'])), protocol=2)
  fake_chumpy()
  assert 'chumpy' not in sys.modules and b'chumpy.ch\nCh' in data
  assert b'__builtin__\nset' in data  # the _dirty_vars set, under its Python 2 name
  path = tmp_path / 'basicModel_f_lbs_10_207_0_v1.0.0.pkl'
  path.write_bytes(data)
  model_file = io.read_model_file(path)
  np.testing.assert_array_equal(model_file.arrays['shapedirs'], model['shapedirs'])
  assert 'chumpy' not in sys.modules


@pytest.mark.parametrize('expression, cls', [
    (lambda x: FakeAdd(FakeCh(x), FakeCh(x)), 'chumpy.ch_ops.add'),
    (lambda x: FakeSin(x), 'chumpy.ch_ops.sin'),
])
def test_chumpy_expression_is_an_error(tmp_path, fake_chumpy, expression, cls):
  model = make_model('smpl')
  data = pickle.dumps(dict(model, shapedirs=expression(model['shapedirs'])), protocol=2)
  fake_chumpy()
  path = tmp_path / 'model.pkl'
  path.write_bytes(data)
  with pytest.raises(ModelFileError) as info:
    io.read_model_file(path)
  message = str(info.value)
  assert str(path) in message and "'shapedirs'" in message and cls in message


@pytest.mark.parametrize('kind', ['csc_matrix', 'csr_matrix', 'coo_matrix', 'csc_array',
                                  'csr_array', 'coo_array'])
@pytest.mark.parametrize('protocol', [0, 2, pickle.HIGHEST_PROTOCOL])
def test_scipy_sparse_payloads_come_back_dense(tmp_path, kind, protocol):
  sparse = pytest.importorskip('scipy.sparse')
  dense = np.zeros((5, 7))
  dense[[0, 2, 4, 4], [1, 6, 0, 3]] = [1.5, -2.0, 3.0, 0.25]
  path = tmp_path / 'sparse.pkl'
  path.write_bytes(pickle.dumps({'m': getattr(sparse, kind)(dense)}, protocol=protocol))
  np.testing.assert_array_equal(io.load_pickle(path)['m'], dense)


def test_py2_scipy_csc_under_old_module_path(tmp_path):
  sparse = pytest.importorskip('scipy.sparse')
  dense = np.eye(4, 6) * 3
  path = tmp_path / 'old.pkl'
  py2_dump({'m': sparse.csc_matrix(dense)}, path)
  assert b'scipy.sparse.csc\ncsc_matrix' in path.read_bytes()
  np.testing.assert_array_equal(io.load_pickle(path)['m'], dense)


# ---- 2. every family, every layout ------------------------------------------------------------


@pytest.mark.parametrize('family', io.FAMILIES)
@pytest.mark.parametrize('writer', [write_official_v1, write_chumpy_free, write_npz])
def test_round_trip_every_family_and_layout(tmp_path, family, writer):
  model = make_model(family)
  if family == 'flame':
    path, static, dynamic = write_flame_dir(tmp_path, model, writer,
                                            'FLAME_NEUTRAL.pkl')
  else:
    path = tmp_path / f'{family.upper()}_NEUTRAL.pkl'
    writer(model, path)
  for family_arg in (None, family):
    model_file = io.read_model_file(path, family_arg)
    assert_canonical(model_file, model, family)
    assert model_file.gender == 'neutral' and model_file.path == str(path)
  if family == 'smplx':
    for key in ('hands_componentsl', 'hands_componentsr', 'hands_meanl', 'hands_meanr',
                'lmk_faces_idx', 'lmk_bary_coords', 'dynamic_lmk_faces_idx',
                'dynamic_lmk_bary_coords'):
      np.testing.assert_array_equal(model_file.arrays[key], model[key])
  if family == 'mano':
    np.testing.assert_array_equal(model_file.arrays['hands_components'],
                                  model['hands_components'])
    np.testing.assert_array_equal(model_file.arrays['hands_mean'], model['hands_mean'])
  if family == 'flame':
    arrays = model_file.arrays
    np.testing.assert_array_equal(arrays['lmk_faces_idx'], static['lmk_face_idx'])
    np.testing.assert_array_equal(arrays['lmk_bary_coords'], static['lmk_b_coords'])
    np.testing.assert_array_equal(arrays['dynamic_lmk_faces_idx'], dynamic['lmk_face_idx'])
    np.testing.assert_array_equal(arrays['dynamic_lmk_bary_coords'], dynamic['lmk_b_coords'])


@pytest.mark.parametrize('protocol', [0, 1])
def test_official_layout_old_protocols(tmp_path, protocol):
  """Protocols 0/1 write chumpy and scipy objects as copy_reg._reconstructor(cls, object, None)."""
  model = make_model('smpl')
  path = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
  write_official_v1(model, path, protocol)
  assert b'copy_reg\n_reconstructor' in path.read_bytes()
  assert_canonical(io.read_model_file(path), model, 'smpl')


def _smplx_model(family, path):
  smplx = pytest.importorskip('smplx')
  if family == 'smpl':
    return smplx.SMPL(model_path=str(path))
  if family == 'smplx':
    return smplx.SMPLX(model_path=str(path), ext='npz', use_face_contour=True, use_pca=True,
                       num_pca_comps=45)
  if family == 'mano':
    return smplx.MANO(model_path=str(path), use_pca=True, num_pca_comps=12)
  return smplx.FLAME(model_path=str(path.parent), use_face_contour=True)


@pytest.mark.parametrize('family', io.FAMILIES)
def test_same_arrays_as_the_smplx_library(tmp_path, family):
  """An independent reader: the smplx library's own plain-pickle / np.load path."""
  model = make_model(family)
  if family == 'flame':
    path = write_flame_dir(tmp_path, model, write_chumpy_free, 'FLAME_NEUTRAL.pkl')[0]
  elif family == 'smplx':
    path = tmp_path / 'SMPLX_NEUTRAL.npz'
    write_npz(model, path)
  else:
    path = tmp_path / f"{family.upper()}_{'RIGHT' if family == 'mano' else 'NEUTRAL'}.pkl"
    write_chumpy_free(model, path)
  theirs = _smplx_model(family, path)
  ours = io.read_model_file(path).arrays

  def same(their, our):
    np.testing.assert_allclose(np.asarray(their, np.float64), our, rtol=1e-6, atol=1e-7)

  num_betas = theirs.shapedirs.shape[-1]
  same(theirs.v_template, ours['v_template'])
  same(theirs.shapedirs, ours['shapedirs'][..., :num_betas])
  same(theirs.posedirs, ours['posedirs'].reshape(-1, ours['posedirs'].shape[-1]).T)
  same(theirs.J_regressor, ours['J_regressor'])
  same(theirs.lbs_weights, ours['weights'])
  np.testing.assert_array_equal(theirs.parents.numpy(), ours['parents'])
  np.testing.assert_array_equal(theirs.faces, ours['f'])
  if family in ('smplx', 'flame'):
    same(theirs.expr_dirs, ours['shapedirs'][..., num_betas:num_betas + 10])
    for key in ('lmk_faces_idx', 'lmk_bary_coords', 'dynamic_lmk_faces_idx',
                'dynamic_lmk_bary_coords'):
      same(getattr(theirs, key), ours[key])
  if family == 'smplx':
    same(theirs.np_left_hand_components, ours['hands_componentsl'])
    same(theirs.right_hand_mean, ours['hands_meanr'])
  if family == 'mano':
    same(theirs.np_hand_components, ours['hands_components'][:12])
    same(theirs.hand_mean, ours['hands_mean'])


def test_smplx_pkl_and_mano_pair(tmp_path):
  model = make_model('smplx')
  path = tmp_path / 'SMPLX_FEMALE.pkl'
  write_chumpy_free(model, path)
  model_file = io.read_model_file(path)
  assert_canonical(model_file, model, 'smplx')
  assert model_file.gender == 'female' and model_file.is_right_hand is None

  right, left = make_model('mano', 1), make_model('mano', 2)
  write_official_v1(right, tmp_path / 'MANO_RIGHT.pkl')
  write_official_v1(left, tmp_path / 'MANO_LEFT.pkl')
  assert io.read_model_file(tmp_path / 'MANO_RIGHT.pkl').is_right_hand is True
  read_left = io.read_model_file(tmp_path / 'MANO_LEFT.pkl')
  assert read_left.is_right_hand is False and read_left.gender is None
  assert_canonical(read_left, left, 'mano')


def _x_negated(shapedirs):
  out = np.array(shapedirs, copy=True)
  out[:, 0, :] *= -1
  return out


def test_mano_left_shapedirs_fix(tmp_path, caplog):
  """'auto' (the default): the left file's x rows equal the right file's, as in the
  official pair (smplx issue 48), so they are negated; True always, False never."""
  model = make_model('mano')
  for name in ('MANO_LEFT.pkl', 'MANO_RIGHT.pkl'):
    write_official_v1(model, tmp_path / name)
  with caplog.at_level('INFO', logger='body_models.io'):
    auto = io.read_model_file(tmp_path / 'MANO_LEFT.pkl')
  np.testing.assert_array_equal(auto.arrays['shapedirs'], _x_negated(model['shapedirs']))
  assert 'negated' in caplog.text and 'MANO_RIGHT.pkl' in caplog.text
  fixed = io.read_model_file(tmp_path / 'MANO_LEFT.pkl', fix_mano_left_shapedirs=True)
  np.testing.assert_array_equal(fixed.arrays['shapedirs'], _x_negated(model['shapedirs']))
  for mode in ('auto', True, False):  # a right hand is never touched
    right = io.read_model_file(tmp_path / 'MANO_RIGHT.pkl', fix_mano_left_shapedirs=mode)
    np.testing.assert_array_equal(right.arrays['shapedirs'], model['shapedirs'])
  plain = io.read_model_file(tmp_path / 'MANO_LEFT.pkl', fix_mano_left_shapedirs=False)
  np.testing.assert_array_equal(plain.arrays['shapedirs'], model['shapedirs'])
  with pytest.raises(ValueError, match='fix_mano_left_shapedirs'):
    io.read_model_file(tmp_path / 'MANO_LEFT.pkl', fix_mano_left_shapedirs='yes')


def test_mano_left_shapedirs_auto_leaves_what_it_cannot_tell(tmp_path, caplog):
  """'auto' keeps a left hand that is already the mirror, and warns where no right file
  beside it, or an unrelated one, cannot tell."""
  right = make_model('mano')
  mirrored = dict(right, shapedirs=_x_negated(right['shapedirs']))
  pair = tmp_path / 'pair'
  pair.mkdir()
  write_npz(right, pair / 'Mano_Right.npz')        # another case and extension: still found
  write_official_v1(mirrored, pair / 'mano_left.pkl')
  with caplog.at_level('INFO', logger='body_models.io'):
    kept = io.read_model_file(pair / 'mano_left.pkl')
  np.testing.assert_array_equal(kept.arrays['shapedirs'], mirrored['shapedirs'])
  assert not caplog.records

  alone = tmp_path / 'alone'
  alone.mkdir()
  write_official_v1(right, alone / 'MANO_LEFT.pkl')
  with caplog.at_level('WARNING', logger='body_models.io'):
    kept = io.read_model_file(alone / 'MANO_LEFT.pkl')
  np.testing.assert_array_equal(kept.arrays['shapedirs'], right['shapedirs'])
  assert 'no right MANO file' in caplog.text
  caplog.clear()

  write_official_v1(make_model('mano', 5), alone / 'MANO_RIGHT.pkl')
  with caplog.at_level('WARNING', logger='body_models.io'):
    kept = io.read_model_file(alone / 'MANO_LEFT.pkl')
  np.testing.assert_array_equal(kept.arrays['shapedirs'], right['shapedirs'])
  assert 'not the mirror' in caplog.text


def test_flame_embeddings_paths(tmp_path):
  model = make_model('flame')
  path, static, _ = write_flame_dir(tmp_path / 'a', model)
  assert io.read_model_file(path).gender is None  # generic_model.pkl says nothing
  os.remove(tmp_path / 'a' / 'flame_dynamic_embedding.npy')  # optional
  arrays = io.read_model_file(path).arrays
  assert 'dynamic_lmk_faces_idx' not in arrays and 'lmk_faces_idx' in arrays
  moved = tmp_path / 'elsewhere.pkl'
  os.replace(tmp_path / 'a' / 'flame_static_embedding.pkl', moved)
  with pytest.raises(ModelFileError, match='flame_static_embedding.pkl'):
    io.read_model_file(path)
  arrays = io.read_model_file(path, landmarks_path=moved).arrays
  np.testing.assert_array_equal(arrays['lmk_faces_idx'], static['lmk_face_idx'])
  contour = tmp_path / 'contour.npy'
  write_py2_npy_object({'lmk_face_idx': np.zeros((79, 17), int)}, contour)
  with pytest.raises(ModelFileError, match=r"contour\.npy.*'lmk_b_coords'"):
    io.read_model_file(path, landmarks_path=moved, contour_path=contour)


def test_flame_landmark_errors_name_the_embedding_file(tmp_path):
  path, static, _ = write_flame_dir(tmp_path, make_model('flame'))
  static['lmk_face_idx'][3] = F
  py2_dump(static, tmp_path / 'flame_static_embedding.pkl')
  with pytest.raises(ModelFileError, match=r"flame_static_embedding\.pkl: 'lmk_faces_idx' holds"):
    io.read_model_file(path)
  static['lmk_face_idx'] = static['lmk_face_idx'][:50]
  py2_dump(static, tmp_path / 'flame_static_embedding.pkl')
  with pytest.raises(ModelFileError, match=r"flame_static_embedding\.pkl: 'lmk_bary_coords'"):
    io.read_model_file(path)


def test_malicious_object_npy_is_refused(tmp_path):
  path = write_flame_dir(tmp_path, make_model('flame'))[0]
  write_py2_npy_object({'lmk_face_idx': CallsBack()}, tmp_path / 'flame_dynamic_embedding.npy')
  with pytest.raises(ModelFileError, match=r'flame_dynamic_embedding\.npy.*record_call'):
    io.read_model_file(path)
  assert CallsBack.calls == []


def test_posedirs_2d_layouts(tmp_path):
  model = make_model('smpl')
  flat = model['posedirs'].reshape(V * 3, -1)
  for name, posedirs in (('rows.npz', flat), ('cols.npz', flat.T)):
    write_npz(dict(model, posedirs=posedirs), tmp_path / name)
    np.testing.assert_array_equal(io.read_model_file(tmp_path / name).arrays['posedirs'],
                                  model['posedirs'])


@pytest.mark.parametrize('root, dtype', [(-1, np.int32), (2**32 - 1, np.uint32),
                                         (2**32 - 1, np.int64)])
def test_kintree_root_markers(tmp_path, root, dtype):
  model = make_model('smpl')
  kintree = model['kintree_table'].copy()
  kintree[0, 0] = root
  write_npz(dict(model, kintree_table=kintree.astype(dtype)), tmp_path / 'm.npz')
  arrays = io.read_model_file(tmp_path / 'm.npz').arrays
  assert arrays['parents'][0] == -1 and arrays['kintree_table'][0, 0] == -1


# ---- detection and validation -----------------------------------------------------------------


def test_family_mismatch_is_an_error(tmp_path):
  write_npz(make_model('mano'), tmp_path / 'hand.npz')
  with pytest.raises(ModelFileError, match=r'hand\.npz.*smpl.*mano'):
    io.read_model_file(tmp_path / 'hand.npz', 'smpl')
  with pytest.raises(ModelFileError, match='unknown family'):
    io.read_model_file(tmp_path / 'hand.npz', 'smplh')


def test_smplh_and_odd_joint_counts(tmp_path):
  model = make_model('smpl')
  smplh = dict(model, kintree_table=np.stack([np.r_[-1, np.zeros(51, int)], np.arange(52)]))
  write_npz(smplh, tmp_path / 'smplh.npz')
  with pytest.raises(ModelFileError, match='SMPL\\+H'):
    io.read_model_file(tmp_path / 'smplh.npz')
  odd = dict(model, kintree_table=np.stack([np.r_[-1, np.zeros(9, int)], np.arange(10)]))
  write_npz(odd, tmp_path / 'odd.npz')
  with pytest.raises(ModelFileError, match='10 joints'):
    io.read_model_file(tmp_path / 'odd.npz')
  mixed = dict(model, hands_components=np.zeros((45, 45)))
  write_npz(mixed, tmp_path / 'mixed.npz')
  with pytest.raises(ModelFileError, match='hands_components'):
    io.read_model_file(tmp_path / 'mixed.npz')


@pytest.mark.parametrize('family, key', [
    ('smpl', 'v_template'), ('smpl', 'weights'), ('smpl', 'J_regressor'), ('smpl', 'f'),
    ('smplx', 'lmk_bary_coords'), ('smplx', 'hands_meanr'), ('mano', 'hands_mean'),
    ('smplx', 'dynamic_lmk_bary_coords'), ('mano', 'kintree_table'),
])
def test_missing_key_names_the_key(tmp_path, family, key):
  model = make_model(family)
  del model[key]
  path = tmp_path / 'model.pkl'
  write_chumpy_free(model, path)
  with pytest.raises(ModelFileError, match=f"model\\.pkl.*'{key}'"):
    io.read_model_file(path)


@pytest.mark.parametrize('key, bad, expected', [
    ('weights', np.ones((V, 23)), '(V=30, J=24)'),
    ('shapedirs', np.ones((V + 1, 3, 10)), '(V=30, 3, S)'),
    ('posedirs', np.ones((V, 3, 200)), '(V=30, 3, P=207)'),
    ('J_regressor', np.ones((24, V - 1)), '(J=24, V=30)'),
    ('f', np.ones((F, 4), int), '(F, 3)'),
    ('v_template', np.ones(V * 3), '(V, 3)'),
])
def test_wrong_shape_names_key_and_shapes(tmp_path, key, bad, expected):
  write_npz(dict(make_model('smpl'), **{key: bad}), tmp_path / 'm.npz')
  with pytest.raises(ModelFileError) as info:
    io.read_model_file(tmp_path / 'm.npz')
  message = str(info.value)
  assert 'm.npz' in message and repr(key) in message
  assert str(bad.shape) in message and expected in message


@pytest.mark.parametrize('change, match', [
    (lambda m: m['v_template'].__setitem__((0, 0), np.nan), "'v_template' has 1 non-finite"),
    (lambda m: m['f'].__setitem__((0, 0), V), "'f' holds indices outside"),
    (lambda m: m['kintree_table'].__setitem__((0, 5), 7), 'joint 5 has the parent 7'),
    (lambda m: m['kintree_table'].__setitem__((0, 0), 3), 'joint 0 should be the root'),
    (lambda m: m.__setitem__('weights', m['weights'].astype(str)), "'weights' has dtype"),
])
def test_bad_values(tmp_path, change, match):
  model = make_model('smpl')
  change(model)
  write_npz(model, tmp_path / 'm.npz')
  with pytest.raises(ModelFileError, match=match):
    io.read_model_file(tmp_path / 'm.npz')


def test_corrupt_files(tmp_path):
  model = make_model('smpl')
  write_official_v1(model, tmp_path / 'full.pkl')
  data = (tmp_path / 'full.pkl').read_bytes()
  write_npz(model, tmp_path / 'full.npz')
  npz = (tmp_path / 'full.npz').read_bytes()
  with zipfile.ZipFile(tmp_path / 'notes.zip', 'w') as archive:
    archive.writestr('readme.txt', 'hello')
  cases = {
      'half.pkl': data[:len(data) // 2],
      'garbage.pkl': np.random.default_rng(0).bytes(5000),
      'empty.pkl': b'',
      'half.npz': npz[:len(npz) // 2],
      'notes.npz': (tmp_path / 'notes.zip').read_bytes(),
      'list.pkl': pickle.dumps([1, 2]),
      'array.npy': b'',
  }
  for name, content in cases.items():
    (tmp_path / name).write_bytes(content)
  np.save(tmp_path / 'array.npy', np.zeros(3))
  # An npz whose member has its data cut short.
  with zipfile.ZipFile(tmp_path / 'full.npz') as src, zipfile.ZipFile(
      tmp_path / 'short.npz', 'w') as dst:
    for member in src.namelist():
      content = src.read(member)
      dst.writestr(member, content[:-8] if member == 'weights.npy' else content)
  for name in list(cases) + ['short.npz']:
    with pytest.raises(ModelFileError) as info:
      io.read_model_file(tmp_path / name)
    assert name in str(info.value), name
  with pytest.raises(ModelFileError, match='no such file'):
    io.read_model_file(tmp_path / 'absent.pkl')
  with pytest.raises(ModelFileError, match='directory'):
    io.read_model_file(tmp_path)


def test_reads_without_scipy_or_chumpy(tmp_path):
  """io.py alone, with scipy and chumpy made unimportable, reads a chumpy + csc pickle."""
  model = make_model('smpl')
  path = tmp_path / 'SMPL_NEUTRAL.pkl'
  write_official_v1(model, path)
  np.save(tmp_path / 'expected.npy', model['J_regressor'])
  package = os.path.dirname(os.path.dirname(io.__file__))
  script = f"""
import sys, types
import numpy as np
sys.modules['scipy'] = sys.modules['chumpy'] = None  # any import of them now fails
package = types.ModuleType('body_models')  # skip body_models/__init__ (it imports jax)
package.__path__ = [{os.path.join(package, 'body_models')!r}]
sys.modules['body_models'] = package
from body_models import io
arrays = io.read_model_file({str(path)!r}).arrays
np.testing.assert_array_equal(arrays['J_regressor'], np.load({str(tmp_path / 'expected.npy')!r}))
assert not [m for m in sys.modules if m.startswith(('scipy.', 'chumpy.', 'jax'))]
print('ok')
"""
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
  assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr


def test_model_file_error_is_a_value_error():
  assert issubclass(ModelFileError, ValueError)


@pytest.mark.parametrize('name, gender, hand', [
    ('basicModel_f_lbs_10_207_0_v1.0.0.pkl', 'female', None),
    ('basicmodel_m_lbs_10_207_0_v1.1.0.pkl', 'male', None),
    ('basicModel_neutral_lbs_10_207_0_v1.0.0.pkl', 'neutral', None),
    ('SMPL_NEUTRAL.pkl', 'neutral', None), ('SMPLX_FEMALE.npz', 'female', None),
    ('SMPLX_MALE.npz', 'male', None), ('female_model.pkl', 'female', None),
    ('generic_model.pkl', None, None), ('MANO_RIGHT.pkl', None, True),
    ('MANO_LEFT.pkl', None, False), ('my_model.pkl', None, None),
])
def test_names(name, gender, hand):
  assert io.gender_from_name(name) == gender
  assert io.hand_from_name(name) == hand


def test_other_hand_path(tmp_path):
  for name in ('MANO_RIGHT.pkl', 'MANO_LEFT.npz', 'hand_left_right.pkl', 'leftover.pkl'):
    (tmp_path / name).write_bytes(b'')
  other_hand_path = io.other_hand_path
  # The same extension first, then the other one.
  assert other_hand_path(tmp_path / 'MANO_LEFT.npz') == str(tmp_path / 'MANO_RIGHT.pkl')
  assert other_hand_path(tmp_path / 'MANO_RIGHT.pkl') == str(tmp_path / 'MANO_LEFT.npz')
  assert other_hand_path(tmp_path / 'hand_left_right.pkl') is None  # which side?
  assert other_hand_path(tmp_path / 'leftover.pkl') is None


# ---- directories ---------------------------------------------------------------------------


def test_resolve_model_path(tmp_path):
  for rel in ('smpl/SMPL_NEUTRAL.pkl', 'smpl/basicModel_f_lbs_10_207_0_v1.0.0.pkl',
              'smplx/SMPLX_NEUTRAL.npz', 'smplx/SMPLX_NEUTRAL.pkl', 'smplx/SMPLX_MALE.pkl',
              'mano/MANO_RIGHT.pkl', 'mano/MANO_LEFT.pkl', 'flame/generic_model.pkl',
              'flat/basicmodel_m_lbs_10_207_0_v1.1.0.pkl'):
    (tmp_path / rel).parent.mkdir(exist_ok=True)
    (tmp_path / rel).write_bytes(b'x')
  resolve = io.resolve_model_path
  assert resolve(tmp_path / 'smpl/SMPL_NEUTRAL.pkl') == str(tmp_path / 'smpl/SMPL_NEUTRAL.pkl')
  assert resolve(tmp_path, 'smpl') == str(tmp_path / 'smpl/SMPL_NEUTRAL.pkl')
  assert resolve(tmp_path, 'smpl', 'female') == str(
      tmp_path / 'smpl/basicModel_f_lbs_10_207_0_v1.0.0.pkl')
  assert resolve(tmp_path, 'smplx') == str(tmp_path / 'smplx/SMPLX_NEUTRAL.npz')
  assert resolve(tmp_path, 'smplx', ext='pkl') == str(tmp_path / 'smplx/SMPLX_NEUTRAL.pkl')
  assert resolve(tmp_path, 'smplx', 'male') == str(tmp_path / 'smplx/SMPLX_MALE.pkl')
  assert resolve(tmp_path, 'mano') == str(tmp_path / 'mano/MANO_RIGHT.pkl')
  assert resolve(tmp_path, 'mano', is_right_hand=False) == str(tmp_path / 'mano/MANO_LEFT.pkl')
  assert resolve(tmp_path, 'flame') == str(tmp_path / 'flame/generic_model.pkl')
  assert resolve(tmp_path / 'smplx') == str(tmp_path / 'smplx/SMPLX_NEUTRAL.npz')
  assert resolve(tmp_path / 'flat', 'smpl', 'male') == str(
      tmp_path / 'flat/basicmodel_m_lbs_10_207_0_v1.1.0.pkl')
  with pytest.raises(ModelFileError, match='several families'):
    resolve(tmp_path)
  with pytest.raises(ModelFileError) as info:
    resolve(tmp_path, 'flame', 'female')
  assert str(tmp_path / 'flame' / 'FLAME_FEMALE.pkl') in str(info.value)
  assert str(tmp_path / 'FLAME_FEMALE.pkl') in str(info.value)
  with pytest.raises(ModelFileError, match='no such file'):
    resolve(tmp_path / 'absent')
  with pytest.raises(ModelFileError, match='gender'):
    resolve(tmp_path, 'smpl', 'kid')


# ---- cache ---------------------------------------------------------------------------------


def test_cache(tmp_path, monkeypatch):
  model = make_model('mano')
  path = tmp_path / 'MANO_LEFT.pkl'
  write_official_v1(model, path)
  cache = tmp_path / 'cache'
  first = io.read_model_file(path, cache_dir=cache)
  entries = sorted(os.listdir(cache))
  assert len(entries) == 1 and entries[0].endswith('.npz')

  def no_source_read(*args, **kwargs):
    raise AssertionError('the source was read despite a cache entry')

  with monkeypatch.context() as patch:
    patch.setattr(io, '_read_canonical', no_source_read)
    second = io.read_model_file(path, cache_dir=cache)
  assert second.family == 'mano' and second.is_right_hand is False
  assert second.path == str(path)
  for key, array in first.arrays.items():
    np.testing.assert_array_equal(second.arrays[key], array)
    assert second.arrays[key].dtype == array.dtype

  # Other options or other bytes: another entry.
  fixed = io.read_model_file(path, cache_dir=cache, fix_mano_left_shapedirs=True)
  np.testing.assert_array_equal(fixed.arrays['shapedirs'][:, 0], -model['shapedirs'][:, 0])
  changed = dict(model, v_template=model['v_template'] + 1.0)
  write_official_v1(changed, path)
  third = io.read_model_file(path, cache_dir=cache)
  np.testing.assert_array_equal(third.arrays['v_template'], changed['v_template'])
  assert len(os.listdir(cache)) == 3
  # 'auto' reads the right file beside the left one: the entry depends on it too.
  write_official_v1(changed, tmp_path / 'MANO_RIGHT.pkl')
  paired = io.read_model_file(path, cache_dir=cache)
  np.testing.assert_array_equal(paired.arrays['shapedirs'], _x_negated(model['shapedirs']))
  assert len(os.listdir(cache)) == 4
  assert not [n for n in os.listdir(cache) if n.startswith('.tmp')]

  # A damaged entry is rebuilt, not trusted.
  for name in os.listdir(cache):
    (cache / name).write_bytes(b'broken')
  with pytest.warns(UserWarning, match='unreadable'):
    again = io.read_model_file(path, cache_dir=cache)
  np.testing.assert_array_equal(again.arrays['v_template'], changed['v_template'])


def test_cache_tracks_flame_embeddings(tmp_path):
  path = write_flame_dir(tmp_path, make_model('flame'))[0]
  cache = tmp_path / 'cache'
  io.read_model_file(path, cache_dir=cache)
  static, _ = make_flame_embeddings(seed=5)
  py2_dump(static, tmp_path / 'flame_static_embedding.pkl')
  arrays = io.read_model_file(path, cache_dir=cache).arrays
  np.testing.assert_array_equal(arrays['lmk_faces_idx'], static['lmk_face_idx'])
  assert len(os.listdir(cache)) == 2
