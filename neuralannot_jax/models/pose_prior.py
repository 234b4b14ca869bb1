"""A VPoser-style pose prior of our own, for when the licensed weights are absent.

The in-the-wild annotator predicts the body pose as a VPoser latent and decodes
it with `body_models.vposer`. Users with the official VPoser v2 weights load
them (`vposer.load`); everyone else (CI, the demo) trains a prior here with
exactly the same architecture and parameter layout, on poses from the
synthetic pose sampler the synthetic datasets are rendered from, or on the
user's own AMASS-style poses, and saves it with `vposer.save`, so the rest of
the project cannot tell the two apart.

    params = pose_prior.load_or_train('work/vposer_synthetic.npz')
    body_pose = vposer.decode(params, z)          # (..., 32) -> (..., 63)

Training (`train_pose_prior`) is a VAE in JAX + optax (Adam):
  * reconstruction: squared Frobenius distance between the decoded rotation
    matrices (`vposer.decode_matrices` of z ~ q(z | pose)) and the input's
    (`rotations.axis_angle_to_matrix`), summed over joints;
  * KL of the encoder's N(mean, std^2) to N(0, I), summed over the latent,
    times `kl_weight`.
Both networks run exactly the inference-mode functions of `body_models.vposer`
(no dropout: the released model's Dropout is the identity at inference and our
data is small and clean), so what is trained is what is loaded.

BatchNorm. `vposer.encode` uses stored statistics, so no batch statistics are
used during training:
  * enc_bn_in: mean and var are the training poses' per-coordinate statistics,
    set once before training and kept fixed (a real input normalisation);
    scale and bias are trained.
  * enc_bn1: trained as an affine layer with mean 0 and var 1 fixed. After
    training its mean and var are set, in one pass over the training poses, to
    the statistics of its input, and scale and bias are rewritten so that the
    layer computes exactly the same function. The file then holds the
    statistics a BatchNorm trained on these poses would have, and encoding is
    unchanged.
"""

import os
import time
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax

from body_models import rotations
from body_models import vposer

# The joints the prior covers: SMPL-X's 21 body joints, which are also SMPL's
# first 21 (SMPL's 22 and 23 are the hands, MANO's business).
NUM_JOINTS = 21
POSE_DIM = 3 * NUM_JOINTS

# Defaults, measured on the project's 2-core CPU (shared, load ~4): 20k poses
# drawn in 0.7 s; 2000 steps of 256 at hidden 512 in ~50 s; held-out error
# 6.5 deg per joint (mean pose: 21.7, rest pose: 26); decoded z ~ N(0, I) keep
# 97% of joints within the sampler's limits. 4000 steps only reach 6.3 deg.
# kl_weight 0.05 gave 7.8 deg with the same samples, 0.1 gave 9.9 deg.
DEFAULT_NUM_POSES = 20000
DEFAULT_NUM_STEPS = 2000
DEFAULT_BATCH_SIZE = 256
DEFAULT_KL_WEIGHT = 0.02


# ----------------------------------------------------------------------------
# Poses.


