"""A real dataset run must not quietly fall back on what only the synthetic sets should use
(issue 17): stand-in body models, an untrained network, half-written stand-in folders."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import body_models
from body_models import synthetic
from neuralannot_jax import experiment


def _real_config(workdir, **overrides):
  """A COCO body config: no files are read before the checks under test."""
  config = experiment.default_config()
  config.workdir = str(workdir)
  config.dataset.format = 'coco'
  config.dataset.root = str(workdir)
  for key, value in overrides.items():
    parent = config
    *path, leaf = key.split('.')
    for name in path:
      parent = parent[name]
    parent[leaf] = value
  return config


def test_a_real_dataset_without_a_body_model_is_an_error_naming_the_flag(tmp_path):
  with pytest.raises(ValueError, match=r'body_model\.path.*smpl/SMPL_NEUTRAL\.pkl'):
    experiment.prepare_body_model(_real_config(tmp_path))
  assert not os.path.exists(tmp_path / 'body_models')          # nothing was written


def test_the_stand_in_on_real_data_is_opt_in_and_warned_about(tmp_path):
  config = _real_config(tmp_path, **{'body_model.stand_in': True, 'model.mode': 'wild'})
  path = experiment.prepare_body_model(config)
  assert body_models.load(path, 'smpl').num_joints == 24
  tconfig = types.SimpleNamespace(vposer_path=str(tmp_path / 'pose_prior.npz'))
  warnings = experiment.stand_in_warnings(config, tconfig)
  text = ' '.join(warnings)
  assert len(warnings) == 3, warnings
  assert 'NOT a real body model' in text and 'VPoser' in text and 'ImageNet' in text
  # The synthetic sets are made for the stand-ins: no warning there.
  config.dataset.format = 'synthetic'
  assert experiment.stand_in_warnings(config, tconfig) == []


def test_an_interrupted_stand_in_write_leaves_no_half_folder(tmp_path, monkeypatch):
  config = _real_config(tmp_path, **{'dataset.format': 'synthetic'})
  real_write = synthetic.write_model

  def interrupted(family, out, **kwargs):
    real_write(family, out, **kwargs)        # the files are there, then Ctrl-C
    raise KeyboardInterrupt

  monkeypatch.setattr(synthetic, 'write_model', interrupted)
  with pytest.raises(KeyboardInterrupt):
    experiment.prepare_body_model(config)
  assert os.listdir(tmp_path / 'body_models') == []             # no smpl/, no scratch
  monkeypatch.setattr(synthetic, 'write_model', real_write)
  # An empty family folder, as the earlier versions left behind, is written again.
  os.makedirs(tmp_path / 'body_models' / 'smpl')
  path = experiment.prepare_body_model(config)
  assert body_models.load(path, 'smpl').num_joints == 24


def test_an_untrained_network_writes_no_pseudo_gts(tmp_path):
  config = _real_config(tmp_path, **{'train.num_steps': 0})
  with pytest.raises(ValueError, match='train.num_steps is 0'):
    experiment.run(config)
  assert not os.path.exists(tmp_path / 'pseudo_gt.json')


def test_the_command_line_reports_a_user_error_in_one_line(tmp_path):
  """No traceback for a mistake in the config: one `error:` line naming the field, exit 2."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {k: v for k, v in os.environ.items() if k != 'NEURALANNOT_TRACEBACK'}
  proc = subprocess.run(
      [sys.executable, '-m', 'neuralannot_jax.main', '--config=configs/coco_body.py',
       f'--workdir={tmp_path}', f'--config.dataset.root={tmp_path}'],
      cwd=repo, capture_output=True, text=True, timeout=300, env=env)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'error: body_model.path is empty' in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_a_trial_runs_annotation_is_not_kept_for_the_full_set(tmp_path):
  """Issue 17, item 2: after a run on `dataset.max_samples`, a full run with the same steps
  annotates every sample instead of keeping the trial's pseudo_gt.json."""
  from test_main import _run   # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path)
  trial = _run(workdir, **{'dataset.max_samples': 4})
  assert trial['annotated'] == 4
  full = _run(workdir, **{'stages': 'train,annotate'})
  assert full['annotated'] == 8
  with open(os.path.join(workdir, 'pseudo_gt.json')) as f:
    assert len(json.load(f)) == 8
  with open(os.path.join(workdir, 'pseudo_gt.record.json')) as f:
    assert json.load(f)['covers']['count'] == 8


def test_a_real_body_set_without_its_regressor_stops_the_run_naming_the_file(
    tmp_path, model_dir, monkeypatch):
  """Issue 17, item 4: Human3.6M's joints are not SMPL's; the run stops before training,
  naming the field and the authors' file, instead of matching the joints by name."""
  config = _real_config(tmp_path, **{'dataset.format': 'h36m', 'model.mode': 'mocap',
                                     'body_model.path': str(model_dir)})
  samples = [types.SimpleNamespace(joint_set='H36M_17')]
  monkeypatch.setattr(experiment, 'load_samples', lambda *_: (samples, '', 'h36m'))
  with pytest.raises(ValueError, match=r'--config\.model\.regressor=\S*'
                                       r'J_regressor_h36m_correct\.npy'):
    experiment.run(config)
  assert not os.path.exists(tmp_path / 'train')                  # nothing was trained


def test_the_regressor_check_is_for_real_sets_only(tmp_path, caplog):
  config = _real_config(tmp_path)                                # COCO, SMPL
  with pytest.raises(ValueError, match=r'J_regressor_coco_hip_smpl\.npy'):
    experiment.check_joints(config, 'COCO_17')
  hips = tmp_path / 'J_regressor_coco_hip_smpl.npy'
  np.save(hips, np.full((2, 6890), 1 / 6890, np.float32))
  config.model.regressor = str(hips)
  experiment.check_joints(config, 'COCO_17')                     # given: accepted
  config.model.regressor = ''
  # The synthetic sets' joints are the model's own: matched by name, no regressor.
  config.dataset.format = 'synthetic'
  experiment.check_joints(config, 'COCO_17')
  experiment.check_joints(config, 'H36M_17')
  # A set declared to be the model's joints passes, with a warning on a real format.
  config.dataset.format = 'coco'
  config.dataset.model_joints = True
  with caplog.at_level('WARNING'):
    experiment.check_joints(config, 'COCO_17')
  assert 'dataset.model_joints' in caplog.text


def test_the_synthetic_whole_body_set_declares_its_joints_the_models(tmp_path):
  from neuralannot_jax.wholebody import run as wholebody_run   # pylint: disable=import-outside-toplevel
  config = wholebody_run.wholebody_config()
  config.workdir = str(tmp_path)
  real = wholebody_run.part_config(config, 'body', '/models', '/data', {}, '')
  assert not real.dataset.model_joints
  with pytest.raises(ValueError, match=r'parts\.body\.model\.regressor'):
    experiment.check_joints(real, 'COCO_WHOLEBODY_133')
  config.dataset.format = 'synthetic'
  synthetic_part = wholebody_run.part_config(config, 'body', '/models', '/data', {}, '')
  assert synthetic_part.dataset.model_joints
