"""Training metrics on disk: one JSON line per logged step, and TensorBoard if installed.

    log = MetricsLog(workdir)
    log.write(step, {'loss': 0.1, 'images_per_s': 40.0})
    log.close()

`<workdir>/metrics.jsonl` is always written (appended to on resume, past the lines of the
steps up to the resumed one: `start_step`). When the `tensorboard` package is importable,
the same scalars also go to an event file in `<workdir>/tensorboard/` (through tensorboard's
own writer, which needs no TensorFlow): `tensorboard --logdir <workdir>/tensorboard`.
"""

import json
import os
import time

from body_models._atomic import atomic_open


def _step(line):
  """The step of a metrics.jsonl line, or None for a torn one (a kill while writing it)."""
  try:
    return int(json.loads(line)['step'])
  except (ValueError, KeyError, TypeError):
    return None


def drop_after(path, step):
  """Remove the lines of steps after `step` (and torn lines) from a metrics.jsonl.

  A run killed after its last checkpoint logged steps that its resumed run logs again; a
  run resumed from an earlier step abandons them. The file is rewritten atomically, and
  only when it changes.
  """
  if not os.path.exists(path):
    return
  with open(path, encoding='utf-8') as f:
    lines = [line for line in f if line.strip()]
  kept = [line for line in lines if _step(line) is not None and _step(line) <= step]
  if len(kept) < len(lines) or (kept and not kept[-1].endswith('\n')):
    with atomic_open(path, 'w') as f:
      f.writelines(line if line.endswith('\n') else line + '\n' for line in kept)


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

  def __init__(self, workdir, tensorboard=True, start_step=None):
    """start_step: the step training goes on from (resumed or fresh: 0); what was logged
    past it is dropped, so that every step appears once. None: append as is."""
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.logdir = os.path.join(workdir, 'tensorboard')
    self._writer = _tensorboard_writer(self.logdir) if tensorboard else None
    if start_step is not None:
      drop_after(self.path, start_step)
      if self._writer is not None:
        # TensorBoard's restart marker: it drops the earlier events from this step on.
        # pylint: disable=import-outside-toplevel
        from tensorboard.compat.proto import event_pb2
        self._writer.add_event(event_pb2.Event(
            wall_time=time.time(), step=int(start_step) + 1,
            session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

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


__all__ = ['MetricsLog', 'drop_after']
