"""Data-parallel training of the annotator: one jitted step, optax Adam, orbax checkpoints.

The step (see DESIGN.md, "Decisions on the JAX stack"): a 1-D mesh `('data',)` over every
device, the batch split along it (NamedSharding(mesh, P('data'))), model and optimizer state
replicated, and one `nnx.jit` function that runs

  images (+ root-relative GT 3D joints in MoCap mode) -> Annotator -> HeadSpec.split
  -> decode.decode_rotmats -> body_models.forward_rotmats -> JointMapping.apply
  -> losses.neuralannot_loss -> grads -> Adam update.

BatchNorm under `jit` normalises with statistics of the *global* batch, so a run on n devices
computes the same step as a run on one device with the same global batch.

    config = TrainConfig(model_path='models', family='smpl', mode='mocap',
                         joint_set='H36M_17', num_steps=20000)
    model, optimizer = train(config, samples, '/tmp/run')   # resumes if /tmp/run has checkpoints

`<workdir>/metrics.jsonl` gets one JSON line per logged step; `<workdir>/checkpoints` holds the
orbax checkpoints (model + optimizer state; the step is the optimizer's step count), each
finite (a diverged state is refused, `save_checkpoint`) and recording the network it holds
(`checkpoints.model_record`), so that resuming or annotating with another network is a clear
error. The checkpoint files themselves are `checkpoints.py`'s.
"""

import dataclasses
import functools
import hashlib
import math
import os
import time
from typing import Any, Optional, Sequence

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax
from flax import nnx

import body_models
from body_models import rotations
from body_models import vposer as vposer_lib
from neuralannot_jax import checkpoints
from neuralannot_jax import two_stage
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import pipeline
from neuralannot_jax.method import camera
from neuralannot_jax.method import decode
from neuralannot_jax.method import facing
from neuralannot_jax.method import finger_prior
from neuralannot_jax.method import losses
from neuralannot_jax.models import annotator as annotator_lib
from neuralannot_jax.models import resnet
from neuralannot_jax.runtime import metrics_log


