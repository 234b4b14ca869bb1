"""One command, both stages (`train.two_stage.steps`, `two_stage_plan`): the configs each
stage runs with, and a tiny run end to end through `experiment.run`."""

import json
import os

import pytest

from neuralannot_jax import experiment
from neuralannot_jax import two_stage_plan
from test_main import _config


def test_stage_two_trains_on_stage_ones_refined_file_from_its_network(tmp_path):
  config = _config(str(tmp_path), **{'train.num_steps': 1000, 'train.lr_boundaries': (800,),
                                     'train.two_stage.steps': 500,
                                     'stages': 'train,annotate,evaluate,report'})
  assert two_stage_plan.wanted(config)
  one, two = two_stage_plan.stage_configs(config)
  stage_one = str(tmp_path / 'stage_one')
  # Stage one: the configured network, annotating the set refined, in its own folder.
  assert (one.workdir, one.annotator, one.annotate.output) == (
      stage_one, 'neuralannot_refine', 'pseudo_gt_refine')
  assert (one.train.num_steps, tuple(one.train.lr_boundaries)) == (1000, (800,))
  assert one.stages == 'train,annotate,evaluate'     # the report is stage two's
  # Stage two: the run's own folder and stages, from stage one's network and file.
  assert (two.workdir, two.annotator, two.stages) == (
      str(tmp_path), 'neuralannot', 'train,annotate,evaluate,report')
  assert two.train.two_stage.init == os.path.join(stage_one, 'pseudo_gt_refine.json')
  assert two.train.two_stage.init_weights == stage_one
  # Its own length, the rate dropped at the same fraction of it.
  assert (two.train.num_steps, tuple(two.train.lr_boundaries)) == (500, (400,))
  # Neither runs a stage one again; both read one tfds build.
  assert not two_stage_plan.wanted(one) and not two_stage_plan.wanted(two)
  assert one.dataset.data_dir == two.dataset.data_dir == str(tmp_path / 'tfds')
  # The config itself is left as it was.
  assert config.train.two_stage.steps == 500 and config.workdir == str(tmp_path)
  assert not two_stage_plan.wanted(_config(str(tmp_path)))
  # A very short stage two drops the rate once where the drops would fall on one step.
  short = _config(str(tmp_path), **{'train.num_steps': 20000,
                                    'train.lr_boundaries': (16000, 18000),
                                    'train.two_stage.steps': 5})
  assert tuple(two_stage_plan.stage_configs(short)[1].train.lr_boundaries) == (4,)


@pytest.mark.parametrize('overrides, match', [
    ({'train.two_stage.init': 'stage_one/pseudo_gt.json'}, 'leave train.two_stage.init'),
    ({'annotator': 'smplify'}, 'trains nothing'),
    ({'stages': 'annotate,evaluate'}, 'must include train'),
    ({'train.num_steps': 0}, 'at least one step'),
    ({'body_model.family': 'flame'}, 'FLAME faces have no per-sample fit')])
def test_a_two_stage_config_that_contradicts_itself_is_refused(tmp_path, overrides, match):
  config = _config(str(tmp_path), **{'train.two_stage.steps': 5, **overrides})
  with pytest.raises(ValueError, match=match):
    two_stage_plan.stage_configs(config)


def test_one_command_runs_both_stages_and_a_rerun_keeps_them(tmp_path, caplog):
  workdir = str(tmp_path)
  two_stages = {'train.two_stage.steps': 2, 'fitting.refine_steps': 5,
                'stages': 'train,annotate,evaluate'}
  summary = experiment.run(_config(workdir, **two_stages))
  first = summary['stage_one']
  assert first['workdir'] == str(tmp_path / 'stage_one')
  assert first['annotated'] == summary['annotated'] == 8
  assert 'evaluation' in first and 'evaluation' in summary
  # Stage two went on from stage one's network, with the refined file's parameter terms.
  with open(tmp_path / 'train' / 'metrics.jsonl') as f:
    logged = [json.loads(line) for line in f]
  assert [r['step'] for r in logged] == [1, 2]
  assert all(r['param_rot'] > 0 and 'joints_3d' in r for r in logged), logged
  assert os.path.exists(tmp_path / 'stage_one' / 'train' / 'checkpoints' / '2')
  # The set was rendered once: stage two reads stage one's.
  assert os.path.islink(tmp_path / 'data')
  assert 'building again' not in caplog.text      # and one tfds build serves both
  assert not os.path.lexists(tmp_path / 'stage_one' / 'data' / 'data')
  from neuralannot_jax import main  # pylint: disable=import-outside-toplevel
  text = main.format_summary(summary)
  assert text.startswith('stage one') and text.count('work directory:') == 2
  assert text.index(str(tmp_path / 'stage_one')) < text.index('stage two:')
  from neuralannot_jax import evaluate  # pylint: disable=import-outside-toplevel
  indented = '\n'.join('  ' + line for line in evaluate.format_table(
      first['evaluation']).splitlines())
  assert indented in text.split('stage two:')[0]
  assert evaluate.format_table(summary['evaluation']) in text.split('stage two:')[1]
  assert text.count('done in') == 1
  again = experiment.run(_config(workdir, **two_stages))
  assert 'annotated' not in again and 'annotated' not in again['stage_one']   # both kept
  # Stage one annotated again (other refinement settings): the stage two that learned from
  # its earlier file is not resumed as if it had learned from this one.
  with pytest.raises(ValueError, match='trained on an earlier annotation of stage one'):
    experiment.run(_config(workdir, **{**two_stages, 'fitting.refine_steps': 6}))


def test_a_one_stage_runs_network_is_never_taken_for_stage_two(tmp_path):
  checkpoints = tmp_path / 'train' / 'checkpoints' / '2'
  checkpoints.mkdir(parents=True)       # what a one-stage run leaves in its work directory
  with pytest.raises(ValueError, match='trained without this stage one'):
    experiment.run(_config(str(tmp_path), **{'train.two_stage.steps': 2}))
  assert not (tmp_path / 'stage_one').exists()       # refused before stage one ran


def test_one_command_gives_what_the_stages_run_by_hand_give(tmp_path):
  """The documented manual path: stage one annotated refined in one work directory, stage two
  in another with `two_stage.init` / `init_weights` naming them. Training is deterministic,
  so the one-command run must write the same pseudo-GTs to the bit."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  tiny = {'fitting.refine_steps': 5, 'stages': 'train,annotate'}
  one = str(tmp_path / 'by_hand_one')
  experiment.run(_config(one, **tiny, **{'annotator': 'neuralannot_refine',
                                         'annotate.output': 'pseudo_gt_refine'}))
  two = str(tmp_path / 'by_hand_two')
  experiment.run(_config(two, **tiny, **{
      'train.two_stage.init': os.path.join(one, 'pseudo_gt_refine.json'),
      'train.two_stage.init_weights': one}))
  command = str(tmp_path / 'one_command')
  experiment.run(_config(command, **tiny, **{'train.two_stage.steps': 2}))
  by_hand = np.load(os.path.join(two, 'pseudo_gt.npz'))
  ours = np.load(os.path.join(command, 'pseudo_gt.npz'))
  assert sorted(by_hand.files) == sorted(ours.files)
  for key in by_hand.files:
    np.testing.assert_array_equal(ours[key], by_hand[key], err_msg=key)
