"""Throughput of our JAX body models against the smplx PyTorch library, same files, same run.

    python tools/benchmark_body_models.py                     # SMPL and SMPL-X, batch 1, 64, 1024
    python tools/benchmark_body_models.py --families smpl --batches 64 --seconds 5
    python tools/benchmark_body_models.py --model_dir ~/models --write BENCHMARKS.md

Measures samples/s of a forward pass (vertices + joints) and of forward + backward
(gradient of a squared-error loss on vertices and joints with respect to pose, shape
and translation), float32. Without --model_dir it generates the stand-in models, which
have the real models' sizes. JAX compile time is excluded and reported separately.
Needs torch and smplx (requirements-dev.txt) for the reference column.

Like `neuralannot_jax.main`, the process keeps freed memory for reuse
(`neuralannot_jax/host_memory.py`: no page faults per call), for both libraries alike;
`NEURALANNOT_MALLOC=default python tools/...` measures with glibc's defaults. Using
body_models alone, `GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:`
`glibc.malloc.trim_threshold=18446744073709551615` in the environment does the same.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuralannot_jax import host_memory  # noqa: E402

MALLOC_KEPT = host_memory.keep_freed_memory()  # before jax and torch start their threads

# pylint: disable=wrong-import-position
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import body_models  # noqa: E402
from body_models import skeletons  # noqa: E402


def random_params(family, batch, seed=0):
  """Float32 pose / shape / translation parameters of one batch, in smplx's names."""
  rng = np.random.default_rng(seed)
  r = lambda *s, scale=1.0: (rng.normal(size=(batch,) + s) * scale).astype(np.float32)
  params = dict(global_orient=r(3), betas=r(10), transl=r(3, scale=0.2))
  for name, joints in skeletons.POSE_PARTS[family][1:]:
    params[name] = r(3 * joints, scale=0.3)
  if skeletons.HAS_EXPRESSION[family]:
    params['expression'] = r(10)
  return params


def rate(fn, batch, seconds):
  """Samples per second of `fn` (a call that blocks until done), after one warm-up call."""
  fn()
  start, calls = time.perf_counter(), 0
  while calls < 2 or time.perf_counter() - start < seconds:
    fn()
    calls += 1
  return batch * calls / (time.perf_counter() - start)


def bench_jax(model, params, seconds):
  jparams = {k: jnp.asarray(v) for k, v in params.items()}

  def loss(p):
    out = body_models.forward(model, **p)
    return jnp.sum(out.vertices ** 2) + jnp.sum(out.joints ** 2)

  t = time.perf_counter()
  grad = jax.jit(jax.value_and_grad(loss)).lower(jparams).compile()
  compile_s = time.perf_counter() - t
  fwd = jax.jit(lambda p: body_models.forward(model, **p)).lower(jparams).compile()
  batch = len(next(iter(params.values())))
  return (rate(lambda: jax.block_until_ready(fwd(jparams)), batch, seconds),
          rate(lambda: jax.block_until_ready(grad(jparams)), batch, seconds), compile_s)


def bench_smplx(model_dir, family, params, seconds):
  import smplx  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  layer = smplx.create(str(model_dir), model_type=family, gender='neutral', use_pca=False,
                       num_betas=10, num_expression_coeffs=10)
  tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}

  def fwd():
    with torch.no_grad():
      layer(**tparams)

  def fwd_bwd():
    out = layer(**tparams)
    ((out.vertices ** 2).sum() + (out.joints ** 2).sum()).backward()

  batch = len(next(iter(params.values())))
  return rate(fwd, batch, seconds), rate(fwd_bwd, batch, seconds)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model_dir', help='models in the smplx layout (default: generate '
                      'the stand-ins in a temporary folder)')
  parser.add_argument('--families', default='smpl,smplx', help='comma separated')
  parser.add_argument('--batches', default='1,64,1024', help='comma separated batch sizes')
  parser.add_argument('--seconds', type=float, default=3.0, help='timing window per case')
  parser.add_argument('--no_reference', action='store_true', help='skip smplx')
  parser.add_argument('--write', help='append a Markdown table to this file')
  args = parser.parse_args()

  tmp = None
  model_dir = args.model_dir
  if not model_dir:
    from body_models import synthetic  # pylint: disable=g-import-not-at-top
    tmp = tempfile.TemporaryDirectory()
    model_dir = tmp.name
    synthetic.write_all(model_dir, seed=0)

  rows = []
  for family in args.families.split(','):
    model = body_models.load(model_dir, family)
    for batch in [int(b) for b in args.batches.split(',')]:
      params = random_params(family, batch)
      jf, jfb, compile_s = bench_jax(model, params, args.seconds)
      tf = tfb = float('nan')
      if not args.no_reference:
        tf, tfb = bench_smplx(model_dir, family, params, args.seconds)
      rows.append((family, batch, jf, jfb, tf, tfb, compile_s))
      print(f'{family:6s} batch {batch:5d}: ours fwd {jf:9.0f}/s  fwd+bwd {jfb:9.0f}/s | '
            f'smplx fwd {tf:9.0f}/s  fwd+bwd {tfb:9.0f}/s | fwd+bwd ratio {jfb / tfb:5.2f} '
            f'(compile {compile_s:.1f} s)', flush=True)

  if args.write:
    import torch  # pylint: disable=g-import-not-at-top
    lines = [
        '',
        f'### Body models, {time.strftime("%Y-%m-%d")}',
        '',
        f'Command: `{host_memory.command_prefix()}python tools/benchmark_body_models.py --batches {args.batches} '
        f'--families {args.families} --seconds {args.seconds}`  ',
        f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
        f'{jax.devices()[0].platform}; jax {jax.__version__}, torch {torch.__version__} '
        f'({torch.get_num_threads()} threads); float32; malloc: '
        f'{host_memory.describe(MALLOC_KEPT)}, for both; '
        f'models: {"stand-ins" if tmp else model_dir}.',
        '',
        '| model | batch | ours fwd (samples/s) | smplx fwd | ratio | ours fwd+bwd | '
        'smplx fwd+bwd | ratio | compile (s) |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for family, batch, jf, jfb, tf, tfb, compile_s in rows:
      lines.append(f'| {family} | {batch} | {jf:.0f} | {tf:.0f} | {jf / tf:.2f} | {jfb:.0f} | '
                   f'{tfb:.0f} | {jfb / tfb:.2f} | {compile_s:.1f} |')
    with open(args.write, 'a') as f:
      f.write('\n'.join(lines) + '\n')
  if tmp:
    tmp.cleanup()


if __name__ == '__main__':
  main()
