"""export: released NeuralAnnot layouts, exact round trips, world frames, atomic writes."""

import json
import os

import numpy as np
import pytest

import body_models
from body_models import synthetic
from neuralannot_jax import export

# smplx-name parameter sizes of one sample, per family.
SIZES = {
    'smpl': {'global_orient': 3, 'body_pose': 69, 'betas': 10, 'transl': 3},
    'smplx': {'global_orient': 3, 'body_pose': 63, 'left_hand_pose': 45,
              'right_hand_pose': 45, 'jaw_pose': 3, 'betas': 10, 'expression': 10,
              'transl': 3},
    'mano': {'global_orient': 3, 'hand_pose': 45, 'betas': 10, 'transl': 3},
    'flame': {'global_orient': 3, 'jaw_pose': 3, 'expression': 10, 'betas': 10,
              'transl': 3},
}

# What the release's demo scripts read (NeuralAnnot_RELEASE, MSCOCO/demo_*.py).
RELEASED_LENGTHS = {
    'smpl': {'pose': 72, 'shape': 10, 'trans': 3},
    'smplx': {'root_pose': 3, 'body_pose': 63, 'lhand_pose': 45, 'rhand_pose': 45,
              'jaw_pose': 3, 'shape': 10, 'expr': 10, 'trans': 3},
    'mano': {'pose': 48, 'shape': 10, 'trans': 3},
    'flame': {'root_pose': 3, 'jaw_pose': 3, 'expr': 10, 'shape': 10, 'trans': 3},
}


def random_params(family, seed=0, scale=0.3):
  rng = np.random.default_rng(seed)
  return {k: (scale * rng.standard_normal(n)).astype(np.float32)
          for k, n in SIZES[family].items()}


@pytest.fixture(scope='module')
def smpl_model(tmp_path_factory):
  root = tmp_path_factory.mktemp('export_models')
  return body_models.load(synthetic.write_model('smpl', str(root)), 'smpl')


@pytest.mark.parametrize('family', sorted(SIZES))
def test_entry_round_trip_is_exact(family):
  params = random_params(family)
  entry = export.to_released_entry(family, params, [1500.5, 1500.5], [320.25, 240.0])
  assert list(entry) == [export.PARAM_KEY[family], 'cam_param']
  inner = dict(entry[export.PARAM_KEY[family]])
  # SMPL-X's part flags: a body-only fit annotated no hand or face from its own data.
  flags = {k: inner.pop(k) for k in ('lhand_valid', 'rhand_valid', 'face_valid') if k in inner}
  assert flags == ({'lhand_valid': False, 'rhand_valid': False, 'face_valid': False}
                   if family == 'smplx' else {})
  assert {k: len(v) for k, v in inner.items()} == RELEASED_LENGTHS[family]
  # Through JSON text, as a regressor reads it.
  back, focal, princpt = export.from_released_entry(family, json.loads(json.dumps(entry)))
  assert set(back) == set(params)
  for k in params:
    np.testing.assert_array_equal(back[k], params[k], err_msg=k)
  np.testing.assert_array_equal(focal, [1500.5, 1500.5])
  np.testing.assert_array_equal(princpt, [320.25, 240.0])


def test_smpl_pose_is_root_then_body():
  params = random_params('smpl')
  pose = np.asarray(export.to_released_params('smpl', params)['pose'])
  np.testing.assert_array_equal(pose[:3], params['global_orient'])
  np.testing.assert_array_equal(pose[3:], params['body_pose'])


def test_absent_parts_are_zero_and_lost_parts_refused():
  released = export.to_released_params('smplx', {'body_pose': np.ones(63, np.float32)})
  assert {k: len(v) for k, v in released.items()} == RELEASED_LENGTHS['smplx']
  assert not np.any(released['lhand_pose'])
  # Zero eye poses are fine (the release has no key for them); non-zero ones would be lost.
  export.to_released_params('smplx', {'leye_pose': np.zeros(3)})
  with pytest.raises(ValueError, match='neck_pose'):
    export.to_released_params('flame', {'neck_pose': np.ones(3)})
  with pytest.raises(ValueError, match='72'):
    export.to_released_params('smpl', {'global_orient': np.zeros(3), 'body_pose': np.zeros(63)})


def test_coco_style_json_has_released_keys(tmp_path):
  entries = {476384 + i: export.to_released_entry('smpl', random_params('smpl', i),
                                                  [5000.0, 5000.0], [100.0, 80.0])
             for i in range(3)}
  path = export.write_coco_style(tmp_path / 'MSCOCO_train_SMPL_NeuralAnnot.json', entries)
  with open(path) as f:
    data = json.load(f)
  assert sorted(data) == sorted(str(a) for a in entries)
  # The release's demo reads exactly these (MSCOCO/demo_smpl.py).
  param = data['476384']
  assert sorted(param) == ['cam_param', 'smpl_param']
  assert {k: len(v) for k, v in param['smpl_param'].items()} == RELEASED_LENGTHS['smpl']
  assert sorted(param['cam_param']) == ['focal', 'princpt']
  assert len(param['cam_param']['focal']) == len(param['cam_param']['princpt']) == 2


