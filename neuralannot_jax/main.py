"""Annotate a dataset: python -m neuralannot_jax.main --config=configs/<experiment>.py

Runs the config's stages in order (see `experiment`): train the annotator on the dataset's
training set, annotate the same set with it (pseudo-GTs in the released NeuralAnnot layout),
and evaluate them where GT exists. Every stage resumes from what the work directory holds:
re-running after a kill continues training from the last checkpoint and skips an annotation
already made from the latest checkpoint.

Examples:
  python -m neuralannot_jax.main --config=configs/synthetic_body.py
  python -m neuralannot_jax.main --config=configs/coco_body.py \\
      --config.dataset.root=~/data/coco --config.body_model.path=~/models --workdir=runs/coco
  python -m neuralannot_jax.main --config=configs/h36m_body.py --config.stages=annotate,evaluate
  python -m neuralannot_jax.main --config=configs/synthetic_wholebody.py   # body+hands+face
  python -m neuralannot_jax.main --config=configs/coco_body.py ... \\
      --config.train.two_stage.steps=20000    # both stages of two-stage training, in order

A mistake in the config or the files (a missing file, a bad field) ends with one `error:`
line and exit status 2; NEURALANNOT_TRACEBACK=1 shows the traceback instead.

Override any config value with --config.<field>=<value> (e.g. --config.train.num_steps=500,
--config.model.depth=18); `configs/*.py` list the fields with what each means.

Several hosts: start the same command once per host (SLURM, mpirun and TPU slices on GKE
are detected; elsewhere give --coordinator_address, --num_processes and --process_id); see
`neuralannot_jax/runtime/distributed.py` for the commands. Batch sizes in the config are global.
"""

import difflib
import glob
import json
import logging as std_logging
import os
import sys

# Before jax starts its threads: XLA:CPU then reuses its step buffers instead of
# faulting in fresh pages every step (see host_memory; ~20% of a CPU train step).
from neuralannot_jax.runtime import host_memory

host_memory.keep_freed_memory()

