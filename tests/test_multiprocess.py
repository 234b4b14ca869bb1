"""Multi-process runs: launcher detection, per-process shares, annotation shards and a real
2-process x 2-CPU-device job through the command line against a 1-process 4-device one.

Covers neuralannot_jax/runtime/distributed.py and shards.py, the shares of pipeline.Loader and the sharded
annotate stage of experiment.run.
"""

import json
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest

from neuralannot_jax import annotate as annotate_lib
from neuralannot_jax import export
from neuralannot_jax import shards
from neuralannot_jax.data import pipeline
from neuralannot_jax.data.sample import make_sample
from neuralannot_jax.runtime import distributed
from test_main import TINY  # pylint: disable=wrong-import-order

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- launchers


SLURM = {'SLURM_JOB_ID': '7', 'SLURM_STEP_NODELIST': 'node[1-2]', 'SLURM_PROCID': '1',
         'SLURM_LOCALID': '0'}


@pytest.mark.parametrize('env, launcher', [
    ({}, None),
    ({**SLURM, 'SLURM_NTASKS': '1'}, None),          # an allocation with one task
    ({**SLURM, 'SLURM_NTASKS': '8'}, 'slurm'),
    ({'SLURM_NTASKS': '8'}, None),                    # not inside a job step
    ({'OMPI_MCA_orte_hnp_uri': '1.2.3.4:5', 'OMPI_COMM_WORLD_SIZE': '4'}, 'ompi'),
    ({'OMPI_MCA_orte_hnp_uri': '1.2.3.4:5', 'OMPI_COMM_WORLD_SIZE': '1'}, None),
    ({'TPU_WORKER_HOSTNAMES': 'h0,h1,h2,h3'}, 'tpu'),
    ({'TPU_WORKER_HOSTNAMES': 'localhost'}, None),    # a single-host slice
    ({'MEGASCALE_NUM_SLICES': '2'}, 'tpu'),
])
def test_only_multi_process_launchers_are_detected(env, launcher):
  assert distributed.detect_launcher(env) == launcher


@pytest.mark.parametrize('env, ids', [
    ({'SLURM_STEP_TASKS_PER_NODE': '1(x2)', 'CUDA_VISIBLE_DEVICES': '4,5,6,7'}, [0, 1, 2, 3]),
    ({'SLURM_TASKS_PER_NODE': '1', 'CUDA_VISIBLE_DEVICES': '0,1'}, [0, 1]),
    ({'SLURM_STEP_TASKS_PER_NODE': '8(x2)', 'CUDA_VISIBLE_DEVICES': '0'}, None),  # per GPU
    ({'SLURM_STEP_TASKS_PER_NODE': '1(x2)'}, None),                               # no GPUs
])
def test_one_slurm_task_per_node_drives_all_its_gpus(env, ids):
  assert distributed.slurm_local_device_ids(env) == ids


def test_one_process_needs_no_initialization(monkeypatch):
  for key in ('SLURM_NTASKS', 'OMPI_MCA_orte_hnp_uri', 'TPU_WORKER_HOSTNAMES',
              'TPU_PROCESS_ADDRESSES', 'MEGASCALE_NUM_SLICES'):
    monkeypatch.delenv(key, raising=False)
  assert distributed.initialize() == (0, 1)


def test_a_process_id_out_of_range_is_refused():
  with pytest.raises(ValueError, match='process_id=2'):
    distributed.initialize('127.0.0.1:1', num_processes=2, process_id=2)


# ----------------------------------------------------------------------------- shares


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  """13 samples on small PNGs (13 is prime: no batch size divides it)."""
  folder = tmp_path_factory.mktemp('images')
  rng = np.random.default_rng(0)
  samples = []
  for i in range(13):
    path = folder / f'{i}.png'
    cv2.imwrite(str(path), rng.integers(0, 255, (40, 40, 3), np.uint8))
    samples.append(make_sample('test', dataset='t', ann_id=f'a{i}', image_path=str(path),
                               bbox=[5, 5, 30, 30], part='body',
                               joints_2d=rng.uniform(5, 35, (5, 2))))
  return samples


