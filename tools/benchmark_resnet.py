"""Train-step images/s of our ResNet vs the same network in PyTorch, on this machine.

    python tools/benchmark_resnet.py                              # ResNet-50, batch 8, 256 and 128 px
    python tools/benchmark_resnet.py --sizes 128 --rounds 5 --write BENCHMARKS.md

One train step = forward in train mode (batch statistics, running averages
updated) + backward + optimizer update, on the loss mean((features - 0)^2) of
the pooled features. Contenders, all starting from the same random weights
(torch's initialisation, converted with `resnet.convert_state_dict`):

  torch     the torch.nn reference of tools/convert_torchvision_resnet.py (NCHW),
            `--threads` intra-op threads
  ours      neuralannot_jax.models.resnet.ResNet with conv_impl='dots' (the default on CPU):
            1x1 convolutions, the stem and 3x3 ones on small maps as 2-D dots, kernel
            gradients as products over rows, the max-pool gradient as masked pads
  ours_xla  the same with conv_impl='xla': nnx.Conv everywhere, a plain Flax ResNet

Ours is one `jax.jit` step of (params, batch stats, optimizer state, images)
with its inputs donated. After two warm-up steps each (ours: compile), the
contenders take turns, `--steps` steps per turn for `--rounds` rounds, so that
load from other processes falls on all of them alike. The table gives
images/s of the fastest step (least disturbed) and of the median step.

The process tunes glibc's malloc as `neuralannot_jax.main` does
(`neuralannot_jax/runtime/host_memory.py`: freed memory is kept and reused, no page faults
per step), for every contender alike; `NEURALANNOT_MALLOC=default python tools/...`
measures with glibc's defaults instead.

--write replaces this tool's block in the file (between `<!-- benchmark_resnet:begin -->` and
`<!-- benchmark_resnet:end -->`, tools/markdown_block.py; appended if absent).
"""

import argparse
import datetime
import functools
import importlib.util
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuralannot_jax.runtime import host_memory  # noqa: E402

MALLOC_KEPT = host_memory.keep_freed_memory()  # before jax and torch start their threads

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from neuralannot_jax.models import resnet  # noqa: E402

import markdown_block  # noqa: E402  (tools/, beside this script)

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_converter():
  """tools/convert_torchvision_resnet.py, home of the torch.nn reference ResNet."""
  path = os.path.join(HERE, 'convert_torchvision_resnet.py')
  spec = importlib.util.spec_from_file_location('convert_torchvision_resnet', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def torch_stepper(model, optimizer_name, lr, images):
  """A function running one torch train step on (B, 3, H, W) `images`."""
  import torch

  model.train()
  if optimizer_name == 'sgd':
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
  else:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
  target = torch.zeros(images.shape[0], model.out_features)

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = torch.mean((model(images) - target) ** 2)
    loss.backward()
    optimizer.step()
    return loss.item()

  return step


def jax_stepper(model, optimizer_name, lr, images):
  """A function running one jitted train step of an NNX `model` on (B, H, W, 3) `images`."""
  model.train()
  tx = optax.sgd(lr, momentum=0.9) if optimizer_name == 'sgd' else optax.adam(lr)
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  target = jnp.zeros((images.shape[0], model.out_features))

  @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
  def train_step(params, stats, opt_state, images):
    model = nnx.merge(graphdef, params, stats)
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(images) - target) ** 2))(model)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), nnx.state(model, nnx.BatchStat), opt_state,
            loss)

  state = [params, stats, tx.init(params)]

  def step():
    *state[:], loss = train_step(*state, images)
    return float(loss)  # float() waits for the step to finish

  return step


