"""evaluate: metrics against closed forms and scipy, parameter sets, released files, the CLI."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation

import body_models
from body_models import synthetic
from neuralannot_jax import evaluate
from neuralannot_jax import export
from neuralannot_jax import metrics
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import pw3d
from neuralannot_jax.data import sample as sample_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_points(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------------------------ metrics


def test_similarity_transform_gives_zero_pa_error_and_known_mpjpe():
  points = random_points((4, 30, 3))
  rot = Rotation.random(4, random_state=1).as_matrix()             # (4, 3, 3)
  scale = np.array([0.5, 1.0, 1.7, 3.0])
  shift = np.array([[0.1, -0.2, 2.0], [0, 0, 0], [1, 1, 1], [-3, 0.5, 0]])
  moved = scale[:, None, None] * np.einsum('bij,bnj->bni', rot, points) + shift[:, None]
  np.testing.assert_allclose(metrics.pa_error(moved, points), 0, atol=1e-9)
  np.testing.assert_allclose(metrics.procrustes_align(moved, points), points, atol=1e-12)
  # Closed forms of the unaligned error: a pure shift moves every point by |t|; doubling
  # points on the unit sphere about the origin moves each by 1 m.
  t = np.array([0.003, -0.004, 0.012])                             # |t| = 13 mm
  np.testing.assert_allclose(metrics.mpjpe(points + t, points), [13.0] * 4)
  sphere = points / np.linalg.norm(points, axis=-1, keepdims=True)
  np.testing.assert_allclose(metrics.mpjpe(2 * sphere, sphere), [1000.0] * 4)
  np.testing.assert_allclose(metrics.mpjpe(2 * sphere, sphere, unit_scale=1), [1.0] * 4)


def test_constant_offset_vanishes_after_root_alignment():
  gt = random_points((2, 17, 3), seed=2)
  pred = gt + np.array([0.03, 0.04, 0.0])                          # 50 mm everywhere
  np.testing.assert_allclose(metrics.mpjpe(pred, gt), [50.0, 50.0])
  np.testing.assert_allclose(
      metrics.mpjpe(metrics.root_align(pred, 0), metrics.root_align(gt, 0)), 0, atol=1e-9)
  # Root given as points: the same.
  np.testing.assert_allclose(
      metrics.root_align(pred, pred[:, 5]), metrics.root_align(gt, 5), atol=1e-12)


def test_procrustes_matches_scipy():
  gt = random_points((25, 3), seed=3)
  true_rot = Rotation.from_rotvec([0.3, -1.1, 0.7])
  pred = 0.8 * true_rot.inv().apply(gt) + [0.5, 0.1, -0.2] + 0.01 * random_points((25, 3), 4)
  scale, rot, shift = metrics.procrustes_transform(pred, gt)
  # The best rotation between the centred sets, as scipy finds it.
  ref_rot, _ = Rotation.align_vectors(gt - gt.mean(0), pred - pred.mean(0))
  np.testing.assert_allclose(rot, ref_rot.as_matrix(), atol=1e-9)
  # scipy's procrustes scales both sets to unit norm: its disparity times |gt_c|^2 is our
  # residual sum of squares.
  _, _, disparity = scipy_procrustes(gt, pred)
  residual = ((metrics.procrustes_align(pred, gt) - gt) ** 2).sum()
  np.testing.assert_allclose(residual, disparity * ((gt - gt.mean(0)) ** 2).sum(), rtol=1e-9)
  np.testing.assert_allclose(scale, 1 / 0.8, rtol=0.02)   # pred was shrunk by 0.8


def test_procrustes_closed_form_quarter_turn():
  square = np.array([[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [0, 0, 1]])
  rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
  gt = 2.0 * square @ rz.T + [1.0, 2.0, 3.0]
  scale, rot, shift = metrics.procrustes_transform(square, gt)
  np.testing.assert_allclose(scale, 2.0, atol=1e-12)
  np.testing.assert_allclose(rot, rz, atol=1e-12)
  np.testing.assert_allclose(shift, [1.0, 2.0, 3.0], atol=1e-12)


def test_procrustes_never_reflects():
  pred = random_points((40, 3), seed=5)
  mirrored = pred * [-1.0, 1.0, 1.0]
  _, rot, _ = metrics.procrustes_transform(pred, mirrored)
  np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)
  assert metrics.pa_error(pred, mirrored) > 100   # a mirror image is not a rotation
  # scipy's plain orthogonal Procrustes would take the reflection (det -1).
  _, _, disparity = scipy_procrustes(mirrored, pred)
  assert disparity < 1e-12


def test_valid_points_choose_the_alignment():
  gt = random_points((3, 20, 3), seed=6)
  pred = 1.3 * gt + 0.2
  valid = np.ones(20)
  valid[[2, 11]] = 0
  pred[:, [2, 11]] += 5.0                                          # wild invalid points
  np.testing.assert_allclose(metrics.pa_error(pred, gt, valid), 0, atol=1e-9)
  assert np.all(metrics.pa_error(pred, gt) > 100)
  np.testing.assert_allclose(metrics.mpjpe(gt + 0.001, gt, np.zeros(20)), np.nan)


def test_procrustes_is_batched():
  gt = random_points((2, 3, 10, 3), seed=7)
  pred = gt + 0.1 * random_points((2, 3, 10, 3), seed=8)
  batched = metrics.procrustes_align(pred, gt)
  for i in range(2):
    for j in range(3):
      np.testing.assert_allclose(batched[i, j], metrics.procrustes_align(pred[i, j], gt[i, j]))


def test_auc_and_pck():
  assert metrics.auc(np.zeros((5, 21))) == pytest.approx(1.0)
  assert metrics.auc(np.full((5, 21), 1e6)) == pytest.approx(0.0)
  # By hand: PCK at 0, 20, 40 mm is 1/4, 2/4, 3/4; trapezoids 7.5 + 12.5 over 40 mm.
  errors = np.array([0.0, 10.0, 30.0, 60.0])
  assert metrics.auc(errors, [0.0, 20.0, 40.0]) == pytest.approx(0.5)
  assert metrics.pck(errors, 30.0) == pytest.approx(0.75)
  np.testing.assert_allclose(metrics.pck(errors, [5.0, 100.0]), [0.25, 1.0])
  assert metrics.pck(errors, 5.0, valid=[0, 1, 1, 1]) == pytest.approx(0.0)
  assert metrics.HAND_AUC_THRESHOLDS_MM[0] == 0 and metrics.HAND_AUC_THRESHOLDS_MM[-1] == 50


# ------------------------------------------------------------------------ parameter sets


@pytest.fixture(scope='module')
def model_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('evaluate_models'))
  synthetic.write_model('smpl', root)
  synthetic.write_model('mano', root)
  return root


@pytest.fixture(scope='module')
def smpl(model_root):
  return body_models.load(model_root, 'smpl')


def smpl_params(n, seed=0, scale=0.3):
  rng = np.random.default_rng(seed)
  return {'global_orient': scale * rng.standard_normal((n, 3)),
          'body_pose': scale * rng.standard_normal((n, 69)),
          'betas': rng.standard_normal((n, 10)),
          'transl': rng.standard_normal((n, 3)) + [0, 0, 5]}


_jit_forward = jax.jit(body_models.forward)


def reference_output(model, params):
  """model(**params) with every parameter given, float32 (the jitted shapes the tests reuse)."""
  full = {k: np.zeros((8,) + s, np.float32) for k, s in model.param_shapes().items()}
  for k, v in params.items():
    v = np.asarray(v, np.float32)
    full[k] = np.pad(v, ((0, 0), (0, full[k].shape[1] - v.shape[1])))
  out = _jit_forward(model, **full)
  return np.asarray(out.joints, np.float64), np.asarray(out.vertices, np.float64)


def test_identical_params_score_zero(smpl):
  params = smpl_params(5)
  result = evaluate.evaluate_params(params, params, smpl)
  assert result['count'] == 5 and result['root_joint'] == 'pelvis'
  for m in evaluate.METRICS:
    assert result[m] < 1e-3, m
    assert result['per_sample'][m].shape == (5,)
  assert 'auc_pa_joints' not in result   # only hands get an AUC by default


def test_share_of_implausible_bodies_is_reported(smpl):
  """A prediction whose joints are fine but whose wrist is turned half round counts as
  implausible; the GT posed within the sampler's limits does not."""
  params = {k: np.asarray(v) for k, v in smpl_params(4, scale=0.0).items()}
  pred = {k: v.copy() for k, v in params.items()}
  pred['body_pose'][1, 3 * 19] = np.radians(170.0)     # body joint 20: left_wrist, about x
  result = evaluate.evaluate_params(pred, params, smpl)
  np.testing.assert_allclose(result['implausible_pct'], 25.0)
  np.testing.assert_array_equal(result['per_sample']['implausible'], [0, 1, 0, 0])
  assert 'implausible' in evaluate.format_table(result)


