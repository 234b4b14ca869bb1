"""neuralannot_jax.quality: per-sample residuals to the GT joints and the plausibility flag."""

import numpy as np

from neuralannot_jax import quality
from neuralannot_jax.data import joint_sets
from neuralannot_jax.method import camera


def test_residuals_in_mm_and_original_pixels_and_the_flag():
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  t = len(mapping.sources)
  rng = np.random.default_rng(0)
  joints = rng.normal(0, 0.3, (3, t, 3))
  transl = np.array([[0.1, -0.2, 40.0]] * 3)
  focal, princpt = (np.asarray(x, np.float64) for x in camera.crop_camera(64))
  proj = np.asarray(camera.project(joints + transl[:, None], focal, princpt))
  gt3d, gt2d = joints.copy(), proj.copy()
  valid = np.ones((3, t)) * mapping.valid
  gt3d[0, 5] += [0.03, 0.0, 0.0]                 # one joint 30 mm off
  gt2d[1, 5] += [0.0, 2.0]                       # one keypoint 2 crop px off
  inverse = np.tile(np.array([[2.0, 0.0, 10.0], [0.0, 2.0, 5.0]]), (3, 1, 1))  # 2x to original
  batch = {'joints_3d': gt3d, 'valid3d': valid, 'joints_2d': gt2d, 'valid': valid,
           'inverse': inverse}
  body_pose = np.zeros((3, 69))
  body_pose[2, 3 * 19] = np.radians(170.0)       # a wrist turned half round
  params = {'transl': transl, 'body_pose': body_pose}
  scores = quality.batch_quality(joints, params, batch, family='smpl', mapping=mapping,
                                 from_3d=np.array([True, False, False]),
                                 root=joint_sets.get('H36M_17').root, crop_size=64)
  n = mapping.valid.sum()
  np.testing.assert_allclose(scores[0]['joint_residual_mm'], 30.0 / n, atol=0.01)
  np.testing.assert_allclose(scores[1]['joint_residual_px'], 2.0 * 2.0 / n, atol=0.01)
  np.testing.assert_allclose(scores[2]['joint_residual_px'], 0.0, atol=0.01)
  assert [s['implausible'] for s in scores] == [False, False, True]
  # Nothing labelled: no residual to report.
  batch['valid'] = np.zeros((3, t))
  assert 'joint_residual_px' not in quality.batch_quality(
      joints, params, batch, family='smpl', mapping=mapping,
      from_3d=np.array([False] * 3), root=0, crop_size=64)[1]