def synthetic_poses(num, seed=0):
  """Body poses from the synthetic sampler, as a VAE training set.

  Draws exactly what `num` calls of
  `neuralannot_jax.data.synthetic.poses.sample_body_pose(rng, family='smplx')`
  with `rng = np.random.default_rng(seed)` return, in the same order, but
  computes the rotations for all poses at once: the per-sample sampler takes
  about 2 ms a pose on this CPU (40 s for 20k), this about 0.1 ms.
  The random numbers are still drawn pose by pose, in the sampler's order, so
  the two agree to rounding (tests/test_pose_prior.py checks it).

  Args:
    num: number of poses.
    seed: seed of the numpy Generator.
  Returns:
    (num, 63) float32 axis-angle of the 21 body joints (no global orient).
  """
  # Imported here: the data package pulls in more than the prior needs.
  from neuralannot_jax.data.synthetic import poses as sampler

  names = sampler.body_joint_names('smplx')
  rng = np.random.default_rng(seed)
  activities, swaps = [], np.zeros(num, bool)
  noise = np.zeros((num, len(names), 3))
  # Same draws, in the same order, as `sample_body_pose(rng, 'smplx')`.
  for i in range(num):
    activities.append(sampler.sample_activity(rng))
    swaps[i] = bool(rng.integers(2))
    noise[i] = rng.standard_normal((len(names), 3))

  limits = [sampler.JOINT_LIMITS[n] for n in names]
  lo = np.array([lim.lo for lim in limits], np.float64)    # (J, 3) degrees
  hi = np.array([lim.hi for lim in limits], np.float64)
  sd = np.array([lim.sd for lim in limits], np.float64)

  def mean_table(activity, swap):
    """(J, 3) mean angles in degrees for one (activity, swap)."""
    rows = []
    for name, lim in zip(names, limits):
      mean = np.array(lim.mean, np.float64)
      # The sampler's own rule, so activities stay in one place.
      shift = sampler._activity_shift(activity, name, swap)  # pylint: disable=protected-access
      rows.append(mean if shift is None else mean + shift)
    return np.stack(rows)

  tables = {}
  means = np.zeros_like(noise)
  for i, key in enumerate(zip(activities, swaps.tolist())):
    if key not in tables:
      tables[key] = mean_table(*key)
    means[i] = tables[key]
  deg = np.clip(means + noise * sd, lo, hi)                 # (num, J, 3)
  rads = np.radians(deg)
  mats = np.stack([sampler.euler_to_matrix(rads[:, j], lim.order)
                   for j, lim in enumerate(limits)], axis=1)  # (num, J, 3, 3)
  aa = sampler.matrix_to_axis_angle(mats)                   # (num, J, 3)
  return aa.reshape(num, POSE_DIM).astype(np.float32)


