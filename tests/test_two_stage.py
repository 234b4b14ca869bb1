"""Two-stage training: initial pseudo-GT parameters moved into the crop's frame, and the loss.

The frame change is checked through the body model's own kinematics: posing the model with
the crop-frame targets must give the crop's joints (rotated about the camera axis, and for
flipped crops mirrored, with each joint's left/right twin taking its place)."""

import json
import os

import jax
import numpy as np
import pytest

import body_models
from body_models import mirror
from neuralannot_jax import two_stage
from neuralannot_jax.data import crop
from neuralannot_jax.data import sample as sample_lib

F = np.diag([-1.0, 1.0, 1.0])


@jax.jit
def _forward(model, rotmats, betas):
  return body_models.forward_rotmats(model, rotmats, betas=betas)


@pytest.mark.parametrize('angle', [0.0, 30.0, -75.0])
def test_rotated_crop_targets_pose_the_joints_of_the_rotated_crop(model_dir, angle):
  model = body_models.load(os.path.join(model_dir, 'smpl'), 'smpl')
  rng = np.random.default_rng(1)
  pose = (rng.normal(size=(2, 24, 3)) * 0.3).astype(np.float32)
  betas = rng.normal(size=(2, 10)).astype(np.float32)
  out = _forward(model, body_models.rotations.axis_angle_to_matrix(pose), betas)
  target = two_stage.crop_frame_rotations(pose, np.full(2, angle), np.zeros(2), 'smpl')
  moved = _forward(model, target, betas)
  # The crop's 3D joints: the camera-space ones rotated like `to_crop` rotates them.
  expected = np.asarray(out.joints) @ crop.rotation_3d(angle).T
  rel = lambda j: j - j[:, :1]
  np.testing.assert_allclose(rel(np.asarray(moved.joints)), rel(expected), atol=2e-5)


def test_flipped_crop_targets_are_the_mirror_image_joint_by_joint(model_dir):
  model = body_models.load(os.path.join(model_dir, 'smplx'), 'smplx')
  rng = np.random.default_rng(2)
  pose = (rng.normal(size=(2, 55, 3)) * 0.3).astype(np.float32)
  angle = np.array([0.0, 40.0])
  out = _forward(model, body_models.rotations.axis_angle_to_matrix(pose), None)
  target = two_stage.crop_frame_rotations(pose, angle, np.ones(2), 'smplx')
  mirrored = _forward(model, target, None)
  perm = mirror.flip_permutation('smplx')
  for b in range(2):
    t = F @ crop.rotation_3d(angle[b])             # the crop's camera transform p' = F Rz p
    g = np.asarray(out.global_rotations[b])        # (J, 3, 3)
    # Joint j of the mirror image is joint perm(j) mirrored: its frame T G F (F: the body's
    # own left-right mirror keeps it a rotation).
    expected = t @ g[perm] @ F
    np.testing.assert_allclose(np.asarray(mirrored.global_rotations[b]), expected, atol=2e-5)


def _write_mano_entry(path, ann_id, side, pose, betas):
  entry = {'mano_param': {'pose': pose.tolist(), 'shape': betas.tolist(),
                          'trans': [0.0, 0.0, 0.5]}}
  with open(path, 'w') as f:
    json.dump({str(ann_id): {'right': entry if side == 'right' else None,
                             'left': entry if side == 'left' else None}}, f)


