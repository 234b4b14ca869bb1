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
import hashlib
import json
import os

# Stage one's work directory, inside the run's.
STAGE_ONE = 'stage_one'
# What stage two trains on: stage one's refined annotation.
STAGE_ONE_OUTPUT = 'pseudo_gt_refine'
# In stage two's train folder: which annotation of stage one it was trained on (`stamp`).
STAMP = 'stage_one.json'


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
  if int(t.num_steps) <= 0:
    raise ValueError(f'train.num_steps is {t.num_steps}: stage one needs at least one step')
  if config.body_model.family == 'flame':
    raise ValueError('train.two_stage.steps: stage two learns from stage one\'s annotation '
                     'refined per sample, and FLAME faces have no per-sample fit (set '
                     'train.two_stage.steps=0 for faces)')
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
    # The learning-rate drops at the same fractions of stage two's steps as of stage one's
    # (drops that fall on one step merge: a very short stage two drops once).
    two.train.lr_boundaries = tuple(sorted({max(int(b * steps / int(t.num_steps)), 1)
                                            for b in t.lr_boundaries}))
    two.train.two_stage.init = os.path.join(one_dir, STAGE_ONE_OUTPUT + '.json')
    two.train.two_stage.init_weights = one_dir
    two.train.two_stage.steps = 0
    two.dataset.data_dir = one.dataset.data_dir
  return one, two


def stamp(stage_one_record):
  """What stage two's network was trained from: a digest of stage one's annotation record
  (`<output>.record.json`: its checkpoint step, settings and time), which changes whenever
  stage one annotates again."""
  with open(stage_one_record, 'rb') as f:
    return {'stage_one_annotation': hashlib.sha1(f.read()).hexdigest()}


def check_stage_two(train_dir, expected=None, record=True):
  """Refuses a stage-two train folder that holds a network trained from anything but this
  stage one (a one-stage run's, or one trained before stage one annotated again); records
  `expected` (a `stamp`) when the folder holds none yet. With `expected` None, checks only
  that a folder holding checkpoints is a stage two's at all. Every process checks; one
  records (`record`).

  Raises:
    ValueError: naming the folder, and what to delete.
  """
  recorded = recorded_stamp(train_dir)
  checkpoints = os.path.join(train_dir, 'checkpoints')
  trained = os.path.isdir(checkpoints) and bool(os.listdir(checkpoints))
  if trained and (recorded is None or (expected is not None and recorded != expected)):
    what = ('a network trained without this stage one (a one-stage run\'s?)' if recorded is None
            else 'a stage two trained on an earlier annotation of stage one')
    raise ValueError(f'{train_dir} holds {what}; stage two would resume it. Delete '
                     f'{train_dir} (and the run\'s pseudo-GT files) or use another --workdir')
  if record and expected is not None and recorded != expected:
    os.makedirs(train_dir, exist_ok=True)
    with open(os.path.join(train_dir, STAMP), 'w') as f:
      json.dump(expected, f)


def recorded_stamp(train_dir):
  """The `stamp` a stage two's train folder holds, or None (not a stage two's)."""
  path = os.path.join(train_dir, STAMP)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def shared_files(one, two):
  """[(stage one's path, stage two's path)] that stage two may take over rather than make
  again: the rendered synthetic set (a folder) and the cached pose prior (a file)."""
  return [(os.path.join(one.workdir, name), os.path.join(two.workdir, name))
          for name in ('data', 'pose_prior.npz')]
