"""Convert torchvision ResNet-18/34/50 weights to the `.npz` layout of our ResNet.

    python tools/convert_torchvision_resnet.py --pth resnet50-0676ba61.pth --depth 50 \\
        --out resnet50.npz [--verify]

Reads a torchvision state dict saved with `torch.save` (`.pth`, loaded with
`weights_only=True`, so no code from the file runs) or a `.safetensors` file
(needs the `safetensors` package), converts it with
`neuralannot_jax.models.resnet.convert_state_dict` (conv kernels OIHW -> HWIO,
BatchNorm weight/bias/running_mean/running_var -> scale/bias/mean/var, `fc`
dropped) and writes the `.npz` atomically. `--depth` is read off the keys when
omitted.

`--verify` loads the same file into `TorchResNet` below (a torch.nn ResNet
with torchvision's module names; torchvision itself is not needed) and the
converted file into our model, and compares the pooled features of a random
batch in eval mode.

This tool is the only place besides the tests and benchmark that imports torch.
"""

import argparse
import os
import sys

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from neuralannot_jax.models import resnet  # noqa: E402

# -------------------------------------------------------------------------- torch reference


def _torch_modules():
  """The torch.nn reference classes, built on first use so importing this file needs no torch."""
  from torch import nn

  def conv(cin, cout, size, stride=1):
    return nn.Conv2d(cin, cout, size, stride=stride, padding=(size - 1) // 2, bias=False)

  class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, features, stride):
      super().__init__()
      self.conv1 = conv(cin, features, 3, stride)
      self.bn1 = nn.BatchNorm2d(features)
      self.relu = nn.ReLU(inplace=True)
      self.conv2 = conv(features, features, 3)
      self.bn2 = nn.BatchNorm2d(features)
      self.downsample = None
      if stride != 1 or cin != features:
        self.downsample = nn.Sequential(conv(cin, features, 1, stride), nn.BatchNorm2d(features))

    def forward(self, x):
      y = self.relu(self.bn1(self.conv1(x)))
      y = self.bn2(self.conv2(y))
      return self.relu(y + (x if self.downsample is None else self.downsample(x)))

  class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, features, stride):
      super().__init__()
      cout = features * 4
      self.conv1 = conv(cin, features, 1)
      self.bn1 = nn.BatchNorm2d(features)
      self.conv2 = conv(features, features, 3, stride)  # v1.5: stride on the 3x3
      self.bn2 = nn.BatchNorm2d(features)
      self.conv3 = conv(features, cout, 1)
      self.bn3 = nn.BatchNorm2d(cout)
      self.relu = nn.ReLU(inplace=True)
      self.downsample = None
      if stride != 1 or cin != cout:
        self.downsample = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
      y = self.relu(self.bn1(self.conv1(x)))
      y = self.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      return self.relu(y + (x if self.downsample is None else self.downsample(x)))

  class TorchResNet(nn.Module):
    """NCHW (B, 3, H, W) -> (B, C) pooled features; `fc` exists so state dicts match."""

    def __init__(self, depth, num_classes=1000):
      super().__init__()
      block = {18: BasicBlock, 34: BasicBlock, 50: Bottleneck}[depth]
      counts = resnet.SPECS[depth][1]
      self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
      self.bn1 = nn.BatchNorm2d(64)
      self.relu = nn.ReLU(inplace=True)
      self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
      cin = 64
      for stage, (features, count) in enumerate(zip(resnet.STAGE_FEATURES, counts)):
        blocks = []
        for i in range(count):
          blocks.append(block(cin, features, 2 if stage > 0 and i == 0 else 1))
          cin = features * block.expansion
        setattr(self, f'layer{stage + 1}', nn.Sequential(*blocks))
      self.avgpool = nn.AdaptiveAvgPool2d(1)
      self.fc = nn.Linear(cin, num_classes)
      self.out_features = cin

    def forward(self, x):
      x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
      x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
      return self.avgpool(x).flatten(1)

  return TorchResNet


def torch_resnet(depth):
  """A torch.nn ResNet-`depth` with torchvision's module and state-dict names (random init)."""
  return _torch_modules()(depth)


