"""Tests of neuralannot_jax.train on a tiny setup: ResNet-18 at 32 px, stand-in SMPL, 8 fake
Human3.6M-like samples (MoCap mode), batches of 4."""

import dataclasses
import errno
import json
import os
import pickle
import shutil
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from body_models import synthetic
from neuralannot_jax import checkpoints
from neuralannot_jax import train as train_lib
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import pipeline
from neuralannot_jax.data.sample import make_sample

SIZE, CROP, BATCH = 64, 32, 4


def fake_samples(root, n=8, seed=0):
  """n H36M_17 samples: random camera-space joints 4 m away, projected; noise images with
  the joints drawn, written by cv2."""
  rng = np.random.default_rng(seed)
  focal, princpt = np.array([60.0, 60.0]), np.array([SIZE / 2, SIZE / 2])
  samples = []
  for i in range(n):
    j3 = np.zeros((17, 3))
    j3[:, :2] = rng.uniform(-0.6, 0.6, (17, 2))
    j3[:, 2] = 4 + rng.uniform(-0.2, 0.2, 17)
    j2 = j3[:, :2] / j3[:, 2:] * focal + princpt
    image = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    for p in j2:
      cv2.circle(image, (int(p[0]), int(p[1])), 2, (255, 0, 0), -1)
    path = os.path.join(root, f'{i}.jpg')
    cv2.imwrite(path, image)
    lo, hi = j2.min(0), j2.max(0)
    samples.append(make_sample('fake', dataset='fake', ann_id=i, image_path=path,
                               bbox=[lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]],
                               joint_set='H36M_17', joints_2d=j2, joints_3d=j3, focal=focal,
                               princpt=princpt, image_size=(SIZE, SIZE)))
  return samples


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp('train')
  synthetic.write_model('smpl', root)
  return str(root), fake_samples(str(root))


def config(root, **kw):
  values = dict(model_path=root, family='smpl', mode='mocap', joint_set='H36M_17', depth=10,
                crop_size=CROP, batch_size=BATCH, lr=1e-3, num_steps=4, checkpoint_every=2,
                log_every=1, num_workers=0, progress=False, seed=0,
                # Adam in its linear regime (see test_four_devices_match_one); also one
                # config for every test, so they share one compiled step.
                adam_eps=0.1)
  values.update(kw)
  return train_lib.TrainConfig(**values)


def params(model):
  """{path: numpy} of the model's nnx.Param values."""
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  return {'/'.join(map(str, k)): np.asarray(jax.device_get(v.get_value())) for k, v in flat}


def assert_params_close(a, b, rtol, atol):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def test_step_decreases_loss_on_a_fixed_batch(setup):
  import body_models  # pylint: disable=import-outside-toplevel
  root, samples = setup
  cfg = config(root)
  mesh = train_lib.make_mesh()
  model, optimizer = train_lib.create_train_state(cfg, mesh)
  # Restricted to the vertices the joints are read from and replicated, as `train` does, so
  # this test and the training runs of the others share one compiled step.
  spec = train_lib.make_step_spec(cfg)
  body_model, mapping = joint_sets.restrict_to_mapping(body_models.load(root, 'smpl'),
                                                       spec.mapping)
  spec = dataclasses.replace(spec, mapping=mapping)
  body_model = jax.device_put(body_model, NamedSharding(mesh, P()))
  loader = pipeline.Loader(samples, BATCH, train=True, out_size=CROP, num_workers=0,
                           augment=train_lib.NO_AUGMENT)
  batch, _ = next(iter(loader))
  batch = pipeline.shard(train_lib.step_batch(batch), mesh)
  losses = []
  for step in range(8):
    metrics = train_lib.train_step(model, optimizer, body_model, batch, step_spec=spec)
    losses.append(train_lib.check_finite(metrics, step + 1)['loss'])
  assert set(metrics) >= {'loss', 'joints_3d', 'joints_2d'}
  assert losses[-1] < 0.85 * losses[0], losses