def test_translation_does_not_matter(smpl):
  gt = smpl_params(5)
  pred = dict(gt, transl=gt['transl'] + np.array([0.7, -0.3, 2.0]))
  result = evaluate.evaluate_params(pred, gt, smpl)
  for m in evaluate.METRICS:
    assert result[m] < 1e-2, m


def test_global_rotation_is_removed_only_by_procrustes(smpl):
  gt = smpl_params(5, seed=1)
  pred = dict(gt, global_orient=(Rotation.from_rotvec([0, 0.6, 0]) *
                                 Rotation.from_rotvec(gt['global_orient'])).as_rotvec(),
              transl=gt['transl'] + 0.5)
  result = evaluate.evaluate_params(pred, gt, smpl)
  assert result['pa_mpjpe'] < 1e-2 and result['pa_mpvpe'] < 1e-2
  assert result['mpjpe'] > 20 and result['mpvpe'] > 20


def test_errors_match_a_direct_computation_for_any_chunking(smpl):
  gt = smpl_params(8, seed=2)
  pred = dict(gt, body_pose=gt['body_pose'] + 0.2, betas=gt['betas'][:, :4])
  (jp, vp), (jg, vg) = reference_output(smpl, pred), reference_output(smpl, gt)
  # The kinematic joints only: SMPL's output also has extra vertex joints.
  jp, jg = jp[:, :smpl.num_joints], jg[:, :smpl.num_joints]
  expect_mpjpe = 1000 * np.linalg.norm((jp - jp[:, :1]) - (jg - jg[:, :1]), axis=-1).mean(1)
  expect_mpvpe = 1000 * np.linalg.norm((vp - jp[:, :1]) - (vg - jg[:, :1]), axis=-1).mean(1)
  for chunk in (2, 128):
    result = evaluate.evaluate_params(pred, gt, smpl, chunk_size=chunk, ids='abcdefgh')
    np.testing.assert_allclose(result['per_sample']['mpjpe'], expect_mpjpe, rtol=1e-4)
    np.testing.assert_allclose(result['per_sample']['mpvpe'], expect_mpvpe, rtol=1e-4)
    assert result['mpjpe'] == pytest.approx(expect_mpjpe.mean(), rel=1e-4)
    assert result['per_sample']['ids'] == list('abcdefgh')


