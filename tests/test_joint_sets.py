"""Joint sets: their data, mirroring, conversion by name, and reading them off body models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import body_models
from body_models import skeletons
from neuralannot_jax.data import joint_sets

LENGTHS = {'COCO_17': 17, 'COCO_WHOLEBODY_133': 133, 'HAND_21': 21, 'FACE_68': 68,
           'H36M_17': 17, 'MPI_INF_3DHP_17': 17, 'SMPL_24': 24, 'MANO_21': 21, 'OPENPOSE_18': 18}


@pytest.fixture(scope='module')
def smpl_out(model_dir):
  model = body_models.load(model_dir, 'smpl')
  rng = np.random.default_rng(0)
  return model(body_pose=0.3 * rng.standard_normal(69), betas=rng.standard_normal(10),
               transl=np.array([0.1, 0.2, 3.0]))


@pytest.fixture(scope='module')
def smplx_model(model_dir):
  return body_models.load(model_dir, 'smplx', use_face_contour=True)


def test_sets_have_unique_names_and_documented_lengths():
  assert set(joint_sets.JOINT_SETS) == set(LENGTHS)
  for name, length in LENGTHS.items():
    jset = joint_sets.get(name)
    assert jset.name == name
    assert jset.num_joints == length
    assert len(set(jset.names)) == length
    assert all(0 <= i < length and 0 <= j < length for i, j in jset.skeleton)
    assert jset.root is None or 0 <= jset.root < length


def test_unknown_set_lists_the_known_ones():
  with pytest.raises(KeyError, match='COCO_17.*H36M_17'):
    joint_sets.get('COCO_18')


def test_wholebody_parts_are_in_file_order():
  wb = joint_sets.COCO_WHOLEBODY_133
  assert wb.names[:17] == joint_sets.COCO_17.names
  assert wb.names[17:23] == ('left_big_toe', 'left_small_toe', 'left_heel',
                             'right_big_toe', 'right_small_toe', 'right_heel')
  assert wb.names[23:91] == joint_sets.FACE_68.names
  for side, start in (('left', 91), ('right', 112)):
    assert wb.names[start:start + 21] == tuple(
        joint_sets.hand_joint_name(side, n) for n in joint_sets.HAND_21.names)
  assert joint_sets.HAND_21.names[:5] == ('wrist', 'thumb1', 'thumb2', 'thumb3', 'thumb4')
  assert joint_sets.HAND_21.names[-1] == 'pinky4'


@pytest.mark.parametrize('name', sorted(LENGTHS))
def test_flip_pairs_are_an_involution_between_sides(name):
  jset = joint_sets.get(name)
  seen = [k for pair in jset.flip_pairs for k in pair]
  assert len(seen) == len(set(seen))   # each joint swaps with at most one other
  partner = {}
  for i, j in jset.flip_pairs:
    assert i < j
    partner[i], partner[j] = j, i
  for i, n in enumerate(jset.names):
    for side, other in (('left_', 'right_'), ('right_', 'left_')):
      if n.startswith(side):
        assert jset.names[partner[i]] == other + n[len(side):]
    if not n.startswith(('left_', 'right_')) and i in partner:
      assert n.startswith('ibug_')   # only face points mirror without a side prefix


def test_face_mirror_pairs():
  face = joint_sets.FACE_68
  pairs = {(face.names[i], face.names[j]) for i, j in face.flip_pairs}
  for a, b in ((1, 17), (9, None), (37, 46), (40, 43), (49, 55), (52, None), (63, None)):
    if b is None:
      assert all(f'ibug_{a:02d}' not in p for p in pairs)
    else:
      assert (f'ibug_{a:02d}', f'ibug_{b:02d}') in pairs


@pytest.mark.parametrize('name', sorted(LENGTHS))
def test_flipping_twice_is_the_identity(name):
  jset = joint_sets.get(name)
  rng = np.random.default_rng(1)
  joints = rng.uniform(0, 640, (2, jset.num_joints, 3)).astype(np.float32)
  valid = (rng.uniform(size=(2, jset.num_joints)) > 0.3).astype(np.float32)
  for width in (None, 640):
    once, valid_once = joint_sets.flip(joints, valid, jset, image_width=width)
    twice, valid_twice = joint_sets.flip(once, valid_once, name, image_width=width)
    np.testing.assert_allclose(twice, joints, atol=1e-4)
    np.testing.assert_array_equal(valid_twice, valid)


def test_flip_swaps_sides_and_mirrors_x():
  coco = joint_sets.COCO_17
  joints = np.zeros((17, 2), np.float32)
  valid = np.zeros(17, np.float32)
  left = coco.index('left_wrist')
  joints[left] = (100.0, 50.0)
  valid[left] = 1
  flipped, flipped_valid = joint_sets.flip(joints, valid, 'COCO_17', image_width=640)
  right = coco.index('right_wrist')
  np.testing.assert_allclose(flipped[right], (539.0, 50.0))
  assert flipped_valid[right] == 1 and flipped_valid[left] == 0
  # 3D: x -> -x; a JAX input stays JAX.
  flipped3d, _ = joint_sets.flip(jnp.ones((17, 3)), None, coco)
  assert isinstance(flipped3d, jax.Array)
  np.testing.assert_allclose(flipped3d[:, 0], -1.0)


def test_coco_nose_is_the_smpl_nose_vertex(smpl_out):
  mapping = joint_sets.model_joint_mapping('smpl', 'COCO_17')
  np.testing.assert_array_equal(mapping.valid, np.ones(17))
  coco = mapping.apply(smpl_out.joints, smpl_out.vertices)
  nose_vertex = skeletons.EXTRA_JOINT_VERTICES['smpl'][skeletons.EXTRA_JOINTS.index('nose')]
  np.testing.assert_allclose(coco[0], smpl_out.vertices[nose_vertex], atol=1e-6)
  left_knee = skeletons.SMPL_JOINTS.index('left_knee')
  np.testing.assert_allclose(coco[joint_sets.COCO_17.index('left_knee')],
                             smpl_out.joints[left_knee])


def test_h36m_without_regressor_uses_named_joints(smpl_out):
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  h36m = joint_sets.H36M_17
  invalid = {h36m.names[i] for i in np.flatnonzero(mapping.valid == 0)}
  assert invalid == {'torso', 'head_top'}
  out = mapping.apply(smpl_out.joints, smpl_out.vertices)
  np.testing.assert_allclose(out[h36m.index('right_ankle')],
                             smpl_out.joints[skeletons.SMPL_JOINTS.index('right_ankle')])
  np.testing.assert_array_equal(out[h36m.index('torso')], 0.0)
  mpi = joint_sets.model_joint_mapping('smpl', 'MPI_INF_3DHP_17')
  assert {joint_sets.MPI_INF_3DHP_17.names[i] for i in np.flatnonzero(mpi.valid == 0)} == {
      'torso', 'head_top'}


def test_user_regressor_is_applied_exactly(smpl_out, tmp_path):
  rng = np.random.default_rng(2)
  regressor = rng.uniform(size=(17, 6890)).astype(np.float32)
  regressor /= regressor.sum(axis=1, keepdims=True)
  path = tmp_path / 'J_regressor_h36m.npy'
  np.save(path, regressor)
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17', regressor=path)
  np.testing.assert_array_equal(mapping.valid, np.ones(17))
  vertices = np.asarray(smpl_out.vertices, np.float64)
  want = regressor.astype(np.float64) @ vertices
  got_np = mapping.apply(np.asarray(smpl_out.joints), np.asarray(smpl_out.vertices))
  assert isinstance(got_np, np.ndarray)
  np.testing.assert_allclose(got_np, want, rtol=1e-5, atol=1e-6)
  batch_joints = jnp.stack([smpl_out.joints, smpl_out.joints])
  batch_vertices = jnp.stack([smpl_out.vertices, smpl_out.vertices])
  got_jit = jax.jit(mapping.apply)(batch_joints, batch_vertices)
  assert got_jit.shape == (2, 17, 3)
  np.testing.assert_allclose(got_jit[1], want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r'\(17, 6890\)'):
    joint_sets.model_joint_mapping('smpl', 'H36M_17', regressor=regressor[:, :100])


def test_hand_21_mano_21_round_trip():
  rng = np.random.default_rng(3)
  hand = rng.standard_normal((4, 21, 3)).astype(np.float32)
  mano, mano_valid = joint_sets.remap(hand, None, 'HAND_21', 'MANO_21')
  np.testing.assert_array_equal(mano_valid, np.ones((4, 21)))
  np.testing.assert_array_equal(mano[:, joint_sets.MANO_21.index('thumb1')],
                                hand[:, joint_sets.HAND_21.index('thumb1')])
  back, back_valid = joint_sets.remap(mano, mano_valid, 'MANO_21', 'HAND_21')
  np.testing.assert_array_equal(back, hand)
  np.testing.assert_array_equal(back_valid, np.ones((4, 21)))


def test_remap_marks_missing_joints_and_needs_a_side_for_hands():
  h36m = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
  coco, valid = joint_sets.remap(h36m, np.ones(17), 'H36M_17', 'COCO_17')
  coco_names = joint_sets.COCO_17.names
  assert {coco_names[i] for i in np.flatnonzero(valid)} == {
      'nose', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist',
      'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
      'right_ankle'}
  np.testing.assert_array_equal(coco[coco_names.index('left_eye')], 0.0)
  np.testing.assert_array_equal(coco[coco_names.index('right_knee')],
                                h36m[joint_sets.H36M_17.index('right_knee')])
  wholebody = np.arange(133 * 2, dtype=np.float32).reshape(133, 2)
  with pytest.raises(ValueError, match='side'):
    joint_sets.remap(wholebody, None, 'COCO_WHOLEBODY_133', 'HAND_21')
  left, left_valid = joint_sets.remap(wholebody, None, 'COCO_WHOLEBODY_133', 'HAND_21',
                                      side='left')
  np.testing.assert_array_equal(left, wholebody[91:112])
  np.testing.assert_array_equal(left_valid, np.ones(21))


def test_hand_21_from_mano_and_smplx(smplx_model):
  # MANO's output is 16 joints and 778 vertices; any values of those shapes will do.
  rng = np.random.default_rng(4)
  joints, vertices = rng.standard_normal((16, 3)), rng.standard_normal((778, 3))
  mapping = joint_sets.model_joint_mapping('mano', 'HAND_21')
  hand = mapping.apply(joints, vertices)
  np.testing.assert_array_equal(hand[joint_sets.HAND_21.index('index4')],
                                vertices[skeletons.MANO_TIP_VERTICES[1]])
  np.testing.assert_array_equal(hand[joint_sets.HAND_21.index('thumb1')],
                                joints[skeletons.MANO_JOINTS.index('thumb1')])
  with pytest.raises(ValueError, match='vertices'):
    mapping.apply(joints)

  with pytest.raises(ValueError, match='side'):
    joint_sets.model_joint_mapping('smplx', 'HAND_21', num_landmarks=68)
  out = smplx_model()
  mapping = joint_sets.model_joint_mapping('smplx', 'HAND_21', num_landmarks=68, side='left')
  np.testing.assert_array_equal(mapping.valid, np.ones(21))
  hand = mapping.apply(out.joints, out.vertices)
  names = smplx_model.joint_names
  np.testing.assert_allclose(hand[0], out.joints[names.index('left_wrist')])
  np.testing.assert_allclose(hand[joint_sets.HAND_21.index('thumb4')],
                             out.joints[names.index('left_thumb_tip')])


def test_face_68_from_smplx_with_contour(smplx_model):
  out = smplx_model(jaw_pose=np.array([0.2, 0.0, 0.0]))
  assert smplx_model.num_landmarks == 68
  mapping = joint_sets.model_joint_mapping('smplx', 'FACE_68', num_landmarks=68)
  np.testing.assert_array_equal(mapping.valid, np.ones(68))
  face = mapping.apply(out.joints)
  names = smplx_model.joint_names
  # Contour landmark 0 is iBUG point 1; static landmark 0 is iBUG point 18.
  np.testing.assert_allclose(face[0], out.joints[names.index('face_contour_00')])
  np.testing.assert_allclose(face[17], out.joints[names.index('face_00')])
  np.testing.assert_allclose(face[67], out.joints[names.index('face_50')])
  without = joint_sets.model_joint_mapping('smplx', 'FACE_68', num_landmarks=51)
  np.testing.assert_array_equal(without.valid, np.r_[np.zeros(17), np.ones(51)])
  with pytest.raises(ValueError, match='num_landmarks'):
    without.apply(out.joints)   # the model outputs 68 landmarks, the mapping expects 51


def test_interhand_permutation():
  perm = joint_sets.INTERHAND_TO_HAND_21
  assert sorted(perm) == list(range(21))
  assert tuple(joint_sets.INTERHAND_HAND_NAMES[i] for i in perm) == joint_sets.HAND_21.names
  # A right hand as InterHand2.6M stores it: tips first, wrist last.
  interhand = np.zeros((21, 3), np.float32)
  interhand[20] = (1, 1, 1)     # wrist
  interhand[0] = (2, 2, 2)      # thumb tip
  interhand[7] = (3, 3, 3)      # index knuckle
  hand = interhand[..., perm, :]
  np.testing.assert_array_equal(hand[0], (1, 1, 1))
  np.testing.assert_array_equal(hand[joint_sets.HAND_21.index('thumb4')], (2, 2, 2))
  np.testing.assert_array_equal(hand[joint_sets.HAND_21.index('index1')], (3, 3, 3))


def test_no_available_joint_is_an_error():
  with pytest.raises(ValueError, match='none of the joints'):
    joint_sets.model_joint_mapping('mano', 'COCO_17')
  with pytest.raises(ValueError, match='unknown family'):
    joint_sets.model_joint_mapping('smplh', 'COCO_17')


def test_openpose_18_from_coco_17_by_name():
  coco = np.arange(17 * 2, dtype=np.float32).reshape(17, 2)
  values, valid = joint_sets.remap(coco, None, 'COCO_17', 'OPENPOSE_18')
  names = joint_sets.get('OPENPOSE_18').names
  assert valid[names.index('neck')] == 0      # COCO has no neck
  for i, name in enumerate(names):
    if name != 'neck':
      np.testing.assert_array_equal(values[i], coco[joint_sets.get('COCO_17').index(name)])


# ---- issue 17, item 4: the joints that are not the model's come from a regressor ----------


def _regressor(rows, num_vertices, seed):
  """Random non-negative rows summing to 1, as a vertex regressor's."""
  weights = np.random.default_rng(seed).uniform(size=(rows, num_vertices)).astype(np.float32)
  return weights / weights.sum(axis=1, keepdims=True)