def test_joint_encoder_sees_hand_joints_at_about_unit_scale(tmp_path):
  """Issue 16, item 2: a hand's root-relative joints (a few cm) enter the JointEncoder at
  about the scale of its validity channel (1), not as metres (~0.07)."""
  synthetic.write_model('mano', tmp_path)
  import body_models  # pylint: disable=import-outside-toplevel
  mano = body_models.load(str(tmp_path), 'mano')
  rng = np.random.default_rng(0)
  out = body_models.forward(mano, hand_pose=rng.uniform(-0.5, 0.5, (8, 45)).astype(np.float32))
  joints = np.asarray(out.joints)
  rel = joints - joints[:, :1]
  cfg = config(str(tmp_path), family='mano', joint_set='MANO_21', depth=10)
  model, _ = train_lib.create_train_state(cfg, train_lib.make_mesh())
  rms = np.sqrt(np.mean(np.square(rel / model.joint_encoder.scale)))
  assert 0.3 < rms < 3.0, rms


def test_nan_guard_names_the_step():
  with pytest.raises(FloatingPointError, match='step 7'):
    train_lib.check_finite({'loss': np.float32(np.nan)}, 7)


def test_lr_schedule_drops_tenfold():
  schedule = train_lib.lr_schedule(1e-3, (5,))
  assert np.isclose(schedule(4), 1e-3) and np.isclose(schedule(6), 1e-4)


def test_config_dict_and_unknown_keys():
  assert train_lib.as_config({'depth': 18}).depth == 18
  assert train_lib.as_config(ml_collections.ConfigDict({'lr_boundaries': (5,)})).lr_boundaries \
      == (5,)
  with pytest.raises(ValueError, match='unknown keys'):
    train_lib.as_config({'detph': 18})


class Killed(Exception):
  pass


@pytest.fixture(scope='module')
def full_run(setup, tmp_path_factory):
  """An uninterrupted run of `config`: (its workdir, its parameters)."""
  root, samples = setup
  workdir = str(tmp_path_factory.mktemp('full'))
  model, _ = train_lib.train(config(root), samples, workdir)
  return workdir, params(model)


def _logged_steps(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    return [json.loads(line)['step'] for line in f]


def test_kill_and_resume_matches_uninterrupted(setup, full_run, tmp_path, monkeypatch):
  root, samples = setup
  cfg = config(root)
  reference = full_run[1]

  # Die in the 4th step: step 3 is logged but not saved (checkpoints every 2 steps); the
  # checkpoint of step 2 must be on disk and the run resume from it.
  real_step, calls = train_lib.train_step, []

  def dying_step(*args, **kwargs):
    calls.append(1)
    if len(calls) == 4:
      raise Killed()
    return real_step(*args, **kwargs)

  workdir = str(tmp_path / 'killed')
  monkeypatch.setattr(train_lib, 'train_step', dying_step)
  with pytest.raises(Killed):
    train_lib.train(cfg, samples, workdir)
  monkeypatch.setattr(train_lib, 'train_step', real_step)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
  assert _logged_steps(workdir) == [1, 2, 3]

  resumed, optimizer = train_lib.train(cfg, samples, workdir)
  assert int(optimizer.step.get_value()) == 4
  # Step 3, logged by the killed run and again by the resumed one, appears once.
  assert _logged_steps(workdir) == [1, 2, 3, 4]
  assert_params_close(params(resumed), reference, rtol=1e-5, atol=1e-6)


def test_stage_two_starts_from_the_network_of_another_run(setup, full_run, tmp_path):
  root, samples = setup
  # A warm start would move the weights: it is skipped when a network is given.
  cfg = config(root, init_weights=full_run[0], num_steps=0, warm_start_steps=2)
  model, optimizer = train_lib.train(cfg, samples, str(tmp_path / 'stage2'))
  assert_params_close(params(model), full_run[1], rtol=0, atol=0)
  assert int(optimizer.step.get_value()) == 0   # the optimizer starts afresh
  with pytest.raises(ValueError, match='no checkpoint in .*empty'):
    train_lib.train(config(root, init_weights=str(tmp_path / 'empty')), samples,
                    str(tmp_path / 'stage2b'))


def _restored_state(root, workdir, step):
  """The model + optimizer state of checkpoint `step` in `workdir`."""
  cfg = config(root)
  mesh = train_lib.make_mesh()
  model, optimizer = train_lib.create_train_state(cfg, mesh)
  manager = checkpoints.checkpoint_manager(workdir, cfg)
  try:
    checkpoints.restore(manager, cfg, mesh, model, optimizer, step)
  finally:
    manager.close()
  return nnx.state((model, optimizer))


def test_a_diverged_update_is_never_saved(setup, tmp_path, monkeypatch):
  """Issue 17, item 6: the loss is checked before the update, so an update that blows the
  model up passes the loss guard; its state must not become the latest checkpoint."""
  root, samples = setup
  real_step, calls = train_lib.train_step, []

  def diverging_step(model, *args, **kwargs):
    calls.append(1)
    metrics = real_step(model, *args, **kwargs)   # the loss of the state before the update
    if len(calls) == 3:
      nnx.update(model, jax.tree.map(lambda x: x * jnp.nan, nnx.state(model, nnx.Param)))
    return metrics

  workdir = str(tmp_path / 'diverged')
  monkeypatch.setattr(train_lib, 'train_step', diverging_step)
  with pytest.raises(train_lib.DivergedError, match=r'after step 3.*train\.resume_step'):
    train_lib.train(config(root, num_steps=3, checkpoint_every=1), samples, workdir)
  assert isinstance(train_lib.DivergedError('x'), ValueError)   # one `error:` line in main
  # The finite checkpoints are kept (max_to_keep=2) and the latest of them is finite.
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1', '2']
  state = _restored_state(root, workdir, 2)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state)
             if jnp.issubdtype(x.dtype, jnp.inexact))
  assert not bool(train_lib.all_finite(jax.tree.map(lambda x: x * jnp.nan, state)))