@dataclasses.dataclass
class TrainConfig:
  """What `train` needs. An ml_collections ConfigDict with these keys works too (`as_config`).

  Attributes:
    model_path: body-model file or smplx-layout folder (`body_models.load`).
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    mode: 'mocap' (GT 3D joints, fed to the network too) or 'wild' (GT 2D only).
    joint_set: the dataset's joint set name (`joint_sets.get`), e.g. 'H36M_17', 'COCO_17'.
    regressor: optional (T, V) vertex regressor (array or .npy path) for the joint set.
    hand_side: 'left' / 'right' for single-hand sets on SMPL-X (see `model_joint_mapping`).
    num_landmarks: the body model's face landmark count (`BodyModel.num_landmarks`), which
      face joint sets are read from; `train` sets it from the model it loads.
    vposer_path: VPoser weights for 'wild' SMPL / SMPL-X; None draws random weights (tests only).
    depth: ResNet depth, 10, 18, 34 or 50 (10: one block per stage, for CPU trials).
    backbone_weights: optional converted torchvision .npz (`resnet.load_weights`).
    crop_size: network input side S in pixels.
    batch_size: per-process batch size (a multiple of the local device count).
    lr: Adam learning rate.
    lr_boundaries: steps at which the lr drops x10 (the paper drops it "on convergence").
    adam_eps: Adam's epsilon (optax's 1e-8 by default). A larger value damps the update of
      near-zero gradient entries, which Adam otherwise scales up to a full step.
    num_steps: total optimizer steps (a resumed run counts from its checkpoint).
    warm_start_steps: MoCap mode: steps of `warm_start_joints` before the first step of a
      fresh run (0: none); warm_start_batch, warm_start_lr: its global batch and Adam lr.
    seed: parameter init, shuffling and augmentation.
    augment: random scale / rotation / colour / flip in training.
    weights: loss weights {term: weight}; None = losses.default_weights(mode, family).
    initial_pseudo_gt: two-stage training (`two_stage`): a released-layout pseudo-GT file
      of the training samples whose parameters supervise the network too; None: off.
    param_weights: {'param_rot', 'param_betas'} for it; None = two_stage.DEFAULT_WEIGHTS.
    init_weights: a finished run's work directory (or its checkpoints folder) whose latest
      network starts a fresh run, e.g. stage two from stage one's network; the optimizer
      and its schedule start afresh and the MoCap warm start is skipped. None: off.
    either_facing: in-the-wild SMPL / SMPL-X: the 2D term scores each predicted body or its
      facing twin, whichever is nearer (`facing`); annotation's facing check then turns
      each body by its labels. False: the plain 2D term.
    compute_dtype: 'float32' or 'bfloat16' (parameters stay float32).
    checkpoint_every: save every this many steps (and always at the end); 0 = only at the end.
    max_to_keep: checkpoints kept on disk.
    resume_step: resume from the checkpoint of this step (0: the latest); the later ones are
      deleted (they belong to the run being abandoned, e.g. one that diverged).
    log_every: metrics.jsonl / progress-bar period in steps.
    num_workers: decode threads of the Loader.
    progress: show a tqdm bar.
    tensorboard: also log to <workdir>/tensorboard when the tensorboard package is installed.
  """
  model_path: str = ''
  family: str = 'smpl'
  mode: str = 'mocap'
  joint_set: str = 'H36M_17'
  regressor: Any = None
  hand_side: Optional[str] = None
  num_landmarks: int = 0
  vposer_path: Optional[str] = None
  depth: int = 50
  backbone_weights: Optional[str] = None
  crop_size: int = 256
  batch_size: int = 32
  lr: float = 1e-4
  lr_boundaries: Sequence[int] = ()
  adam_eps: float = 1e-8
  num_steps: int = 1000
  warm_start_steps: int = 0
  warm_start_batch: int = 128
  warm_start_lr: float = 1e-3
  seed: int = 0
  augment: bool = True
  weights: Optional[dict] = None
  initial_pseudo_gt: Optional[str] = None
  either_facing: bool = True
  param_weights: Optional[dict] = None
  init_weights: Optional[str] = None
  compute_dtype: str = 'float32'
  checkpoint_every: int = 1000
  max_to_keep: int = 2
  resume_step: int = 0
  log_every: int = 10
  num_workers: int = 4
  progress: bool = True
  tensorboard: bool = True


def as_config(config) -> TrainConfig:
  """A TrainConfig from a TrainConfig, a dict or an ml_collections ConfigDict (unknown keys
  are an error, so a typo in a config file does not silently train with a default)."""
  if isinstance(config, TrainConfig):
    return config
  values = config.to_dict() if hasattr(config, 'to_dict') else dict(config)
  known = {f.name for f in dataclasses.fields(TrainConfig)}
  unknown = sorted(set(values) - known)
  if unknown:
    raise ValueError(f'train config: unknown keys {unknown}; known keys are {sorted(known)}')
  return TrainConfig(**values)


# ----------------------------------------------------------------------------- state


def make_mesh():
  """1-D mesh named 'data' over every device of every process, axis type Auto.

  Auto, not jax 0.10's default Explicit: with Explicit axes every contraction over the batch
  (weight gradients, the body model's custom VJP) must state its output sharding; with Auto
  XLA propagates it (the batch is sharded, the parameters replicated, the reductions become
  all-reduces).
  """
  return jax.make_mesh((jax.device_count(),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,))


def lr_schedule(lr, boundaries=()):
  """Constant `lr`, divided by 10 at each step of `boundaries` (optax piecewise constant)."""
  return optax.piecewise_constant_schedule(lr, {int(b): 0.1 for b in boundaries})


@functools.lru_cache(maxsize=None)
def adam(lr, boundaries=(), eps=1e-8):
  """optax Adam on `lr_schedule`, one object per (lr, boundaries, eps).

  The transformation is static data of the nnx.Optimizer (part of its graph definition),
  compared by identity: reusing it lets equal configs share one compiled train step.
  """
  return optax.adam(lr_schedule(lr, boundaries), eps=eps)


def head_spec(config) -> decode.HeadSpec:
  """The HeadSpec of the config's family, mode and crop size."""
  return decode.HeadSpec(config.family, config.mode, crop_size=int(config.crop_size))