def _ids(loader, epoch):
  return [ids for _, ids in loader.epoch(epoch)]


@pytest.mark.parametrize('processes, per_process', [(2, 2), (3, 1)])
def test_training_shares_rebuild_the_one_process_global_batches(dataset, processes,
                                                                per_process):
  options = dict(train=True, out_size=16, seed=3, num_workers=0, num_devices=1)
  single = pipeline.Loader(dataset, processes * per_process, process_index=0,
                           process_count=1, **options)
  shares = [pipeline.Loader(dataset, per_process, process_index=p, process_count=processes,
                            **options) for p in range(processes)]
  assert all(len(s) == len(single) == 13 // (processes * per_process) for s in shares)
  for epoch in range(2):
    per_step = zip(*[_ids(s, epoch) for s in shares])   # each process's batch, step by step
    assert [sum(rows, []) for rows in per_step] == _ids(single, epoch)
  # The global batch is the same whichever process loads a row, images included.
  rows = next(shares[-1].epoch(0))[0]['image']
  whole = next(single.epoch(0))[0]['image']
  np.testing.assert_array_equal(rows, whole[-per_process:])


def test_annotation_shares_tile_the_set_in_order(dataset):
  loaders = [pipeline.Loader(dataset, 2, train=False, out_size=16, num_workers=0,
                             num_devices=1, process_index=p, process_count=3)
             for p in range(3)]
  ids = [[i for batch_ids in _ids(loader, 0) for i in batch_ids] for loader in loaders]
  assert [len(i) for i in ids] == [4, 4, 5]
  assert sum(ids, []) == [s.ann_id for s in dataset]
  assert [distributed.share(13, p, 3) for p in range(3)] == [(0, 4), (4, 8), (8, 13)]


# ----------------------------------------------------------------------------- shards


def _annotation(value, hand_side=None, parent_id=None):
  return annotate_lib.Annotation(
      params={'betas': np.full(10, value, np.float32),
              'global_orient': np.full(3, -value, np.float32)},
      focal=np.array([500.0 + value, 510.0]), princpt=np.array([32.0, 30.0 + value]),
      family='smpl', hand_side=hand_side, parent_id=parent_id, camera='virtual')


def _write_shards(output, ann_ids, processes, made_from, skipped=()):
  for p in range(processes):
    start, stop = distributed.share(len(ann_ids), p, processes)
    mine = [a for a in ann_ids[start:stop] if a not in skipped]
    shards.write_shard(
        shards.shard_path(output, p, processes),
        {a: _annotation(float(ann_ids.index(a)), parent_id=ann_ids.index(a)) for a in mine},
        made_from=made_from, start=start, stop=stop, num_samples=len(ann_ids),
        skipped=[a for a in ann_ids[start:stop] if a in skipped], seconds=1.0)


def test_shards_merge_back_in_sample_order(tmp_path):
  output = str(tmp_path / 'pseudo_gt')
  ann_ids = [5, 'x7', 3, 11, 'b', 2, 9]
  _write_shards(output, ann_ids, 3, {'step': 4}, skipped=(3,))
  merged, skipped, paths = shards.merge_shards(output, 3, {'step': 4}, len(ann_ids))
  assert list(merged) == [5, 'x7', 11, 'b', 2, 9] and skipped == [3]
  assert paths == shards.shard_files(output)
  # Each annotation comes back as written (values: the sample's position in the set).
  for position, ann_id in enumerate(ann_ids):
    if ann_id == 3:
      continue
    ann = merged[ann_id]
    np.testing.assert_array_equal(ann.params['betas'], np.full(10, position, np.float32))
    np.testing.assert_array_equal(ann.params['global_orient'], np.full(3, -position))
    np.testing.assert_array_equal(ann.focal, [500.0 + position, 510.0])
    np.testing.assert_array_equal(ann.princpt, [32.0, 30.0 + position])
    assert (ann.parent_id, ann.family, ann.camera) == (position, 'smpl', 'virtual')


def test_a_missing_stale_or_overlapping_shard_is_an_error(tmp_path):
  output = str(tmp_path / 'out')
  ann_ids = list(range(6))
  _write_shards(output, ann_ids, 2, {'step': 4})
  with pytest.raises(ValueError, match=r'made from \{.step.: 4\}'):
    shards.merge_shards(output, 2, {'step': 5}, 6)
  # Process 1 annotated sample 0 again (as if it read the wrong share).
  shards.write_shard(shards.shard_path(output, 1, 2),
                          {a: _annotation(0.0) for a in (0, 4, 5)}, made_from={'step': 4},
                          start=3, stop=6, num_samples=6, skipped=[], seconds=1.0)
  with pytest.raises(ValueError, match='ann_id 0 appears in'):
    shards.merge_shards(output, 2, {'step': 4}, 6)
  # Process 1 wrote fewer annotations than its share holds samples.
  shards.write_shard(shards.shard_path(output, 1, 2),
                          {a: _annotation(0.0) for a in (3, 4)}, made_from={'step': 4},
                          start=3, stop=6, num_samples=6, skipped=[], seconds=1.0)
  with pytest.raises(ValueError, match='2 annotated or skipped samples for a share of 3'):
    shards.merge_shards(output, 2, {'step': 4}, 6)
  os.remove(shards.shard_path(output, 1, 2))
  with pytest.raises(ValueError, match='shard-00001-of-00002.npz is missing'):
    shards.merge_shards(output, 2, {'step': 4}, 6)


def test_a_shard_is_current_only_for_the_same_share_and_model(tmp_path):
  output = str(tmp_path / 'out')
  _write_shards(output, list(range(5)), 2, {'step': 4})
  path = shards.shard_path(output, 1, 2)
  assert shards.shard_is_current(path, {'step': 4}, 2, 5, 5)
  assert not shards.shard_is_current(path, {'step': 5}, 2, 5, 5)
  assert not shards.shard_is_current(path, {'step': 4}, 3, 6, 6)
  with open(path, 'wb') as f:
    f.write(b'half a file')
  assert not shards.shard_is_current(path, {'step': 4}, 2, 5, 5)


def test_the_annotation_rate_counts_only_the_shards_made_now():
  # Two processes side by side, one share reused from an earlier run (not passed).
  made = shards.made_now([{'ann_ids': [0, 1, 2], 'seconds': 2.0},
                               {'ann_ids': [3, 4, 5, 6, 7], 'seconds': 4.0}])
  assert made == {'samples': 8, 'seconds': 4.0}
  assert shards.images_per_s(made) == pytest.approx(2.0)
  assert shards.made_now([]) is None


def test_annotating_in_shards_redoes_only_what_is_missing(tmp_path):
  output = str(tmp_path / 'out')
  calls = []

  def annotate_share():
    calls.append('annotate')
    return {a: _annotation(float(a)) for a in range(4)}, [4]

  def prepare():
    calls.append('prepare')

  merged, skipped, made_now = shards.annotate_in_shards(annotate_share, output,
                                                             {'step': 1}, 5, prepare=prepare)
  assert calls == ['prepare', 'annotate'] and list(merged) == [0, 1, 2, 3] and skipped == [4]
  assert made_now['samples'] == 4 and made_now['seconds'] > 0
  # Re-run (as after a kill before the merged file was written): the shard is reused.
  calls.clear()
  merged, _, made_now = shards.annotate_in_shards(annotate_share, output, {'step': 1}, 5,
                                                       prepare=prepare)
  assert calls == [] and list(merged) == [0, 1, 2, 3]
  # Nothing annotated now: no rate (issue 17, item 15: 'annotate 28124.9 images/s').
  assert made_now is None and shards.images_per_s(made_now) is None
  # A newer checkpoint: annotated again.
  shards.annotate_in_shards(annotate_share, output, {'step': 2}, 5, prepare=prepare)
  assert calls == ['prepare', 'annotate']


# ----------------------------------------------------------------------------- 2 processes


# test_main's tiny run: 2 steps, both checkpoints kept. The runs sum the gradients over the
# devices in different orders, so they differ by float rounding from the first step on. Two
# things make that visible: Adam's first update is +-lr by the sign of each gradient entry,
# and the sign of an entry that is ~0 is rounding noise (hence a larger epsilon here: the
# update of such an entry is then ~0 as well); and this ResNet, with BatchNorm over 4 samples
# of 1x1 maps in its last stage, amplifies rounding differences from step to step (measured
# the same between a 4- and a 2-device run in one process): measured here, the parameters
# differ by 2e-6 after one step, 7e-5 after two and 1e-3 (one Adam step) after three. So
# the first step is compared to 1% of an Adam step (lr), the second to a quarter of one.
RUN = {**TINY, 'train.num_steps': 2, 'train.adam_eps': 1e-2, 'train.max_to_keep': 2,
       'stages': 'train,annotate'}
LR = 1e-3  # configs/synthetic_body.py


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launch(workdir, devices, overrides, *distributed_flags):
  """`python -m neuralannot_jax.main` on `devices` CPU devices, as a user starts it."""
  cmd = [sys.executable, '-m', 'neuralannot_jax.main', '--config=configs/synthetic_body.py',
         f'--workdir={workdir}', *[f'--config.{k}={v}' for k, v in overrides.items()],
         *distributed_flags]
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'JAX_NUM_CPU_DEVICES': str(devices)}
  return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _finish(procs, timeout=900):
  outputs = []
  try:
    for proc in procs:
      out, err = proc.communicate(timeout=timeout)
      assert proc.returncode == 0, err[-4000:]
      outputs.append(out)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  return outputs


