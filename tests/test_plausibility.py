"""neuralannot_jax.plausibility: joint rotations against the synthetic pose sampler's limits."""

import numpy as np

from neuralannot_jax import plausibility
from neuralannot_jax.data.synthetic import poses


def test_sampled_poses_are_plausible_and_a_turned_wrist_is_not():
  rng = np.random.default_rng(0)
  for family in ('smpl', 'smplx'):
    sampled = np.stack([poses.sample_body_pose(rng, family).reshape(-1) for _ in range(200)])
    assert not plausibility.implausible(sampled, family).any()     # the GT scores 0%
    assert np.all(plausibility.joint_excess(sampled, family) < 1e-6)
  names = list(poses.body_joint_names('smpl'))
  pose = np.zeros((3, 23, 3))
  wrist, knee = names.index('left_wrist'), names.index('right_knee')
  pose[0, wrist] = [np.radians(150.0), 0, 0]        # the wrist about the arm's axis: 150 deg
  pose[1, knee] = [np.radians(-40.0), 0, 0]         # a knee bent forwards by 40 deg
  pose[2, knee] = [np.radians(-10.0), 0, 0]         # ... by 10 deg: inside the margin
  bad = plausibility.implausible(pose.reshape(3, -1), 'smpl')
  np.testing.assert_array_equal(bad, [True, True, False])
  excess = plausibility.joint_excess(pose, 'smpl')
  # The knee's x range starts at 0: the nearest allowed rotation is the straight knee.
  np.testing.assert_allclose(excess[1, knee], 40.0, atol=1e-3)
  np.testing.assert_allclose(excess[2, knee], 10.0, atol=1e-6)


def test_a_shoulder_near_the_decomposition_singularity_is_measured_by_its_rotation():
  """Issue 16 (demo): with the middle angle near -90 deg the first and third trade off. This
  shoulder decomposes into x = -113 deg, 53 past its range, yet it is 6.2 deg from
  (-60, -83, 24), inside every range: plausible, by at most that distance. Four such
  shoulders were flagged on the demo set while the Euler angles were checked."""
  limit = poses.JOINT_LIMITS['left_shoulder']
  angles = np.radians([-113.0, -83.0, 77.0])                       # about x, y, z
  matrix = poses.euler_to_matrix(angles, limit.order)
  np.testing.assert_allclose(poses.matrix_to_euler(matrix, limit.order), angles, atol=1e-9)
  assert angles[0] < np.radians(limit.lo[0]) - np.radians(50.0)
  allowed = poses.euler_to_matrix(np.radians([-60.0, -83.0, 24.0]), limit.order)
  reference = np.degrees(np.arccos((np.trace(matrix.T @ allowed) - 1.0) / 2.0))
  assert reference < 7.0
  names = list(poses.body_joint_names('smpl'))
  pose = np.zeros((2, 23, 3))
  shoulder = names.index('left_shoulder')
  pose[0, shoulder] = poses.matrix_to_axis_angle(matrix)
  pose[1, shoulder] = poses.matrix_to_axis_angle(poses.euler_to_matrix(
      np.radians([-113.0, 0.0, 0.0]), limit.order))                  # 53 deg past, truly
  excess = plausibility.joint_excess(pose, 'smpl')
  assert 0.0 < excess[0, shoulder] <= reference + 1e-6
  np.testing.assert_allclose(excess[1, shoulder], 53.0, atol=1e-3)
  np.testing.assert_array_equal(plausibility.implausible(pose.reshape(2, -1), 'smpl'),
                                [False, True])

