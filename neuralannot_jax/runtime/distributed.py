"""Multi-process runs: start-up, each process's share of the samples, process-local copies.

JAX's own multi-controller runtime does the work: the same program runs once per host (or
once per GPU), `jax.distributed.initialize` connects the processes, and from then on
`jax.devices()` lists the devices of all of them. Training is data-parallel over the
global 1-D 'data' mesh (`train.make_mesh`); each process loads only its rows of each global
batch (`pipeline.Loader`). Annotation needs no collectives, so each process runs the
network on its own devices over its own contiguous share of the samples and writes a shard
file; process 0 merges the shards into the released-layout file (`shards.merge_shards`).
This module is runtime plumbing only: it imports none of the project's stages.

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

import os
from typing import Optional

from absl import logging
import jax


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


__all__ = ['detect_launcher', 'slurm_local_device_ids', 'initialize', 'barrier', 'share',
           'local_mesh', 'local_copy']