def test_a_coco_hip_regressor_gives_the_hips_and_leaves_the_rest_by_name(smpl_out, tmp_path):
  hips = _regressor(2, 6890, seed=4)          # (2, V): left hip, right hip
  np.save(tmp_path / 'J_regressor_coco_hip.npy', hips)
  mapping = joint_sets.model_joint_mapping('smpl', 'COCO_17',
                                           regressor=tmp_path / 'J_regressor_coco_hip.npy')
  by_name = joint_sets.model_joint_mapping('smpl', 'COCO_17')
  joints, vertices = np.asarray(smpl_out.joints), np.asarray(smpl_out.vertices)
  got = mapping.apply(joints, vertices)
  coco = joint_sets.COCO_17
  # Closed form: each hip is its row of weights times the mesh.
  want_hips = hips.astype(np.float64) @ vertices.astype(np.float64)
  np.testing.assert_allclose(got[coco.index('left_hip')], want_hips[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got[coco.index('right_hip')], want_hips[1], rtol=1e-5, atol=1e-6)
  # The regressed hips are not SMPL's hip joints (else the test would prove nothing) ...
  smpl_hip = joints[skeletons.SMPL_JOINTS.index('left_hip')]
  assert np.linalg.norm(got[coco.index('left_hip')] - smpl_hip) > 0.05
  # ... and every other keypoint is still the model's point of its name.
  others = [i for i, n in enumerate(coco.names) if n not in joint_sets.COCO_HIPS]
  np.testing.assert_array_equal(got[others], by_name.apply(joints, vertices)[others])
  # Under jit too, on a batch.
  batch = jax.jit(mapping.apply)(jnp.stack([smpl_out.joints] * 2),
                                 jnp.stack([smpl_out.vertices] * 2))
  np.testing.assert_allclose(batch[1, coco.index('right_hip')], want_hips[1], rtol=1e-5,
                             atol=1e-6)


def test_a_coco_17_regressor_is_read_by_name_into_coco_wholebody():
  coco = _regressor(17, 10475, seed=5)        # like J_regressor_coco_hip_smpl.npy, for SMPL-X
  full = joint_sets.load_regressor(coco, 'COCO_WHOLEBODY_133', 'smplx')
  assert full.shape == (133, 10475)
  np.testing.assert_array_equal(full[:17], coco)     # COCO-WholeBody's first 17 are COCO's
  np.testing.assert_array_equal(full[17:], 0.0)      # the rest: by name
  hips = joint_sets.load_regressor(coco[11:13], 'COCO_WHOLEBODY_133', 'smplx')
  wb = joint_sets.COCO_WHOLEBODY_133
  np.testing.assert_array_equal(hips[[wb.index('left_hip'), wb.index('right_hip')]], coco[11:13])
  assert np.count_nonzero(hips.any(axis=1)) == 2
  with pytest.raises(ValueError, match=r'\(3, 10475\).*\(133, 10475\).*\(2, 10475\)'):
    joint_sets.load_regressor(coco[:3], 'COCO_WHOLEBODY_133', 'smplx')


@pytest.mark.parametrize('family, joint_set, file', [
    ('smpl', 'H36M_17', 'J_regressor_h36m_correct.npy'),
    ('smplx', 'H36M_17', 'J_regressor_h36m_smplx.npy'),
    ('smpl', 'MPI_INF_3DHP_17', 'J_regressor_h36m_correct.npy'),
    ('smpl', 'COCO_17', 'J_regressor_coco_hip_smpl.npy'),
    ('smplx', 'COCO_17', 'J_regressor_coco_hip_smplx.npy'),
    ('smplx', 'COCO_WHOLEBODY_133', 'J_regressor_coco_hip_smplx.npy'),
])
def test_a_real_set_without_its_regressor_is_an_error_naming_the_file(family, joint_set, file):
  for missing in (None, ''):
    with pytest.raises(ValueError, match=r'model\.regressor is empty') as err:
      joint_sets.check_regressor(family, joint_set, missing)
    assert f'--config.model.regressor=~/models/{file}' in str(err.value) or (
        joint_set == 'MPI_INF_3DHP_17' and f'python -m neuralannot_jax.data.joint_sets '
        f'~/models/{file}' in str(err.value))
    assert 'Traceback' not in str(err.value)


def test_the_sets_of_the_models_own_joints_need_no_regressor():
  for family, joint_set in (('mano', 'HAND_21'), ('flame', 'FACE_68'), ('smpl', 'SMPL_24'),
                            ('mano', 'COCO_WHOLEBODY_133'), ('flame', 'COCO_WHOLEBODY_133')):
    assert joint_sets.required_regressor_joints(family, joint_set) == ()
    joint_sets.check_regressor(family, joint_set, None)
  assert joint_sets.required_regressor_joints('smplx', 'COCO_17') == ('left_hip', 'right_hip')


def test_a_regressor_file_that_gives_the_joints_is_accepted(tmp_path):
  h36m = tmp_path / 'J_regressor_h36m_correct.npy'
  np.save(h36m, _regressor(17, 6890, seed=6))
  joint_sets.check_regressor('smpl', 'H36M_17', str(h36m))
  hips = tmp_path / 'J_regressor_coco_hip_smplx.npy'
  np.save(hips, _regressor(2, 10475, seed=7))
  joint_sets.check_regressor('smplx', 'COCO_17', str(hips))
  joint_sets.check_regressor('smplx', 'COCO_WHOLEBODY_133', hips)
  # A file that leaves a required joint out, a wrong shape, a missing file: named errors.
  gap = _regressor(17, 6890, seed=8)
  gap[joint_sets.H36M_17.index('neck')] = 0.0
  np.save(tmp_path / 'gap.npy', gap)
  with pytest.raises(ValueError, match=r"gap\.npy' has all-zero rows for \['neck'\]"):
    joint_sets.check_regressor('smpl', 'H36M_17', str(tmp_path / 'gap.npy'))
  with pytest.raises(ValueError, match=r'model\.regressor: .*\(17, 10475\)'):
    joint_sets.check_regressor('smplx', 'H36M_17', str(h36m))
  with pytest.raises(ValueError, match=r"model\.regressor '.*nowhere\.npy': no such file"):
    joint_sets.check_regressor('smpl', 'H36M_17', str(tmp_path / 'nowhere.npy'))


def test_a_h36m_regressor_in_mpi_inf_3dhp_order(smpl_out, tmp_path):
  h36m = _regressor(17, 6890, seed=9)
  np.save(tmp_path / 'h36m.npy', h36m)
  joint_sets._main([str(tmp_path / 'h36m.npy'), str(tmp_path / 'mpi.npy')])
  mpi = np.load(tmp_path / 'mpi.npy')
  H, M = joint_sets.H36M_17, joint_sets.MPI_INF_3DHP_17
  # Human3.6M's 'Neck/Nose' point is MPI-INF-3DHP's 'head'; the other 16 share their names.
  np.testing.assert_array_equal(mpi[M.index('head')], h36m[H.index('nose')])
  for name in M.names:
    if name != 'head':
      np.testing.assert_array_equal(mpi[M.index(name)], h36m[H.index(name)])
  joint_sets.check_regressor('smpl', 'MPI_INF_3DHP_17', str(tmp_path / 'mpi.npy'))
  mapping = joint_sets.model_joint_mapping('smpl', 'MPI_INF_3DHP_17', regressor=mpi)
  got = mapping.apply(np.asarray(smpl_out.joints), np.asarray(smpl_out.vertices))
  np.testing.assert_allclose(got, h36m[[H.index('nose') if n == 'head' else H.index(n)
                                        for n in M.names]] @ np.asarray(smpl_out.vertices),
                             rtol=1e-5, atol=1e-6)
