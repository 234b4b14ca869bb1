"""VPoser v2 pose prior as pure functions of its weights.

VPoser (Pavlakos et al. 2019, "Expressive Body Capture") is a VAE over the
63-d axis-angle body pose of SMPL-X / SMPL (21 joints, no global orient). This
module reproduces the released v2 network (V02_05) layer for layer, in
inference mode, so the official weights (converted offline by
`tools/convert_vposer.py`) give the same numbers as the PyTorch model; the same
layout is used for priors we train ourselves.

    params = vposer.load('vposer_v2.npz')
    body_pose = vposer.decode(params, z)          # (..., 32) -> (..., 63)
    mean, std = vposer.encode(params, body_pose)  # (..., 63) -> (..., 32) x 2

Architecture (dims: latent L=32, hidden H=512, joints J=21):

    encoder: BatchNorm(63) -> Linear(63, H) -> LeakyReLU -> BatchNorm(H)
             -> Dropout -> Linear(H, H) -> Linear(H, H)
             -> heads: mean = Linear(H, L), std = softplus(Linear(H, L))
    decoder: Linear(L, H) -> LeakyReLU -> Dropout -> Linear(H, H) -> LeakyReLU
             -> Linear(H, 6 J) -> 6D -> rotation matrix -> axis-angle

This follows `VPoser` in human_body_prior/models/vposer_model.py of the
official repository (nghorbani/human_body_prior). Note the released encoder
has no activation between its two last hidden linears, and both networks use
nn.LeakyReLU() with PyTorch's default slope 0.01. Dropout is the identity at
inference and BatchNorm uses its stored running statistics. The decoder's 6
numbers per joint, viewed as a (3, 2) block, hold the first two matrix columns:
the layout of `rotations.rot6d_to_matrix`.

Parameters are a nested dict of arrays:

    {'encoder': {'enc_bn_in': {'scale', 'bias', 'mean', 'var'},   # (63,)
                 'enc_fc1': {'kernel': (63, H), 'bias': (H,)},
                 'enc_bn1': {'scale', 'bias', 'mean', 'var'},     # (H,)
                 'enc_fc2': {'kernel': (H, H), 'bias': (H,)},
                 'enc_fc3': {'kernel': (H, H), 'bias': (H,)},
                 'enc_mu': {'kernel': (H, L), 'bias': (L,)},
                 'enc_logvar': {'kernel': (H, L), 'bias': (L,)}},
     'decoder': {'dec_fc1': {'kernel': (L, H), 'bias': (H,)},
                 'dec_fc2': {'kernel': (H, H), 'bias': (H,)},
                 'dec_out': {'kernel': (H, 6 J), 'bias': (6 J,)}}}

Kernels are (in, out), so a layer is `x @ kernel + bias`. On disk (`save` /
`load`) the dict is flattened to `.npz` keys such as `decoder/dec_fc1/kernel`.
"""

import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from body_models import rotations
from body_models._atomic import atomic_open

# PyTorch's nn.LeakyReLU() default, which the released v2 model uses.
LEAKY_SLOPE = 0.01
# PyTorch's nn.BatchNorm1d default eps; it is not stored in the checkpoint.
BN_EPS = 1e-5

# The prior is tiny next to the rest of a model, so we ask for full float32
# matmuls: on GPUs/TPUs the default may use TF32/bf16 passes, which would move
# decoded poses away from the reference by ~1e-3.
_PRECISION = jax.lax.Precision.HIGHEST

_BN_FIELDS = ('scale', 'bias', 'mean', 'var')


class VPoserFileError(ValueError):
  """A VPoser weight file is missing, unreadable, or has the wrong layout."""


def param_shapes(latent_dim=32, hidden=512, num_joints=21):
  """The expected shape of every parameter, as a nested dict of tuples."""
  n_in = 3 * num_joints

  def dense(n, m):
    return {'kernel': (n, m), 'bias': (m,)}

  def bn(n):
    return {f: (n,) for f in _BN_FIELDS}

  return {
      'encoder': {
          'enc_bn_in': bn(n_in),
          'enc_fc1': dense(n_in, hidden),
          'enc_bn1': bn(hidden),
          'enc_fc2': dense(hidden, hidden),
          'enc_fc3': dense(hidden, hidden),
          'enc_mu': dense(hidden, latent_dim),
          'enc_logvar': dense(hidden, latent_dim),
      },
      'decoder': {
          'dec_fc1': dense(latent_dim, hidden),
          'dec_fc2': dense(hidden, hidden),
          'dec_out': dense(hidden, 6 * num_joints),
      },
  }


