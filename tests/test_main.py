"""The command line end to end on a tiny synthetic run: train -> annotate -> evaluate,
then a resumed run, in subprocesses as a user runs them."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--config.dataset.synthetic.num_images=8', '--config.dataset.synthetic.size=64',
        '--config.model.crop_size=32', '--config.train.batch_size=4',
        '--config.train.lr_boundaries=()', '--config.train.checkpoint_every=1',
        '--config.train.log_every=1', '--config.annotate.batch_size=4',
        '--config.progress=False']


def _main(workdir, *flags):
  cmd = [sys.executable, '-m', 'neuralannot_jax.main', '--config=configs/synthetic_body.py',
         f'--workdir={workdir}', *TINY, *flags]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc.stdout


def _steps(workdir):
  with open(os.path.join(workdir, 'train', 'metrics.jsonl')) as f:
    return [json.loads(line)['step'] for line in f]


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('main'))
  return workdir, _main(workdir, '--config.train.num_steps=2')


def test_a_tiny_run_writes_pseudo_gts_for_every_sample_and_scores_them(first_run):
  workdir, stdout = first_run
  with open(os.path.join(workdir, 'data', 'h36m', 'gt_smpl.json')) as f:
    gt = json.load(f)
  with open(os.path.join(workdir, 'pseudo_gt.json')) as f:
    pseudo_gt = json.load(f)
  assert sorted(pseudo_gt) == sorted(gt)
  assert all(len(e['smpl_param']['pose']) == 72 for e in pseudo_gt.values())
  assert os.path.exists(os.path.join(workdir, 'pseudo_gt.npz'))
  # Human3.6M-style sets also get the world-frame files of the release.
  assert any(name.endswith('_SMPL_NeuralAnnot.json')
             for name in os.listdir(os.path.join(workdir, 'mocap')))
  with open(os.path.join(workdir, 'evaluation.json')) as f:
    evaluation = json.load(f)
  assert evaluation['count'] == len(gt)
  assert 0 < evaluation['mpjpe'] < 2000 and 0 < evaluation['mpvpe'] < 2000
  assert 'pseudo_gt.json' in stdout and 'MPJPE' in stdout
  report = os.path.join(workdir, 'report', 'index.html')
  assert os.path.exists(report) and 'report/index.html' in stdout
  assert _steps(workdir) == [1, 2]


def test_a_rerun_resumes_training_and_keeps_what_is_up_to_date(first_run):
  workdir, _ = first_run
  path = os.path.join(workdir, 'pseudo_gt.json')
  before = os.stat(path).st_mtime_ns
  _main(workdir, '--config.train.num_steps=2', '--config.stages=annotate')
  assert os.stat(path).st_mtime_ns == before        # made from the latest checkpoint: kept
  _main(workdir, '--config.train.num_steps=3', '--config.stages=train,annotate')
  assert _steps(workdir) == [1, 2, 3]                # continued from step 2
  assert os.stat(path).st_mtime_ns != before         # annotated again from step 3
  with open(os.path.join(workdir, 'pseudo_gt.record.json')) as f:
    assert json.load(f)['step'] == 3


def test_help_names_the_flags():
  proc = subprocess.run([sys.executable, '-m', 'neuralannot_jax.main', '--help'], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
  # absl's --help exits with status 1 after printing the usage.
  assert '--config' in proc.stdout and 'train -> annotate' not in proc.stderr
  assert 'Annotate a dataset' in proc.stdout
  assert '--config' in proc.stdout and '--workdir' in proc.stdout


def test_a_tiny_in_the_wild_run_trains_its_own_pose_prior(tmp_path):
  """COCO-style synthetic set (2D keypoints only): VPoser-latent head, the prior trained on
  the synthetic pose sampler and cached, pseudo-GTs with the virtual camera."""
  workdir = str(tmp_path)
  stdout = _main(workdir, '--config.train.num_steps=2', '--config.dataset.synthetic.kind=coco',
                 '--config.model.mode=wild', '--config.model.pose_prior.num_poses=500',
                 '--config.model.pose_prior.num_steps=20',
                 '--config.model.pose_prior.hidden=64')
  from body_models import vposer  # pylint: disable=import-outside-toplevel
  prior = vposer.load(os.path.join(workdir, 'pose_prior.npz'))
  assert vposer.dimensions(prior) == (32, 64, 21)
  with open(os.path.join(workdir, 'pseudo_gt.json')) as f:
    pseudo_gt = json.load(f)
  with open(os.path.join(workdir, 'data', 'coco', 'annotations',
                         'person_keypoints_train.json')) as f:
    coco = json.load(f)
  # Every person the reader keeps (>= 1 labelled keypoint) has its pseudo-GT.
  kept = {str(a['id']) for a in coco['annotations'] if a['num_keypoints'] > 0}
  assert set(pseudo_gt) == kept
  focal = [e['cam_param']['focal'][0] for e in pseudo_gt.values()]
  assert all(f > 0 for f in focal)
  assert 'MPJPE' in stdout


@pytest.mark.parametrize('kind, family, mode', [('freihand', 'mano', 'mocap'),
                                                ('face', 'flame', 'wild')])
def test_tiny_hand_and_face_runs(tmp_path, kind, family, mode):
  """MANO from 3D hand joints (FreiHAND layout, GT from the reader's samples) and FLAME from
  68 face keypoints (COCO-WholeBody layout): released-layout files, scored against GT."""
  workdir = str(tmp_path)
  stdout = _main(workdir, '--config.train.num_steps=2', f'--config.dataset.synthetic.kind={kind}',
                 f'--config.body_model.family={family}', f'--config.model.mode={mode}',
                 '--config.stages=train,annotate,evaluate')
  with open(os.path.join(workdir, 'pseudo_gt.json')) as f:
    pseudo_gt = json.load(f)
  entry = next(iter(pseudo_gt.values()))
  if family == 'mano':
    assert len(entry['right']['mano_param']['pose']) == 48 and entry['left'] is None
  else:
    assert set(entry['flame_param']) == {'root_pose', 'jaw_pose', 'expr', 'shape', 'trans'}
    assert all(key.endswith('_face') for key in pseudo_gt)
  with open(os.path.join(workdir, 'evaluation.json')) as f:
    evaluation = json.load(f)
  assert evaluation['count'] == len(pseudo_gt) and evaluation['mpjpe'] > 0
  assert 'MPJPE' in stdout
