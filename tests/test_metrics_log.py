"""MetricsLog: metrics.jsonl lines, and TensorBoard event files that tensorboard reads back."""

import json
import os

import pytest

from neuralannot_jax import metrics_log


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