def _two_processes(workdir, overrides):
  """The job as 2 processes x 2 CPU devices with a coordinator on 127.0.0.1; process 0's
  stdout."""
  port = _free_port()
  stdout, _ = _finish([
      _launch(workdir, 2, overrides, f'--coordinator_address=127.0.0.1:{port}',
              '--num_processes=2', f'--process_id={p}') for p in range(2)])
  return stdout


def _shared(one):
  """RUN on the set generated by the run in `one`: its body models and tfds build (process 0
  renders the images again into its own workdir while process 1 waits for it)."""
  return {**RUN, 'body_model.path': os.path.join(one, 'body_models'),
          'dataset.data_dir': os.path.join(one, 'tfds')}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """(1-process 4-device workdir, 2-process x 2-device workdir, process 0's stdout)."""
  one = str(tmp_path_factory.mktemp('one_process'))
  _finish([_launch(one, 4, RUN)])
  two = str(tmp_path_factory.mktemp('two_processes'))
  return one, two, _two_processes(two, _shared(one))


def _checkpoint(workdir, step):
  """{path: numpy array} of the orbax checkpoint `step`, read on this process's CPU."""
  import jax  # pylint: disable=import-outside-toplevel
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  path = os.path.join(workdir, 'train', 'checkpoints', str(step), 'default')
  checkpointer = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        checkpointer.metadata(path).item_metadata.tree)
  state = checkpointer.restore(path, target)
  return {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(state)}