# Metres of root-relative GT joint that the JointEncoder sees as 1, by the part a family
# annotates: about the joints' spread (std ~0.3 m over a body's joints, ~7 cm over a
# hand's). Unscaled, a hand's joints were ~0.07 beside a validity channel of 1 and the
# encoder learned them slowly.
JOINT_INPUT_SCALE = {'body': 0.3, 'hand': 0.07, 'face': 0.07}


def create_train_state(config, mesh=None):
  """A fresh model and optimizer, both replicated over `mesh`.

  Args:
    config: TrainConfig (or anything `as_config` takes): family, mode, joint_set, depth,
      crop_size, lr, lr_boundaries, seed, compute_dtype, backbone_weights.
    mesh: the data mesh (default `make_mesh()`).
  Returns:
    (Annotator, nnx.Optimizer over its nnx.Param with Adam on `lr_schedule`).
  """
  config = as_config(config)
  mesh = make_mesh() if mesh is None else mesh
  spec = head_spec(config)
  dtype = jnp.dtype(config.compute_dtype)
  rngs = nnx.Rngs(config.seed)
  backbone = resnet.ResNet(int(config.depth), rngs=rngs, dtype=dtype)
  if config.backbone_weights:
    resnet.load_weights(backbone, config.backbone_weights)
  num_joints = joint_sets.get(config.joint_set).num_joints if config.mode == 'mocap' else None
  # The neutral bias starts every sample upright, facing the camera, at the mean pose and
  # shape, at a typical depth.
  model = annotator_lib.Annotator(
      backbone, spec.size, num_joints_3d=num_joints, rngs=rngs, dtype=dtype,
      output_bias=spec.neutral(),
      joint_scale=JOINT_INPUT_SCALE[camera.FAMILY_PART[config.family]])
  model.train()
  replicate(mesh, model)
  return model, run_optimizer(config, model, mesh)


def run_optimizer(config, model, mesh):
  """The run's nnx.Optimizer over `model`'s nnx.Param (Adam on `lr_schedule`: lr,
  lr_boundaries, adam_eps of `config`), replicated over `mesh`."""
  tx = adam(float(config.lr), tuple(int(b) for b in config.lr_boundaries),
            float(config.adam_eps))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  replicate(mesh, optimizer)
  return optimizer


def replicate(mesh, *nodes):
  """Put every array of the NNX `nodes` on all devices of `mesh` (in place)."""
  sharding = NamedSharding(mesh, P())
  for node in nodes:
    nnx.update(node, jax.device_put(nnx.state(node), sharding))


# ----------------------------------------------------------------------------- step


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Static description of the loss, hashable: the step compiles once per distinct StepSpec.

  spec: the HeadSpec; mapping: joint_sets.JointMapping of the model to the dataset's set
  (compared by identity, so `make_step_spec` reuses one per family / set / side);
  root: the set's root index for root-relative 3D (0 when the set names none);
  weights: loss weights as sorted (term, weight) pairs, or None (`loss_weights`: the mode's
    and family's defaults);
  param_weights: the same for the two-stage parameter terms (used when a batch has targets);
  either_facing: in-the-wild bodies: the 2D term scores each body or its facing twin,
    whichever is nearer (`facing.either_facing_joints`).
  """
  spec: decode.HeadSpec
  mapping: joint_sets.JointMapping
  root: int = 0
  weights: Optional[tuple] = None
  param_weights: Optional[tuple] = None
  either_facing: bool = False


def loss_weights(step_spec):
  """{term: weight} of a StepSpec: its own, or `losses.default_weights` of its mode and
  family."""
  if step_spec.weights is not None:
    return dict(step_spec.weights)
  return losses.default_weights(step_spec.spec.mode, step_spec.spec.family)


_MAPPINGS = {}


def _mapping(family, joint_set, side, num_landmarks, regressor_key, regressor):
  key = (family, joint_set, side, num_landmarks, regressor_key)
  if key not in _MAPPINGS:
    _MAPPINGS[key] = joint_sets.model_joint_mapping(family, joint_set, side=side,
                                                    num_landmarks=num_landmarks,
                                                    regressor=regressor)
  return _MAPPINGS[key]


def make_step_spec(config) -> StepSpec:
  """The StepSpec of a config (family, mode, joint_set, regressor, hand_side, weights)."""
  config = as_config(config)
  jset = joint_sets.get(config.joint_set)
  # One mapping object per (family, set, side, regressor): equal configs then share a
  # compiled step (the regressor by its content: equal files in other folders are equal).
  regressor, key = None, None
  if config.regressor is not None:
    regressor = joint_sets.load_regressor(config.regressor, jset, config.family)
    key = (regressor.shape, hashlib.sha1(np.ascontiguousarray(regressor)).hexdigest())
  mapping = _mapping(config.family, jset.name, config.hand_side, int(config.num_landmarks),
                     key, regressor)
  weights = None if config.weights is None else tuple(sorted(dict(config.weights).items()))
  param_weights = (None if config.param_weights is None
                   else tuple(sorted(dict(config.param_weights).items())))
  spec = head_spec(config)
  either_facing = (bool(config.either_facing) and spec.mode == 'wild'
                   and spec.family in facing.FAMILIES)
  return StepSpec(spec, mapping, 0 if jset.root is None else int(jset.root),
                  weights, param_weights, either_facing)


def network_inputs(model, batch, root):
  """The Annotator's arguments from a batch: (images,) or (images, rel joints (B, K, 3),
  validity (B, K)) in MoCap mode, the joints relative to the root, or to the labelled
  joints' mean where the root is missing (`losses.anchor_relative`)."""
  if not model.mocap:
    return (batch['image'],)
  valid = batch['valid3d'] * batch['has_3d'][:, None]
  return batch.get('image'), losses.anchor_relative(batch['joints_3d'], valid, root), valid


