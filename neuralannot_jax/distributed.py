"""Multi-process runs: start-up, each process's share of the samples, annotation shards.

JAX's own multi-controller runtime does the work: the same program runs once per host (or
once per GPU), `jax.distributed.initialize` connects the processes, and from then on
`jax.devices()` lists the devices of all of them. Training is data-parallel over the
global 1-D 'data' mesh (`train.make_mesh`); each process loads only its rows of each global
batch (`pipeline.Loader`). Annotation needs no collectives, so each process runs the
network on its own devices over its own contiguous share of the samples and writes a shard
file; process 0 merges the shards into the released-layout file (`merge_shards`).

Launching (one command per host; every host sees the same files, e.g. a shared disk):

  One machine, any number of GPUs: nothing to add, one process drives all local devices.

      python -m neuralannot_jax.main --config=configs/coco_body.py --workdir=runs/coco

  Several hosts, explicit: the same command on each host, with host 0's address and a free
  port as the coordinator, the number of processes, and this host's id 0 .. N-1.

      python -m neuralannot_jax.main --config=configs/coco_body.py --workdir=/shared/coco \\
          --coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=0   # host 0
      python -m neuralannot_jax.main --config=configs/coco_body.py --workdir=/shared/coco \\
          --coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=1   # host 1

  SLURM (one task per GPU, or one per node driving all its GPUs), Open MPI (mpirun) and
  TPU slices on GKE: no flags; the job's environment is detected and
  `jax.distributed.initialize()` reads the coordinator, process count and id from it.

      srun --nodes=2 --ntasks-per-node=8 --gpus-per-node=8 python -m neuralannot_jax.main ...

  (--gpus-per-node, not --gpus-per-task=1: jax picks a task's GPU by its SLURM_LOCALID
  among the GPUs it sees, so every task must see all of its node's GPUs.)

  A TPU pod slice on Compute Engine: the same command on every worker
  (gcloud compute tpus tpu-vm ssh NAME --worker=all --command="..."), with
  --num_processes=<number of TPU VM hosts>; jax reads the coordinator and this host's id
  from the TPU metadata server.

`config.train.batch_size` and `config.annotate.batch_size` are global (all processes); each
process loads batch_size / num_processes of them.
"""

import json
import os
import re
import time
from typing import Optional

from absl import logging
import jax
import numpy as np

from neuralannot_jax import export

# Environment variables that jax's cluster detection (jax/_src/clusters, jax 0.10) reads:
# a SLURM job step sets all of these; mpirun the URI; a GKE TPU slice the host list.
_SLURM = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID',
          'SLURM_LOCALID')
_OMPI_URI = 'OMPI_MCA_orte_hnp_uri'
_TPU_HOSTS = ('TPU_PROCESS_ADDRESSES', 'TPU_WORKER_HOSTNAMES')


def _count(value):
  try:
    return int(value)
  except (TypeError, ValueError):
    return 0


def detect_launcher(environ=None) -> Optional[str]:
  """The multi-process launcher this process runs under, or None on a single process.

  Only launchers that jax's `jax.distributed.initialize()` configures by itself, and only
  when they start more than one process: 'slurm' (SLURM_NTASKS > 1), 'ompi' (mpirun with
  OMPI_COMM_WORLD_SIZE > 1), 'tpu' (a GKE TPU slice listing several hosts, or several
  slices).
  """
  env = os.environ if environ is None else environ
  if all(k in env for k in _SLURM) and _count(env['SLURM_NTASKS']) > 1:
    return 'slurm'
  if _OMPI_URI in env and _count(env.get('OMPI_COMM_WORLD_SIZE')) > 1:
    return 'ompi'
  hosts = next((env[k] for k in _TPU_HOSTS if env.get(k)), '')
  if len([h for h in hosts.split(',') if h.strip()]) > 1 \
      or _count(env.get('MEGASCALE_NUM_SLICES')) > 1:
    return 'tpu'
  return None


def slurm_local_device_ids(environ=None):
  """All GPUs of the node for a SLURM step with one task per node, else None.

  jax's SLURM detection gives each process the one GPU numbered by its SLURM_LOCALID (one
  task per GPU). With one task per node that process would drive GPU 0 alone; it gets all
  the GPUs SLURM made visible to it (CUDA_VISIBLE_DEVICES, renumbered from 0) instead.
  """
  env = os.environ if environ is None else environ
  per_node = env.get('SLURM_STEP_TASKS_PER_NODE') or env.get('SLURM_TASKS_PER_NODE') or ''
  # '1', '1(x4)', '8(x2)', '2,1(x3)': tasks on each node, run-length encoded.
  counts = [part.split('(')[0] for part in per_node.split(',') if part]
  gpus = [d for d in env.get('CUDA_VISIBLE_DEVICES', '').split(',') if d.strip()]
  if counts and all(c == '1' for c in counts) and len(gpus) > 1:
    return list(range(len(gpus)))
  return None