def test_joint_set_mapping_scores_only_valid_joints(smpl):
  gt = smpl_params(8, seed=3)
  pred = dict(gt, body_pose=gt['body_pose'] + 0.1)
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  assert mapping.valid.sum() < 17   # torso and head_top come from no SMPL joint
  result = evaluate.evaluate_params(pred, gt, smpl, joint_mapping=mapping)
  jp, jg = (mapping.apply(*reference_output(smpl, p)) for p in (pred, gt))
  # Centred on SMPL's pelvis, the model's joint 0, which is also H36M's pelvis here.
  ok = mapping.valid > 0
  err = np.linalg.norm((jp - jp[:, :1]) - (jg - jg[:, :1]), axis=-1)[:, ok]
  np.testing.assert_allclose(result['per_sample']['mpjpe'], 1000 * err.mean(1), rtol=1e-4)
  assert result['joints'].startswith('H36M_17')


# ------------------------------------------------------------------------------ files


def released(family, params, i):
  return export.to_released_entry(family, {k: v[i] for k, v in params.items()},
                                  [1000.0, 1000.0], [128.0, 128.0])


def test_coco_style_files_round_trip(smpl, model_root, tmp_path):
  gt = smpl_params(4, seed=4)
  pred = dict(gt, body_pose=gt['body_pose'] + 0.05)
  gt_path = export.write_coco_style(tmp_path / 'gt.json',
                                    {10 + i: released('smpl', gt, i) for i in range(4)})
  # The prediction lacks id 13 and has an extra id 99.
  pred_entries = {10 + i: released('smpl', pred, i) for i in range(3)}
  pred_entries[99] = released('smpl', pred, 3)
  pred_path = export.write_coco_style(tmp_path / 'pred.json', pred_entries)
  result = evaluate.evaluate_files(pred_path, gt_path, 'smpl', model_root)
  assert result['count'] == 3
  assert result['missing_in_pred'] == 1 and result['missing_in_gt'] == 1
  assert result['per_sample']['ids'] == ['10', '11', '12']
  direct = evaluate.evaluate_params({k: v[:3] for k, v in pred.items()},
                                    {k: v[:3] for k, v in gt.items()}, smpl)
  for m in evaluate.METRICS:
    assert result[m] == pytest.approx(direct[m], rel=1e-4), m
  self_result = evaluate.evaluate_files(gt_path, gt_path, 'smpl', model_root)
  assert self_result['count'] == 4 and self_result['mpjpe'] < 1e-3
  assert self_result['missing_in_pred'] == 0 and self_result['missing_in_gt'] == 0
  # Bare parameter dicts per id (no wrapper) read the same.
  bare = {str(10 + i): released('smpl', gt, i)['smpl_param'] for i in range(4)}
  bare_path = export.write_json(tmp_path / 'bare.json', bare)
  loaded = evaluate.load_entries(bare_path, 'smpl')
  np.testing.assert_allclose(loaded['12']['body_pose'], gt['body_pose'][2], rtol=1e-6)