@functools.lru_cache(maxsize=None)
def _hinges_below_root(family):
  """`losses.hinge_joints` indexed into the rotations below the root."""
  idx, axes = losses.hinge_joints(family)
  return idx - 1, axes


def mean_rotations(body_model):
  """(J, 3, 3) the model's mean pose as rotations (identity where it has none)."""
  return rotations.axis_angle_to_matrix(
      jnp.asarray(body_model.pose_mean, jnp.float32).reshape(-1, 3))


def loss_fn(model, body_model, batch, step_spec, vposer_params=None, joints_only=False):
  """NeuralAnnot loss of one batch.

  Args:
    model: the Annotator.
    body_model: body_models.BodyModel of the family.
    batch: pipeline batch (jax arrays): image (B, S, S, 3), joints_2d (B, K, 2), valid (B, K),
      joints_3d (B, K, 3), valid3d (B, K), has_3d (B,), mask (B,).
    step_spec: StepSpec.
    vposer_params: VPoser weights for 'wild' SMPL / SMPL-X, else None.
    joints_only: MoCap mode: the joint branch alone (`Annotator.from_joints`; the batch
      needs no image), for `warm_start_joints`.
  Returns:
    (total scalar, {term: scalar}).
  """
  spec, mapping = step_spec.spec, step_spec.mapping
  if joints_only:
    raw = model.from_joints(*network_inputs(model, batch, step_spec.root)[1:])
  else:
    raw = model(*network_inputs(model, batch, step_spec.root))  # (B, spec.size)
  parts = spec.split(raw)
  hand_components = body_model.hand_components or None
  params = decode.decode_rotmats(spec, parts, vposer_params=vposer_params,
                                 hand_components=hand_components,
                                 pose_mean=body_model.pose_mean)
  transl = params.pop('transl')  # the loss adds it itself (3D terms are camera-free)
  out = body_models.forward_rotmats(body_model, **params)
  joints = mapping.apply(out.joints, out.vertices)  # (B, T, 3)
  if step_spec.either_facing:
    valid = batch['valid'] * mapping.valid[None] * batch['mask'][:, None]
    joints = facing.either_facing_joints(
        body_model, mapping, params['rotmats'], out, joints, transl, batch['joints_2d'],
        valid, crop_size=spec.crop_size, focal=spec.focal, betas=params.get('betas'),
        expression=params.get('expression'))
  total, terms = losses.neuralannot_loss(
      joints, batch, transl, spec.mode, loss_weights(step_spec), params=parts,
      root_index=step_spec.root, joint_valid=mapping.valid, focal=spec.focal,
      rotmats=params['rotmats'][:, 1:], pose_reference=mean_rotations(body_model)[1:],
      pose_weights=losses.pose_rot_joint_weights(
          body_model.joint_names[1:params['rotmats'].shape[1]]),
      hinges=_hinges_below_root(spec.family),
      finger_hinges=(finger_prior.finger_hinges(body_model.joint_template)
                     if spec.family == 'mano' else None))
  if 'target_pose' in batch:  # two-stage: the initial pseudo-GTs supervise the parameters
    extra = two_stage.loss(params['rotmats'], params['betas'], batch, spec.family,
                           None if step_spec.param_weights is None
                           else dict(step_spec.param_weights), row=batch.get('mask'))
    total, terms = total + sum(extra.values()), {**terms, **extra}
  return total, terms