# ------------------------------------------------------------------------------- conversion


class ConversionError(Exception):
  """The input cannot be converted; the message says why."""


def read_state_dict(path):
  """{torchvision name: float np.ndarray} from a `.pth` state dict or a `.safetensors` file."""
  if path.endswith('.safetensors'):
    try:
      from safetensors.numpy import load_file
    except ImportError:
      raise ConversionError(f'{path}: reading .safetensors needs the safetensors package '
                            '(pip install safetensors)') from None
    return dict(load_file(path))
  import torch
  try:
    payload = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # noqa: BLE001 - torch raises several types for non-checkpoints.
    raise ConversionError(f'{path}: not a torch state dict readable with weights_only=True '
                          f'({type(e).__name__}: {e})') from None
  # Training scripts often wrap the weights: {'state_dict': ...} or {'model': ...}.
  for wrapper in ('state_dict', 'model'):
    if isinstance(payload, dict) and isinstance(payload.get(wrapper), dict):
      payload = payload[wrapper]
  if not isinstance(payload, dict):
    raise ConversionError(f'{path}: expected a state dict, got {type(payload).__name__}')
  return {str(k): v.detach().float().numpy() if hasattr(v, 'detach') else np.asarray(v)
          for k, v in payload.items() if hasattr(v, 'shape')}


def infer_depth(state):
  """18, 34 or 50 from the key names of a torchvision ResNet state dict."""
  keys = {k[len('module.'):] if k.startswith('module.') else k for k in state}
  if 'layer1.0.conv3.weight' in keys:
    return 50
  blocks = {k.split('.')[1] for k in keys if k.startswith('layer3.')}
  depth = {2: 18, 6: 34}.get(len(blocks))
  if depth is None:
    raise ConversionError(f'cannot tell the ResNet depth from the keys ({len(blocks)} blocks in '
                          'layer3); pass --depth')
  return depth


def convert(pth, out, depth=None):
  """Converts `pth` to `out`; returns (depth, number of arrays, number of values)."""
  state = read_state_dict(pth)
  depth = depth or infer_depth(state)
  try:
    arrays = resnet.convert_state_dict(state, depth)
  except resnet.WeightsError as e:
    raise ConversionError(f'{pth}: {e}') from None
  resnet.save_arrays(arrays, out)
  return depth, len(arrays), sum(a.size for a in arrays.values())


def verify(pth, out, depth, size=128, batch=2, seed=0):
  """Max |difference| of eval-mode pooled features, torch reference vs ours, on random input."""
  import jax.numpy as jnp
  import torch

  reference = torch_resnet(depth)
  state = {k: torch.from_numpy(np.array(v)) for k, v in read_state_dict(pth).items()}
  state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
  reference.load_state_dict(state, strict=False)
  reference.eval()
  model = resnet.from_weights(out, depth)
  model.eval()
  x = np.random.default_rng(seed).standard_normal((batch, size, size, 3)).astype(np.float32)
  with torch.no_grad():
    want = reference(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  got = np.asarray(model(jnp.asarray(x)))
  return float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pth', required=True,
                      help='torchvision state dict (.pth) or .safetensors, e.g. resnet50-0676ba61.pth')
  parser.add_argument('--depth', type=int, choices=resnet.TORCHVISION_DEPTHS,
                      help='ResNet depth (default: read off the keys)')
  parser.add_argument('--out', required=True, help='output .npz (written atomically)')
  parser.add_argument('--verify', action='store_true',
                      help='compare features of a torch.nn reference and of our model after converting')
  args = parser.parse_args(argv)
  try:
    depth, count, values = convert(args.pth, args.out, args.depth)
  except ConversionError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'wrote {args.out}: ResNet-{depth}, {count} arrays, {values / 1e6:.1f}M values')
  if args.verify:
    diff, scale = verify(args.pth, args.out, depth)
    print(f'verify: max |ours - torch| = {diff:.2e} on features of max |{scale:.2f}|')
    if diff > 1e-3 * max(1.0, scale):
      print('error: the converted model does not reproduce the reference', file=sys.stderr)
      return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