def test_nonfinite_and_absurd_predictions_are_skipped_counted_and_named(
    smpl, model_root, tmp_path, caplog, monkeypatch):
  """One NaN, one inf and one 1e30 prediction stopped the whole evaluation ('SVD did not
  converge', no entry named): they are skipped, counted and named; the rest are scored."""
  n = 6
  gt = smpl_params(n, seed=5)
  pred = {k: np.array(v, np.float64) for k, v in gt.items()}
  pred['body_pose'] += 0.05
  pred['body_pose'][1, 5] = np.nan
  pred['betas'][2, 0] = np.inf
  pred['global_orient'][4, 1] = 1e30
  gt_path = export.write_coco_style(tmp_path / 'gt.json',
                                    {i: released('smpl', gt, i) for i in range(n)})
  pred_path = tmp_path / 'pred.json'
  # json writes NaN / Infinity as Python reads them back.
  pred_path.write_text(json.dumps({str(i): released('smpl', pred, i) for i in range(n)}))
  with caplog.at_level('WARNING'):
    result = evaluate.evaluate_files(pred_path, gt_path, 'smpl', model_root)
  assert result['count'] == 3 and result['per_sample']['ids'] == ['0', '3', '5']
  assert result['skipped_nonfinite'] == 3
  why = result['skipped_nonfinite_ids']
  assert sorted(why) == ['1', '2', '4']
  assert 'body_pose' in why['1'] and 'betas' in why['2'] and '1e+30' in why['4']
  assert all(f"'{i}'" in caplog.text for i in ('1', '2', '4'))
  assert 'skipped: 3' in evaluate.format_table(result)
  keep = [0, 3, 5]
  direct = evaluate.evaluate_params({k: v[keep] for k, v in pred.items()},
                                    {k: v[keep] for k, v in gt.items()}, smpl)
  for m in evaluate.METRICS:
    assert np.isfinite(result[m]) and result[m] == pytest.approx(direct[m], rel=1e-4), m
  # A mesh gone non-finite is caught after the forward pass too (the parameter check
  # switched off so that a NaN reaches it).
  monkeypatch.setattr(evaluate, 'row_problems', lambda params, what: {})
  bad = {k: v[[0, 1]] for k, v in pred.items()}
  mesh = evaluate.evaluate_params(bad, {k: v[[0, 1]] for k, v in gt.items()}, smpl)
  assert mesh['count'] == 1 and mesh['skipped_nonfinite_ids'] == {'1': 'the mesh is not finite'}
  with pytest.raises(evaluate.EvaluationError,
                     match=r'none of the 1 entries.*e.g. 0 \(the mesh is not finite'):
    evaluate.evaluate_params({k: v[1:2] for k, v in pred.items()},
                             {k: v[1:2] for k, v in gt.items()}, smpl)


def test_wrong_family_and_missing_file_are_named(smpl, model_root, tmp_path):
  params = {'global_orient': np.zeros((1, 3)), 'body_pose': np.zeros((1, 63))}
  path = export.write_coco_style(tmp_path / 'x.json', {1: released('smplx', params, 0)})
  with pytest.raises(evaluate.EvaluationError, match=r"x\.json.*'smplx_param'.*--family smplx"):
    evaluate.load_entries(path, 'smpl')
  with pytest.raises(FileNotFoundError, match='nope.json'):
    evaluate.evaluate_files(tmp_path / 'nope.json', path, 'smpl', model_root)
  mano = export.write_coco_style(tmp_path / 'hands.json', {1: export.hand_entry()})
  with pytest.raises(evaluate.EvaluationError, match='a mano file'):
    evaluate.load_entries(mano, 'smpl')


