"""Throughput of our JAX body models against the smplx PyTorch library, same files, same run.

    python tools/benchmark_body_models.py                     # SMPL and SMPL-X, batch 1, 64, 1024
    python tools/benchmark_body_models.py --families smpl --batches 64 --seconds 5
    python tools/benchmark_body_models.py --model_dir ~/models --write BENCHMARKS.md

--write replaces this tool's block in the file (between `<!-- benchmark_body_models:begin -->`
and `<!-- benchmark_body_models:end -->`, tools/markdown_block.py; appended if absent).

Measures samples/s of a forward pass (vertices + joints) and of forward + backward
(gradient of a squared-error loss on vertices and joints with respect to pose, shape
and translation), float32, and each worker process's peak resident memory. Without
--model_dir it generates the stand-in models, which have the real models' sizes. JAX
compile time is excluded and reported separately.
Needs torch and smplx (requirements-dev.txt) for the reference column.

Each library runs each case in a fresh process of its own, the two taking turns for
--rounds rounds (best round reported): as a user runs one of them, with its own heap.
(In one shared process, torch's large blocks sat between XLA's in the heap and some
calls faulted in 100-200 thousand fresh pages: SMPL-X at batch 1024 moved between
0.7x and 2.1x from run to run.)

Like `neuralannot_jax.main`, each process keeps freed memory for reuse
(`neuralannot_jax/runtime/host_memory.py`: no page faults per call), for both libraries alike;
`NEURALANNOT_MALLOC=default python tools/...` measures with glibc's defaults. Using
body_models alone, `GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:`
`glibc.malloc.trim_threshold=18446744073709551615` in the environment does the same.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuralannot_jax.runtime import host_memory  # noqa: E402

MALLOC_KEPT = host_memory.keep_freed_memory()  # before jax and torch start their threads

# pylint: disable=wrong-import-position
import numpy as np  # noqa: E402

from body_models import skeletons  # noqa: E402

import markdown_block  # noqa: E402  (tools/, beside this script)

CONTENDERS = ('ours', 'smplx')


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


def rate(fn, batch, seconds, warmup_calls=5):
  """Samples per second of `fn` (a call that blocks until done), after warm-up calls.

  Several warm-up calls, not one: the first calls of a large batch grow the heap (with
  freed memory kept, XLA's 1.5 GB scratch block at SMPL-X batch 1024 found no free
  hole big enough for its first four calls and faulted in fresh pages each time).
  """
  for _ in range(warmup_calls):
    fn()
  start, calls = time.perf_counter(), 0
  while calls < 2 or time.perf_counter() - start < seconds:
    fn()
    calls += 1
  return batch * calls / (time.perf_counter() - start)


def peak_memory_mb():
  """Peak resident memory of this process so far, in MB (nan off Linux).

  VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so a worker would
  report its parent's peak (the parent writes the stand-in models) if that was larger.
  """
  try:
    with open('/proc/self/status') as f:
      kib = next(line.split()[1] for line in f if line.startswith('VmHWM:'))
  except (OSError, StopIteration):
    return float('nan')
  return int(kib) / 1024


def bench_ours(model_dir, family, params, seconds):
  """Our forward and forward+backward rates, compile time, library version."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import body_models  # pylint: disable=g-import-not-at-top
  model = body_models.load(model_dir, family)
  jparams = {k: jnp.asarray(v) for k, v in params.items()}

  def loss(p):
    out = body_models.forward(model, **p)
    return jnp.sum(out.vertices ** 2) + jnp.sum(out.joints ** 2)

  t = time.perf_counter()
  grad = jax.jit(jax.value_and_grad(loss)).lower(jparams).compile()
  compile_s = time.perf_counter() - t
  fwd = jax.jit(lambda p: body_models.forward(model, **p)).lower(jparams).compile()
  batch = len(next(iter(params.values())))
  return dict(fwd=rate(lambda: jax.block_until_ready(fwd(jparams)), batch, seconds),
              fwd_bwd=rate(lambda: jax.block_until_ready(grad(jparams)), batch, seconds),
              compile_s=compile_s, peak_mb=peak_memory_mb(),
              version=f'jax {jax.__version__} ({jax.devices()[0].platform})')


def bench_smplx(model_dir, family, params, seconds):
  """smplx's forward and forward+backward rates and the torch version."""
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
  return dict(fwd=rate(fwd, batch, seconds), fwd_bwd=rate(fwd_bwd, batch, seconds),
              peak_mb=peak_memory_mb(),
              version=f'torch {torch.__version__} ({torch.get_num_threads()} threads)')


