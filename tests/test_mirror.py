"""body_models.mirror and neuralannot_jax.method.facing against geometry: the mirror image of a
posed stand-in (an exactly symmetric model) and the 2D outline of a body facing each way."""

import os

import jax
import numpy as np
import pytest

import body_models
from body_models import mirror
from body_models import skeletons
from neuralannot_jax.data import joint_sets
from neuralannot_jax.method import camera
from neuralannot_jax.method import facing

X_MIRROR = np.diag([-1.0, 1.0, 1.0])
Z_MIRROR = np.diag([1.0, 1.0, -1.0])


def test_flip_permutation_swaps_twins_and_respects_the_tree():
  for family in ('smpl', 'smplx', 'mano', 'flame'):
    perm = mirror.flip_permutation(family)
    names = skeletons.KINEMATIC_JOINTS[family]
    parents = skeletons.PARENTS[family]
    np.testing.assert_array_equal(perm[perm], np.arange(len(names)))    # an involution
    for j, p in enumerate(parents):
      if p >= 0:
        assert parents[perm[j]] == perm[p], (family, names[j])
  smpl = list(skeletons.KINEMATIC_JOINTS['smpl'])
  perm = mirror.flip_permutation('smpl')
  assert smpl[perm[smpl.index('left_elbow')]] == 'right_elbow'
  assert perm[smpl.index('spine1')] == smpl.index('spine1')
  np.testing.assert_array_equal(mirror.flip_permutation('mano'), np.arange(16))


def _random_params(model, rng, batch=3, scale=0.4):
  params = {k: (rng.normal(size=(batch,) + s) * scale).astype(np.float32)
            for k, s in model.param_shapes().items()}
  params['global_orient'] = np.tile(np.array([np.pi, 0.2, 0.1], np.float32), (batch, 1))
  params['transl'] = np.tile(np.array([0.1, 0.2, 5.0], np.float32), (batch, 1))
  return params


@jax.jit
def _joints(model, params):
  return body_models.forward(model, **params).joints


@pytest.mark.parametrize('family', ['smpl', 'smplx'])
def test_mirrored_parameters_pose_the_mirror_image_joint_by_joint(model_dir, family):
  model = body_models.load(os.path.join(model_dir, family), family)
  params = _random_params(model, np.random.default_rng(0))
  joints = np.asarray(_joints(model, params))
  mirrored = np.asarray(_joints(model, mirror.mirror_params(params, family)))
  k = len(skeletons.KINEMATIC_JOINTS[family])
  expected = joints[:, mirror.flip_permutation(family)] @ X_MIRROR
  # Metres: the stand-in's head regressor is 0.5 mm off symmetric under shape; a wrong
  # sign or twin moves joints by centimetres.
  np.testing.assert_allclose(mirrored[:, :k], expected[:, :k], atol=2e-3)


def test_mirroring_twice_is_exactly_the_identity_and_keeps_dtypes():
  rng = np.random.default_rng(5)
  params = {'global_orient': rng.normal(0, 1, (2, 3)), 'hand_pose': rng.normal(0, 0.5, (2, 45)),
            'betas': rng.normal(0, 1, (2, 10)), 'transl': rng.normal(0, 0.3, (2, 3))}
  params = {k: v.astype(np.float32) for k, v in params.items()}
  back = mirror.mirror_params(mirror.mirror_params(params, 'mano'), 'mano')
  for k in params:
    assert back[k].dtype == params[k].dtype
    np.testing.assert_array_equal(back[k], params[k])
  with pytest.raises(ValueError, match='body_pose'):
    mirror.mirror_params({'global_orient': params['global_orient']}, 'smpl')


def test_the_facing_twin_is_the_depth_reflection_with_left_and_right_swapped(model_dir):
  model = body_models.load(os.path.join(model_dir, 'smpl'), 'smpl')
  params = _random_params(model, np.random.default_rng(1))
  joints = np.asarray(_joints(model, params))
  twin = np.asarray(_joints(model, mirror.facing_twin(params, 'smpl')))
  root = joints[:, :1]
  expected = (joints[:, mirror.flip_permutation('smpl')] - root) @ Z_MIRROR + root
  np.testing.assert_allclose(twin[:, :24], expected[:, :24], atol=2e-3)


def _coco_mapping(model):
  return joint_sets.model_joint_mapping(model.family, "COCO_17")


