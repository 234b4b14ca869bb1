"""Tests of neuralannot_jax.wholebody.merge: body + MANO hands + FLAME face -> SMPL-X.

The references are independent of the merge: a synthetic SMPL-X person is cut into what
the part annotators would see (each hand's global rotation read off the SMPL-X forward
pass, its finger pose, the face's jaw and expression) and the merge must give the person
back; merged fingers must turn exactly as the MANO hand's (both forward passes); angles
are compared with scipy's Rotation.
"""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import body_models
from body_models import mirror
from body_models import skeletons
from body_models import synthetic
from neuralannot_jax import export
from neuralannot_jax.wholebody import merge as wholebody

TOL = 1e-4  # rad


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp('wholebody_models')
  for family in ('smplx', 'mano', 'flame'):
    synthetic.write_model(family, root)
  return {'smplx': body_models.load(root, 'smplx'),
          'right': body_models.load(root, 'mano'),
          'left': body_models.load(root, 'mano', is_right_hand=False),
          'right_flat': body_models.load(root, 'mano', flat_hand_mean=True),
          'left_flat': body_models.load(root, 'mano', is_right_hand=False,
                                        flat_hand_mean=True)}


def _angle(a, b):
  """Rotation-angle distance (radians) between axis-angle arrays (..., 3)."""
  a = Rotation.from_rotvec(np.asarray(a, np.float64).reshape(-1, 3))
  b = Rotation.from_rotvec(np.asarray(b, np.float64).reshape(-1, 3))
  return (a.inv() * b).magnitude()


def _person(seed):
  rng = np.random.default_rng(seed)
  p = {'global_orient': rng.normal(0, 0.6, 3), 'body_pose': rng.normal(0, 0.35, 63),
       'left_hand_pose': rng.normal(0, 0.3, 45), 'right_hand_pose': rng.normal(0, 0.3, 45),
       'jaw_pose': rng.normal(0, 0.15, 3), 'betas': rng.normal(0, 1, 10),
       'expression': rng.normal(0, 1, 10), 'transl': rng.normal(0, 0.3, 3) + [0, 0, 4]}
  return {k: np.asarray(v, np.float32) for k, v in p.items()}


def _forward(model, params):
  return model(**{k: np.asarray(v)[None] for k, v in params.items()})


CAM = dict(focal=[1500.0, 1500.0], princpt=[320.0, 240.0])


def _parts(smplx, person, seed=0):
  """What the part annotators would give for `person`: body, hand and face entries.

  The body annotation knows the body but not the hands or face: its wrists, fingers,
  jaw and expression are something else (here random / zero), so the merge must take them
  from the parts. The hands' global rotations are the SMPL-X wrists' (forward pass).
  """
  rng = np.random.default_rng(seed + 100)
  body = dict(person)
  body_pose = body['body_pose'].reshape(21, 3).copy()
  body_pose[19:21] = rng.normal(0, 0.5, (2, 3))   # wrong wrists
  body['body_pose'] = body_pose.reshape(-1)
  body['left_hand_pose'] = np.zeros(45, np.float32)
  body['right_hand_pose'] = np.zeros(45, np.float32)
  body['jaw_pose'] = np.zeros(3, np.float32)
  body['expression'] = np.zeros(10, np.float32)
  body_entry = export.to_released_entry('smplx', body, **CAM)

  glob = np.asarray(_forward(smplx, person).global_rotations[0])
  names = skeletons.SMPLX_JOINTS
  hands = {}
  for side in ('right', 'left'):
    orient = Rotation.from_matrix(glob[names.index(f'{side}_wrist')]).as_rotvec()
    mano = {'global_orient': orient.astype(np.float32),
            'hand_pose': person[f'{side}_hand_pose'],
            'betas': rng.normal(0, 1, 10).astype(np.float32),
            'transl': rng.normal(0, 0.1, 3).astype(np.float32)}
    hands[side] = export.to_released_entry('mano', mano, [5000.0, 5000.0], [40.0, 60.0])
  flame = {'global_orient': rng.normal(0, 0.3, 3).astype(np.float32),
           'jaw_pose': person['jaw_pose'], 'expression': person['expression'],
           'betas': rng.normal(0, 1, 10).astype(np.float32),
           'transl': np.array([0, 0, 1], np.float32)}
  face = export.to_released_entry('flame', flame, [5000.0, 5000.0], [50.0, 50.0])
  return body_entry, export.hand_entry(**hands), face