@functools.partial(nnx.jit, static_argnames=('step_spec',))
def train_step(model, optimizer, body_model, batch, vposer_params=None, *, step_spec):
  """One Adam step on one (sharded) batch; updates `model` and `optimizer` in place.

  Returns:
    {'loss': total, term name: weighted term} scalars (still on device).
  """
  grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
  (total, terms), grads = grad_fn(model, body_model, batch, step_spec, vposer_params)
  optimizer.update(model, grads)
  return {'loss': total, **terms}


# The parameters a warm start trains: all but the backbone's (which it never calls; an
# optimizer over them would still rewrite their Adam moments every step).
WARM_START_PARAMS = nnx.All(nnx.Param, nnx.Not(nnx.PathContains('backbone')))


def warm_start_update(model, optimizer, body_model, batch, step_spec):
  """One Adam step of the joint branch alone (`loss_fn(..., joints_only=True)`), in place."""
  grad_fn = nnx.value_and_grad(
      functools.partial(loss_fn, joints_only=True),
      argnums=nnx.DiffState(0, WARM_START_PARAMS), has_aux=True)
  (total, terms), grads = grad_fn(model, body_model, batch, step_spec)
  optimizer.update(model, grads)
  return {'loss': total, **terms}


# Warm-start steps per compiled call. nnx.jit walks the model's graph in Python on every
# call (~30 ms on the demo's 2 cores, more than a step of 128 bodies computes), so the
# steps run in a lax.scan and the graph is walked once per chunk: the demo's 10000 steps
# went from about 5 minutes to under 3.
WARM_START_CHUNK = 100


@functools.partial(jax.jit, static_argnames=('graphdef', 'step_spec', 'sharding'))
def warm_start_chunk(state, body_model, joints, valid, indices, *, graphdef, step_spec,
                     sharding):
  """`indices.shape[0]` warm-start steps in one call.

  Args:
    state: nnx.State of (model, optimizer), split with `graphdef`.
    joints, valid: (N, K, 3) and (N, K) the GT 3D joints of every sample (replicated).
    indices: (S, B) int32 the rows of each step's global batch.
    sharding: the batch's NamedSharding (split over the data axis).
  Returns:
    (the new state, {term: (S,) per-step values}).
  """
  def step(state, idx):
    model, optimizer = nnx.merge(graphdef, state)
    batch = jax.lax.with_sharding_constraint(
        {'joints_3d': joints[idx], 'valid3d': valid[idx],
         'has_3d': jnp.ones(idx.shape, jnp.float32),
         'mask': jnp.ones(idx.shape, jnp.float32)}, sharding)
    metrics = warm_start_update(model, optimizer, body_model, batch, step_spec)
    return nnx.state((model, optimizer)), metrics
  return jax.lax.scan(step, state, indices)


