"""ResNet backbone: parity with a torch.nn ResNet in torchvision's layout, weights I/O, training."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from neuralannot_jax.models import resnet
import module_files  # pylint: disable=wrong-import-order

torch = pytest.importorskip('torch')

TOOL = pathlib.Path(__file__).resolve().parents[1] / 'tools' / 'convert_torchvision_resnet.py'


def _load_tool():
  return module_files.load(TOOL)


tool = _load_tool()


def _randomised_reference(depth, seed=0):
  """torch.nn ResNet with torchvision's names, random weights and non-trivial BN statistics."""
  torch.manual_seed(seed)
  model = tool.torch_resnet(depth)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        c = module.num_features
        # Scales around 1 keep activations O(1) through the depth, so an
        # absolute tolerance means the same everywhere.
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
        module.running_mean.copy_(0.2 * torch.randn(c))
        module.running_var.uniform_(0.5, 2.0)
  return model


def _numpy_state(model):
  return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _images(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch_features(model, x_nhwc):
  with torch.no_grad():
    return model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)).numpy()


@pytest.fixture(scope='module')
def reference18():
  return _randomised_reference(18)


@pytest.fixture(scope='module')
def converted18(reference18):
  return resnet.convert_state_dict(_numpy_state(reference18), 18)


def _ours(depth, arrays=None, **kwargs):
  """Our ResNet holding `arrays`; abstract (shapes only) if None.

  Random initialisation compiles a sampler per kernel shape (seconds on this
  CPU); only the training test needs it.
  """
  if arrays is None:
    return nnx.eval_shape(lambda: resnet.ResNet(depth, rngs=nnx.Rngs(0), **kwargs))
  return resnet.from_weights(arrays, depth, **kwargs)


def test_key_mapping_and_shapes(converted18):
  assert converted18['conv1.kernel'].shape == (7, 7, 3, 64)
  assert converted18['layer2.0.downsample.0.kernel'].shape == (1, 1, 64, 128)
  assert set(converted18['layer2.0.downsample.1.scale'].shape) == {128}
  assert 'layer1.0.downsample.0.kernel' not in converted18  # identity shortcut
  assert not any(k.startswith('fc') or 'num_batches' in k for k in converted18)
  assert set(converted18) == set(resnet.param_shapes(18))
  model = _ours(18)
  assert model.out_features == 512
  assert {k: tuple(v.get_value().shape) for k, v in resnet._variables(model).items()} == \
      resnet.param_shapes(18)


def test_resnet18_matches_torch_in_eval_mode(reference18, converted18):
  reference18.eval()
  model = _ours(18, converted18)
  model.eval()
  # Odd, non-square sizes exercise the padding and rounding of every stride-2 step.
  x = _images((2, 72, 88, 3))
  want = _torch_features(reference18, x)
  got = np.asarray(model(jnp.asarray(x)))
  assert got.shape == (2, 512) and np.abs(want).max() > 0.1
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  assert model.feature_map(jnp.asarray(x)).shape == (2, 3, 3, 512)


def test_resnet10_is_resnet18_with_its_second_blocks_made_identities(converted18):
  # A basic block whose last BatchNorm outputs zero returns relu(x) = x for its input x
  # (itself a ReLU's output): so ResNet-18 (checked against torch above) with the second
  # block of every stage zeroed so is ResNet-10 holding the weights of the first blocks.
  ten = {k: v for k, v in converted18.items() if not re.match(r'layer\d\.1\.', k)}
  assert set(ten) == set(resnet.param_shapes(10))
  eighteen = dict(converted18)
  for stage in range(1, 5):
    for field in ('scale', 'bias'):
      eighteen[f'layer{stage}.1.bn2.{field}'] = np.zeros_like(eighteen[f'layer{stage}.1.bn2.{field}'])
  models = [_ours(10, ten), _ours(18, eighteen)]
  x = jnp.asarray(_images((2, 72, 88, 3)))
  got, want = (np.asarray(_eval(m)(x)) for m in models)
  assert got.shape == (2, 512) and np.abs(want).max() > 0.1
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
  with pytest.raises(resnet.WeightsError, match='no torchvision weights'):
    resnet.convert_state_dict({}, 10)