def _lines(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f if line.strip()]


def test_two_processes_train_the_same_steps_as_one(runs):
  one, two, stdout = runs
  assert '4 x cpu' in stdout                      # one mesh over both processes' devices
  losses = [[m['loss'] for m in _lines(os.path.join(w, 'train', 'metrics.jsonl'))]
            for w in (one, two)]
  assert len(losses[1]) == 2                      # process 0 alone writes the log
  # The same global batches: each process loaded its rows of them (with duplicated rows, or
  # another process's, the losses differ at the percent level).
  np.testing.assert_allclose(losses[1][0], losses[0][0], rtol=1e-6)
  np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
  for step, atol in ((1, 0.01 * LR), (2, 0.25 * LR)):
    params = [_checkpoint(w, step) for w in (one, two)]
    assert params[0].keys() == params[1].keys()
    for key, value in params[0].items():
      if 'opt_state' not in key and value.dtype.kind == 'f':
        np.testing.assert_allclose(params[1][key], value, rtol=1e-5, atol=atol,
                                   err_msg=f'step {step} {key}')


def test_two_processes_annotate_the_set_once_into_the_same_file(runs):
  one, two, _ = runs
  files = [_load_json(os.path.join(w, 'pseudo_gt.json')) for w in (one, two)]
  assert list(files[1]) == list(files[0])         # every ann_id once, in sample order
  for ann_id, entry in files[0].items():
    for group in ('smpl_param', 'cam_param'):
      for name, value in entry[group].items():
        # Both runs' weights differ by float noise after two steps (the previous test);
        # through the network that came to 2.8e-4 rad on one machine. Another sample's
        # parameters, or a row annotated twice, differ by tenths.
        np.testing.assert_allclose(files[1][ann_id][group][name], value, rtol=0,
                                   atol=1e-3, err_msg=f'{ann_id} {group}.{name}')
  with np.load(os.path.join(two, 'pseudo_gt.npz')) as npz, \
      np.load(os.path.join(one, 'pseudo_gt.npz')) as reference:
    assert sorted(npz.files) == sorted(reference.files)
    np.testing.assert_array_equal(npz['ann_ids'], reference['ann_ids'])
  record = _load_json(os.path.join(two, 'pseudo_gt.record.json'))
  assert record['processes'] == 2 and record['step'] == 2 and record['samples'] == len(files[0])
  assert not shards.shard_files(os.path.join(two, 'pseudo_gt'))   # merged, removed


