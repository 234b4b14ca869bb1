"""ResNet-18/34/50 backbones in Flax NNX, laid out like torchvision's.

The module tree mirrors torchvision's `ResNet` (`conv1`, `bn1`, `layer1` ...
`layer4`, blocks `conv1`/`bn1`/..., `downsample.0`/`downsample.1`), so the flat
names of our variables are torchvision's state-dict names with the field
renamed:

    torchvision                        ours (keys of the .npz)
    <conv>.weight       (O, I, H, W)   <conv>.kernel   (H, W, I, O)
    <bn>.weight         (C,)           <bn>.scale
    <bn>.bias           (C,)           <bn>.bias
    <bn>.running_mean   (C,)           <bn>.mean
    <bn>.running_var    (C,)           <bn>.var
    <bn>.num_batches_tracked, fc.*     dropped (bookkeeping; we return features)

ResNet-50 is torchvision's v1.5: the stride of a downsampling bottleneck sits
on its 3x3 convolution. Inputs are NHWC images in ImageNet-normalised units.

    model = ResNet(50, rngs=nnx.Rngs(0))
    resnet.load_weights(model, 'resnet50.npz')   # from tools/convert_torchvision_resnet.py
    # or, skipping the random initialisation: resnet.from_weights('resnet50.npz', 50)
    model.eval()
    features = model(images)                     # (B, 2048)
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from body_models._atomic import atomic_open

# torch's BatchNorm momentum 0.1 weighs the *new* batch; Flax's weighs the old
# running value: running = 0.9 * running + 0.1 * batch in both. One difference
# remains: torch updates running_var with the unbiased batch variance, Flax with
# the biased one, a factor n / (n - 1) for n = B * H * W values per channel
# (at most 0.2% at batch 8, 256 px: n = 512 in layer4).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# torchvision initialises convolutions with kaiming_normal_(mode='fan_out',
# nonlinearity='relu'): an untruncated normal of variance 2 / (O * kh * kw).
_CONV_INIT = nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal')


class WeightsError(ValueError):
  """A weights file or state dict does not fit the ResNet; the message names the key."""


# Dimension numbers of every convolution here: NHWC images, HWIO kernels.
_NHWC = ('NHWC', 'HWIO', 'NHWC')
CONV_IMPLS = ('auto', 'xla', 'dots')


def _rows_product(a, b):
  """a^T b, the sum over rows of (M, K) a and (M, N) b: a kernel gradient. -> (K, N) float32.

  XLA:CPU runs this product (both operands contracted over their rows) up to 1.7x as
  fast when the wider operand comes second: (32768, 64)^T (32768, 256) takes 8.4 ms,
  (32768, 256)^T (32768, 64) 14.1 ms on a 2-core AVX2 machine. So the narrower goes first.
  """
  if a.shape[1] > b.shape[1]:
    # The barrier keeps XLA from folding the transpose back into the dot, which
    # would restore the slow operand order.
    return lax.optimization_barrier(jnp.dot(b.T, a, preferred_element_type=jnp.float32)).T
  return jnp.dot(a.T, b, preferred_element_type=jnp.float32)


@jax.custom_vjp
def _matmul(x, w):
  """(M, K) x (K, N) -> (M, N), whose gradient for w goes through _rows_product."""
  return jnp.dot(x, w)


def _matmul_fwd(x, w):
  return jnp.dot(x, w), (x, w)


def _matmul_bwd(residuals, dy):
  x, w = residuals
  return jnp.dot(dy, w.T).astype(x.dtype), _rows_product(x, dy).astype(w.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _pointwise_conv(lhs, rhs, window_strides, padding, *, lhs_dilation=None, rhs_dilation=None,
                    dimension_numbers=None, feature_group_count=1, precision=None,
                    preferred_element_type=None, out_sharding=None):
  """`lax.conv_general_dilated` for an unpadded 1x1 kernel, as a strided slice and a dot.

  (B, H, W, C) x (1, 1, C, O) -> (B, ceil(H / s), ceil(W / s), O). Why: XLA:CPU
  computes the kernel gradient of a 1x1 convolution several times slower than
  the same product written as a dot (tools/benchmark_resnet.py).
  """
  del lhs_dilation, rhs_dilation, dimension_numbers  # _conv never sets them
  if feature_group_count != 1 or any(tuple(p) != (0, 0) for p in padding):
    raise ValueError('_pointwise_conv handles only unpadded, ungrouped 1x1 convolutions')
  if out_sharding is not None:
    raise ValueError('_pointwise_conv does not take out_sharding (its product is 2-D)')
  sh, sw = window_strides
  x = lhs[:, ::sh, ::sw, :] if (sh, sw) != (1, 1) else lhs
  if precision is not None or preferred_element_type is not None:
    raise ValueError('_pointwise_conv runs at default precision only')
  # A 2-D product: its kernel gradient is then one dot contracting over the rows of
  # both operands. With (B, H, W) kept as three contracting dimensions, XLA:CPU
  # first copies one operand transposed (the BatchNorm backward, written with
  # strides), a third of the layer's backward time.
  y = _matmul(x.reshape(-1, x.shape[-1]), rhs[0, 0])
  return y.reshape(*x.shape[:-1], y.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_dot_kernel_grad(x, kernel, strides, padding):
  """An NHWC/HWIO convolution whose kernel gradient is one dot of im2col patches.

  Forward and input gradient are XLA's. The kernel gradient, which XLA:CPU
  runs as a convolution with a window the size of the image (slow), is instead
  dk[i, j] = sum over (b, h, w) of x_pad[b, s h + i, s w + j, :]^T dy[b, h, w, :],
  all kh * kw taps in one product of the patches with dy (_rows_product).
  """
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


def _conv_dot_kernel_grad_fwd(x, kernel, strides, padding):
  return _conv_dot_kernel_grad(x, kernel, strides, padding), (x, kernel)


def _conv_dot_kernel_grad_bwd(strides, padding, residuals, dy):
  x, kernel = residuals
  _, input_vjp = jax.vjp(
      lambda x: lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC), x)
  (dx,) = input_vjp(dy)
  kh, kw = kernel.shape[:2]
  patches = _patches(x, kh, kw, strides, padding)
  dk = _rows_product(patches.reshape(-1, patches.shape[-1]), dy.reshape(-1, dy.shape[-1]))
  return dx, dk.reshape(kernel.shape).astype(kernel.dtype)


_conv_dot_kernel_grad.defvjp(_conv_dot_kernel_grad_fwd, _conv_dot_kernel_grad_bwd)


def _spatial_conv(lhs, rhs, window_strides, padding, *, lhs_dilation=None, rhs_dilation=None,
                  dimension_numbers=None, feature_group_count=1, precision=None,
                  preferred_element_type=None, out_sharding=None):
  """`lax.conv_general_dilated` for our padded kh x kw convolutions, via _conv_dot_kernel_grad."""
  del lhs_dilation, rhs_dilation, dimension_numbers, out_sharding  # _conv never sets them
  if feature_group_count != 1 or precision is not None or preferred_element_type is not None:
    raise ValueError('_spatial_conv handles only ungrouped convolutions at default precision')
  strides, padding = tuple(window_strides), tuple(tuple(p) for p in padding)
  if lhs.shape[1] * lhs.shape[2] <= IM2COL_MAX_PIXELS or lhs.shape[3] <= IM2COL_MAX_CHANNELS:
    return _im2col_conv(lhs, rhs, strides, padding)
  return _conv_dot_kernel_grad(lhs, rhs, strides, padding)


# Maps of at most this many pixels (H * W) go through `_im2col_conv`. XLA:CPU rewrites a
# 3x3 convolution on a map smaller than its window (2x2, e.g. layer4 at 64 px) into a
# form it runs ~100x slower than the arithmetic needs; on small maps the kh * kw copies
# of im2col are cheap, on large ones they cost more than they save. 256 (16x16) measured
# best: ResNet-50 at 256 px 3.32 -> 3.45 img/s against 64, no change at 128 px or for
# ResNet-18 at 64 px; 1024 fell back to 3.33 (tools/benchmark_resnet.py).
IM2COL_MAX_PIXELS = 256
# Inputs with at most this many channels (the RGB stem) go through `_im2col_conv` too:
# its patches are then narrow (7 * 7 * 3 = 147), and XLA:CPU runs the stem's kernel
# gradient as a convolution with a 128x128 window, 10% of a ResNet-50 step at 256 px.
IM2COL_MAX_CHANNELS = 4


def _windows(x_pad, kh, kw, strides):
  """The kh * kw strided windows (B, Ho, Wo, C) of padded (B, H, W, C), tap (i, j) at i * kw + j."""
  sh, sw = strides
  ho = (x_pad.shape[1] - kh) // sh + 1
  wo = (x_pad.shape[2] - kw) // sw + 1
  return [x_pad[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
          for i in range(kh) for j in range(kw)]


def _patches(x, kh, kw, strides, padding):
  """(B, H, W, C) -> (B, Ho, Wo, kh * kw * C): the input window of every output pixel (im2col)."""
  x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  return jnp.concatenate(_windows(x, kh, kw, strides), axis=-1)


def _im2col_conv(x, kernel, strides, padding):
  """(B, H, W, C) x (kh, kw, C, O) -> (B, Ho, Wo, O) as one dot of the kh * kw shifted
  windows (B, Ho, Wo, kh * kw * C) with the (kh * kw * C, O) kernel."""
  kh, kw, c, o = kernel.shape
  patches = _patches(x, kh, kw, strides, padding)
  # 2-D, as in _pointwise_conv: no transposed copy for the kernel gradient.
  y = _matmul(patches.reshape(-1, kh * kw * c), kernel.reshape(kh * kw * c, o))
  return y.reshape(*patches.shape[:-1], o)


@jax.custom_vjp
def _max_pool(x):
  """torch's MaxPool2d(3, stride=2, padding=1) on (B, H, W, C) -> (B, ceil(H/2), ceil(W/2), C).

  The gradient goes to the first maximum of each window (row-major), as torch's and
  XLA's do, but computed as nine masked, strided pads instead of XLA:CPU's
  select-and-scatter: 29 vs 66 ms forward + backward at (8, 128, 128, 64).
  """
  return nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


def _max_pool_fwd(x):
  y = _max_pool(x)
  return y, (x, y)


def _max_pool_bwd(residuals, dy):
  x, y = residuals
  x_pad = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
  ho, wo = y.shape[1:3]
  taken = jnp.zeros(y.shape, bool)
  dx_pad = jnp.zeros(x_pad.shape, dy.dtype)
  zero = jnp.zeros((), dy.dtype)
  for tap, window in enumerate(_windows(x_pad, 3, 3, (2, 2))):
    i, j = divmod(tap, 3)
    hit = (window == y) & ~taken
    taken = taken | hit
    # Back to the window's pixels: stride 2 is interior padding 1, offset (i, j).
    dx_pad = dx_pad + lax.pad(jnp.where(hit, dy, zero), zero, (
        (0, 0, 0), (i, x_pad.shape[1] - i - 2 * (ho - 1) - 1, 1),
        (j, x_pad.shape[2] - j - 2 * (wo - 1) - 1, 1), (0, 0, 0)))
  return (dx_pad[:, 1:-1, 1:-1, :],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def _resolve_conv_impl(conv_impl):
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f'conv_impl {conv_impl!r}: choose one of {CONV_IMPLS}')
  if conv_impl == 'auto':
    # The rewrites pay on XLA:CPU; on GPU / TPU XLA's own convolutions are at home.
    return 'dots' if jax.default_backend() == 'cpu' else 'xla'
  return conv_impl


def _conv(in_features, out_features, size, stride, *, rngs, dtype, param_dtype, conv_impl='xla'):
  """A bias-free convolution padded like torch's (size - 1) // 2 on every side.

  Explicit padding, not 'SAME': for stride 2 on even sizes XLA's 'SAME' pads
  only after, torch pads both sides, and the outputs would differ by a shift.
  conv_impl 'dots' swaps in _pointwise_conv (1x1) or _spatial_conv (larger):
  same parameters, same results.
  """
  pad = (size - 1) // 2
  extra = {}
  if conv_impl == 'dots':
    extra['conv_general_dilated'] = _pointwise_conv if size == 1 else _spatial_conv
  return nnx.Conv(in_features, out_features, (size, size), strides=stride,
                  padding=((pad, pad), (pad, pad)), use_bias=False, kernel_init=_CONV_INIT,
                  dtype=dtype, param_dtype=param_dtype, rngs=rngs, **extra)


def _batch_norm(features, *, zero_scale=False, rngs, dtype, param_dtype):
  scale_init = nnx.initializers.zeros if zero_scale else nnx.initializers.ones
  return nnx.BatchNorm(features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale_init=scale_init,
                       dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def _downsample(in_features, out_features, stride, *, rngs, dtype, param_dtype, conv_impl):
  """1x1 projection + BN for the shortcut, or None where the identity fits.

  An nnx.List, not named attributes, so that its variables are called
  `downsample.0.*` / `downsample.1.*` as in torchvision's nn.Sequential.
  """
  if stride == 1 and in_features == out_features:
    return None
  kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
  return nnx.List([_conv(in_features, out_features, 1, stride, conv_impl=conv_impl, **kw),
                   _batch_norm(out_features, **kw)])


def _shortcut(downsample, x):
  if downsample is None:
    return x
  conv, bn = downsample
  return bn(conv(x))


class BasicBlock(nnx.Module):
  """Two 3x3 convolutions: (B, H, W, C_in) -> (B, H/s, W/s, features)."""

  expansion = 1

  def __init__(self, in_features, features, stride=1, *, zero_init_residual=False, rngs,
               dtype=jnp.float32, param_dtype=jnp.float32, conv_impl='auto'):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    conv_kw = dict(kw, conv_impl=_resolve_conv_impl(conv_impl))
    self.conv1 = _conv(in_features, features, 3, stride, **conv_kw)
    self.bn1 = _batch_norm(features, **kw)
    self.conv2 = _conv(features, features, 3, 1, **conv_kw)
    self.bn2 = _batch_norm(features, zero_scale=zero_init_residual, **kw)
    self.downsample = _downsample(in_features, features, stride, **conv_kw)

  def __call__(self, x):
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return nnx.relu(y + _shortcut(self.downsample, x))


class Bottleneck(nnx.Module):
  """1x1 reduce, 3x3 (strided, v1.5), 1x1 expand: (B, H, W, C_in) -> (B, H/s, W/s, 4 features)."""

  expansion = 4

  def __init__(self, in_features, features, stride=1, *, zero_init_residual=False, rngs,
               dtype=jnp.float32, param_dtype=jnp.float32, conv_impl='auto'):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    conv_kw = dict(kw, conv_impl=_resolve_conv_impl(conv_impl))
    out_features = features * self.expansion
    self.conv1 = _conv(in_features, features, 1, 1, **conv_kw)
    self.bn1 = _batch_norm(features, **kw)
    self.conv2 = _conv(features, features, 3, stride, **conv_kw)
    self.bn2 = _batch_norm(features, **kw)
    self.conv3 = _conv(features, out_features, 1, 1, **conv_kw)
    self.bn3 = _batch_norm(out_features, zero_scale=zero_init_residual, **kw)
    self.downsample = _downsample(in_features, out_features, stride, **conv_kw)

  def __call__(self, x):
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = nnx.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return nnx.relu(y + _shortcut(self.downsample, x))


# depth -> (block, blocks per stage), as in the ResNet paper's Table 1; 10: one basic block
# per stage, for CPU trials and tests (no torchvision weights; it compiles in about 60% of
# ResNet-18's time).
SPECS = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}
STAGE_FEATURES = (64, 128, 256, 512)
# The depths torchvision publishes ImageNet weights for (convert_state_dict).
TORCHVISION_DEPTHS = (18, 34, 50)


def _spec(depth):
  if depth not in SPECS:
    raise ValueError(f'ResNet depth {depth!r} is not supported; choose one of {sorted(SPECS)}')
  return SPECS[depth]


class ResNet(nnx.Module):
  """A torchvision-layout ResNet without its classifier.

  Attributes:
    depth: 10, 18, 34 or 50.
    out_features: channels of the features, 512 (10, 18, 34) or 2048 (50).
    conv_impl: 'xla' or 'dots', as resolved from the constructor's argument.

  Train / eval as any NNX model: `model.train()` normalises with batch
  statistics and updates the running ones (under `jit`, statistics of the
  global batch); `model.eval()` uses the running statistics. A new model is in
  train mode, like a new torch module.

  `dtype` is the compute dtype (e.g. jnp.bfloat16), `param_dtype` the storage
  dtype of the parameters and running statistics. `zero_init_residual` starts
  the last BN scale of every block at 0 (off, as in torchvision).
  `conv_impl` picks how the convolutions and the max pool run, with the same
  parameters and results: 'xla' (nnx.Conv, nnx.max_pool as is), 'dots' (1x1
  convolutions, the stem and 3x3 ones on small maps as 2-D dots, kernel gradients
  as one product over rows, the max-pool gradient as masked pads: 2-2.6x faster
  training on XLA:CPU, see tools/benchmark_resnet.py), 'auto' ('dots' on CPU,
  else 'xla').
  """

  def __init__(self, depth, *, rngs, dtype=jnp.float32, param_dtype=jnp.float32,
               zero_init_residual=False, conv_impl='auto'):
    block, counts = _spec(depth)
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    conv_impl = _resolve_conv_impl(conv_impl)
    self.depth = depth
    self.dtype = dtype
    self.conv_impl = conv_impl
    self.conv1 = _conv(3, 64, 7, 2, conv_impl=conv_impl, **kw)
    self.bn1 = _batch_norm(64, **kw)
    in_features = 64
    for stage, (features, count) in enumerate(zip(STAGE_FEATURES, counts)):
      blocks = []
      for i in range(count):
        stride = 2 if stage > 0 and i == 0 else 1
        blocks.append(block(in_features, features, stride, zero_init_residual=zero_init_residual,
                            conv_impl=conv_impl, **kw))
        in_features = features * block.expansion
      setattr(self, f'layer{stage + 1}', nnx.List(blocks))
    self.out_features = in_features

  def feature_map(self, x):
    """(B, H, W, 3) normalised images -> (B, H/32, W/32, out_features) in `dtype`.

    Spatial sizes round up at each of the five stride-2 steps, as in torch.
    """
    x = nnx.relu(self.bn1(self.conv1(x)))
    # nnx.max_pool pads with -inf, so the padding never wins: torch's padding=1.
    if self.conv_impl == 'dots':
      x = _max_pool(x)
    else:
      x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
      for block in layer:
        x = block(x)
    return x

  def __call__(self, x):
    """(B, H, W, 3) normalised images -> (B, out_features) average-pooled features, float32.

    The mean is taken in float32 so that bfloat16 compute loses nothing more
    in the 64-to-1 (at 256 px) spatial reduction.
    """
    return jnp.mean(self.feature_map(x).astype(jnp.float32), axis=(1, 2))


# ----------------------------------------------------------------------------- weights


def param_shapes(depth):
  """{our key: shape} of every parameter and running statistic, from the spec alone.

  Needs no model (no JAX arrays): the converter checks a state dict with it.
  """
  block, counts = _spec(depth)
  shapes = {}

  def conv(name, size, cin, cout):
    shapes[f'{name}.kernel'] = (size, size, cin, cout)

  def bn(name, c):
    for field in ('scale', 'bias', 'mean', 'var'):
      shapes[f'{name}.{field}'] = (c,)

  conv('conv1', 7, 3, 64)
  bn('bn1', 64)
  cin = 64
  for stage, (features, count) in enumerate(zip(STAGE_FEATURES, counts)):
    for i in range(count):
      stride = 2 if stage > 0 and i == 0 else 1
      prefix = f'layer{stage + 1}.{i}'
      cout = features * block.expansion
      if block is BasicBlock:
        conv(f'{prefix}.conv1', 3, cin, features)
        conv(f'{prefix}.conv2', 3, features, features)
        bn(f'{prefix}.bn1', features)
        bn(f'{prefix}.bn2', features)
      else:
        conv(f'{prefix}.conv1', 1, cin, features)
        conv(f'{prefix}.conv2', 3, features, features)
        conv(f'{prefix}.conv3', 1, features, cout)
        bn(f'{prefix}.bn1', features)
        bn(f'{prefix}.bn2', features)
        bn(f'{prefix}.bn3', cout)
      if stride != 1 or cin != cout:
        conv(f'{prefix}.downsample.0', 1, cin, cout)
        bn(f'{prefix}.downsample.1', cout)
      cin = cout
  return shapes


# torch BatchNorm field -> ours.
_BN_FIELDS = {'weight': 'scale', 'bias': 'bias', 'running_mean': 'mean', 'running_var': 'var'}
_TORCH_FIELDS = {'kernel': 'weight', **{ours: theirs for theirs, ours in _BN_FIELDS.items()}}
# Keys a torchvision checkpoint has that we do not use.
_DROPPED_SUFFIXES = ('num_batches_tracked',)
_DROPPED_PREFIXES = ('fc.',)


def convert_state_dict(state_dict, depth):
  """torchvision ResNet state dict -> {our key: array} (numpy only).

  Args:
    state_dict: {torchvision name: np.ndarray}, e.g. from
      `{k: v.numpy() for k, v in torch.load(path).items()}`. A `module.` prefix
      (from nn.DataParallel) is stripped.
    depth: one of TORCHVISION_DEPTHS (18, 34, 50).

  Returns:
    {our key: float32 array} with conv kernels in HWIO, ready for `save_arrays`
    or `load_weights`.

  Raises:
    WeightsError naming the torchvision key that is missing, unexpected or of
    the wrong shape.
  """
  if depth not in TORCHVISION_DEPTHS:
    raise WeightsError(f'ResNet-{depth} has no torchvision weights; choose one of '
                       f'{TORCHVISION_DEPTHS}')
  shapes = param_shapes(depth)
  state = {}
  for key, value in state_dict.items():
    key = str(key)
    state[key[len('module.'):] if key.startswith('module.') else key] = value

  def torch_key(ours):
    name, field = ours.rsplit('.', 1)
    return f'{name}.{_TORCH_FIELDS[field]}'

  # Every name first: a state dict of another depth then says which layer it
  # lacks rather than which shape it got wrong.
  missing = [torch_key(k) for k in shapes if torch_key(k) not in state]
  if missing:
    raise WeightsError(f'missing {missing[0]!r} (and {len(missing) - 1} more); is this a '
                       f'torchvision ResNet-{depth} state dict?')
  out, used = {}, set()
  for ours, shape in shapes.items():
    theirs = torch_key(ours)
    value = np.asarray(state[theirs], dtype=np.float32)
    if ours.endswith('.kernel'):
      if value.ndim != 4:
        raise WeightsError(f'{theirs!r}: expected a 4-D (O, I, H, W) conv weight, '
                           f'got shape {value.shape}')
      value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if value.shape != shape:
      raise WeightsError(f'{theirs!r}: shape {value.shape} (after conversion) does not fit '
                         f'ResNet-{depth}, which needs {shape} for {ours!r}')
    out[ours] = np.ascontiguousarray(value)
    used.add(theirs)

  unexpected = sorted(k for k in state if k not in used and not k.startswith(_DROPPED_PREFIXES)
                      and not k.endswith(_DROPPED_SUFFIXES))
  if unexpected:
    raise WeightsError(f'unexpected keys for ResNet-{depth}: {unexpected[:5]}'
                       f'{" ..." if len(unexpected) > 5 else ""} (another depth?)')
  return out


def _variables(model):
  """{our key: nnx.Variable} of the parameters and running statistics."""
  flat = nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))
  return {'.'.join(str(p) for p in path): var for path, var in flat}


def save_arrays(arrays, path):
  """Writes {key: array} to `path` as an .npz, atomically (temporary file, then rename)."""
  with atomic_open(path, 'wb') as f:
    np.savez(f, **arrays)


def save_weights(model, path):
  """Writes the model's parameters and running statistics to an .npz (float32), atomically."""
  # float32 on disk whatever param_dtype is: plain numpy cannot read bfloat16 back.
  save_arrays({k: np.asarray(v.get_value(), dtype=np.float32)
               for k, v in _variables(model).items()}, path)