def test_mano_left_hands_use_the_left_model(model_root, tmp_path):
  rng = np.random.default_rng(9)
  n = 3
  gt = {'global_orient': 0.5 * rng.standard_normal((n, 3)),
        'hand_pose': 0.4 * rng.standard_normal((n, 45)),
        'betas': rng.standard_normal((n, 10)), 'transl': [0, 0, 0.6] + 0.1 * rng.random((n, 3))}
  pred = dict(gt, hand_pose=gt['hand_pose'] + 0.3 * rng.standard_normal((n, 45)))

  def file(params, name):
    hands = {0: export.hand_entry(right=released('mano', params, 0),
                                  left=released('mano', params, 1)),
             1: export.hand_entry(right=None, left=released('mano', params, 2))}
    return export.write_coco_style(tmp_path / name, hands)

  gt_path, pred_path = file(gt, 'gt.json'), file(pred, 'pred.json')
  assert sorted(evaluate.load_entries(gt_path, 'mano')) == ['0_left', '0_right', '1_left']
  result = evaluate.evaluate_files(pred_path, gt_path, 'mano', model_root)
  assert result['count'] == 3 and result['per_sample']['ids'] == ['0_right', '0_left', '1_left']
  assert 0 < result['auc_pa_joints'] < 1 and 0 < result['auc_pa_vertices'] < 1
  models = {s: body_models.load(model_root, 'mano', is_right_hand=s == 'right')
            for s in ('right', 'left')}
  take = lambda p, i: {k: np.asarray(v)[i:i + 1] for k, v in p.items()}
  for k, (side, i) in enumerate([('right', 0), ('left', 1), ('left', 2)]):
    want = evaluate.evaluate_params(take(pred, i), take(gt, i), models[side])
    assert result['per_sample']['pa_mpvpe'][k] == pytest.approx(want['pa_mpvpe'], rel=1e-4)
    assert result['per_sample']['mpjpe'][k] == pytest.approx(want['mpjpe'], rel=1e-4)
  # The left model really gives other numbers for the left hands than the right would.
  wrong = evaluate.evaluate_params(take(pred, 1), take(gt, 1), models['right'])
  assert abs(wrong['mpvpe'] - result['per_sample']['mpvpe'][1]) > 1e-3
  identical = evaluate.evaluate_files(gt_path, gt_path, 'mano', model_root)
  # float32 round-off leaves some errors just above the 0 mm threshold: at worst the first
  # of the 20 trapezoids is half lost.
  assert 1 - 0.5 / 20 <= identical['auc_pa_joints'] <= 1


def test_gt_from_samples(smpl):
  make = lambda aid, params: sample_lib.make_sample(
      'test', dataset='t', ann_id=aid, image_path='x.jpg', bbox=[0, 0, 10, 10],
      gt_family=None if params is None else 'smpl', gt_params=params)
  params = {k: v[0] for k, v in smpl_params(1, seed=6).items()}
  samples = [make(1, params), make(2, None), make('3_left', {'betas': np.zeros(10)})]
  gt = evaluate.gt_from_samples(samples)
  assert list(gt) == [1, '3_left']
  np.testing.assert_allclose(gt[1]['betas'], params['betas'], rtol=1e-6)
  assert evaluate.gt_from_samples(samples, family='mano') == {}
  assert evaluate.hand_side('3_left') == 'left' and evaluate.hand_side(7) == 'right'
  # Integer ann_ids meet the string keys of a file read back.
  result = evaluate.evaluate_entries({'1': params, '8': params}, gt, 'smpl', smpl)
  assert result['count'] == 1 and result['per_sample']['ids'] == ['1']
  assert result['missing_in_pred'] == 1 and result['missing_in_gt'] == 1
  assert result['mpjpe'] < 1e-3


# ------------------------------------------------------------------------- gendered GT


@pytest.fixture(scope='module')
def gendered_root(tmp_path_factory):
  """SMPL stand-ins, neutral and female (their templates differ), and no male one."""
  root = str(tmp_path_factory.mktemp('gendered_models'))
  for gender in ('neutral', 'female'):
    synthetic.write_model('smpl', root, gender=gender)
  return root