def test_a_run_killed_after_one_shard_annotates_only_the_rest(runs):
  """Process 0 wrote its shard, then the job died before the merge: the re-run keeps that
  shard and process 1 annotates its share (both restore the checkpoint, collectively)."""
  one, two, _ = runs
  released = _load_json(os.path.join(two, 'pseudo_gt.json'))
  with np.load(os.path.join(two, 'pseudo_gt.npz')) as npz:
    ann_ids = [a.item() for a in npz['ann_ids']]        # sample order
  start, stop = distributed.share(len(ann_ids), 0, 2)
  # What the real run's annotation was made from (checkpoint step, samples it covers).
  record = _load_json(os.path.join(two, 'pseudo_gt.record.json'))
  made_from = {k: record[k] for k in ('step', 'batch_norm_batches', 'check_facing', 'covers')}
  annotations = {}
  for ann_id in ann_ids[start:stop]:
    params, focal, princpt = export.from_released_entry('smpl', released[str(ann_id)])
    params['betas'] = np.full_like(params['betas'], 7.0)   # what no network predicted
    annotations[ann_id] = annotate_lib.Annotation(params, focal, princpt, 'smpl',
                                                  camera='dataset')
  shards.write_shard(shards.shard_path(os.path.join(two, 'pseudo_gt'), 0, 2),
                          annotations, made_from=made_from, start=start, stop=stop,
                          num_samples=len(ann_ids), skipped=[], seconds=1.0)
  for name in ('pseudo_gt.json', 'pseudo_gt.record.json'):
    os.remove(os.path.join(two, name))
  _two_processes(two, {**_shared(one), 'stages': 'annotate'})
  merged = _load_json(os.path.join(two, 'pseudo_gt.json'))
  assert list(merged) == list(released)
  for ann_id in ann_ids:
    shape = merged[str(ann_id)]['smpl_param']['shape']
    if ann_id in annotations:
      assert shape == [7.0] * 10                          # process 0's shard, kept
    else:                                                 # annotated again, same model
      np.testing.assert_allclose(shape, released[str(ann_id)]['smpl_param']['shape'],
                                 rtol=0, atol=1e-5)
  assert _load_json(os.path.join(two, 'pseudo_gt.record.json'))['step'] == 2
  assert not shards.shard_files(os.path.join(two, 'pseudo_gt'))


def _load_json(path):
  with open(path, encoding='utf-8') as f:
    return json.load(f)
