"""Convert the official VPoser v2 checkpoint to our `.npz` parameter layout.

    python tools/convert_vposer.py \\
        --ckpt V02_05/snapshots/V02_05_epoch=13_val_loss=0.03.ckpt --out vposer_v2.npz

Reads a PyTorch Lightning `.ckpt` (weights under `state_dict`, prefixed
`vp_model.`) or a plain state dict saved with `torch.save`, renames the
`encoder_net.*` / `decoder_net.*` tensors to the names of
`body_models.vposer`, transposes linear weights to (in, out), and writes the
result with `vposer.save`. This is the only file of the project that imports
torch; run it once, offline.
"""

import argparse
import os
import pickle
import sys
import zipfile

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from body_models import vposer  # noqa: E402

# Official module path (inside `vp_model.`) -> our layer. The indices are the
# positions in the released model's nn.Sequential stacks; parameter-free layers
# (flatten, LeakyReLU, Dropout, the 6D decoder) take the missing indices.
LINEAR_LAYERS = {
    'encoder_net.2': 'encoder/enc_fc1',
    'encoder_net.6': 'encoder/enc_fc2',
    'encoder_net.7': 'encoder/enc_fc3',
    'encoder_net.8.mu': 'encoder/enc_mu',
    'encoder_net.8.logvar': 'encoder/enc_logvar',
    'decoder_net.0': 'decoder/dec_fc1',
    'decoder_net.3': 'decoder/dec_fc2',
    'decoder_net.5': 'decoder/dec_out',
}
BATCH_NORM_LAYERS = {
    'encoder_net.1': 'encoder/enc_bn_in',
    'encoder_net.4': 'encoder/enc_bn1',
}
# torch BatchNorm field -> ours. `num_batches_tracked` is training bookkeeping.
BATCH_NORM_FIELDS = {'weight': 'scale', 'bias': 'bias', 'running_mean': 'mean', 'running_var': 'var'}
PREFIX = 'vp_model.'


class ConversionError(Exception):
  """The input cannot be converted; the message says why and what to do."""


def _make_stub(qualified_name):
  """An inert stand-in class for a pickled global we refuse to import.

  It accepts any constructor arguments and any state and keeps them as data;
  no method of the real class ever runs.
  """
  module, _, name = qualified_name.rpartition('.')

  class Stub:

    def __new__(cls, *args, **kwargs):
      return object.__new__(cls)

    def __init__(self, *args, **kwargs):
      self.stub_args = args

    def __setstate__(self, state):
      self.stub_state = state

  Stub.__name__ = Stub.__qualname__ = name
  Stub.__module__ = module
  return Stub


def read_checkpoint(path, trust_checkpoint=False):
  """Loads a torch checkpoint without running code from it (unless trusted).

  1. `torch.load(weights_only=True)`: enough for files of tensors and plain
     containers.
  2. Lightning checkpoints also pickle callback classes and hyper-parameter
     objects, which (1) refuses. We list those globals without loading them and
     map each one to an inert stub class, still under weights_only: no code
     from the file runs, and the tensors come through.
  3. Only with `trust_checkpoint`: `weights_only=False` (full pickle; runs
     whatever the file says, so only for files from a source you trust).
  """
  import torch

  try:
    return torch.load(path, map_location='cpu', weights_only=True)
  except pickle.UnpicklingError as e:
    first_error = e
  except Exception as e:  # noqa: BLE001 - torch raises several types for non-checkpoints.
    raise ConversionError(f'{path}: not a PyTorch checkpoint ({type(e).__name__}: {e})') from None

  if not zipfile.is_zipfile(path):
    # Every torch.save since 1.6 writes a zip; older files cannot be listed.
    if not trust_checkpoint:
      raise ConversionError(
          f'{path}: not a PyTorch checkpoint, or one in the legacy pre-1.6 format that can only be '
          f'read with --trust_checkpoint (torch.load said: {first_error})')
    names = []
  else:
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
  if names:
    stubs = [(_make_stub(n), n) for n in names]
    try:
      with torch.serialization.safe_globals(stubs):
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
      first_error = e

  if trust_checkpoint:
    print(f'warning: loading {path} with weights_only=False (--trust_checkpoint)', file=sys.stderr)
    return torch.load(path, map_location='cpu', weights_only=False)
  raise ConversionError(
      f'{path}: torch.load(weights_only=True) refused this file:\n  {first_error}\n'
      'If you got the file from a source you trust (e.g. the official VPoser download), re-run '
      'with --trust_checkpoint to load it with weights_only=False. That runs arbitrary code '
      'stored in the file.')