def pw3d_samples(tmp_path, genders):
  """One 3DPW sample per gender, read by our 3DPW reader from a one-frame file."""
  rng = np.random.default_rng(8)
  anns = [{'id': 500 + k, 'image_id': 1, 'bbox': [100.0, 100.0, 300.0, 600.0],
           'smpl_param': {'pose': rng.normal(0, 0.3, 72).tolist(),
                          'shape': rng.normal(0, 1, 10).tolist(),
                          'trans': [0.0, 0.0, 5.0], 'gender': gender}}
          for k, gender in enumerate(genders)]
  image = {'id': 1, 'file_name': 'image_00000.jpg', 'sequence': 'seq', 'width': 1080,
           'height': 1920, 'cam_param': {'focal': [1960.0, 1960.0], 'princpt': [540.0, 960.0]}}
  path = export.write_json(tmp_path / '3DPW_test.json', {'images': [image], 'annotations': anns})
  return pw3d.read(path, tmp_path / 'imageFiles').samples


def mesh_error_mm(pred_model, pred, gt_model, gt):
  """MPVPE of one sample from first principles: each mesh from its own model's forward
  pass, both centred on their own pelvis (joint 0), mean vertex distance in mm."""
  def centred(model, params):
    out = model(**{k: np.asarray(v, np.float32)[None] for k, v in params.items()})
    vertices, joints = (np.asarray(a[0], np.float64) for a in (out.vertices, out.joints))
    return vertices - joints[0]
  return 1000 * np.linalg.norm(centred(pred_model, pred) - centred(gt_model, gt), axis=-1).mean()


def test_gendered_gt_is_posed_on_the_model_of_its_gender(gendered_root, tmp_path):
  """3DPW's female GT is the female mesh of its parameters; the predictions stay on the
  model they were annotated with. Predictions equal to the GT parameters thus score zero
  only where the two models are the same body."""
  samples = pw3d_samples(tmp_path, ['female', 'neutral'])
  gt = evaluate.gt_from_samples(samples)
  assert [g['gender'] for g in gt.values()] == ['female', 'neutral']
  pred = {k: {n: v for n, v in g.items() if n != 'gender'} for k, g in gt.items()}
  models = {g: body_models.load(gendered_root, 'smpl', gender=g) for g in ('neutral', 'female')}
  female, neutral = (pred[s.ann_id] for s in samples)
  # Neutral predictions (the run's model): the female GT is another body.
  expect = mesh_error_mm(models['neutral'], female, models['female'], female)
  assert expect > 5   # mm: the stand-ins' gendered templates differ this much
  neutral_file = os.path.join(gendered_root, 'smpl', 'SMPL_NEUTRAL.pkl')
  for model in (gendered_root, neutral_file):   # a folder, or a file with the others beside it
    result = evaluate.evaluate_entries(pred, gt, 'smpl', model)
    np.testing.assert_allclose(result['per_sample']['mpvpe'], [expect, 0.0], atol=1e-3)
    assert result['gender'] == 'neutral' and result['gt_genders'] == {'female': 1, 'neutral': 1}
  # Female predictions: now the neutral GT is the other body.
  result = evaluate.evaluate_entries(pred, gt, 'smpl', gendered_root, gender='female')
  np.testing.assert_allclose(
      result['per_sample']['mpvpe'],
      [0.0, mesh_error_mm(models['female'], neutral, models['neutral'], neutral)], atol=1e-3)
  # A GT file naming the gender (smpl_param.gender, as 3DPW's own) is read the same way.
  entries = {s.ann_id: export.to_released_entry('smpl', pred[s.ann_id], s.focal, s.princpt)
             for s in samples}
  pred_path = export.write_coco_style(tmp_path / 'pred.json', entries)
  for s in samples:
    entries[s.ann_id]['smpl_param']['gender'] = s.gt_gender
  gt_path = export.write_coco_style(tmp_path / 'gt.json', entries)
  result = evaluate.evaluate_files(pred_path, gt_path, 'smpl', gendered_root)
  np.testing.assert_allclose(result['per_sample']['mpvpe'], [expect, 0.0], atol=1e-3)


