"""MetricsLog: metrics.jsonl lines, and TensorBoard event files that tensorboard reads back."""

import json
import os
import time

import pytest

from neuralannot_jax.runtime import metrics_log


def test_json_lines_and_tensorboard_scalars(tmp_path):
  pytest.importorskip('tensorboard')
  # pylint: disable=import-outside-toplevel
  from tensorboard.backend.event_processing import event_accumulator
  log = metrics_log.MetricsLog(str(tmp_path))
  assert log.tensorboard
  for step in (10, 20, 30):
    log.write(step, {'loss': 1.0 / step, 'images_per_s': 5.0})
  log.close()
  with open(tmp_path / 'metrics.jsonl') as f:
    lines = [json.loads(line) for line in f]
  assert [l['step'] for l in lines] == [10, 20, 30]
  assert lines[1]['loss'] == pytest.approx(0.05)
  events = event_accumulator.EventAccumulator(str(tmp_path / 'tensorboard'))
  events.Reload()
  assert set(events.Tags()['scalars']) == {'train/loss', 'train/images_per_s'}
  loss = events.Scalars('train/loss')
  assert [e.step for e in loss] == [10, 20, 30]
  assert [e.value for e in loss] == pytest.approx([0.1, 0.05, 1 / 30])


def test_tensorboard_off_writes_only_json(tmp_path):
  log = metrics_log.MetricsLog(str(tmp_path), tensorboard=False)
  log.write(1, {'loss': 2.0})
  log.close()
  assert not os.path.exists(tmp_path / 'tensorboard')
  assert json.loads(open(tmp_path / 'metrics.jsonl').read()) == {'step': 1, 'loss': 2.0}


def test_a_resumed_log_drops_what_was_logged_past_its_step(tmp_path):
  """Issue 17, item 15: a run killed after logging steps 3 and 4 but saving step 2 resumes
  from step 2 and logs 3 and 4 again; each step appears once, in the json lines and in
  what TensorBoard reads."""
  log = metrics_log.MetricsLog(str(tmp_path), start_step=0)
  for step in (1, 2, 3, 4):
    log.write(step, {'loss': float(step)})
  log.close()
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 5, "lo')                    # torn by the kill
  # TensorBoard reads event files in name order, whose time stamp is in whole seconds.
  time.sleep(1.1)
  log = metrics_log.MetricsLog(str(tmp_path), start_step=2)
  tensorboard = log.tensorboard
  for step in (3, 4):
    log.write(step, {'loss': 10.0 * step})
  log.close()
  lines = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert [(l['step'], l['loss']) for l in lines] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
  if tensorboard:
    # pylint: disable=import-outside-toplevel
    from tensorboard.backend.event_processing import event_accumulator
    events = event_accumulator.EventAccumulator(log.logdir)
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars('train/loss')] == \
        [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