def dimensions(params):
  """(latent_dim, hidden, num_joints) read from the decoder's shapes."""
  fc1 = params['decoder']['dec_fc1']['kernel']
  out = params['decoder']['dec_out']['kernel']
  return int(fc1.shape[0]), int(fc1.shape[1]), int(out.shape[1]) // 6


def init_params(key, latent_dim=32, hidden=512, num_joints=21, dtype=jnp.float32):
  """Random weights in the VPoser layout, for training a prior of our own.

  Linear layers use PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  for kernel and bias, so training from here behaves like the reference code.
  BatchNorm starts as the identity (scale 1, bias 0, mean 0, var 1).

  Call it outside jit: all numbers come from one draw of `key`, cut up on the
  host, because on CPU compiling one random op per layer shape costs seconds.
  """
  shapes = param_shapes(latent_dim, hidden, num_joints)
  dense_sizes = [int(np.prod(f['kernel'])) + f['bias'][0]
                 for layers in shapes.values() for f in layers.values() if 'kernel' in f]
  u = np.asarray(jax.random.uniform(key, (sum(dense_sizes),), dtype, -1.0, 1.0))
  offset = 0
  params = {}
  for part, layers in shapes.items():
    params[part] = {}
    for name, fields in layers.items():
      if 'kernel' in fields:
        n_in, n_out = fields['kernel']
        bound = 1.0 / np.sqrt(n_in)
        block = u[offset:offset + (n_in + 1) * n_out] * bound
        offset += (n_in + 1) * n_out
        params[part][name] = {
            'kernel': jnp.asarray(block[:n_in * n_out].reshape(n_in, n_out)),
            'bias': jnp.asarray(block[n_in * n_out:]),
        }
      else:
        n = fields['scale']
        ones, zeros = np.ones(n, u.dtype), np.zeros(n, u.dtype)
        params[part][name] = {'scale': jnp.asarray(ones), 'bias': jnp.asarray(zeros),
                              'mean': jnp.asarray(zeros), 'var': jnp.asarray(ones)}
  return params


def _dense(p, x):
  """(..., in) -> (..., out)."""
  return jnp.matmul(x, p['kernel'], precision=_PRECISION) + p['bias']


def _batch_norm(p, x):
  """Inference-mode BatchNorm1d over the last axis, with the stored statistics."""
  return (x - p['mean']) * (p['scale'] * jax.lax.rsqrt(p['var'] + BN_EPS)) + p['bias']


def _leaky_relu(x):
  return jax.nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


# The public functions are jitted where defined so that eager calls run as one
# compiled program instead of dispatching ~100 small ops; inside an outer
# jit/vmap/grad this changes nothing.
@jax.jit
def encode(params, body_pose):
  """Posterior q(z | pose) of the encoder, in inference mode.

  Args:
    params: VPoser parameters (see the module docstring).
    body_pose: (..., 3 J) axis-angle body pose (J = 21 for the released model).
  Returns:
    (mean, std): each (..., L). `std` is the softplus of the head the released
    model calls `logvar`: v2 uses that head's softplus directly as the scale.
  """
  p = params['encoder']
  x = _batch_norm(p['enc_bn_in'], body_pose)
  x = _leaky_relu(_dense(p['enc_fc1'], x))
  x = _batch_norm(p['enc_bn1'], x)
  x = _dense(p['enc_fc2'], x)
  x = _dense(p['enc_fc3'], x)
  return _dense(p['enc_mu'], x), jax.nn.softplus(_dense(p['enc_logvar'], x))