def run_worker(contender, model_dir, family, batch, seconds):
  """One case of one library in a fresh process; its result dict."""
  cmd = [sys.executable, os.path.abspath(__file__), '--worker', contender,
         '--model_dir', model_dir, '--families', family, '--batches', str(batch),
         '--seconds', str(seconds)]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f'{contender} worker for {family} batch {batch} failed:\n'
                       f'{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def write_report(path, args, rows, versions, stand_ins):
  """Set this tool's block of the Markdown file `path` to this run's `##` section."""
  lines = [
      f'## Body models, {time.strftime("%Y-%m-%d")}',
      '',
      f'Command: `{host_memory.command_prefix()}python tools/benchmark_body_models.py '
      f'--batches {args.batches} --families {args.families} --seconds {args.seconds} '
      f'--rounds {args.rounds}`  ',
      f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; '
      f'{"; ".join(versions)}; float32; each library in its own process per case, best of '
      f'{args.rounds} alternating rounds; malloc: {host_memory.describe(MALLOC_KEPT)}, for '
      f'both; models: {"stand-ins" if stand_ins else args.model_dir}.',
      '',
      '| model | batch | ours fwd (samples/s) | smplx fwd | ratio | ours fwd+bwd | '
      'smplx fwd+bwd | ratio | compile (s) | peak memory (MB): ours | smplx |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for family, batch, ours, ref in rows:
    lines.append(f'| {family} | {batch} | {ours["fwd"]:.0f} | {ref["fwd"]:.0f} | '
                 f'{ours["fwd"] / ref["fwd"]:.2f} | {ours["fwd_bwd"]:.0f} | '
                 f'{ref["fwd_bwd"]:.0f} | {ours["fwd_bwd"] / ref["fwd_bwd"]:.2f} | '
                 f'{ours["compile_s"]:.1f} | {ours["peak_mb"]:.0f} | {ref["peak_mb"]:.0f} |')
  markdown_block.write_block(path, 'benchmark_body_models', '\n'.join(lines))
  print(f'updated the benchmark_body_models block in {path}')


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model_dir', help='models in the smplx layout (default: generate '
                      'the stand-ins in a temporary folder)')
  parser.add_argument('--families', default='smpl,smplx', help='comma separated')
  parser.add_argument('--batches', default='1,64,1024', help='comma separated batch sizes')
  parser.add_argument('--seconds', type=float, default=3.0, help='timing window per case')
  parser.add_argument('--rounds', type=int, default=2,
                      help='fresh processes per library and case, taking turns; best is kept')
  parser.add_argument('--no_reference', action='store_true', help='skip smplx')
  parser.add_argument('--write', help="update this tool's block in this Markdown file")
  parser.add_argument('--worker', choices=CONTENDERS, help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.worker:  # one case, one library: print its result as JSON
    params = random_params(args.families, int(args.batches))
    bench = bench_ours if args.worker == 'ours' else bench_smplx
    print(json.dumps(bench(args.model_dir, args.families, params, args.seconds)))
    return

  tmp = None
  if not args.model_dir:
    from body_models import synthetic  # pylint: disable=g-import-not-at-top
    tmp = tempfile.TemporaryDirectory()
    args.model_dir = tmp.name
    synthetic.write_all(args.model_dir, seed=0)
  contenders = CONTENDERS[:1] if args.no_reference else CONTENDERS
  nan = dict(fwd=float('nan'), fwd_bwd=float('nan'), peak_mb=float('nan'), version='')
  rows, versions = [], {}
  for family in args.families.split(','):
    for batch in [int(b) for b in args.batches.split(',')]:
      best = {c: None for c in contenders}
      for _ in range(args.rounds):
        for c in contenders:
          result = run_worker(c, args.model_dir, family, batch, args.seconds)
          versions[c] = result['version']
          if best[c] is None or result['fwd_bwd'] > best[c]['fwd_bwd']:
            best[c] = result
      ours, ref = best['ours'], best.get('smplx', nan)
      rows.append((family, batch, ours, ref))
      print(f'{family:6s} batch {batch:5d}: ours fwd {ours["fwd"]:9.0f}/s  fwd+bwd '
            f'{ours["fwd_bwd"]:9.0f}/s | smplx fwd {ref["fwd"]:9.0f}/s  fwd+bwd '
            f'{ref["fwd_bwd"]:9.0f}/s | fwd+bwd ratio {ours["fwd_bwd"] / ref["fwd_bwd"]:5.2f} '
            f'(compile {ours["compile_s"]:.1f} s; peak memory {ours["peak_mb"]:.0f} vs '
            f'{ref["peak_mb"]:.0f} MB)', flush=True)

  if args.write:
    write_report(args.write, args, rows, [versions[c] for c in contenders], tmp is not None)
  if tmp:
    tmp.cleanup()


if __name__ == '__main__':
  main()