def warm_start_joints(config, model, body_model, samples, step_spec, mesh):
  """MoCap mode: train the joint encoder and the head on the GT 3D joints alone first.

  The mapping from 3D joints to rotations is what a MoCap annotator mostly learns, and it
  needs many small steps; with a backbone in every step that is the bulk of a CPU budget.
  Here the image feature is held at zero (`Annotator.from_joints`), so a step costs the
  body model's joints only, and the full training starts from a head that already maps
  joints to a body. Root-relative 3D joint loss and the parameter priors (the 2D term
  needs crops; the camera is left to the full training). A separate Adam at
  `warm_start_lr` (x0.1 for the last fifth); the run's optimizer starts fresh after it.
  Every process holds every sample's joints and draws the same rows, so the global batch
  is gathered on the devices (split over the data axis) without a host transfer per step.

  Args:
    config: TrainConfig (warm_start_steps, warm_start_batch, warm_start_lr, seed).
    model: the fresh Annotator (updated in place).
    body_model, step_spec: as for `train_step` (restricted model and mapping).
    samples: the training samples; those with 3D joints are used.
    mesh: the data mesh.
  """
  joints, valid = [], []
  for sample in samples:
    if sample.joints_3d is not None:
      joints.append(np.asarray(sample.joints_3d, np.float32))
      valid.append(np.asarray(sample.joints_3d_valid, np.float32))
  if not joints:
    logging.warning('train: no sample has 3D joints; no warm start')
    return
  replicated = NamedSharding(mesh, P())
  joints, valid = (jax.make_array_from_process_local_data(replicated, np.stack(x))
                   for x in (joints, valid))
  steps = int(config.warm_start_steps)
  # The global batch: a multiple of the number of devices.
  global_batch = -(-int(config.warm_start_batch) // mesh.devices.size) * mesh.devices.size
  tx = adam(float(config.warm_start_lr), (int(steps * 0.8),), float(config.adam_eps))
  optimizer = nnx.Optimizer(model, tx, wrt=WARM_START_PARAMS)
  replicate(mesh, optimizer)
  weights = loss_weights(step_spec)
  weights.pop('joints_2d', None)
  spec = dataclasses.replace(step_spec, weights=tuple(sorted(weights.items())))
  rng = np.random.default_rng([int(config.seed), 7])   # the same rows on every process
  graphdef, state = nnx.split((model, optimizer))
  batch_sharding = NamedSharding(mesh, P('data'))
  bar = _progress(config, 0, steps, 'warm start')
  first = last = None
  done = 0
  while done < steps:
    size = min(WARM_START_CHUNK, steps - done)
    indices = rng.integers(0, joints.shape[0], (size, global_batch)).astype(np.int32)
    state, metrics = warm_start_chunk(
        state, body_model, joints, valid,
        jax.make_array_from_process_local_data(replicated, indices),
        graphdef=graphdef, step_spec=spec, sharding=batch_sharding)
    metrics = jax.device_get(metrics)                     # (size,) per term
    # One check per chunk (its last step): a non-finite step stays non-finite.
    last = check_finite({k: v[-1] for k, v in metrics.items()}, done + size)
    first = check_finite({k: v[0] for k, v in metrics.items()}, 1) if first is None else first
    done += size
    if bar is not None:
      bar.update(size)
  nnx.update((model, optimizer), state)
  if bar is not None:
    bar.close()
  logging.info('train: warm start of the joint branch, %d steps of %d: 3D joint loss '
               '%.4f -> %.4f', steps, global_batch, first['joints_3d'], last['joints_3d'])


class DivergedError(FloatingPointError, ValueError):
  """Training diverged (a non-finite loss or model). Also a ValueError: the command line
  reports it as one `error:` line, since the fix is a setting (learning rate, resume step)."""


def check_finite(metrics, step):
  """Host-side NaN / inf guard: float metrics, or DivergedError naming the step."""
  values = {k: float(v) for k, v in jax.device_get(metrics).items()}
  if not math.isfinite(values['loss']):
    raise DivergedError(
        f'train: the loss is not finite at step {step} ({values}); lower the learning rate '
        'or check the batch for bad annotations.')
  return values


@jax.jit
def all_finite(tree):
  """Whether every float array of `tree` is finite: one device bool, one reduction per array
  (cheap beside a step; run before each save, not every step)."""
  flags = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)
           if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(flags)) if flags else jnp.bool_(True)


# ----------------------------------------------------------------------------- loop


# Augmentation off: the crop is the GT box, every sample every epoch.
NO_AUGMENT = pipeline.Augment(scale_factor=0.0, rotation_factor=0.0, rotation_prob=0.0,
                              color_factor=0.0, flip_prob=0.0)

# Only these arrays enter the step: the rest of a batch (affine, ids, ...) stays on the host.
STEP_KEYS = ('image', 'joints_2d', 'valid', 'joints_3d', 'valid3d', 'has_3d', 'mask')