def _eval(model):
  model.eval()
  return model


def test_resnet50_bottleneck_matches_torch():
  reference = _randomised_reference(50, seed=1)
  reference.eval()
  model = _ours(50, resnet.convert_state_dict(_numpy_state(reference), 50))
  model.eval()
  assert model.out_features == 2048
  x = _images((2, 64, 64, 3), seed=1)
  np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), _torch_features(reference, x),
                             atol=1e-4, rtol=1e-4)


def test_train_mode_uses_batch_statistics_and_updates_them(converted18):
  reference = _randomised_reference(18)
  reference.train()
  model = _ours(18, converted18)
  model.train()
  x = _images((2, 64, 64, 3), seed=2)
  before = np.asarray(model.layer3[0].bn1.mean.get_value())
  got = np.asarray(model(jnp.asarray(x)))
  np.testing.assert_allclose(got, _torch_features(reference, x), atol=1e-4, rtol=1e-4)
  assert not np.allclose(before, np.asarray(model.layer3[0].bn1.mean.get_value()))
  # Same momentum convention: the running means agree with torch's after one step.
  ours = resnet._variables(model)
  theirs = reference.state_dict()
  for key in ('bn1', 'layer1.0.bn2', 'layer4.1.bn2'):
    np.testing.assert_allclose(np.asarray(ours[f'{key}.mean'].get_value()),
                               theirs[f'{key}.running_mean'].numpy(), atol=1e-5, rtol=1e-4)
  # torch updates the running variance with the unbiased batch variance, Flax with
  # the biased one: they differ by n / (n - 1), n = values per channel.
  n = 2 * 32 * 32
  batch_var_ours = (ours['bn1.var'].get_value() - 0.9 * converted18['bn1.var']) / 0.1
  batch_var_torch = (theirs['bn1.running_var'].numpy() - 0.9 * converted18['bn1.var']) / 0.1
  np.testing.assert_allclose(np.asarray(batch_var_ours) * n / (n - 1), batch_var_torch,
                             rtol=1e-3, atol=1e-5)


def test_jitted_train_step_changes_params_and_stats(converted18):
  assert _ours(18).bn1.use_running_average is False  # new models train, like torch's
  model = _ours(18, converted18)
  optimizer = nnx.Optimizer(model, optax.sgd(0.01), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x, target):
    def loss_fn(model):
      return jnp.mean((model(x) - target) ** 2)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  x = jnp.asarray(_images((2, 32, 32, 3), seed=3))
  target = jnp.ones((2, 512))
  kernel = np.asarray(model.layer4[1].conv2.kernel.get_value())
  mean = np.asarray(model.bn1.mean.get_value())
  loss0 = float(step(model, optimizer, x, target))
  loss1 = float(step(model, optimizer, x, target))
  assert np.isfinite(loss0) and loss1 < loss0
  assert not np.allclose(kernel, np.asarray(model.layer4[1].conv2.kernel.get_value()))
  assert not np.allclose(mean, np.asarray(model.bn1.mean.get_value()))


def test_load_weights_checks_every_key_before_assigning(converted18, tmp_path):
  model = _ours(18, converted18)
  bad = dict(converted18)
  bad['layer3.1.conv2.kernel'] = np.zeros((3, 3, 256, 128), np.float32)
  kernel = np.asarray(model.conv1.kernel.get_value())
  with pytest.raises(resnet.WeightsError, match=r"layer3\.1\.conv2\.kernel.*\(3, 3, 256, 256\)"):
    resnet.load_weights(model, bad)
  np.testing.assert_array_equal(kernel, np.asarray(model.conv1.kernel.get_value()))

  missing = {k: v for k, v in converted18.items() if k != 'layer2.0.downsample.1.var'}
  with pytest.raises(resnet.WeightsError, match=r'layer2\.0\.downsample\.1\.var'):
    resnet.load_weights(model, missing)
  resnet.load_weights(model, missing, strict=False)

  path = tmp_path / 'bad.npz'
  resnet.save_arrays(bad, path)
  with pytest.raises(resnet.WeightsError, match=r"bad\.npz.*layer3\.1\.conv2\.kernel"):
    resnet.load_weights(model, path)
  with pytest.raises(resnet.WeightsError, match=r"missing 80 key\(s\), first 'layer1\.2\."):
    resnet.load_weights(_ours(34), converted18)