def find_state_dict(payload, path):
  """The model's {name: tensor} from a Lightning checkpoint or a plain state dict.

  Keys are returned without the Lightning `vp_model.` prefix.
  """
  state = payload
  if isinstance(payload, dict) and isinstance(payload.get('state_dict'), dict):
    state = payload['state_dict']
  if not isinstance(state, dict):
    raise ConversionError(f'{path}: expected a Lightning checkpoint or a state dict, '
                          f'got {type(payload).__name__}')
  if any(str(k).startswith(PREFIX) for k in state):
    state = {k[len(PREFIX):]: v for k, v in state.items() if str(k).startswith(PREFIX)}
  return state


def convert_state_dict(state, path='<state dict>'):
  """{official name: tensor or array} -> (our flat {key: np.ndarray}, ignored keys)."""

  def get(key):
    if key not in state:
      raise ConversionError(f'{path}: missing tensor {PREFIX}{key} (or {key}); '
                            'is this a VPoser v2 checkpoint? (v1 files use different names)')
    v = state[key]
    v = v.detach().cpu().numpy() if hasattr(v, 'detach') else np.asarray(v)
    return np.ascontiguousarray(v)

  flat = {}
  used = set()
  for theirs, ours in LINEAR_LAYERS.items():
    # torch Linear stores weight as (out, in); our kernels are (in, out).
    flat[f'{ours}/kernel'] = get(f'{theirs}.weight').T.copy()
    flat[f'{ours}/bias'] = get(f'{theirs}.bias')
    used.update([f'{theirs}.weight', f'{theirs}.bias'])
  for theirs, ours in BATCH_NORM_LAYERS.items():
    for t_field, o_field in BATCH_NORM_FIELDS.items():
      flat[f'{ours}/{o_field}'] = get(f'{theirs}.{t_field}')
      used.add(f'{theirs}.{t_field}')
    used.add(f'{theirs}.num_batches_tracked')
  ignored = sorted(str(k) for k in state if k not in used)
  return flat, ignored


def convert(ckpt, out, trust_checkpoint=False):
  """Converts `ckpt` to `out`; returns (dims, number of parameters, ignored keys)."""
  payload = read_checkpoint(ckpt, trust_checkpoint)
  state = find_state_dict(payload, ckpt)
  flat, ignored = convert_state_dict(state, ckpt)
  tree = {}
  for k, v in flat.items():
    part, layer, field = k.split('/')
    tree.setdefault(part, {}).setdefault(layer, {})[field] = v
  try:
    vposer.save(tree, out)
  except vposer.VPoserFileError as e:
    raise ConversionError(f'{ckpt}: the tensors do not form a VPoser v2 model: {e}') from None
  return vposer.dimensions(tree), sum(v.size for v in flat.values()), ignored


def build_parser():
  parser = argparse.ArgumentParser(
      prog='convert_vposer',
      description='Convert the official VPoser v2 weights to the .npz layout of body_models.vposer. '
      'Reads the Lightning .ckpt '
      '(e.g. V02_05/snapshots/V02_05_epoch=13_val_loss=0.03.ckpt) or a plain state dict .pt, '
      'and writes the .npz that body_models.vposer.load reads.')
  parser.add_argument('--ckpt', required=True,
                      help='official VPoser v2 checkpoint (.ckpt) or a torch.save()d state dict (.pt)')
  parser.add_argument('--out', required=True, help='output .npz path (written atomically)')
  parser.add_argument('--trust_checkpoint', action='store_true',
                      help='if the safe loaders refuse the file, load it with '
                      'torch.load(weights_only=False), which can run code stored in it; '
                      'only for files from a source you trust')
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  if not os.path.isfile(args.ckpt):
    print(f'error: no such checkpoint: {args.ckpt}', file=sys.stderr)
    return 2
  try:
    (latent_dim, hidden, num_joints), n_params, ignored = convert(
        args.ckpt, args.out, args.trust_checkpoint)
  except ConversionError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'wrote {args.out}: VPoser v2 decoder+encoder, latent {latent_dim}, hidden {hidden}, '
        f'{num_joints} joints, {n_params:,} parameters; ignored {len(ignored)} unrelated '
        'state-dict entries')
  return 0


if __name__ == '__main__':
  sys.exit(main())