# pylint: disable=wrong-import-position
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import jax  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from neuralannot_jax.runtime import distributed  # noqa: E402
from neuralannot_jax import experiment  # noqa: E402
from neuralannot_jax.wholebody import run as wholebody_run  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config: a configs/*.py file; override fields with '
    '--config.<field>=<value>.', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Work directory (checkpoints, pseudo-GTs, reports); overrides '
    'config.workdir.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-process runs: host:port of process 0, where the '
    'coordinator listens (any free port, the same on every process), e.g. 10.0.0.1:1234. '
    'Not needed under SLURM, mpirun or on a GKE TPU slice, which jax detects; on a Compute '
    'Engine TPU pod slice give only --num_processes (jax reads the rest from the TPU '
    'metadata).')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Multi-process runs: the number of processes (one per host, or '
    'per GPU); the same on every process.', lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, 'Multi-process runs: this process\'s id, 0 .. num_processes - 1 '
    '(0 runs the coordinator, logs and writes the reports).', lower_bound=0)
flags.mark_flags_as_required(['config'])


# The repository's configs/*.py, listed when --config names no file.
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'configs')


def config_argument(argv):
  """The value of --config in argv (--config=V or --config V, one dash or two), or None."""
  for k, arg in enumerate(argv[1:], 1):
    if arg == '--':                       # no flags after this
      break
    name, eq, value = arg.lstrip('-').partition('=')
    if not arg.startswith('-') or name != 'config':
      continue
    if eq:
      return value
    return argv[k + 1] if k + 1 < len(argv) else None
  return None


def _shown(path):
  """path relative to the current folder where it is below it, else absolute."""
  relative = os.path.relpath(path)
  return path if relative.startswith('..') else relative


def missing_config_message(argv, configs_dir=CONFIGS_DIR):
  """The one-line error for a --config that names no file, else None.

  The config flag is parsed (and its file loaded) by ml_collections before `main` runs,
  whose error is several lines about an 'earlier failure to load'.
  """
  value = config_argument(argv)
  if value is None:
    return None                           # absl names the missing required flag
  # ml_collections passes what follows a ':' to get_config.
  path = value if os.path.isfile(value) else value.split(':', 1)[0]
  if os.path.isfile(path):
    return None
  known = ', '.join(_shown(p) for p in sorted(glob.glob(os.path.join(configs_dir, '*.py'))))
  return f'config file {path}: no such file; the configs are: {known or "none found"}'


def override_names(argv):
  """The dotted field names of the --config.<field>=<value> overrides in argv, in order."""
  names = []
  for arg in argv[1:]:
    if arg == '--':
      break
    name = arg.lstrip('-').partition('=')[0]
    if arg.startswith('-') and name.startswith('config.'):
      names.append(name[len('config.'):])
  return names


def unknown_override_message(argv):
  """The one-line error for a --config.<field> override that the config has no field for,
  else None.

  ml_collections applies the overrides while absl parses the flags, before `main` runs,
  and a misspelt field ended the run in a traceback (KeyError: 'batch').
  """
  path = config_argument(argv)
  names = override_names(argv)
  if path is None or not names:
    return None
  if not os.path.isfile(path):
    return None          # a missing file is reported first; a 'file:arg' config is left to absl
  config = experiment.load_config(path)
  for name in names:
    node, walked = config, []
    for part in name.split('.'):
      where = f'config.{".".join(walked)}' if walked else 'the config'
      if not hasattr(node, 'keys'):
        return f'--config.{name}: {where} ({_shown(path)}) is a value, not a group of fields'
      fields = list(node.keys())
      if part not in fields:
        close = difflib.get_close_matches(part, fields, n=3)
        hint = (f'did you mean {", ".join(close)}? ' if close else '')
        return (f'--config.{name}: {where} ({_shown(path)}) has no field {part!r}; '
                f'{hint}its fields: {", ".join(sorted(fields))}')
      node, walked = node[part], walked + [part]
  return None


def skipped_images(summary):
  """Samples whose image the annotate stage could not read: the summary's 'skipped_images',
  else what the samples lack of pseudo-GTs ('annotated' is there when this run annotated:
  every sample is annotated or skipped); 0 when unknown."""
  if 'skipped_images' in summary:
    return int(summary['skipped_images'])
  if 'annotated' in summary and 'samples' in summary:
    return int(summary['samples']) - int(summary['annotated'])
  return 0


def format_summary(summary):
  """The closing lines of a run: where the pseudo-GTs are, speed, and their scores (a
  two-stage run's stage one first)."""
  lines = []
  first = summary.get('stage_one')
  if first:
    lines += ['stage one (its refined pseudo-GTs supervise stage two):',
              *('  ' + line for line in format_summary(first).splitlines()[:-1]),
              'stage two:']
  lines += [f'work directory: {summary["workdir"]}',
           f'samples: {summary["samples"]} ({summary["joint_set"]}); {summary["body_model"]}; '
           f'{summary["devices"]} x {summary["platform"]}']
  if summary.get('train_images_per_s') is not None:
    lines.append(f'train: {summary["train_seconds"]:.0f} s, '
                 f'{summary["train_images_per_s"]:.1f} images/s')
  if summary.get('pseudo_gt'):
    rate = summary.get('annotate_images_per_s')
    lines.append(f'pseudo-GTs: {summary["pseudo_gt"]} (and .npz)' +
                 (f'; annotate {rate:.1f} images/s' if rate else ''))
  skipped = skipped_images(summary)
  if skipped:
    lines.append(f'skipped: {skipped} unreadable images (missing, undecodable or truncated): '
                 'their samples have no pseudo-GT (the log names them)')
  evaluation = summary.get('evaluation')
  if evaluation:
    from neuralannot_jax import evaluate  # pylint: disable=import-outside-toplevel
    lines.append(evaluate.format_table(evaluation))
  world = summary.get('evaluation_world_frame')
  if world:
    scores = ', '.join(f'{name} {world[key]:.1f} mm' for key, name in
                       (('mpjpe', 'MPJPE'), ('mpvpe', 'MPVPE')) if world.get(key) is not None)
    lines.append('world-frame files (mocap/), each frame\'s body moved back into every camera: '
                 f'{scores} ({summary.get("evaluation_world_frame_file")})')
  if summary.get('report'):
    lines.append(f'report: {summary["report"]}')
  lines.append(f'done in {summary["seconds"]:.0f} s')
  return '\n'.join(lines)


# Libraries whose INFO records drown the run's own (several per checkpoint / dataset open).
_QUIET = ('/orbax/', '/tensorflow_datasets/')


class _QuietLibraries(std_logging.Filter):
  """Drops INFO records of `_QUIET` libraries, keeping their warnings."""

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING
            or not any(name in record.pathname for name in _QUIET))


def main(argv):
  """The command line: `run` with user mistakes as one clean `error:` line (exit 2)."""
  try:
    run(argv)
  except (OSError, ValueError) as e:     # missing files, bad fields (ModelFileError too)
    if os.environ.get('NEURALANNOT_TRACEBACK'):
      raise
    logging.flush()
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def run(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  # Before anything touches a device: the other processes of a multi-process run join here.
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  config = _CONFIG.value
  if _WORKDIR.value:
    with config.unlocked():
      config.workdir = _WORKDIR.value
  if wholebody_run.is_wholebody(config):
    # Body, hand and face experiments, then their merge into SMPL-X (`wholebody_run`).
    summary = wholebody_run.run(config)
    if jax.process_index() == 0:
      print(wholebody_run.format_summary(summary))
      wholebody_run.write_summary(summary)
    return
  summary = experiment.run(config)
  if jax.process_index() == 0:
    print(format_summary(summary))
    with open(f'{summary["workdir"]}/summary.json', 'w', encoding='utf-8') as f:
      json.dump({k: v for k, v in summary.items()}, f, indent=1, default=str)


def entry():
  """`python -m neuralannot_jax.main`: a --config naming no file, or an override naming no
  field of it, is one `error:` line."""
  message = missing_config_message(sys.argv) or unknown_override_message(sys.argv)
  if message is not None:
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)
  app.run(main)


if __name__ == '__main__':
  entry()
