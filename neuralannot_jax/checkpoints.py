"""Orbax checkpoints of a training run: the manager, save and restore, the step to resume
from, the record of the network a checkpoint holds, and a full disk reported once.

    manager = checkpoints.checkpoint_manager(workdir, config)   # <workdir>/checkpoints
    checkpoints.save(manager, step, nnx.state((model, optimizer)), config)
    checkpoints.restore(manager, config, mesh, model, optimizer, step)
    checkpoints.close_checkpoints(manager)

`config` is anything with the `MODEL_FIELDS` attributes and `max_to_keep` (train.TrainConfig).
"""

import contextlib
import errno
import logging as std_logging
import os
import sys

from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx


# The settings that make a checkpoint's network, by their experiment config names: a
# checkpoint records them (`model_record`) and is restored only into the same network.
MODEL_FIELDS = {'family': 'body_model.family', 'mode': 'model.mode', 'depth': 'model.depth',
                'crop_size': 'model.crop_size', 'joint_set': 'the joint set'}


def model_record(config):
  """{field: value} of `MODEL_FIELDS` for `config`, json-safe."""
  return {k: (int(v) if isinstance(v, (int, np.integer)) else str(v))
          for k, v in ((k, getattr(config, k)) for k in MODEL_FIELDS)}


def model_mismatch_error(directory, details):
  """The ValueError for checkpoints of another network than the config's."""
  train_dir = os.path.dirname(os.path.abspath(str(directory)))
  return ValueError(
      f'train: the checkpoints in {directory} were made with another model ({details}); '
      f'use a new --workdir, or delete {train_dir} to train this model from scratch')


def check_model(recorded, config, directory):
  """ValueError naming every `MODEL_FIELDS` setting in which a checkpoint's record differs."""
  current = model_record(config)
  diffs = [f'{MODEL_FIELDS[k]} {recorded[k]}, now {current[k]}' for k in MODEL_FIELDS
           if k in recorded and recorded[k] != current[k]]
  if diffs:
    raise model_mismatch_error(directory, '; '.join(diffs))


def is_disk_full(error):
  """Whether an exception (or message) is a full disk: OSError ENOSPC, or tensorstore's
  ValueError (RESOURCE_EXHAUSTED: ... No space left on device [os_error_code='28'])."""
  if isinstance(error, OSError) and error.errno == errno.ENOSPC:
    return True
  return error is not None and 'No space left on device' in str(error)


@contextlib.contextmanager
def disk_full_as_oserror(directory):
  """Turn a full disk while writing checkpoints into one OSError naming `directory`."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if not is_disk_full(e):
      raise
    raise OSError(errno.ENOSPC, 'No space left on device while writing a checkpoint (free '
                  'some space and re-run: training resumes from the last checkpoint written)',
                  str(directory)) from e


def _orbax_write_leftover(unraisable):
  """Whether an unraisable exception is left over from a failed orbax write.

  When a checkpoint write fails (a full disk), orbax's event loop ends at the first error
  while tensorstore still completes the other writes: each completion reports the closed
  loop (`RuntimeError: Event loop is closed`), and the abandoned write coroutines fail
  again when Python shuts down. Some 200 tracebacks that bury the cause, which
  `disk_full_as_oserror` reports once.
  """
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
    return True
  code = getattr(unraisable.object, 'cr_code', None)   # a coroutine's
  return code is not None and f'{os.sep}orbax{os.sep}' in code.co_filename


class _OrbaxDiskFullRecords(std_logging.Filter):
  """Drops orbax's own log records of a full disk (five, each with a traceback, for one
  failed write), which `disk_full_as_oserror` reports once; keeps every other record."""

  def filter(self, record):
    if f'{os.sep}orbax{os.sep}' not in record.pathname:
      return True
    error = record.exc_info[1] if record.exc_info else None
    return not (is_disk_full(record.getMessage()) or is_disk_full(error))


def _quiet_failed_writes():
  """Install (once) what keeps a failed checkpoint write to one message: a
  sys.unraisablehook dropping `_orbax_write_leftover`s (every other unraisable exception
  goes to the previous hook), and `_OrbaxDiskFullRecords` on absl's logger."""
  absl_logger = std_logging.getLogger('absl')
  if not any(isinstance(f, _OrbaxDiskFullRecords) for f in absl_logger.filters):
    absl_logger.addFilter(_OrbaxDiskFullRecords())
  previous = sys.unraisablehook
  if getattr(previous, 'drops_orbax_write_leftovers', False):
    return

  def hook(unraisable):
    if not _orbax_write_leftover(unraisable):
      previous(unraisable)

  hook.drops_orbax_write_leftovers = True
  sys.unraisablehook = hook