def test_resume_from_a_chosen_step(setup, full_run, tmp_path, monkeypatch):
  root, samples = setup
  workdir = str(tmp_path / 'resumed')
  shutil.copytree(full_run[0], workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  with pytest.raises(ValueError, match=r'resume_step=3.*saved steps: \[2, 4\]'):
    train_lib.train(config(root, resume_step=3), samples, workdir)

  real_step, calls = train_lib.train_step, []

  def counted_step(*args, **kwargs):
    calls.append(1)
    return real_step(*args, **kwargs)

  monkeypatch.setattr(train_lib, 'train_step', counted_step)
  resumed, _ = train_lib.train(config(root, resume_step=2), samples, workdir)
  assert len(calls) == 2                                  # steps 3 and 4 again, not none
  assert_params_close(params(resumed), full_run[1], rtol=1e-5, atol=1e-6)
  assert _logged_steps(workdir) == [1, 2, 3, 4]
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']


@pytest.mark.parametrize('error', [
    OSError(errno.ENOSPC, 'No space left on device'),
    # What orbax's tensorstore writes raise on a full disk.
    ValueError('RESOURCE_EXHAUSTED: Error writing local file "x/_sharding": Failed to write '
               "44466 bytes to file 4: No space left on device [os_error_code='28']")])
def test_a_full_disk_is_one_error_naming_the_checkpoints(setup, tmp_path, monkeypatch, error):
  """Issue 17, item 13: a failed save is reported once, as an OSError naming the folder."""
  root, samples = setup

  def full_disk(*args, **kwargs):
    raise error

  monkeypatch.setattr(ocp.CheckpointManager, 'save', full_disk)
  workdir = str(tmp_path / 'full_disk')
  with pytest.raises(OSError) as info:
    train_lib.train(config(root, num_steps=1), samples, workdir)
  assert info.value.errno == errno.ENOSPC
  assert info.value.filename == os.path.join(workdir, 'checkpoints')
  assert str(info.value).count('No space left on device') == 1


FOUR_DEVICES = r'''
import pickle, sys
import jax
jax.config.update('jax_num_cpu_devices', 4)
import numpy as np
from flax import nnx
from neuralannot_jax import checkpoints
from neuralannot_jax import train as train_lib
cfg, samples, workdir, out = pickle.load(open(sys.argv[1], 'rb'))
assert jax.device_count() == 4
model, _ = train_lib.train(cfg, samples, workdir)
flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
np.savez(out, **{'/'.join(map(str, k)): np.asarray(jax.device_get(v.get_value()))
                 for k, v in flat})
'''


def test_four_devices_match_one(setup, tmp_path):
  root, samples = setup
  # With a warm start of the joint branch first: its batch is gathered on the devices.
  cfg = config(root, num_steps=2, warm_start_steps=3, warm_start_batch=8)
  one, _ = train_lib.train(cfg, samples, str(tmp_path / 'one'))
  args = tmp_path / 'args.pkl'
  out = tmp_path / 'four.npz'
  with open(args, 'wb') as f:
    pickle.dump((cfg, samples, str(tmp_path / 'four'), str(out)), f)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', FOUR_DEVICES, str(args)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  four = dict(np.load(out))
  # BatchNorm under jit normalises with the global batch's statistics, so 4 devices compute
  # the same step as 1, up to the order of float reductions: the losses agree to float noise.
  losses = [[json.loads(line)['loss'] for line in open(tmp_path / name / 'metrics.jsonl',
                                                       encoding='utf-8')]
            for name in ('one', 'four')]
  np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
  # Parameters: Adam divides each gradient entry by its own magnitude, so with its default eps
  # every early step is about lr * sign(g), and reduction-order noise in a near-zero entry
  # flips a whole step. The tests train with adam_eps=0.1 (see `config`): the update is then
  # about lr * g / eps, linear in the gradient, and the two runs agree to float precision;
  # per-device BN statistics would be far off.
  assert_params_close(four, params(one), rtol=1e-4, atol=1e-3 * cfg.lr)



def test_warm_start_overfits_a_handful_of_bodies_from_their_joints(setup, tmp_path):
  """Overfit check of the MoCap objective and the joint branch: eight stand-in bodies'
  Human3.6M joints, the joint branch alone (`warm_start_joints`), driven to a low joint
  error; the image branch's parameters are not touched."""
  import body_models  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.method import decode  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.data.synthetic import poses  # pylint: disable=import-outside-toplevel
  root, _ = setup
  smpl = body_models.load(root, 'smpl')
  rng = np.random.default_rng(3)
  n = 8
  body_pose = np.stack([poses.sample_body_pose(rng).reshape(-1) for _ in range(n)])
  facing = np.tile([np.pi, 0.0, 0.0], (n, 1))
  out = smpl(global_orient=facing, body_pose=body_pose, transl=np.tile([0, 0, 4.0], (n, 1)))
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  joints = np.asarray(mapping.apply(out.joints, out.vertices), np.float32)
  samples = [make_sample('fake', dataset='fake', ann_id=i, image_path='unused.jpg',
                         bbox=[0, 0, 10, 10], joint_set='H36M_17', joints_2d=np.zeros((17, 2)),
                         joints_3d=joints[i], joints_3d_valid=np.asarray(mapping.valid),
                         focal=np.array([60.0, 60.0]), princpt=np.array([32.0, 32.0]),
                         image_size=(64, 64)) for i in range(n)]
  # Adam's usual epsilon (the warm start takes the run's): the suite's 0.1 damps it.
  cfg = config(root, warm_start_steps=200, warm_start_batch=8, warm_start_lr=2e-3,
               adam_eps=1e-8)
  mesh = train_lib.make_mesh()
  model, _ = train_lib.create_train_state(cfg, mesh)
  before = params(model)
  step_spec = train_lib.make_step_spec(cfg)
  # As `train` calls it: the model skins only the vertices the joints are read from.
  restricted, restricted_mapping = joint_sets.restrict_to_mapping(smpl, step_spec.mapping)
  train_lib.warm_start_joints(cfg, model, restricted, samples,
                              dataclasses.replace(step_spec, mapping=restricted_mapping), mesh)
  after = params(model)
  assert all(np.array_equal(before[k], after[k]) for k in before if k.startswith('backbone'))

  spec = step_spec.spec
  rel = joints - joints[:, :1]
  raw = model.from_joints(jnp.asarray(rel), jnp.asarray(np.tile(mapping.valid, (n, 1))))
  pred = decode.decode_rotmats(spec, spec.split(raw), pose_mean=smpl.pose_mean)
  fitted = body_models.forward_rotmats(smpl, pred['rotmats'], pred['betas'])
  got = np.asarray(mapping.apply(fitted.joints, fitted.vertices))
  got = got - got[:, :1]
  err = np.linalg.norm(got - rel, axis=-1)[:, np.asarray(mapping.valid) > 0].mean()
  start = np.linalg.norm(rel, axis=-1).mean()
  assert err < 0.02, err * 1000       # from ~400 mm of spread to < 20 mm (8.8 mm measured)
  assert err < 0.1 * start