@jax.jit
def decode_rot6d(params, z):
  """Raw decoder output before orthonormalisation: (..., L) -> (..., J, 6).

  The 6 numbers per joint are a (3, 2) row-major block whose columns are the
  first two matrix columns, the layout of `rotations.rot6d_to_matrix`.
  """
  p = params['decoder']
  x = _leaky_relu(_dense(p['dec_fc1'], z))
  x = _leaky_relu(_dense(p['dec_fc2'], x))
  x = _dense(p['dec_out'], x)
  return x.reshape(x.shape[:-1] + (x.shape[-1] // 6, 6))


@jax.jit
def decode_matrices(params, z):
  """Decoded joint rotations: (..., L) -> (..., J, 3, 3), orthonormal, det +1."""
  return rotations.rot6d_to_matrix(decode_rot6d(params, z))


@jax.jit
def decode(params, z):
  """Decoded body pose in axis-angle: (..., L) -> (..., 3 J), e.g. (..., 63)."""
  aa = rotations.matrix_to_axis_angle(decode_matrices(params, z))
  return aa.reshape(aa.shape[:-2] + (-1,))


# ----------------------------------------------------------------------------
# Files.


def _flatten(tree, prefix=''):
  """Nested dict -> {'a/b/c': leaf}."""
  flat = {}
  for k, v in tree.items():
    name = f'{prefix}{k}'
    if isinstance(v, dict):
      flat.update(_flatten(v, name + '/'))
    else:
      flat[name] = v
  return flat


def _unflatten(flat):
  """{'a/b/c': leaf} -> nested dict."""
  tree = {}
  for name, v in flat.items():
    *parents, leaf = name.split('/')
    node = tree
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = v
  return tree


def _check_layout(flat, where):
  """Checks a flat {key: array} against the VPoser layout; returns the dims.

  Dimensions are read from the decoder so priors of any size load; every other
  key must then agree with them. Errors name `where` (the file) and the key.
  """
  for key in ('decoder/dec_fc1/kernel', 'decoder/dec_out/kernel'):
    if key not in flat:
      raise VPoserFileError(f'{where}: missing key {key!r}; this is not a VPoser v2 parameter file '
                            f'(keys found: {sorted(flat)[:6]}...)')
    if np.ndim(flat[key]) != 2:
      raise VPoserFileError(f'{where}: key {key!r} has shape {np.shape(flat[key])}, expected a 2-d kernel')
  latent_dim, hidden = np.shape(flat['decoder/dec_fc1/kernel'])
  n_out = np.shape(flat['decoder/dec_out/kernel'])[1]
  if n_out % 6:
    raise VPoserFileError(f"{where}: key 'decoder/dec_out/kernel' has {n_out} outputs, "
                          'expected 6 per joint')
  dims = (int(latent_dim), int(hidden), int(n_out) // 6)
  expected = _flatten(param_shapes(*dims))
  missing = [k for k in expected if k not in flat]
  if missing:
    raise VPoserFileError(f'{where}: missing key {missing[0]!r} '
                          f'({len(missing)} missing in all: {missing[:8]})')
  extra = [k for k in flat if k not in expected]
  if extra:
    raise VPoserFileError(f'{where}: unexpected key {extra[0]!r} (not part of the VPoser v2 layout)')
  for k, shape in expected.items():
    a = flat[k]
    if tuple(np.shape(a)) != shape:
      raise VPoserFileError(
          f'{where}: key {k!r} has shape {tuple(np.shape(a))}, expected {shape} '
          f'(latent_dim={dims[0]}, hidden={dims[1]}, num_joints={dims[2]})')
    if not np.issubdtype(np.asarray(a).dtype, np.floating):
      raise VPoserFileError(f'{where}: key {k!r} has dtype {np.asarray(a).dtype}, expected floating point')
  return dims


def load(path, dtype=None):
  """Reads VPoser parameters from our `.npz` layout (see `save`).

  Args:
    path: a file written by `save` or `tools/convert_vposer.py`.
    dtype: optional dtype to cast every array to (e.g. jnp.float64 under x64);
      by default the stored dtype is kept.
  Returns:
    The nested parameter dict of jnp arrays.
  Raises:
    FileNotFoundError: no file at `path`.
    VPoserFileError: the file is not an `.npz`, or a key is missing, unexpected,
      badly shaped, not floating point or not finite.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f'VPoser weights not found: {path} '
                            '(convert the official checkpoint with tools/convert_vposer.py)')
  try:
    with np.load(path, allow_pickle=False) as npz:
      flat = {k: npz[k] for k in npz.files}
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise VPoserFileError(f'{path}: not a readable .npz file ({e})') from None
  _check_layout(flat, path)
  for k, a in flat.items():
    if not np.all(np.isfinite(a)):
      raise VPoserFileError(f'{path}: key {k!r} has non-finite values')
  return _unflatten({k: jnp.asarray(a, dtype=dtype) for k, a in flat.items()})


def save(params, path):
  """Writes `params` to `path` as a flat `.npz`, atomically.

  The layout is checked first, so a malformed tree never reaches the disk. The
  file is written next to its destination and renamed over it, so a crash
  leaves either the old file or the new one, never half of one.
  """
  path = os.fspath(path)
  flat = {k: np.asarray(v) for k, v in _flatten(params).items()}
  _check_layout(flat, f'save({path!r})')
  with atomic_open(path, 'wb') as f:
    np.savez(f, **flat)


__all__ = [
    'VPoserFileError', 'LEAKY_SLOPE', 'BN_EPS', 'param_shapes', 'dimensions', 'init_params',
    'encode', 'decode', 'decode_matrices', 'decode_rot6d', 'load', 'save',
]