def initialize(coordinator_address=None, num_processes=None, process_id=None):
  """Connect this process to the others of a multi-process run; a no-op on one process.

  Call before anything touches a JAX device. With any argument given, the run is
  multi-process and jax fills the missing ones from the launcher's environment (a TPU slice
  gives the coordinator and id, SLURM all three); without, `jax.distributed.initialize()`
  is called only where `detect_launcher` finds a multi-process launcher.

  Args:
    coordinator_address: 'host:port' of process 0, which serves the coordinator there.
    num_processes: the number of processes N.
    process_id: this process's id, 0 .. N-1.
  Returns:
    (process index, process count).
  """
  explicit = any(v is not None for v in (coordinator_address, num_processes, process_id))
  if explicit and num_processes is not None and process_id is not None \
      and not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id={process_id} is not in 0 .. --num_processes-1 = '
                     f'{num_processes - 1}')
  launcher = None if explicit else detect_launcher()
  if not explicit and launcher is None:
    return 0, 1
  if jax.distributed.is_initialized():
    return jax.process_index(), jax.process_count()
  # CPU devices of several processes talk through gloo (TCP); without it XLA:CPU has no
  # cross-process collectives. GPU and TPU backends ignore this setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  logging.info('jax.distributed.initialize(%s)', 'launcher: ' + launcher if launcher else
               f'coordinator {coordinator_address}, {num_processes} processes, id {process_id}')
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id,
                             local_device_ids=slurm_local_device_ids()
                             if launcher == 'slurm' else None)
  return jax.process_index(), jax.process_count()


def barrier(name):
  """Wait until every process reaches the barrier `name` (a no-op on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(name)


# ----------------------------------------------------------------------------- shares


def share(num_samples, process_index=None, process_count=None):
  """(start, stop): the contiguous share of `num_samples` samples annotated by a process.

  Shares differ in size by at most one, in process order: together they tile 0 .. N-1.
  """
  p = jax.process_index() if process_index is None else process_index
  n = jax.process_count() if process_count is None else process_count
  return num_samples * p // n, num_samples * (p + 1) // n


def local_mesh(axis='data'):
  """A 1-D mesh over this process's devices only: work that needs no other process."""
  return jax.make_mesh((jax.local_device_count(),), (axis,),
                       axis_types=(jax.sharding.AxisType.Auto,), devices=jax.local_devices())


def local_copy(tree, mesh):
  """Replicated arrays of `tree` (possibly spanning every process) copied onto `mesh`.

  Each process holds a full copy of a replicated array on each of its devices; the first one
  is placed on the local mesh, with no communication.
  """
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  def to_local(x):
    if isinstance(x, jax.Array) and not x.is_fully_replicated:
      raise ValueError(f'local_copy: an array of shape {x.shape} is sharded '
                       f'({x.sharding}); only replicated arrays can be copied')
    data = x.addressable_data(0) if isinstance(x, jax.Array) else x
    return jax.device_put(data, sharding)

  return jax.tree.map(to_local, tree)


# ----------------------------------------------------------------------------- shards


def shard_path(output, process_index, process_count):
  """`<output>.shard-00001-of-00004.npz`: the annotations of one process."""
  return f'{output}.shard-{process_index:05d}-of-{process_count:05d}.npz'


def _plain(value, what):
  """A json-safe copy of an ann_id / parent_id (int or str), or ValueError naming it."""
  if isinstance(value, np.generic):
    value = value.item()
  if value is not None and not isinstance(value, (int, str)):
    raise ValueError(f'annotation shards: {what} {value!r} is a {type(value).__name__}; '
                     'ids must be int or str to be written')
  return value


