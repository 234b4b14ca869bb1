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
  np.testing.assert_allclose(excess[1, knee], 40.0, atol=1e-6)   # knee x range starts at 0
  np.testing.assert_allclose(excess[2, knee], 10.0, atol=1e-6)