def load_poses(path):
  """Body poses from a user's AMASS-style `.npz`.

  Reads 'pose_body' (N, 63) when present (AMASS SMPL-X files), else 'poses'
  with one of the layouts below; the 21 body joints come after the 3 numbers
  of the global orient wherever one is stored:

    (N, 63)  body only                    -> as is
    (N, 66)  orient + 21 body joints      -> columns 3:66
    (N, 72)  SMPL: orient + 23 joints     -> columns 3:66 (hands dropped)
    (N, 156) SMPL-H: orient + 21 + hands  -> columns 3:66
    (N, 165) SMPL-X: orient + 21 + jaw, eyes, hands -> columns 3:66

  Args:
    path: the `.npz` file.
  Returns:
    (N, 63) float32 axis-angle body poses.
  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: not an `.npz`, no usable key, or a bad shape or value; the
      message names the file and the key.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f'pose file not found: {path}')
  try:
    npz = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise ValueError(f'{path}: not a readable .npz file ({e})') from None
  if not hasattr(npz, 'files'):
    raise ValueError(f'{path}: a single array (.npy), expected an .npz with key '
                     "'poses' or 'pose_body'")
  with npz:
    if 'pose_body' in npz.files:
      key, widths = 'pose_body', (POSE_DIM,)
    elif 'poses' in npz.files:
      key, widths = 'poses', (63, 66, 72, 156, 165)
    else:
      raise ValueError(f"{path}: no key 'poses' or 'pose_body' (keys: {sorted(npz.files)[:10]})")
    try:
      a = npz[key]
    except ValueError as e:  # e.g. an object array, which we never unpickle
      raise ValueError(f'{path}: key {key!r} is not a plain numeric array ({e})') from None
  if a.ndim != 2 or a.shape[1] not in widths or a.shape[0] == 0:
    raise ValueError(f'{path}: key {key!r} has shape {a.shape}; expected (N, W) with N > 0 and '
                     f'W in {widths} (axis-angle; 21 body joints after a 3-d global orient '
                     'unless W = 63)')
  if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
    raise ValueError(f'{path}: key {key!r} has dtype {a.dtype}, expected numbers')
  body = a if a.shape[1] == POSE_DIM else a[:, 3:3 + POSE_DIM]
  if not np.all(np.isfinite(body)):
    raise ValueError(f'{path}: key {key!r} has non-finite values')
  return np.ascontiguousarray(body, np.float32)


# ----------------------------------------------------------------------------
# Training.

_STATS = ('mean', 'var')


def _split_stats(params):
  """VPoser params -> (trainable, stats): BatchNorm mean/var are not trained."""
  trainable = jax.tree_util.tree_map(lambda x: x, params)
  stats = {}
  for name, layer in params['encoder'].items():
    if 'mean' in layer:
      trainable['encoder'][name] = {k: v for k, v in layer.items() if k not in _STATS}
      stats[name] = {k: layer[k] for k in _STATS}
  return trainable, stats


def _merge_stats(trainable, stats):
  """Inverse of `_split_stats`."""
  enc = dict(trainable['encoder'])
  for name, s in stats.items():
    enc[name] = {**enc[name], **s}
  return {'encoder': enc, 'decoder': trainable['decoder']}


def _vae_loss(trainable, stats, key, poses, kl_weight):
  """Per-batch VAE loss.

  Args:
    poses: (B, 63) axis-angle body poses.
  Returns:
    (loss, (recon, kl)): scalars, means over the batch.
  """
  params = _merge_stats(trainable, stats)
  target = rotations.axis_angle_to_matrix(poses.reshape(poses.shape[:-1] + (-1, 3)))
  mean, std = vposer.encode(params, poses)
  z = mean + std * jax.random.normal(key, mean.shape, mean.dtype)
  rot = vposer.decode_matrices(params, z)
  # ||R - R'||_F^2 = 4 (1 - cos angle): smooth everywhere, ~2 angle^2 when small.
  recon = jnp.mean(jnp.sum((rot - target) ** 2, axis=(-3, -2, -1)))
  kl = jnp.mean(0.5 * jnp.sum(mean ** 2 + std ** 2 - 1.0 - 2.0 * jnp.log(std), axis=-1))
  return recon + kl_weight * kl, (recon, kl)


def geodesic_error_deg(params, poses):
  """Encoder mean -> decoder: per-joint rotation error of the round trip.

  Args:
    params: VPoser parameters.
    poses: (N, 63) axis-angle body poses.
  Returns:
    (N, 21) float32 geodesic angle in degrees between input and reconstruction.
  """
  return np.asarray(_geodesic_error_deg(params, jnp.asarray(poses, jnp.float32)))


@jax.jit
def _geodesic_error_deg(params, poses):
  mean, _ = vposer.encode(params, poses)
  rot = vposer.decode_matrices(params, mean)
  target = rotations.axis_angle_to_matrix(poses.reshape(poses.shape[:-1] + (-1, 3)))
  cos = (jnp.trace(jnp.swapaxes(rot, -1, -2) @ target, axis1=-2, axis2=-1) - 1.0) / 2.0
  return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))


# Jitted because eager, each of its ops would compile on its own (~1 s on this CPU).
@jax.jit
def _fit_bn1_statistics(params, poses):
  """Stores real input statistics in enc_bn1 without changing the encoder.

  enc_bn1 was trained with mean 0 and var 1, i.e. as y = x * a + b with
  a = scale / sqrt(1 + eps). With the input's mean m and var v over `poses`
  (N, 63), scale' = a * sqrt(v + eps) and bias' = b + a * m give the same y.
  """
  p = params['encoder']
  x = vposer._batch_norm(p['enc_bn_in'], jnp.asarray(poses))  # pylint: disable=protected-access
  x = vposer._leaky_relu(vposer._dense(p['enc_fc1'], x))      # pylint: disable=protected-access
  m, v = jnp.mean(x, axis=0), jnp.var(x, axis=0)
  bn = p['enc_bn1']
  a = bn['scale'] * jax.lax.rsqrt(bn['var'] + vposer.BN_EPS)
  a_mean = bn['mean']
  new = {'scale': a * jnp.sqrt(v + vposer.BN_EPS), 'bias': bn['bias'] + a * (m - a_mean),
         'mean': m, 'var': v}
  return {'encoder': {**p, 'enc_bn1': new}, 'decoder': params['decoder']}


def train_pose_prior(poses, *, num_steps=DEFAULT_NUM_STEPS, batch_size=DEFAULT_BATCH_SIZE,
                     lr=1e-3, kl_weight=DEFAULT_KL_WEIGHT, latent_dim=32, hidden=512, seed=0,
                     progress=False):
  """Fits a VPoser-layout VAE to `poses` (see the module docstring).

  Args:
    poses: (N, 63) axis-angle body poses (21 joints, no global orient).
    num_steps: Adam steps; one minibatch each, drawn with replacement.
    batch_size: poses per step.
    lr: Adam's peak learning rate; it decays along a cosine to lr / 20 at the
      end, which lowers the final error for the same number of steps.
    kl_weight: weight of the KL term next to the reconstruction (both sums,
      see `_vae_loss`). Larger: samples of N(0, I) decode to more typical
      poses; smaller: sharper reconstructions.
    latent_dim, hidden: network size; 32 and 512 are the released VPoser's.
    seed: seed of the initial weights and the minibatch / noise stream.
    progress: show a tqdm bar with the running losses.
  Returns:
    VPoser parameters (nested dict of float32 jnp arrays) in the
    `vposer.param_shapes(latent_dim, hidden, 21)` layout, ready for
    `vposer.save` / `vposer.encode` / `vposer.decode`.
  """
  poses = np.asarray(poses, np.float32)
  if poses.ndim != 2 or poses.shape[1] != POSE_DIM or len(poses) < 2:
    raise ValueError(f'poses must be (N, {POSE_DIM}) with N >= 2, got {poses.shape}')
  key_init, key_train = jax.random.split(jax.random.PRNGKey(seed))
  params = vposer.init_params(key_init, latent_dim, hidden, NUM_JOINTS)
  # Input normalisation from the data, once (fixed during training).
  params['encoder']['enc_bn_in']['mean'] = jnp.asarray(poses.mean(0))
  params['encoder']['enc_bn_in']['var'] = jnp.asarray(poses.var(0))
  trainable, stats = _split_stats(params)

  schedule = optax.cosine_decay_schedule(lr, max(num_steps, 1), alpha=0.05)
  optimizer = optax.adam(schedule)
  opt_state = optimizer.init(trainable)

  data = jnp.asarray(poses)

  # `data` is an argument, not a closure: a captured array would be baked
  # into the compiled program as a constant (MBs), which slows compilation.
  @jax.jit
  def step(trainable, opt_state, data, i):
    k_batch, k_noise = jax.random.split(jax.random.fold_in(key_train, i))
    idx = jax.random.randint(k_batch, (batch_size,), 0, data.shape[0])
    grads, (recon, kl) = jax.grad(_vae_loss, has_aux=True)(
        trainable, stats, k_noise, data[idx], kl_weight)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    return optax.apply_updates(trainable, updates), opt_state, recon, kl

  steps = range(num_steps)
  bar = None
  if progress:
    import tqdm
    bar = steps = tqdm.tqdm(steps, desc='pose prior', unit='step')
  for i in steps:
    trainable, opt_state, recon, kl = step(trainable, opt_state, data, i)
    if bar is not None and (i % 50 == 0 or i == num_steps - 1):
      bar.set_postfix(recon=f'{float(recon):.3f}', kl=f'{float(kl):.1f}')
  params = _merge_stats(trainable, stats)
  params = _fit_bn1_statistics(params, data)
  return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)


def load_or_train(path, *, num_poses=DEFAULT_NUM_POSES, num_steps=DEFAULT_NUM_STEPS, seed=0,
                  hidden=512, progress=True):
  """The cached prior at `path`, trained on synthetic poses on first use.

  If `path` exists it is read with `vposer.load` and never retrained (a bad
  file raises `vposer.VPoserFileError` rather than being overwritten: it may
  be someone's real weights). Otherwise a prior is trained on
  `synthetic_poses(num_poses, seed)` and written atomically with
  `vposer.save`, so a crash leaves no half-written cache.

  Returns:
    VPoser parameters (nested dict of jnp arrays).
  """
  if os.path.exists(path):
    return vposer.load(path)
  t0 = time.perf_counter()
  poses = synthetic_poses(num_poses, seed=seed)
  params = train_pose_prior(poses, num_steps=num_steps, seed=seed, hidden=hidden,
                            progress=progress)
  vposer.save(params, path)
  if progress:
    err = float(np.mean(geodesic_error_deg(params, poses[:2000])))
    print(f'pose prior: trained on {num_poses} synthetic poses, {num_steps} steps, '
          f'{time.perf_counter() - t0:.1f} s, reconstruction {err:.2f} deg (training poses) '
          f'-> {path}')
  return params


__all__ = [
    'NUM_JOINTS', 'POSE_DIM', 'synthetic_poses', 'load_poses', 'train_pose_prior',
    'geodesic_error_deg', 'load_or_train',
]