def test_the_facing_check_turns_a_body_facing_the_wrong_way_and_keeps_the_others(model_dir):
  model = body_models.load(os.path.join(model_dir, 'smpl'), 'smpl')
  mapping = _coco_mapping(model)
  rng = np.random.default_rng(2)
  truth = _random_params(model, rng, batch=4, scale=0.25)
  # Far away, as in the crop camera (focal 5000): the outline of each facing is the same.
  truth['transl'] = np.tile(np.array([0.0, 0.0, 40.0], np.float32), (4, 1))
  crop = 256
  focal, princpt = camera.crop_camera(crop)

  def outline(params):
    out = body_models.forward(model, **{k: v for k, v in params.items() if k != 'transl'})
    joints = np.asarray(mapping.apply(out.joints, out.vertices))
    return joints, np.asarray(camera.project(joints + params['transl'][:, None], focal, princpt))

  gt_joints, gt_2d = outline(truth)
  wrong = {k: np.asarray(v) for k, v in mirror.facing_twin(truth, 'smpl').items()}
  predicted = {k: np.where(np.arange(4).reshape((4,) + (1,) * (v.ndim - 1)) < 2, wrong[k], v)
               for k, v in truth.items()}          # rows 0, 1 face the wrong way
  pred_joints, pred_2d = outline(predicted)
  valid = np.ones(gt_2d.shape[:2], np.float32)
  labelled = np.asarray(mapping.valid, bool)
  swap_px = np.linalg.norm(pred_2d - gt_2d, axis=-1)[:, labelled].mean(1)
  assert np.all(swap_px[:2] > 5.0)      # the wrong facing shows in the labelled sides
  root = np.asarray(body_models.forward(
      model, **{k: v for k, v in predicted.items() if k != 'transl'}).joints)[:, 0]
  params, joints, turned = facing.choose(model, mapping, predicted, root, pred_joints, gt_2d,
                                         valid, crop_size=crop, focal=camera.FOCAL)
  np.testing.assert_array_equal(np.asarray(turned), [True, True, False, False])
  # The turned bodies are the true ones again (3D, root-relative), up to float noise.
  rel = lambda j: (j - j[:, :1])[:, labelled]
  np.testing.assert_allclose(rel(np.asarray(joints)), rel(gt_joints), atol=2e-3)
  np.testing.assert_allclose(np.asarray(params['transl']), truth['transl'], atol=2e-3)


def test_the_facing_check_refuses_hands(model_dir):
  model = body_models.load(os.path.join(model_dir, 'mano'), 'mano')
  with pytest.raises(ValueError, match='mano'):
    facing.choose(model, None, {}, None, None, None, None, crop_size=64, focal=camera.FOCAL)


def test_the_training_loss_scores_the_nearer_facing(model_dir):
  """`either_facing_joints`: a body facing the wrong way is scored by its twin, which fits
  the labels; a body facing the right way by itself."""
  model = body_models.load(os.path.join(model_dir, 'smpl'), 'smpl')
  mapping = _coco_mapping(model)
  rng = np.random.default_rng(3)
  truth = _random_params(model, rng, batch=2, scale=0.25)
  transl = np.tile(np.array([0.0, 0.0, 40.0], np.float32), (2, 1))
  crop = 256
  focal, princpt = camera.crop_camera(crop)
  true_rotmats = np.array(body_models.rotations.axis_angle_to_matrix(
      np.concatenate([truth['global_orient'][:, None], truth['body_pose'].reshape(2, 23, 3)], 1)))
  rotmats = true_rotmats.copy()
  rotmats[0] = np.asarray(mirror.facing_twin_rotmats(rotmats[:1], 'smpl'))[0]   # row 0 wrong
  betas = truth['betas']

  def joints_of(rotmats):
    out = body_models.forward_rotmats(model, rotmats, betas=betas)
    return out, np.asarray(mapping.apply(out.joints, out.vertices))

  _, gt_joints = joints_of(true_rotmats)
  gt_2d = np.asarray(camera.project(gt_joints + transl[:, None], focal, princpt))
  out, joints = joints_of(rotmats)
  valid = np.ones(gt_2d.shape[:2], np.float32) * np.asarray(mapping.valid)[None]
  scored = np.asarray(facing.either_facing_joints(
      model, mapping, rotmats, out, joints, transl, gt_2d, valid, crop_size=crop,
      focal=camera.FOCAL, betas=betas))
  labelled = np.asarray(mapping.valid, bool)
  rel = lambda j: (j - j[:, :1])[:, labelled]
  np.testing.assert_allclose(rel(scored), rel(gt_joints), atol=2e-3)
  np.testing.assert_array_equal(scored[1], joints[1])
  assert np.abs(rel(joints)[0] - rel(gt_joints)[0]).max() > 0.05    # row 0 was wrong