def step_batch(batch):
  """The float32 arrays of a pipeline batch the step reads (`STEP_KEYS`)."""
  return {k: np.asarray(batch[k], np.float32) for k in STEP_KEYS}


def load_vposer(config):
  """VPoser weights when the head predicts a latent, else None."""
  spec = head_spec(config)
  if not any(s.kind == decode.VPOSER for s in spec.slots):
    return None
  if config.vposer_path:
    return vposer_lib.load(config.vposer_path)
  logging.warning('train: no vposer_path; using random VPoser weights (tests only)')
  return vposer_lib.init_params(jax.random.key(config.seed), latent_dim=spec.latent_dim)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(manager, step, model, optimizer, config):
  """Save model + optimizer state as checkpoint `step`, recording the network.

  Raises:
    DivergedError when the state is not finite (the loss is checked before the update, so
      it can be finite while the update diverged): the checkpoints on disk stay the finite
      ones, and a re-run resumes from one of them.
    OSError (ENOSPC) naming the checkpoint folder when the disk is full.
  """
  state = nnx.state((model, optimizer))
  if not bool(all_finite(state)):
    raise DivergedError(f'train: the model is not finite after step {step} (the update '
                        f'diverged); it was not saved. {checkpoints.resume_hint(manager)}')
  checkpoints.save(manager, step, state, config)


def load_network(directory, config, mesh, model):
  """Load the network (not the optimizer) of the latest checkpoint in another run into
  `model` (in place); the step it was taken from.

  Args:
    directory: that run's work directory, or its checkpoints folder.
  Raises:
    ValueError naming the folder when it holds no checkpoint or another network.
  """
  manager = checkpoints.read_only_manager(directory)
  step = None if manager is None else manager.latest_step()
  if step is None:
    path = os.path.abspath(str(directory))
    raise ValueError(f'train.init_weights: no checkpoint in {path} (give the work directory '
                     'of a finished training run)')
  try:
    # The checkpoint holds Adam moments too: an optimizer of the same form takes them.
    checkpoints.restore(manager, config, mesh, model, run_optimizer(config, model, mesh),
                        step)
  finally:
    manager.close()
  return int(step)


def _batches(loader, start_step):
  """Endless (batch, ann_ids) from epoch start_step // len(loader), skipping the batches of
  that epoch that the restored run already consumed, so the data order continues."""
  per_epoch = len(loader)
  if per_epoch == 0:
    raise ValueError(f'train: {len(loader.samples)} samples do not fill one batch of '
                     f'{loader.batch_size}')
  epoch, skip = divmod(start_step, per_epoch)
  while True:
    for i, item in enumerate(loader.epoch(epoch)):
      if i >= skip:
        yield item
    epoch, skip = epoch + 1, 0