def test_a_missing_gendered_model_is_named_not_replaced(gendered_root, tmp_path):
  samples = pw3d_samples(tmp_path, ['neutral', 'male'])
  gt = evaluate.gt_from_samples(samples)
  with pytest.raises(evaluate.EvaluationError,
                     match=r"(?s)GT sample '501' is male.*SMPL_MALE\.pkl"):
    evaluate.evaluate_entries(gt, gt, 'smpl', gendered_root)
  smpl = body_models.load(gendered_root, 'smpl')
  with pytest.raises(evaluate.EvaluationError, match='pass the model folder'):
    evaluate.evaluate_entries(gt, gt, 'smpl', smpl)
  bad = {'1': dict(gt[samples[0].ann_id], gender='other')}
  with pytest.raises(evaluate.EvaluationError, match=r"GT record '1'.*'other'"):
    evaluate.evaluate_entries(bad, bad, 'smpl', gendered_root)


# -------------------------------------------------------------------------------- CLI


def test_flame_face_68_is_scored_with_its_jaw_line(model_dir, tmp_path, caplog):
  """FLAME loaded without its face contour scored 51 of FACE_68's 68 points; a FLAME file
  without the contour embedding still loads (51 points), with a warning naming the file."""
  rng = np.random.default_rng(3)
  gt = {str(i): {'global_orient': 0.2 * rng.standard_normal(3),
                 'jaw_pose': [0.1, 0, 0], 'betas': rng.standard_normal(10)} for i in range(2)}
  pred = {i: dict(p, jaw_pose=[0.25, 0, 0]) for i, p in gt.items()}
  result = evaluate.evaluate_entries(pred, gt, 'flame', str(model_dir), joint_set='FACE_68')
  assert result['joints'].startswith('FACE_68 (68 of 68') and result['count'] == 2
  folder = tmp_path / 'flame'
  folder.mkdir()
  for name in ('FLAME_NEUTRAL.pkl', 'flame_static_embedding.pkl'):
    (folder / name).write_bytes((model_dir / 'flame' / name).read_bytes())
  with caplog.at_level('WARNING'):
    model = evaluate.load_with_face_contour(str(tmp_path), 'flame')
  assert model.num_landmarks == 51 and 'flame_dynamic_embedding.npy' in caplog.text


def test_cli_writes_the_result(model_root, tmp_path):
  gt = smpl_params(2, seed=5)
  pred = dict(gt, body_pose=gt['body_pose'] + 0.05)
  gt_path = export.write_coco_style(tmp_path / 'gt.json',
                                    {i: released('smpl', gt, i) for i in range(2)})
  pred_path = export.write_coco_style(tmp_path / 'pred.json',
                                      {i: released('smpl', pred, i) for i in range(2)})
  out = tmp_path / 'out' / 'result.json'
  cmd = [sys.executable, '-m', 'neuralannot_jax.evaluate', '--pred', str(pred_path),
         '--gt', str(gt_path), '--family', 'smpl', '--model_path', model_root,
         '--out', str(out)]
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert done.returncode == 0, done.stderr
  assert 'PA-MPJPE (mm)' in done.stdout and '2 smpl samples' in done.stdout
  result = json.loads(out.read_text())
  assert result['count'] == 2 and len(result['per_sample']['mpjpe']) == 2
  assert result['mpjpe'] > 0
  assert evaluate.format_table(result) in done.stdout
  # A wrong family: exit status 1 and a message naming the file and the key found.
  code = evaluate.main(['--pred', str(pred_path), '--gt', str(gt_path), '--family', 'smplx',
                        '--model_path', model_root])
  assert code == 1


def test_cli_errors_and_help(model_root, tmp_path, capsys):
  assert evaluate.main(['--pred', str(tmp_path / 'p.json'), '--gt', str(tmp_path / 'g.json'),
                        '--family', 'smpl', '--model_path', model_root]) == 1
  assert 'no such file' in capsys.readouterr().err
  params = {'global_orient': np.zeros((1, 3)), 'body_pose': np.zeros((1, 69))}
  path = export.write_coco_style(tmp_path / 'body.json', {1: released('smpl', params, 0)})
  assert evaluate.main(['--pred', str(path), '--gt', str(path), '--family', 'smplx',
                        '--model_path', model_root]) == 1
  err = capsys.readouterr().err
  assert 'body.json' in err and "'smpl_param'" in err and '--family smpl' in err
  with pytest.raises(SystemExit) as exit_info:
    evaluate.main(['--help'])
  assert exit_info.value.code == 0
  text = capsys.readouterr().out
  assert '--joint_set' in text and 'PA-MPJPE' in text
