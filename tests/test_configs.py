"""Every experiment config loads, names a known dataset format with options its reader
takes, and turns into a valid training config; the dataset configs keep the paper's settings."""

import glob
import os

import pytest

from neuralannot_jax import experiment
from neuralannot_jax import train
from neuralannot_jax.data import builders
from neuralannot_jax.method import decode
from neuralannot_jax.wholebody import run as wholebody_run
import module_files  # pylint: disable=wrong-import-order

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs', '*.py')))
# The joint set each format's reader gives (for the body part asked).
JOINT_SETS = {'coco': 'COCO_17', 'h36m': 'H36M_17', 'mpi_inf_3dhp': 'MPI_INF_3DHP_17',
              'pw3d': 'OPENPOSE_18', 'freihand': 'HAND_21', 'interhand': 'HAND_21',
              'face': 'FACE_68'}


def _load(path):
  return module_files.load(path).get_config()


def test_the_issue_s_configs_exist():
  names = {os.path.basename(p)[:-3] for p in CONFIGS}
  assert {'coco_body', 'h36m_body', 'mpii3d_body', 'pw3d_body', 'freihand_hand',
          'interhand_hand', 'coco_hand', 'coco_face', 'synthetic_body', 'synthetic_hand',
          'synthetic_face', 'coco_wholebody', 'synthetic_wholebody'} <= names


def _check_experiment(config, synthetic):
  """One experiment config: the schema, its stages, a reader it can open, a training config."""
  assert set(config.keys()) == set(experiment.default_config().keys())
  experiment.stages(config)
  fmt = config.dataset.format
  options = dict(config.dataset.options)
  if fmt == 'synthetic':
    fmt = config.dataset.synthetic.kind
    joint_set = JOINT_SETS[fmt]
  else:
    builders._check_options(fmt, options)  # pylint: disable=protected-access
    parts = options.get('parts', ['body'])
    joint_set = {'hand': 'HAND_21', 'face': 'FACE_68'}.get(parts[0], JOINT_SETS.get(fmt))
  tconfig = experiment.train_config(config, joint_set)
  spec = decode.HeadSpec(tconfig.family, tconfig.mode)
  assert spec.size > 0
  if not synthetic:
    # The paper's settings.
    assert (config.model.depth, config.model.crop_size) == (50, 256)
    assert config.train.batch_size == 192 and config.train.lr == 1e-4
    assert len(config.train.lr_boundaries) == 1
    assert 0 < config.train.lr_boundaries[0] < config.train.num_steps


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: os.path.basename(p))
def test_config_is_consistent(path):
  config = _load(path)
  if not wholebody_run.is_wholebody(config):
    _check_experiment(config, config.dataset.format == 'synthetic')
    return
  # A whole-body config: each part is an experiment config reading COCO-WholeBody files
  # (the synthetic whole-body set is written in that layout too).
  assert set(config.keys()) == set(wholebody_run.wholebody_config().keys())
  for name, (family, parts) in wholebody_run.PARTS.items():
    part = wholebody_run.part_config(config, name, '/models', '/data',
                                     dict(config.dataset.options), '')
    assert part.body_model.family == family and part.dataset.options['parts'] == parts
    _check_experiment(part, config.dataset.format == 'synthetic')


@pytest.mark.parametrize('name', ['coco_face', 'coco_wholebody'])
def test_the_face_jaw_line_is_supervised(model_dir, name):
  """FLAME (and SMPL-X) were loaded without their face contour: 51 of COCO-WholeBody's 68
  face points were supervised, the 17 of the jaw line not, in coco_face and in the whole-
  body face part. The training mapping, built as `experiment.run` builds it, now reads all."""
  config = _load(os.path.join(REPO, 'configs', f'{name}.py'))
  if name == 'coco_face':
    cases = [(config, 'FACE_68', slice(0, 68))]
  else:
    part = lambda p: wholebody_run.part_config(config, p, str(model_dir), '/data', {}, '')
    # COCO_WHOLEBODY_133: 17 body, 6 foot, then the 68 face points.
    cases = [(part('face'), 'FACE_68', slice(0, 68)),
             (part('body'), 'COCO_WHOLEBODY_133', slice(23, 91))]
  for part_config, joint_set, face in cases:
    body_model = experiment.load_body_model(part_config, str(model_dir))
    tconfig = experiment.train_config(part_config, joint_set)
    tconfig.num_landmarks = body_model.num_landmarks
    mapping = train.make_step_spec(tconfig).mapping
    assert mapping.valid[face].sum() == 68, (name, joint_set)