def test_a_left_hand_target_read_from_a_released_file_is_the_mirrored_right_hand(
    model_dir, tmp_path):
  right = body_models.load(os.path.join(model_dir, 'mano'), 'mano', is_right_hand=True)
  left = body_models.load(os.path.join(model_dir, 'mano'), 'mano', is_right_hand=False)
  rng = np.random.default_rng(3)
  pose = (rng.normal(size=48) * 0.4).astype(np.float32)
  betas = rng.normal(size=10).astype(np.float32)
  path = str(tmp_path / 'hands.json')
  _write_mano_entry(path, 7, 'left', pose, betas)
  hand = sample_lib.Sample(dataset='test', ann_id=7, image_path='x.jpg',
                           bbox=np.array([0, 0, 10, 10.]), part='hand', hand_side='left')
  targets = two_stage.Targets(path, right, [hand])
  arrays = targets.arrays([7], {'rotation': np.array([25.0]), 'flipped': np.array([1.0])})
  assert arrays['has_target'][0] == 1
  np.testing.assert_allclose(arrays['target_betas'][0], betas, atol=1e-6)
  rotmats = two_stage.crop_frame_rotations(arrays['target_pose'], arrays['rotation'],
                                           arrays['flipped'], 'mano')
  as_right = _forward(right, rotmats, betas[None])
  original = left(global_orient=pose[None, :3], hand_pose=pose[None, 3:], betas=betas[None])
  # The left hand's mesh seen through the flipped, rotated crop is the right-hand mesh.
  expected = np.asarray(original.vertices[0]) @ (F @ crop.rotation_3d(25.0)).T
  got = np.asarray(as_right.vertices[0])
  np.testing.assert_allclose(got - got.mean(0), expected - expected.mean(0), atol=5e-5)


def test_the_loss_is_zero_on_target_and_ignores_rows_without_one():
  rng = np.random.default_rng(4)
  pose = (rng.normal(size=(3, 24, 3)) * 0.3).astype(np.float32)
  batch = {'target_pose': pose, 'target_betas': np.ones((3, 10), np.float32),
           'has_target': np.array([1.0, 1.0, 0.0], np.float32),
           'rotation': np.array([10.0, 0.0, 0.0], np.float32),
           'flipped': np.array([0.0, 1.0, 0.0], np.float32)}
  exact = two_stage.crop_frame_rotations(pose, batch['rotation'], batch['flipped'], 'smpl')
  terms = two_stage.loss(exact, batch['target_betas'], batch, 'smpl')
  assert float(terms['param_rot']) < 1e-6 and float(terms['param_betas']) == 0.0
  wrong_third = exact.at[2].set(np.eye(3))           # no target: does not count
  assert float(two_stage.loss(wrong_third, batch['target_betas'], batch,
                              'smpl')['param_rot']) < 1e-6
  off = two_stage.loss(exact, batch['target_betas'] + 0.5, batch, 'smpl',
                       {'param_betas': 2.0})
  np.testing.assert_allclose(float(off['param_betas']), 2.0 * 0.5, rtol=1e-6)
  grad = jax.grad(lambda r: two_stage.loss(r, batch['target_betas'], batch,
                                           'smpl')['param_rot'])(exact * 1.01)
  assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).sum() > 0


def test_an_unrelated_file_is_refused_with_its_name(model_dir, tmp_path):
  right = body_models.load(os.path.join(model_dir, 'mano'), 'mano')
  path = str(tmp_path / 'other.json')
  _write_mano_entry(path, 99, 'right', np.zeros(48, np.float32), np.zeros(10, np.float32))
  hand = sample_lib.Sample(dataset='test', ann_id=7, image_path='x.jpg',
                           bbox=np.array([0, 0, 10, 10.]), part='hand', hand_side='right')
  with pytest.raises(ValueError, match='other.json'):
    two_stage.Targets(path, right, [hand])


def test_stage_two_finds_the_network_inside_an_experiment_work_directory(tmp_path):
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  os.makedirs(tmp_path / 'run' / 'train' / 'checkpoints')
  # `experiment.run` trains in <workdir>/train: a work directory means that folder.
  assert experiment.stage_one_train_dir(str(tmp_path / 'run')) == str(tmp_path / 'run' / 'train')
  # A train folder (or anything else) is taken as given; train.py names it if it is wrong.
  assert experiment.stage_one_train_dir(str(tmp_path / 'run' / 'train')) == str(
      tmp_path / 'run' / 'train')
  assert experiment.stage_one_train_dir('') is None