def measure(steppers, warmup, rounds, steps):
  """{name: (seconds of the warm-up, [seconds per timed step])}, contenders taking turns."""
  results = {}
  for name, step in steppers.items():
    start = time.perf_counter()
    for _ in range(warmup):
      step()
    results[name] = (time.perf_counter() - start, [])
    print(f'  {name}: warm-up {results[name][0]:.1f} s', flush=True)
  for _ in range(rounds):
    for name, step in steppers.items():
      for _ in range(steps):
        start = time.perf_counter()
        step()
        results[name][1].append(time.perf_counter() - start)
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--depth', type=int, default=50, choices=resnet.TORCHVISION_DEPTHS)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--sizes', default='256,128', help='comma-separated image sides')
  parser.add_argument('--optimizer', choices=('sgd', 'adam'), default='sgd')
  parser.add_argument('--contenders', default='torch,ours,ours_xla')
  parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--steps', type=int, default=2, help='timed steps per turn')
  parser.add_argument('--write', help="update this tool's block in this Markdown file")
  args = parser.parse_args(argv)

  import torch

  torch.set_num_threads(args.threads)
  converter = _load_converter()
  contenders = args.contenders.split(',')
  rows = []
  for size in [int(s) for s in args.sizes.split(',')]:
    print(f'ResNet-{args.depth}, batch {args.batch}, {size} px:', flush=True)
    torch.manual_seed(0)
    reference = converter.torch_resnet(args.depth)
    weights = resnet.convert_state_dict(
        {k: v.detach().numpy() for k, v in reference.state_dict().items()}, args.depth)
    images = np.random.default_rng(0).standard_normal(
        (args.batch, size, size, 3)).astype(np.float32)
    steppers = {}
    for name in contenders:
      lr = 1e-3
      if name == 'torch':
        steppers[name] = torch_stepper(reference, args.optimizer, lr,
                                       torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
      elif name in ('ours', 'ours_xla'):
        model = resnet.from_weights(weights, args.depth,
                                    conv_impl='dots' if name == 'ours' else 'xla')
        steppers[name] = jax_stepper(model, args.optimizer, lr, jnp.asarray(images))
      else:
        parser.error(f'unknown contender {name!r}')
    results = measure(steppers, args.warmup, args.rounds, args.steps)
    base = results.get('torch')
    for name, (warm, times) in results.items():
      best, median = args.batch / min(times), args.batch / statistics.median(times)
      ratio = best / (args.batch / min(base[1])) if base else float('nan')
      rows.append((size, name, best, median, ratio, warm))
      print(f'  {name:9s} {best:6.2f} img/s best, {median:6.2f} median, '
            f'{ratio:.2f}x torch, warm-up {warm:.1f} s', flush=True)

  header = ('| size | contender | img/s (best step) | img/s (median step) | vs torch (best) '
            '| warm-up incl. compile (s) |\n|---:|---|---:|---:|---:|---:|')
  table = '\n'.join([header] + [f'| {s} | {n} | {b:.2f} | {m:.2f} | {r:.2f} | {w:.1f} |'
                                for s, n, b, m, r, w in rows])
  print(table)
  if args.write:
    command = host_memory.command_prefix() + 'python tools/benchmark_resnet.py ' + ' '.join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    machine = (f'{platform.machine()}, {os.cpu_count()} cores, load average '
               f'{os.getloadavg()[0]:.1f} at the end; jax {jax.__version__} (XLA:CPU, all cores), '
               f'torch {torch.__version__} ({args.threads} threads); float32; malloc: '
               f'{host_memory.describe(MALLOC_KEPT)}, for both')
    markdown_block.write_block(
        args.write, 'benchmark_resnet',
        f'## ResNet-{args.depth} train step, {datetime.date.today().isoformat()}\n\n'
        f'Command: `{command.strip()}`  \n'
        f'Machine: {machine}. Batch {args.batch}, {args.optimizer}, forward + backward + '
        'update, same initial weights. `ours` = `models.resnet.ResNet(conv_impl="dots")`, the '
        'CPU default (1x1 convolutions, the stem and 3x3 convolutions on maps up to 16x16 as '
        '2-D dots; kernel gradients as one product over rows; the max-pool gradient as '
        'masked pads); `ours_xla` = `conv_impl="xla"` (nnx.Conv everywhere: a plain Flax '
        'ResNet).\n\n'
        f'{table}\n')
    print(f'updated the benchmark_resnet block in {args.write}')


if __name__ == '__main__':
  main()