def checkpoint_manager(workdir, config):
  """orbax CheckpointManager on the absolute `<workdir>/checkpoints` (config: max_to_keep)."""
  _quiet_failed_writes()
  path = os.path.join(os.path.abspath(workdir), 'checkpoints')
  options = ocp.CheckpointManagerOptions(max_to_keep=int(config.max_to_keep), create=True)
  # The handler named: reading a step's metadata then logs no warning about it.
  return ocp.CheckpointManager(path, options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def read_only_manager(directory):
  """orbax CheckpointManager reading another run's checkpoints (its work directory or its
  checkpoints folder); None when the folder does not exist."""
  path = os.path.abspath(str(directory))
  if os.path.basename(path) != 'checkpoints':
    path = os.path.join(path, 'checkpoints')
  if not os.path.isdir(path):
    return None
  return ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True),
                               item_handlers=ocp.StandardCheckpointHandler())


def save(manager, step, state, config):
  """Save `state` (an nnx.State) as checkpoint `step`, recording the network of `config`.

  Raises:
    OSError (ENOSPC) naming the checkpoint folder when the disk is full.
  """
  with disk_full_as_oserror(manager.directory):
    manager.save(step, args=ocp.args.StandardSave(state),
                 custom_metadata={'model': model_record(config)})


def resume_hint(manager):
  """How to go on after a divergence, with the steps saved in `manager`."""
  saved = sorted(manager.all_steps())
  if not saved:
    return 'No checkpoint is saved yet: lower train.lr and re-run.'
  return (f'Checkpoints saved in {manager.directory}: steps {saved}. Lower train.lr and '
          f're-run (it resumes from step {saved[-1]}), or resume from an earlier step with '
          'train.resume_step=<step>.')


def close_checkpoints(manager, error=None):
  """Finish the manager's writes and close it.

  An interrupted run still finishes writing its last checkpoint, so that a re-run resumes
  from it. A failed write raises (a full disk as one OSError, `disk_full_as_oserror`); while
  `error` is already on its way it is logged instead, unless it is that same failure.
  """
  try:
    with disk_full_as_oserror(manager.directory):
      manager.wait_until_finished()
  except Exception as e:  # pylint: disable=broad-except
    with contextlib.suppress(Exception):
      manager.close()  # its own wait raises the same failure again
    if error is None:
      raise
    if not (is_disk_full(e) and is_disk_full(error)):
      logging.warning('train: the last checkpoint was not written: %s', e)
    return
  manager.close()


def resume_point(saved, resume_step, directory):
  """The step to resume from: `resume_step`, or with 0 the latest of `saved` (0: none).

  Raises:
    ValueError listing the saved steps when `resume_step` is not one of them.
  """
  saved = sorted(int(s) for s in saved)
  resume_step = int(resume_step)
  if resume_step == 0:
    return saved[-1] if saved else 0
  if resume_step not in saved:
    raise ValueError(f'train.resume_step={resume_step}: no checkpoint of that step in '
                     f'{directory}; saved steps: {saved if saved else "none"}')
  return resume_step


def restore(manager, config, mesh, model, optimizer, step):
  """Load checkpoint `step` into `model` / `optimizer` (in place).

  The target is the abstract state of the given (fresh) model and optimizer, with the
  replicated sharding, so that orbax places every array on the whole mesh.

  Raises:
    ValueError naming the settings when the checkpoint holds another network.
  """
  recorded = (manager.metadata(step).custom_metadata or {}).get('model')
  if recorded:
    check_model(recorded, config, manager.directory)
  sharding = NamedSharding(mesh, P())
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                          nnx.state((model, optimizer)))
  try:
    restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  except ValueError as e:
    # A checkpoint without the record (older code): orbax's structure / shape errors.
    message = str(e)
    if ('structures do not match' not in message
        and 'not compatible with the stored shape' not in message):
      raise
    raise model_mismatch_error(
        manager.directory, 'its arrays do not fit this network: one of '
        f'{", ".join(MODEL_FIELDS.values())} differs') from e
  nnx.update((model, optimizer), restored)


def restore_latest(manager, config, mesh, model, optimizer):
  """Load the latest checkpoint into `model` / `optimizer` (in place); the step, or 0."""
  step = manager.latest_step()
  if step is None:
    return 0
  restore(manager, config, mesh, model, optimizer, step)
  return int(step)


def delete_after(manager, step):
  """Delete the checkpoints after `step` (a run resumed from an earlier step abandons them)."""
  later = sorted(s for s in manager.all_steps() if s > step)
  if later:
    logging.warning('train: resuming from step %d (train.resume_step): deleting the later '
                    'checkpoints %s in %s', step, later, manager.directory)
  for s in later:
    manager.delete(s)
