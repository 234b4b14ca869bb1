"""Both stages of two-stage training (the paper's Table 7) from one config.

With `config.train.two_stage.steps = N > 0` the main job runs, in order:

  stage one  <workdir>/stage_one: the network trains `train.num_steps` steps and annotates
             the set refined per sample (`neuralannot_refine` -> pseudo_gt_refine.json),
             scored when the config evaluates;
  stage two  <workdir>: from stage one's network (fresh optimizer), N more steps with an L1 to
             those refined pseudo-GTs beside the joint terms (`two_stage.py`), then the
             configured stages (annotate, evaluate, report) as in a one-stage run.

On the comparison's synthetic sets the second stage is what beats per-sample fitting in
all four regimes (COMPARISON.md). `stage_configs` only derives the two configs;
`experiment.run` runs them. Both stages read one tfds build (`dataset.data_dir`, default
<workdir>/tfds); the synthetic set is rendered once and the trained pose prior is reused
(`shared_files`).
"""

import copy
import os

# Stage one's work directory, inside the run's.
STAGE_ONE = 'stage_one'
# What stage two trains on: stage one's refined annotation.
STAGE_ONE_OUTPUT = 'pseudo_gt_refine'


def wanted(config):
  """Whether `config` asks for both stages (train.two_stage.steps > 0)."""
  return int(config.train.two_stage.get('steps', 0)) > 0


def stage_configs(config):
  """(stage one's config, stage two's config) of a two-stage `config`.

  Raises:
    ValueError: the config also names a stage one of its own (`two_stage.init` /
      `init_weights`), trains nothing, or is not the network's.
  """
  t = config.train
  steps = int(t.two_stage.steps)
  if t.two_stage.init or t.two_stage.init_weights:
    raise ValueError('train.two_stage.steps runs stage one itself: leave train.two_stage.init '
                     'and train.two_stage.init_weights empty (they are for a stage two whose '
                     'stage one you ran yourself)')
  if str(config.annotator) == 'smplify':
    raise ValueError('train.two_stage.steps trains the network twice; the smplify annotator '
                     'trains nothing (set train.two_stage.steps=0)')
  asked = [s.strip() for s in str(config.stages).split(',')]
  if 'train' not in asked:
    raise ValueError(f'train.two_stage.steps with config.stages={config.stages!r}: both '
                     'stages train, so the stages must include train')
  workdir = os.path.abspath(os.path.expanduser(config.workdir))
  one_dir = os.path.join(workdir, STAGE_ONE)
  one = copy.deepcopy(config)
  with one.unlocked():
    one.workdir = one_dir
    one.annotator = 'neuralannot_refine'
    one.annotate.output = STAGE_ONE_OUTPUT
    one.stages = 'train,annotate' + (',evaluate' if 'evaluate' in asked else '')
    one.train.two_stage.steps = 0
    one.dataset.data_dir = config.dataset.data_dir or os.path.join(workdir, 'tfds')
  two = copy.deepcopy(config)
  with two.unlocked():
    two.workdir = workdir
    two.train.num_steps = steps
    # The learning-rate drops at the same fractions of stage two's steps as of stage one's.
    two.train.lr_boundaries = tuple(max(int(b * steps / int(t.num_steps)), 1)
                                    for b in t.lr_boundaries)
    two.train.two_stage.init = os.path.join(one_dir, STAGE_ONE_OUTPUT + '.json')
    two.train.two_stage.init_weights = one_dir
    two.train.two_stage.steps = 0
    two.dataset.data_dir = one.dataset.data_dir
  return one, two


def shared_files(one, two):
  """[(stage one's path, stage two's path)] that stage two may take over rather than make
  again: the rendered synthetic set (a folder) and the cached pose prior (a file)."""
  return [(os.path.join(one.workdir, name), os.path.join(two.workdir, name))
          for name in ('data', 'pose_prior.npz')]