def test_wrist_and_part_indices_follow_the_smplx_tree():
  # body_pose's 21 rows are joints 1..21: the wrists are joints 20 / 21, rows 19 / 20,
  # children of the elbows; the hands' fingers are joints 25..39 (left) and 40..54 (right).
  names, parents = skeletons.SMPLX_JOINTS, skeletons.SMPLX_PARENTS
  assert wholebody.wrist_joint('left') == 20 and names[20] == 'left_wrist'
  assert wholebody.wrist_joint('right') == 21 and names[21] == 'right_wrist'
  assert names[parents[20]] == 'left_elbow' and names[parents[21]] == 'right_elbow'
  assert names[25] == 'left_index1' and names[40] == 'right_index1'
  assert [n[len('right_'):] for n in names[40:55]] == list(skeletons.MANO_JOINTS[1:])
  with pytest.raises(ValueError, match='side'):
    wholebody.wrist_joint('both')


def test_global_rotation_matches_the_forward_pass(models):
  smplx = models['smplx']
  person = _person(3)
  out = np.asarray(_forward(smplx, person).global_rotations[0])
  for joint in (0, 18, 19, 20, 21, 45):
    got = np.asarray(wholebody.global_rotation(person, smplx, joint))
    np.testing.assert_allclose(got, out[joint], atol=2e-5)


def test_merge_gives_back_the_original_person(models):
  smplx = models['smplx']
  for seed in range(3):
    person = _person(seed)
    body_entry, hands, face = _parts(smplx, person, seed)
    merged = wholebody.merge(body_entry, hands, face, smplx)
    flags = {k: merged['smplx_param'][k] for k in ('lhand_valid', 'rhand_valid', 'face_valid')}
    assert flags == {'lhand_valid': True, 'rhand_valid': True, 'face_valid': True}
    got, focal, _ = export.from_released_entry('smplx', merged)
    np.testing.assert_allclose(focal, CAM['focal'])
    # Every body joint, wrists included, the original's within TOL.
    assert _angle(got['body_pose'], person['body_pose']).max() < TOL
    assert _angle(got['global_orient'], person['global_orient']).max() < TOL
    for name in ('left_hand_pose', 'right_hand_pose', 'jaw_pose'):
      assert _angle(got[name], person[name]).max() < TOL, name
    np.testing.assert_allclose(got['expression'], person['expression'], atol=1e-6)
    # Body shape and placement stay the body annotation's, not the parts'.
    body = body_entry['smplx_param']   # float32 written as its shortest decimal
    np.testing.assert_array_equal(got['betas'], np.float32(body['shape']))
    np.testing.assert_array_equal(got['transl'], np.float32(body['trans']))


@pytest.mark.parametrize('flat', [False, True])
def test_merged_hands_turn_as_the_mano_hands(models, flat):
  """The merged SMPL-X wrist and fingers have the MANO hand's global rotations.

  With the hands loaded flat (flat_hand_mean=True) the MANO parameters mean other
  rotations than SMPL-X's (which adds its hand mean): passing the models converts them.
  """
  smplx = models['smplx']
  rng = np.random.default_rng(7)
  body = _person(11)
  body_entry = export.to_released_entry('smplx', body, **CAM)
  hands, mano_params = {}, {}
  for side in ('right', 'left'):
    mano_params[side] = {'global_orient': rng.normal(0, 1.0, 3).astype(np.float32),
                         'hand_pose': rng.normal(0, 0.4, 45).astype(np.float32)}
    hands[side] = export.to_released_entry('mano', mano_params[side], **CAM)
  mano_models = {s: models[f'{s}_flat' if flat else s] for s in ('right', 'left')}
  merged = wholebody.merge(body_entry, hands, None, smplx,
                           mano_models=mano_models if flat else None)
  params, _, _ = export.from_released_entry('smplx', merged)
  glob = np.asarray(_forward(smplx, params).global_rotations[0])
  for side in ('right', 'left'):
    mano_glob = np.asarray(_forward(mano_models[side], mano_params[side]).global_rotations[0])
    first = skeletons.SMPLX_JOINTS.index(f'{side}_index1')
    wrist = wholebody.wrist_joint(side)
    joints = [wrist] + list(range(first, first + 15))
    got = Rotation.from_matrix(glob[joints].astype(np.float64))
    want = Rotation.from_matrix(mano_glob.astype(np.float64))
    assert (got.inv() * want).magnitude().max() < TOL, side


def test_fingers_keep_mano_parameters_when_the_means_agree(models):
  # The stand-ins, like the official files, give SMPL-X MANO's hand means: the same
  # numbers go through whether or not the models are passed.
  smplx = models['smplx']
  pose = np.random.default_rng(1).normal(0, 0.3, 45).astype(np.float32)
  for side in ('right', 'left'):
    with_models = wholebody.fingers_to_smplx(pose, smplx, side, models[side])
    np.testing.assert_allclose(with_models, pose, atol=1e-6)
    np.testing.assert_array_equal(wholebody.fingers_to_smplx(pose, smplx, side), pose)


