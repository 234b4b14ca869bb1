"""The Human3.6M regressor of SMPL-topology models (body_models/synthetic/h36m_regressor.py)
and its use on the synthetic Human3.6M-style set (issue 16, item 5)."""

import jax
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import body_models
from body_models import synthetic
from body_models.synthetic import h36m_regressor
from neuralannot_jax import experiment
from neuralannot_jax import train as train_lib
from neuralannot_jax.data import joint_sets


@pytest.fixture(scope='module')
def smpl(tmp_path_factory):
  out = tmp_path_factory.mktemp('h36m_regressor')
  synthetic.write_model('smpl', str(out))
  return body_models.load(str(out), 'smpl')


def test_rows_are_convex_and_follow_a_rigid_motion(smpl):
  reg = h36m_regressor.for_model(smpl)
  assert reg.shape == (17, smpl.num_vertices)
  assert np.all(reg >= 0)
  np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-9)
  # Convex rows: a rigid motion of the mesh moves every regressed joint with it.
  rot = Rotation.from_euler('xyz', [30, -70, 12], degrees=True).as_matrix()
  shift = np.array([0.3, -1.0, 4.0])
  verts = np.asarray(smpl.v_template, np.float64)
  np.testing.assert_allclose(reg @ (verts @ rot.T + shift), (reg @ verts) @ rot.T + shift,
                             atol=1e-9)


def test_joints_are_humanlike_markers_not_smpl_joints(smpl):
  """Hips lower and wider than SMPL's, the head top at the crown, the pelvis between the
  hips, every point inside the body's extent."""
  names = list(smpl.joint_names)
  rest = np.asarray(smpl.joint_template, np.float64)
  verts = np.asarray(smpl.v_template, np.float64)
  pts = dict(zip(h36m_regressor.H36M_NAMES, h36m_regressor.for_model(smpl) @ verts))
  for side, sign in (('left', 1), ('right', -1)):
    hip = pts[f'{side}_hip'] - rest[names.index(f'{side}_hip')]
    assert 0.01 < hip[0] * sign and hip[1] < -0.02     # wider and lower
  np.testing.assert_allclose(pts['pelvis'], (pts['left_hip'] + pts['right_hip']) / 2, atol=1e-6)
  crown = verts[:, 1].max()
  assert crown - 0.05 < pts['head_top'][1] < crown
  assert pts['head_top'][1] > rest[names.index('head')][1] + 0.1
  assert pts['neck'][1] < pts['nose'][1] < pts['head_top'][1]


def test_gt_variant_is_centimetres_off_the_given_definition(smpl):
  given = h36m_regressor.for_model(smpl) @ np.asarray(smpl.v_template, np.float64)
  gt = h36m_regressor.for_model(smpl, offset_scale=1.5, jitter=0.01, seed=3) @ np.asarray(
      smpl.v_template, np.float64)
  dist = np.linalg.norm(gt - given, axis=1)
  assert 0.005 < dist.mean() < 0.03, dist


def test_synthetic_h36m_run_supervises_all_17_joints(smpl, tmp_path):
  """Without a regressor, H36M_17 is name-matched: 15 of 17 joints, pelvis/hips/neck the
  wrong points. The demo's run writes and uses a regressor instead."""
  config = experiment.load_config('configs/synthetic_body.py')
  config.workdir = str(tmp_path)
  path = experiment.synthetic_regressor(config, smpl)
  assert path and np.load(path).shape == (17, smpl.num_vertices)
  config.model.regressor = path                         # as experiment.run does
  mapping = train_lib.make_step_spec(experiment.train_config(config, 'H36M_17')).mapping
  assert np.all(np.asarray(mapping.valid) == 1)
  named = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  assert np.asarray(named.valid).sum() < 17


# SMPL through a regressor; SMPL-X through surface joints and face landmarks; FLAME through
# landmarks and its face contour. (MANO's fingertips are plain vertex sources, as SMPL-X's.)
@pytest.mark.parametrize('family,joint_set', [('smpl', 'H36M_17'), ('smplx', 'COCO_WHOLEBODY_133'),
                                              ('flame', 'FACE_68')])
def test_restricted_model_gives_the_same_mapped_joints(tmp_path, family, joint_set):
  """Issue 16, item 11: skinning only the vertices a mapping reads (a regressor's support,
  surface joints, landmarks) gives the full model's mapped joints and vertices there."""
  synthetic.write_model(family, str(tmp_path))
  model = body_models.load(str(tmp_path), family)
  regressor = None
  if joint_set == 'H36M_17':
    regressor = h36m_regressor.for_model(model)
  mapping = joint_sets.model_joint_mapping(family, joint_set, regressor=regressor,
                                           num_landmarks=model.num_landmarks)
  sub, sub_mapping = joint_sets.restrict_to_mapping(model, mapping)
  assert sub.num_vertices < model.num_vertices // 2
  rng = np.random.default_rng(1)
  params = {k: rng.normal(0, 0.3, (2,) + s).astype(np.float32)
            for k, s in model.param_shapes().items()}
  forward = jax.jit(lambda m, p: body_models.forward(m, **p))   # compiled: faster than eager
  full, part = forward(model, params), forward(sub, params)
  np.testing.assert_allclose(part.joints, full.joints, atol=1e-5)
  np.testing.assert_allclose(sub_mapping.apply(part.joints, part.vertices),
                             mapping.apply(full.joints, full.vertices), atol=1e-5)
  _, ids = body_models.restrict(model, mapping.vertex_support())
  np.testing.assert_allclose(part.vertices, np.asarray(full.vertices)[:, ids], atol=1e-5)