def test_convert_state_dict_names_the_torch_key(reference18):
  state = _numpy_state(reference18)
  state['layer1.1.bn1.running_var'] = np.ones(32, np.float32)
  with pytest.raises(resnet.WeightsError, match=r'layer1\.1\.bn1\.running_var'):
    resnet.convert_state_dict(state, 18)
  with pytest.raises(resnet.WeightsError, match=r'layer1\.0\.conv3\.weight'):
    resnet.convert_state_dict(_numpy_state(reference18), 50)
  prefixed = {f'module.{k}': v for k, v in _numpy_state(reference18).items()}
  assert set(resnet.convert_state_dict(prefixed, 18)) == set(resnet.param_shapes(18))


def test_save_load_round_trip(converted18, tmp_path):
  path = tmp_path / 'sub' / 'r18.npz'
  resnet.save_weights(_ours(18, converted18), path)
  assert [p.name for p in path.parent.iterdir()] == ['r18.npz']  # no temporary left
  with np.load(path) as f:
    for key, value in converted18.items():
      np.testing.assert_array_equal(f[key], value)


def test_tool_converts_and_verifies_a_pth(reference18, tmp_path):
  pth, out = tmp_path / 'resnet18.pth', tmp_path / 'resnet18.npz'
  torch.save(reference18.state_dict(), pth)
  assert tool.main(['--pth', str(pth), '--out', str(out), '--verify']) == 0  # depth inferred
  with np.load(out) as f:
    np.testing.assert_array_equal(f['layer4.1.bn2.mean'],
                                  reference18.state_dict()['layer4.1.bn2.running_mean'].numpy())
  assert tool.main(['--pth', str(pth), '--depth', '34', '--out', str(tmp_path / 'x.npz')]) == 1


def test_bfloat16_compute(converted18):
  model = _ours(18, converted18)
  model.eval()
  fast = _ours(18, converted18, dtype=jnp.bfloat16)
  fast.eval()
  assert fast.conv1.kernel.get_value().dtype == jnp.float32
  x = jnp.asarray(_images((1, 64, 64, 3), seed=4))
  forward = nnx.jit(lambda model, x: model(x))
  want, got = np.asarray(forward(model, x)), np.asarray(forward(fast, x))
  assert got.dtype == np.float32
  assert np.abs(got - want).max() < 0.05 * np.abs(want).max()



def test_zero_init_residual_zeroes_the_last_scale_of_each_block():
  rngs = nnx.Rngs(0)
  block = resnet.Bottleneck(64, 16, zero_init_residual=True, rngs=rngs)
  assert not np.any(np.asarray(block.bn3.scale.get_value()))
  assert np.all(np.asarray(block.bn2.scale.get_value()) == 1)
  # torchvision's kaiming_normal_(mode='fan_out'): std sqrt(2 / (out * kh * kw)).
  assert abs(np.std(np.asarray(block.conv3.kernel.get_value())) / np.sqrt(2 / 64) - 1) < 0.1
  block = resnet.BasicBlock(16, 16, zero_init_residual=True, rngs=rngs)
  assert not np.any(np.asarray(block.bn2.scale.get_value()))
  # With the residual branch silenced a block starts as relu(identity).
  block.eval()
  x = jnp.asarray(_images((1, 8, 8, 16)))
  np.testing.assert_allclose(np.asarray(block(x)), np.maximum(np.asarray(x), 0))
  assert resnet.BasicBlock(16, 16, rngs=rngs).bn2.scale.get_value().min() == 1  # off by default