def test_a_left_hand_seen_mirrored_merges_as_the_left_hand(models):
  """The hand network sees a left hand as a right one; mirrored back, it merges right."""
  smplx = models['smplx']
  person = _person(21)
  body_entry, hands, _ = _parts(smplx, person, 21)
  left, _, _ = export.from_released_entry('mano', hands['left'])
  as_right = mirror.mirror_params(left, 'mano')   # the network's output on the flipped crop
  hands['left'] = export.to_released_entry('mano', mirror.mirror_params(as_right, 'mano'),
                                           **CAM)
  got, _, _ = export.from_released_entry('smplx', wholebody.merge(body_entry, hands, None,
                                                                  smplx))
  assert _angle(got['body_pose'], person['body_pose']).max() < TOL
  assert _angle(got['left_hand_pose'], person['left_hand_pose']).max() < TOL


def test_missing_parts_are_flagged_and_keep_the_body_values(models):
  smplx = models['smplx']
  person = _person(2)
  body_entry, hands, face = _parts(smplx, person, 2)
  body = body_entry['smplx_param']

  merged = wholebody.merge(body_entry, None, None, smplx)['smplx_param']
  assert (merged['lhand_valid'], merged['rhand_valid'], merged['face_valid']) == (
      False, False, False)
  for key, _ in export.RELEASED_LAYOUT['smplx']:
    np.testing.assert_array_equal(merged[key], body[key], err_msg=key)

  merged = wholebody.merge(body_entry, {'right': None, 'left': hands['left']}, None,
                           smplx)['smplx_param']
  assert merged['lhand_valid'] and not merged['rhand_valid'] and not merged['face_valid']
  np.testing.assert_array_equal(merged['rhand_pose'], body['rhand_pose'])
  np.testing.assert_array_equal(merged['body_pose'][60:63], body['body_pose'][60:63])
  assert _angle(merged['body_pose'][57:60], person['body_pose'][57:60]).max() < TOL
  np.testing.assert_array_equal(merged['jaw_pose'], body['jaw_pose'])
  np.testing.assert_array_equal(merged['expr'], body['expr'])


def test_bad_inputs_get_clear_errors(models):
  smplx = models['smplx']
  body_entry, hands, face = _parts(smplx, _person(4), 4)
  with pytest.raises(ValueError, match='SMPL-X body model'):
    wholebody.merge(body_entry, hands, face, models['right'])
  with pytest.raises(ValueError, match='right / left'):
    wholebody.merge(body_entry, {'both': hands['right']}, None, smplx, where='person 7')
  face['flame_param']['expr'] = face['flame_param']['expr'] + [0.5]   # 11 > the body's 10
  with pytest.raises(ValueError, match='person 7: the face expression has 11'):
    wholebody.merge(body_entry, None, face, smplx, where='person 7')


def test_merge_files_writes_a_file_that_loads_and_renders(models, tmp_path):
  smplx = models['smplx']
  bodies, hand_file, face_file = {}, {}, {}
  for pid, seed in ((101, 0), (202, 1), (303, 2)):
    body_entry, hands, face = _parts(smplx, _person(seed), seed)
    bodies[str(pid)] = body_entry
    if pid == 101:
      hand_file[str(pid)] = hands
      face_file[f'{pid}_face'] = face        # COCO-WholeBody face samples' ann_id
    elif pid == 202:
      hand_file[str(pid)] = {'right': None, 'left': hands['left']}
      face_file[str(pid)] = face             # a face file keyed by the person
  paths = {}
  for name, data in (('body', bodies), ('hand', hand_file), ('face', face_file)):
    paths[name] = export.write_coco_style(tmp_path / f'{name}.json', data)
  out, counts = wholebody.merge_files(paths['body'], paths['hand'], paths['face'],
                                      tmp_path / 'wholebody.json', smplx)
  assert counts == {'persons': 3, 'rhand': 1, 'lhand': 2, 'face': 2}
  with open(out) as f:
    merged = json.load(f)
  assert sorted(merged) == ['101', '202', '303']
  flags = {pid: tuple(merged[pid]['smplx_param'][k]
                      for k in ('rhand_valid', 'lhand_valid', 'face_valid'))
           for pid in merged}
  assert flags == {'101': (True, True, True), '202': (False, True, True),
                   '303': (False, False, False)}
  for pid, entry in merged.items():
    assert len(entry['smplx_param']['body_pose']) == 63
    params, focal, princpt = export.from_released_entry('smplx', entry)
    assert focal is not None and princpt is not None
    vertices = np.asarray(_forward(smplx, params).vertices[0])
    assert vertices.shape == (10475, 3) and np.isfinite(vertices).all(), pid
