"""Training metrics on disk: one JSON line per logged step, and TensorBoard if installed.

    log = MetricsLog(workdir)
    log.write(step, {'loss': 0.1, 'images_per_s': 40.0})
    log.close()

`<workdir>/metrics.jsonl` is always written (appended to on resume). When the `tensorboard`
package is importable, the same scalars also go to an event file in `<workdir>/tensorboard/`
(through tensorboard's own writer, which needs no TensorFlow):
`tensorboard --logdir <workdir>/tensorboard`.
"""

import json
import os
import time


def _tensorboard_writer(logdir):
  """tensorboard's EventFileWriter on `logdir`, or None when tensorboard is not installed."""
  try:
    # pylint: disable=import-outside-toplevel
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
  except ImportError:
    return None
  return EventFileWriter(logdir, flush_secs=30)


class MetricsLog:
  """Appends scalar metrics of training steps to metrics.jsonl (+ TensorBoard events)."""

  def __init__(self, workdir, tensorboard=True):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.logdir = os.path.join(workdir, 'tensorboard')
    self._writer = _tensorboard_writer(self.logdir) if tensorboard else None

  @property
  def tensorboard(self):
    """True when event files are written."""
    return self._writer is not None

  def write(self, step, values):
    """Log {name: float} at `step`."""
    record = {'step': int(step), **{k: float(v) for k, v in values.items()}}
    with open(self.path, 'a', encoding='utf-8') as f:
      f.write(json.dumps(record) + '\n')
    if self._writer is not None:
      # pylint: disable=import-outside-toplevel
      from tensorboard.compat.proto import event_pb2
      from tensorboard.compat.proto import summary_pb2
      summary = summary_pb2.Summary(value=[
          summary_pb2.Summary.Value(tag=f'train/{k}', simple_value=float(v))
          for k, v in values.items()])
      self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                             summary=summary))

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


__all__ = ['MetricsLog']