def test_mano_hands_layout_and_npz(tmp_path):
  right = export.to_released_entry('mano', random_params('mano', 1), [900.0, 900.0],
                                   [10.0, 20.0])
  left = export.to_released_entry('mano', random_params('mano', 2), [800.0, 800.0],
                                  [30.0, 40.0])
  entries = {7: export.hand_entry(right, left), 8: export.hand_entry(right, None)}
  path = export.write_coco_style(tmp_path / 'MSCOCO_train_MANO_NeuralAnnot.json', entries)
  with open(path) as f:
    data = json.load(f)
  assert data['8']['left'] is None
  # MSCOCO/demo_mano.py: mano_params[str(aid)][hand_type]['mano_param' | 'cam_param'].
  assert len(data['7']['left']['mano_param']['pose']) == 48
  assert data['7']['left']['cam_param']['focal'] == [800.0, 800.0]

  npz = export.write_npz(tmp_path / 'mano.npz', entries)
  with np.load(npz) as z:
    np.testing.assert_array_equal(z['ann_ids'], [7, 8])
    assert z['left.mano_param.pose'].shape == (2, 48)
    np.testing.assert_array_equal(z['left.valid'], [True, False])
    assert np.isnan(z['left.mano_param.pose'][1]).all()
    np.testing.assert_array_equal(z['right.mano_param.pose'][1],
                                  np.float32(right['mano_param']['pose']))
    assert 'right.valid' not in z


def test_written_file_round_trips_through_body_model(tmp_path, smpl_model):
  params = random_params('smpl', 3)
  path = export.write_coco_style(
      tmp_path / 'a.json', {5: export.to_released_entry('smpl', params, [1, 1], [0, 0])})
  with open(path) as f:
    back, _, _ = export.from_released_entry('smpl', json.load(f)['5'])
  want = smpl_model(**params).vertices
  got = smpl_model(**back).vertices
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _rotation(seed):
  rng = np.random.default_rng(seed)
  q, r = np.linalg.qr(rng.standard_normal((3, 3)))
  q = q * np.sign(np.diag(r))
  return q if np.linalg.det(q) > 0 else -q


def test_camera_to_world_keeps_the_mesh(tmp_path, smpl_model):
  params = random_params('smpl', 4)
  params['transl'] = np.array([0.1, -0.2, 4.0], np.float32)
  R = _rotation(0)
  t_mm = np.array([120.0, -340.0, 5200.0])
  rest = smpl_model(betas=params['betas'])
  j0 = np.asarray(rest.joints[0])
  world = export.camera_to_world(params, R, t_mm, j0)
  v_cam = np.asarray(smpl_model(**params).vertices, np.float64)
  v_world = np.asarray(smpl_model(**world).vertices, np.float64)
  np.testing.assert_allclose(v_world @ R.T + t_mm / 1000, v_cam, atol=2e-5)
  back = export.world_to_camera(world, R, t_mm, j0)
  np.testing.assert_allclose(back['transl'], params['transl'], atol=1e-5)
  np.testing.assert_allclose(back['global_orient'], params['global_orient'], atol=1e-5)

  # The release's Human3.6M demo rebuilds camera space from the written world file.
  paths = export.write_h36m_style(
      tmp_path, {1: {2: {1: {0: export.to_released_params('smpl', world)}}}})
  assert [os.path.basename(p) for p in paths] == ['Human36M_subject1_SMPL_NeuralAnnot.json']
  with open(paths[0]) as f:
    leaf = json.load(f)['2']['1']['0']
  assert sorted(leaf) == ['pose', 'shape', 'trans']
  read, _, _ = export.from_released_entry('smpl', leaf)
  read = {k: np.asarray(v, np.float64) for k, v in read.items()}
  # demo: root_pose <- R @ root_pose; mesh -= root; mesh += R @ root + t / 1000.
  rot = body_models.rotations
  orient = R @ np.asarray(rot.axis_angle_to_matrix(read['global_orient'].astype(np.float32)))
  read['global_orient'] = np.asarray(rot.matrix_to_axis_angle(orient.astype(np.float32)))
  out = smpl_model(**read)
  root = np.asarray(out.joints[0], np.float64)
  mesh = np.asarray(out.vertices, np.float64) - root + R @ root + t_mm / 1000
  np.testing.assert_allclose(mesh, v_cam, atol=5e-5)


def test_atomic_write_leaves_no_temp_and_keeps_old_file(tmp_path):
  path = tmp_path / 'out.json'
  export.write_json(path, {'a': 1})
  assert os.listdir(tmp_path) == ['out.json']
  with pytest.raises(RuntimeError):
    with export.atomic_open(path) as f:
      f.write('{"half')
      raise RuntimeError('interrupted')
  assert os.listdir(tmp_path) == ['out.json']
  with open(path) as f:
    assert json.load(f) == {'a': 1}
  # A value JSON cannot hold fails before anything is written.
  with pytest.raises(TypeError, match='object'):
    export.write_coco_style(path, {1: {'smpl_param': object()}})
  assert os.listdir(tmp_path) == ['out.json']
  export.write_npz(tmp_path / 'x.npz', {1: {'p': np.zeros(2)}})
  assert sorted(os.listdir(tmp_path)) == ['out.json', 'x.npz']


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
  umask = os.umask(0o022)
  try:
    export.write_json(tmp_path / 'a.json', {'a': 1})
    with open(tmp_path / 'b.json', 'w') as f:
      f.write('{}')
  finally:
    os.umask(umask)
  mode = lambda name: os.stat(tmp_path / name).st_mode & 0o777
  assert mode('a.json') == mode('b.json') == 0o644