def write_shard(path, annotations, *, made_from, start, stop, num_samples, skipped,
                seconds):
  """Write one process's annotations, atomically, with what they were made from.

  Args:
    path: `shard_path(...)`.
    annotations: {ann_id: annotate.Annotation} of samples start .. stop-1, in order.
    made_from: json dict naming the model (e.g. {'step': 2000}); a shard is reused only
      when it matches (`read_shard`).
    start, stop, num_samples: the share and the size of the whole set.
    skipped: ann_ids of the share's samples whose image could not be read.
    seconds: time the share took.
  Layout: 'meta' (a json string) and per annotation row: 'focal', 'princpt' (n, 2) and
  'param.<smplx name>' (n, D).
  """
  ids = list(annotations)
  anns = [annotations[a] for a in ids]
  meta = {'made_from': made_from, 'start': int(start), 'stop': int(stop),
          'num_samples': int(num_samples), 'seconds': float(seconds),
          'ann_ids': [_plain(a, 'ann_id') for a in ids],
          'skipped': [_plain(a, 'ann_id') for a in skipped],
          'parent_ids': [_plain(a.parent_id, 'parent_id') for a in anns],
          'families': [a.family for a in anns], 'hand_sides': [a.hand_side for a in anns],
          'cameras': [a.camera for a in anns], 'qualities': [a.quality for a in anns]}
  arrays = {'meta': np.array(json.dumps(meta))}
  if anns:
    arrays['focal'] = np.stack([a.focal for a in anns])
    arrays['princpt'] = np.stack([a.princpt for a in anns])
    for name in anns[0].params:
      arrays[f'param.{name}'] = np.stack([a.params[name] for a in anns])
  with export.atomic_open(path, 'wb') as f:
    np.savez(f, **arrays)
  return path


def read_shard(path):
  """(meta dict, {ann_id: annotate.Annotation}) of a `write_shard` file."""
  from neuralannot_jax import annotate  # pylint: disable=import-outside-toplevel
  with np.load(path) as data:
    meta = json.loads(str(data['meta']))
    arrays = {k: data[k] for k in data.files if k != 'meta'}
  names = [k[len('param.'):] for k in arrays if k.startswith('param.')]
  annotations = {}
  qualities = meta.get('qualities') or [None] * len(meta['ann_ids'])
  for i, ann_id in enumerate(meta['ann_ids']):
    annotations[ann_id] = annotate.Annotation(
        params={n: arrays[f'param.{n}'][i] for n in names}, focal=arrays['focal'][i],
        princpt=arrays['princpt'][i], family=meta['families'][i],
        hand_side=meta['hand_sides'][i], parent_id=meta['parent_ids'][i],
        camera=meta['cameras'][i], quality=qualities[i])
  return meta, annotations


def read_meta(path):
  """The header of the shard at `path` (its arrays are not read)."""
  with np.load(path) as data:
    return json.loads(str(data['meta']))


def shard_is_current(path, made_from, start, stop, num_samples):
  """Whether the shard at `path` holds exactly this share made from `made_from` (a run
  killed after writing it resumes there). Reads only its header."""
  if not os.path.exists(path):
    return False
  try:
    meta = read_meta(path)
  except (OSError, ValueError, KeyError) as e:
    logging.warning('annotation shard %s is unreadable (%s); annotating its share again',
                    path, e)
    return False
  return (meta.get('made_from') == made_from
          and (meta.get('start'), meta.get('stop'), meta.get('num_samples'))
          == (start, stop, num_samples))


def made_now(metas):
  """{'samples': annotations, 'seconds': the slowest share's time} of the shards this run
  made (their headers, `metas`), or None when it made none: a resumed merge of shards an
  earlier run wrote annotated nothing, and has no annotation rate."""
  if not metas:
    return None
  return {'samples': sum(len(m['ann_ids']) for m in metas),
          'seconds': max(float(m['seconds']) for m in metas)}


def images_per_s(made):
  """Annotation rate of `made_now`'s record: its samples over the slowest share's time (the
  processes annotate side by side); None when nothing was annotated in this run."""
  if made is None:
    return None
  return made['samples'] / max(made['seconds'], 1e-9)