@pytest.mark.parametrize('block_type, args', [(resnet.Bottleneck, (32, 8, 2)),
                                              (resnet.BasicBlock, (16, 32, 2))])
def test_conv_impl_dots_matches_xla_convolutions(block_type, args):
  # Strided blocks have every kind of convolution: 1x1 reduce / expand /
  # projection, 3x3 with stride 1 and 2 (odd sizes: uneven windows).
  dots = block_type(*args, conv_impl='dots', rngs=nnx.Rngs(0))
  xla = block_type(*args, conv_impl='xla', rngs=nnx.Rngs(1))
  nnx.update(xla, nnx.state(dots))
  # 17 x 18 input: the strided 3x3 sees a map above IM2COL_MAX_PIXELS (XLA convolution,
  # kernel gradient from patches), the second 3x3 one below it (all im2col).
  assert 9 * 9 <= resnet.IM2COL_MAX_PIXELS < 17 * 18
  x = jnp.asarray(_images((2, 17, 18, args[0]), seed=5))

  @nnx.jit
  def loss_and_grads(block):
    return nnx.value_and_grad(lambda block: jnp.sum(block(x) ** 2))(block)

  (loss_dots, grads_dots), (loss_xla, grads_xla) = loss_and_grads(dots), loss_and_grads(xla)
  assert dots(x).shape[1:3] == (9, 9)
  np.testing.assert_allclose(loss_dots, loss_xla, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(grads_dots), jax.tree.leaves(grads_xla)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
  with pytest.raises(ValueError, match='conv_impl'):
    block_type(*args, conv_impl='winograd', rngs=nnx.Rngs(0))


@pytest.mark.parametrize('shape, size, stride', [((3, 2, 2, 8), 3, 1), ((2, 3, 5, 8), 3, 2),
                                                 ((2, 8, 8, 4), 3, 2), ((2, 21, 18, 3), 7, 2)])
def test_small_maps_and_the_stem_take_im2col_and_match_xla(shape, size, stride):
  # Maps of <= IM2COL_MAX_PIXELS pixels, including ones smaller than the 3x3 window,
  # and the RGB stem's 7x7 / 2 on a larger map (odd height: an uneven last window).
  assert (shape[1] * shape[2] <= resnet.IM2COL_MAX_PIXELS
          or shape[3] <= resnet.IM2COL_MAX_CHANNELS)
  x = jnp.asarray(_images(shape, seed=2))
  kernel = jnp.asarray(_images((size, size, shape[-1], 6), seed=3))
  pad = (size - 1) // 2
  padding = ((pad, pad), (pad, pad))

  def loss(conv, x, kernel):
    y = conv(x, kernel, (stride, stride), padding)
    return jnp.sum(jnp.sin(y))

  reference = lambda x, k, s, p: jax.lax.conv_general_dilated(
      x, k, s, p, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  ours = lambda x, k, s, p: resnet._spatial_conv(x, k, s, p)  # pylint: disable=protected-access
  value, grads = jax.value_and_grad(loss, argnums=(1, 2))(ours, x, kernel)
  value_ref, grads_ref = jax.value_and_grad(loss, argnums=(1, 2))(reference, x, kernel)
  np.testing.assert_allclose(value, value_ref, rtol=1e-5)
  for a, b in zip(grads, grads_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize('shape', [(2, 9, 7, 3), (1, 8, 8, 2)])
def test_max_pool_gradient_matches_xla_including_ties(shape):
  # Small integers: most windows hold the maximum twice or more, so the test also
  # pins down which one takes the gradient (the first, row-major, as XLA and torch).
  x = jnp.asarray(np.random.default_rng(0).integers(0, 3, shape).astype(np.float32))
  dy = jnp.asarray(_images((shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2, shape[3]), seed=4))
  reference = lambda x: nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
  y, vjp = jax.vjp(resnet._max_pool, x)  # pylint: disable=protected-access
  y_ref, vjp_ref = jax.vjp(reference, x)
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_allclose(vjp(dy)[0], vjp_ref(dy)[0], rtol=1e-6, atol=1e-6)
