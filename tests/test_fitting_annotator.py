"""The SMPLify-X style baseline run as an annotator (`--config.annotator=smplify`).

Tiny synthetic sets through `experiment.run`, as the command line runs them; scored against
the synthetic GT and, in the wild, by projecting the written parameters with the written
camera in original-image pixels onto the dataset's own keypoints."""

import json
import os

import numpy as np
import pytest

import body_models
from neuralannot_jax import evaluate
from neuralannot_jax import experiment
from neuralannot_jax.data import joint_sets
from test_main import _config

FAST_FIT = {'annotator': 'smplify', 'stages': 'train,annotate,evaluate',
            'fitting.batch_size': 8, 'fitting.steps_3d': 300, 'fitting.steps_per_stage': 40}


def test_mocap_fits_recover_the_synthetic_gt_and_are_kept_on_rerun(tmp_path):
  workdir = str(tmp_path)
  summary = experiment.run(_config(workdir, **FAST_FIT))
  assert summary['annotated'] == summary['samples'] == 8
  # Nothing was trained: the baseline fits each sample.
  assert not os.path.exists(os.path.join(workdir, 'train', 'checkpoints'))
  scores = summary['evaluation']
  # Fitted to the set's 3D joints, which the synthetic GT reads off the mesh with a
  # regressor 1-2 cm off the one the annotator is given (as markers are): the joints are
  # recovered to about that (the mesh less so: 17 joints do not pin down shape or the
  # twist of limbs). Measured: 18.6 / 14.0 / 49.2 mm.
  assert scores['mpjpe'] < 30 and scores['pa_mpjpe'] < 25, scores
  assert scores['mpvpe'] < 80, scores
  entries = evaluate.load_entries(os.path.join(workdir, 'pseudo_gt.json'), 'smpl')
  assert len(entries) == 8
  with open(os.path.join(workdir, 'pseudo_gt.json')) as f:
    written = json.load(f)
  # The fits' own residuals to the joints they were fitted to: a few cm at most.
  assert all(0 <= e['quality']['joint_residual_mm'] < 60 for e in written.values())
  assert os.path.isdir(os.path.join(workdir, 'mocap'))
  again = experiment.run(_config(workdir, **FAST_FIT))
  assert 'annotated' not in again      # same settings: the file was kept
  changed = experiment.run(_config(workdir, **{**FAST_FIT, 'fitting.steps_3d': 200,
                                               'stages': 'annotate'}))
  assert changed['annotated'] == 8     # other settings: fitted again

  # Two-stage (the paper's Table 7): the network trained with these fits as parameter
  # targets; its log carries the parameter terms beside the joint terms.
  # Same work directory (the fits trained nothing there), so the rendered set is reused.
  experiment.run(_config(workdir, **{'stages': 'train', 'train.two_stage.init': os.path.join(
      workdir, 'pseudo_gt.json')}))
  with open(os.path.join(workdir, 'train', 'metrics.jsonl')) as f:
    logged = [json.loads(line) for line in f]
  # Weighted terms: a rotation-matrix entry differs by at most 2.
  weight = experiment.default_config().train.two_stage.rot_weight
  assert all(0 < r['param_rot'] < 2 * weight and r['param_betas'] >= 0 and 'joints_3d' in r
             for r in logged), logged


def _project(points, focal, princpt):
  return points[..., :2] / points[..., 2:] * focal + princpt


def test_in_the_wild_fits_project_onto_the_keypoints_in_original_pixels(tmp_path):
  workdir = str(tmp_path)
  summary = experiment.run(_config(
      workdir, **FAST_FIT, **{'dataset.synthetic.kind': 'coco', 'model.mode': 'wild',
                              'model.pose_prior.num_poses': 2000,
                              'model.pose_prior.num_steps': 200}))
  assert summary['annotated'] == 8
  with open(os.path.join(workdir, 'pseudo_gt.json')) as f:
    pred = json.load(f)
  with open(os.path.join(workdir, 'data', 'coco', 'annotations',
                         'person_keypoints_train.json')) as f:
    coco = json.load(f)
  model = body_models.load(os.path.join(workdir, 'body_models'), 'smpl')
  mapping = joint_sets.model_joint_mapping('smpl', 'COCO_17')
  errors, spans = [], []
  for ann in coco['annotations']:
    entry = pred[str(ann['id'])]
    p = entry['smpl_param']
    out = model(global_orient=np.asarray(p['pose'][:3])[None],
                body_pose=np.asarray(p['pose'][3:])[None],
                betas=np.asarray(p['shape'])[None], transl=np.asarray(p['trans'])[None])
    joints = np.asarray(mapping.apply(out.joints, out.vertices))[0]
    uv = _project(joints, np.asarray(entry['cam_param']['focal']),
                  np.asarray(entry['cam_param']['princpt']))
    kpts = np.asarray(ann['keypoints'], np.float64).reshape(-1, 3)
    visible = kpts[:, 2] > 0
    errors.append(np.linalg.norm(uv[visible] - kpts[visible, :2], axis=-1).mean())
    spans.append(np.ptp(kpts[visible, :2], axis=0).max())
  # A short fit (40 steps a stage) of clean keypoints on 64-pixel images: within a few
  # percent of the person's size once mapped back to the image (a wrong crop-to-image
  # camera mapping is off by a large part of the image). Measured 0.044; with the
  # residuals in the 64 px crop's own pixels (issue 16, item 6: the priors then outweigh
  # the joints and the poses drift to the prior's mean) 0.092.
  assert np.median(np.asarray(errors) / np.asarray(spans)) < 0.065, (errors, spans)


def test_a_face_set_is_refused_with_a_clear_error(tmp_path):
  config = _config(str(tmp_path), **FAST_FIT, **{'dataset.synthetic.kind': 'face',
                                                 'body_model.family': 'flame',
                                                 'model.mode': 'wild'})
  with pytest.raises(ValueError, match='FLAME'):
    experiment.run(config)


def test_an_unknown_annotator_is_named():
  config = experiment.default_config()
  config.annotator = 'hmr'
  with pytest.raises(ValueError, match="annotator 'hmr'"):
    experiment.annotator_name(config)


def test_refine_starts_from_the_network_and_lowers_its_joint_residuals(tmp_path):
  """--config.annotator=neuralannot_refine: the trained network's prediction, refined per
  sample by the fitter started from it; its residuals to the GT joints fall well below the
  network's own, and the annotation is redone when the refinement settings change."""
  workdir = str(tmp_path)
  experiment.run(_config(workdir, stages='train,annotate'))
  refined = experiment.run(_config(workdir, annotator='neuralannot_refine',
                                   stages='annotate', **{'annotate.output': 'refined',
                                                         'fitting.refine_steps': 60}))
  assert refined['annotated'] == 8
  residual = lambda name: np.mean([e['quality']['joint_residual_mm'] for e in json.load(
      open(os.path.join(workdir, f'{name}.json'))).values()])
  network, refine = residual('pseudo_gt'), residual('refined')
  # Measured 214 against 355 mm. The anchor keeps the fit near this network of a few steps,
  # so how far it falls depends on that start (138 against 301 mm before the BatchNorm
  # statistics were recomputed); a refinement that does nothing scores 1.0x.
  assert refine < 0.7 * network, (refine, network)
  again = experiment.run(_config(workdir, annotator='neuralannot_refine', stages='annotate',
                                 **{'annotate.output': 'refined', 'fitting.refine_steps': 20}))
  assert again['annotated'] == 8           # other refinement settings: annotated again