def merge_shards(output, process_count, made_from, num_samples):
  """Read every process's shard and check that they cover the set exactly once.

  Args:
    output: the output path without extension; shards are `shard_path(output, p, n)`.
    process_count: n.
    made_from: what every shard must have been made from.
    num_samples: N; the shards' shares must tile 0 .. N-1.
  Returns:
    ({ann_id: Annotation} in sample order, [skipped ann_ids], [shard paths]).
  Raises:
    ValueError naming the shard when one is missing, stale, overlaps or leaves a gap, or
    when an ann_id appears twice (outputs are keyed by it).
  """
  merged, skipped, paths, seen, expected_start = {}, [], [], {}, 0
  for p in range(process_count):
    path = shard_path(output, p, process_count)
    if not os.path.exists(path):
      raise ValueError(f'merge: {path} is missing: process {p} did not finish its share')
    meta, annotations = read_shard(path)
    if meta['made_from'] != made_from:
      raise ValueError(f'merge: {path} was made from {meta["made_from"]}, not {made_from}')
    if meta['num_samples'] != num_samples or meta['start'] != expected_start:
      raise ValueError(f'merge: {path} holds samples {meta["start"]} .. {meta["stop"] - 1} '
                       f'of {meta["num_samples"]}; expected a share starting at '
                       f'{expected_start} of {num_samples}')
    ids = meta['ann_ids'] + meta['skipped']
    if len(ids) != meta['stop'] - meta['start']:
      raise ValueError(f'merge: {path} has {len(ids)} annotated or skipped samples for a '
                       f'share of {meta["stop"] - meta["start"]}')
    for ann_id in ids:
      if ann_id in seen:
        raise ValueError(f'merge: ann_id {ann_id!r} appears in {seen[ann_id]} and in {path}; '
                         'outputs are keyed by it, each must appear once')
      seen[ann_id] = path
    merged.update(annotations)
    skipped += meta['skipped']
    paths.append(path)
    expected_start = meta['stop']
  if expected_start != num_samples:
    raise ValueError(f'merge: the shards end at sample {expected_start} of {num_samples}')
  return merged, skipped, paths


def annotate_in_shards(annotate_share, output, made_from, num_samples, prepare=None):
  """Annotate this process's share (or reuse its shard), then merge on process 0.

  Args:
    annotate_share: () -> ({ann_id: Annotation}, [skipped ann_ids]) of this process's share
      (`share(num_samples)`, which `pipeline.Loader(train=False)` walks).
    output: output path without extension; the shard goes to `shard_path(output, p, n)`.
    made_from: json dict naming the model; a shard made from it is reused, not redone.
    num_samples: the size of the whole set.
    prepare: () -> None, run by every process before annotating when any shard is to be
      made: work all processes must take part in, such as restoring the checkpoint (orbax
      restores collectively), even those whose own shard is already done.
  Returns:
    on process 0, (annotations of the whole set in sample order, skipped ann_ids,
    `made_now` of the shards annotated by this call: None when every one was reused); None
    on the other processes. Every process returns after all shards are written.
  """
  made_from = json.loads(json.dumps(made_from))  # as the shards store it (tuples: lists)
  p, n = jax.process_index(), jax.process_count()
  start, stop = share(num_samples, p, n)
  path = shard_path(output, p, n)
  # Every process reads every shard's header, so all take the same decision on `prepare`;
  # the barrier keeps any shard from being written before all have looked.
  current = [shard_is_current(shard_path(output, q, n), made_from,
                              *share(num_samples, q, n), num_samples) for q in range(n)]
  barrier(f'annotation shards of {os.path.basename(output)} checked')
  if not all(current) and prepare is not None:
    prepare()
  if current[p]:
    logging.info('annotate: %s holds samples %d .. %d made from %s; reused', path, start,
                 stop - 1, made_from)
  else:
    t0 = time.perf_counter()
    annotations, skipped = annotate_share()
    write_shard(path, annotations, made_from=made_from, start=start, stop=stop,
                num_samples=num_samples, skipped=skipped, seconds=time.perf_counter() - t0)
  barrier(f'annotation shards of {os.path.basename(output)}')
  if p != 0:
    return None
  annotations, skipped, _ = merge_shards(output, n, made_from, num_samples)
  # Shards current before this call were annotated by an earlier run: not timed here.
  fresh = [read_meta(shard_path(output, q, n)) for q in range(n) if not current[q]]
  return annotations, skipped, made_now(fresh)


def shard_files(output):
  """Every shard file of `output`, whatever the process count that wrote it."""
  folder, base = os.path.split(output)
  pattern = re.compile(re.escape(base) + r'\.shard-\d{5}-of-\d{5}\.npz$')
  return [os.path.join(folder, n) for n in sorted(os.listdir(folder or '.'))
          if pattern.match(n)]


__all__ = ['detect_launcher', 'slurm_local_device_ids', 'initialize', 'barrier', 'share', 'local_mesh', 'local_copy',
           'shard_path', 'write_shard', 'read_shard', 'read_meta', 'shard_is_current',
           'made_now', 'images_per_s', 'merge_shards', 'annotate_in_shards', 'shard_files']