def train(config, samples, workdir, *, mesh=None, body_model=None):
  """Train (or resume training) the annotator.

  Args:
    config: TrainConfig or ConfigDict (see TrainConfig).
    samples: `Sample`s of one joint set (`config.joint_set`), a list or any sequence; all
      of them on every process (each loads its rows of every global batch, `pipeline.Loader`).
    workdir: output folder: metrics.jsonl and checkpoints/ (resumed when present).
    mesh: data mesh (default `make_mesh()`).
    body_model: the loaded body model (gender, PCA, ... chosen by the caller); default
      `body_models.load(config.model_path, config.family)`.
  Returns:
    (model, optimizer) after `config.num_steps` steps.
  """
  config = as_config(config)
  mesh = make_mesh() if mesh is None else mesh
  os.makedirs(workdir, exist_ok=True)
  if body_model is None:
    body_model = body_models.load(config.model_path, config.family)
  config = dataclasses.replace(config, num_landmarks=body_model.num_landmarks)
  targets = None
  if config.initial_pseudo_gt:
    targets = two_stage.Targets(config.initial_pseudo_gt, body_model, samples)
    logging.info('train: two-stage, %d of %d samples supervised by %s', len(targets),
                 len(samples), config.initial_pseudo_gt)
  step_spec = make_step_spec(config)
  # The loss reads only the set's joints: skin only the vertices they are read from.
  body_model, mapping = joint_sets.restrict_to_mapping(body_model, step_spec.mapping)
  step_spec = dataclasses.replace(step_spec, mapping=mapping)
  body_model = jax.device_put(body_model, NamedSharding(mesh, P()))
  vposer_params = load_vposer(config)
  jset = joint_sets.get(config.joint_set)
  model, optimizer = create_train_state(config, mesh)
  manager = checkpoints.checkpoint_manager(workdir, config)
  loader = pipeline.Loader(samples, config.batch_size, train=True, out_size=config.crop_size,
                           augment=None if config.augment else NO_AUGMENT,
                           flip_pairs=jset.flip_pairs, seed=config.seed,
                           num_workers=config.num_workers,
                           num_devices=jax.local_device_count())
  global_batch = config.batch_size * jax.process_count()
  log, error = None, None
  try:
    step = checkpoints.resume_point(manager.all_steps(), config.resume_step, manager.directory)
    if step:
      checkpoints.restore(manager, config, mesh, model, optimizer, step)
      checkpoints.delete_after(manager, step)
      logging.info('train: resumed from step %d in %s', step, manager.directory)
    elif config.init_weights:
      started = load_network(config.init_weights, config, mesh, model)
      logging.info('train: the network starts from step %d of %s', started,
                   config.init_weights)
    elif config.warm_start_steps > 0 and config.mode == 'mocap':
      warm_start_joints(config, model, body_model, samples, step_spec, mesh)
    if step >= config.num_steps:
      return model, optimizer
    bar = _progress(config, step)
    if jax.process_index() == 0:  # one log per run, not per host
      # From `step` on: lines a killed run logged after its last checkpoint are dropped.
      log = metrics_log.MetricsLog(workdir, tensorboard=config.tensorboard, start_step=step)
    batches = _batches(loader, step)
    # images/s counts from the end of the first step of this run, so compilation is left out.
    seen, start, rate = 0, None, 0.0
    while step < config.num_steps:
      batch, ann_ids = next(batches)
      arrays = step_batch(batch)
      if targets is not None:
        arrays.update(targets.arrays(ann_ids, batch))
      metrics = train_step(model, optimizer, body_model, pipeline.shard(arrays, mesh),
                           vposer_params, step_spec=step_spec)
      step += 1
      # float() of the loss waits for the step: the NaN guard, and on XLA:CPU with several
      # devices it keeps collectives from piling up.
      try:
        values = check_finite(metrics, step)
      except DivergedError as e:
        raise DivergedError(f'{e} {checkpoints.resume_hint(manager)}') from None
      if start is None:
        start = time.perf_counter()
      else:
        seen += global_batch
        rate = seen / max(time.perf_counter() - start, 1e-9)
      if log is not None and (step % config.log_every == 0 or step == config.num_steps):
        log.write(step, {**values, 'images_per_s': rate})
        if bar is not None:
          bar.set_postfix(loss=f'{values["loss"]:.4g}', img_s=f'{rate:.1f}')
      if bar is not None:
        bar.update(1)
      if config.checkpoint_every and step % config.checkpoint_every == 0 \
          or step == config.num_steps:
        save_checkpoint(manager, step, model, optimizer, config)
    if bar is not None:
      bar.close()
    logging.info('train: %d steps, %.1f images/s; checkpoints in %s', step, rate,
                 manager.directory)
  except BaseException as e:
    error = e
    raise
  finally:
    try:
      checkpoints.close_checkpoints(manager, error)
    finally:
      if log is not None:
        log.close()
  return model, optimizer


def _progress(config, step, total=None, desc='train'):
  if not config.progress or jax.process_index() != 0:  # one bar per run, not per host
    return None
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=config.num_steps if total is None else total, initial=step, unit='step',
              desc=desc)


__all__ = ['TrainConfig', 'as_config', 'make_mesh', 'lr_schedule', 'adam', 'head_spec',
           'create_train_state', 'run_optimizer', 'replicate', 'StepSpec', 'loss_weights',
           'make_step_spec', 'network_inputs', 'loss_fn', 'train_step', 'warm_start_update',
           'warm_start_chunk', 'warm_start_joints', 'DivergedError', 'check_finite',
           'all_finite', 'save_checkpoint', 'load_network', 'step_batch', 'train']