def load_weights(model, source, *, strict=True):
  """Assigns weights into `model` in place from an .npz path or a {key: array} dict.

  Every key is checked before anything is assigned, so a bad file leaves the
  model unchanged. Values are cast to the model's param_dtype.

  Args:
    model: a ResNet (or any module whose variables use our key names).
    source: path of an .npz written by `save_weights` / the converter, or a dict.
    strict: if False, keys of the model missing from `source` keep their values
      and extra keys in `source` are ignored.

  Raises:
    WeightsError naming the key that is missing, unexpected or of the wrong shape.
  """
  where = f'{os.fspath(source)}: ' if not isinstance(source, dict) else ''
  if isinstance(source, dict):
    arrays = source
  else:
    with np.load(source, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
  variables = _variables(model)
  if strict:
    missing = sorted(set(variables) - set(arrays))
    if missing:
      raise WeightsError(f'{where}missing {len(missing)} key(s), first {missing[0]!r}; '
                         'is it for a different depth?')
    extra = sorted(set(arrays) - set(variables))
    if extra:
      raise WeightsError(f'{where}unexpected key {extra[0]!r} (and {len(extra) - 1} more); '
                         'is it for a different depth?')
  updates = []
  for key, var in variables.items():
    if key not in arrays:
      continue
    value = np.asarray(arrays[key])
    want = tuple(var.get_value().shape)
    if value.shape != want:
      raise WeightsError(f'{where}{key!r} has shape {value.shape}, the model needs {want}')
    if not np.issubdtype(value.dtype, np.floating):
      raise WeightsError(f'{where}{key!r} has dtype {value.dtype}, expected floating point')
    updates.append((var, value))
  for var, value in updates:
    var.set_value(jnp.asarray(value, dtype=var.get_value().dtype))
  return model


def from_weights(source, depth, **kwargs):
  """A ResNet-`depth` holding the weights of `source` (an .npz path or a {key: array} dict).

  Skips the random initialisation (seconds of compiling on a CPU): the model is
  built abstractly with nnx.eval_shape and every variable then comes from
  `source`, which must therefore hold them all. `kwargs` go to `ResNet`.
  """
  model = nnx.eval_shape(lambda: ResNet(depth, rngs=nnx.Rngs(0), **kwargs))
  return load_weights(model, source, strict=True)


__all__ = [
    'BN_EPSILON', 'BN_MOMENTUM', 'BasicBlock', 'Bottleneck', 'ResNet', 'SPECS',
    'TORCHVISION_DEPTHS', 'WeightsError',
    'convert_state_dict', 'from_weights', 'load_weights', 'param_shapes', 'save_arrays',
    'save_weights',
]
