"""Train and annotate images/s over 1, 2, 4 devices and 2 processes, and the input pipeline alone.

    python tools/benchmark_scaling.py                        # CPU: 1, 2, 4 devices; 2 processes x 2
    python tools/benchmark_scaling.py --write BENCHMARKS.md  # also update its section there
    python tools/benchmark_scaling.py --platform gpu --devices 1,2,4 --processes 0   # real GPUs

The job is the embedded demo's (configs/synthetic_body.py: synthetic Human3.6M-style set,
MoCap mode, ResNet-18 at 64 px) at a FIXED GLOBAL batch (`--batch_size`, default 32), split
over the devices: the optimisation is the same at every point (strong scaling), only the
hardware under it changes. Each point runs in a fresh subprocess, because the number of CPU
devices (`jax_num_cpu_devices`) and the distributed runtime are fixed when JAX starts its
backend. A point:

  train     `train.train` for `--steps` steps from scratch, logging every step; images/s
            of the median step after the first (compilation left out, and bursts of
            load from other jobs), and of all those steps together.
  annotate  `annotate.annotate` over the set (each process its own share), after a
            one-batch pass that compiles the step; images/s = all images / seconds of
            the slowest process, best of `--annotate_passes` passes.

Points take turns for `--rounds` rounds and each keeps its best round.
`--processes P` adds a point with P processes x (devices / P) devices each on this
machine, started as a multi-host job is (`distributed.initialize` with a coordinator on
127.0.0.1; CPU collectives over gloo).
The input pipeline (`data.pipeline.Loader`, same crops, batch and threads, no model) is
timed alone in this process: where it is not far above the train rate, it is the bottleneck.

On CPU the forced devices are slices of the same cores: N devices do not add compute, so
expect no speed-up there; the numbers show the overhead of the sharded step. On GPUs
(`--platform gpu`) a point of N devices uses the first N GPUs, split among its processes
(CUDA_VISIBLE_DEVICES).

--write replaces this tool's block in the file (between `<!-- benchmark_scaling:begin -->` and
`<!-- benchmark_scaling:end -->`, tools/markdown_block.py; appended if absent).
"""

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

import markdown_block  # tools/, beside this script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RESULT_PREFIX = 'BENCHMARK_POINT '


# ----------------------------------------------------------------------------- config


def load_config(workdir, args):
  """configs/synthetic_body.py with the benchmark's sizes: a ConfigDict."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  return experiment.load_config(os.path.join(REPO, 'configs', 'synthetic_body.py'), {
      'workdir': workdir, 'progress': False,
      'dataset.synthetic.num_images': args.num_images, 'model.depth': args.depth,
      'model.crop_size': args.crop_size, 'train.batch_size': args.batch_size,
      'annotate.batch_size': args.batch_size, 'train.num_steps': args.steps,
      'train.lr_boundaries': (), 'train.checkpoint_every': args.steps,
      'train.log_every': 1,   # every step: `step_times` reads them back
      'train.num_workers': args.workers})


def prepare_data(config):
  """Render the synthetic set and build its tfds cache once, before the points share it.

  Returns:
    (samples, flip pairs of their joint set).
  """
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.data import joint_sets  # pylint: disable=import-outside-toplevel
  samples, _, _ = experiment.load_samples(config, experiment.prepare_body_model(config))
  return samples, joint_sets.get(samples[0].joint_set).flip_pairs


# ----------------------------------------------------------------------------- one point


def run_point(spec):
  """Train and annotate at one point, in this (fresh) process; returns a result dict.

  spec: {'args': the parent's arguments, 'workdir': the shared work directory, 'out': this
  point's folder, 'devices': devices of this process, 'num_processes', 'process_id',
  'coordinator'}.
  """
  import jax  # pylint: disable=import-outside-toplevel
  args = argparse.Namespace(**spec['args'])
  if args.platform == 'cpu':
    jax.config.update('jax_platforms', 'cpu')
    jax.config.update('jax_num_cpu_devices', spec['devices'])
  from neuralannot_jax import annotate as annotate_lib  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.runtime import distributed  # pylint: disable=import-outside-toplevel
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  from neuralannot_jax import train as train_lib  # pylint: disable=import-outside-toplevel
  if spec['num_processes'] > 1:
    # What main's --coordinator_address / --num_processes / --process_id do.
    distributed.initialize(spec['coordinator'], spec['num_processes'], spec['process_id'])

  config = load_config(spec['workdir'], args)
  model_path = experiment.prepare_body_model(config)
  body_model = experiment.load_body_model(config, model_path)
  samples, _, _ = experiment.load_samples(config, model_path)
  tconfig = experiment.train_config(config, samples[0].joint_set)
  tconfig.num_landmarks = body_model.num_landmarks
  tconfig.vposer_path = experiment.vposer_path(config, tconfig)
  mesh = train_lib.make_mesh()
  train_dir = os.path.join(spec['out'], 'train')

  model, _ = train_lib.train(tconfig, samples, train_dir, mesh=mesh, body_model=body_model)
  step_seconds = []
  if jax.process_index() == 0:
    step_seconds = step_times(os.path.join(train_dir, 'metrics.jsonl'), args.batch_size)

  options = dict(step_spec=train_lib.make_step_spec(tconfig), batch_size=tconfig.batch_size,
                 vposer_params=train_lib.load_vposer(tconfig), num_workers=args.workers,
                 progress=False)
  # One batch first: it compiles the step, which the timed passes then reuse. Every process
  # is given all the samples and annotates its own share of them.
  warm_up = [samples[i] for i in range(tconfig.batch_size * jax.process_count())]
  annotate_lib.annotate(model, body_model, warm_up, **options)
  passes = []
  for _ in range(args.annotate_passes):
    start = time.perf_counter()
    annotations, _ = annotate_lib.annotate(model, body_model, samples, **options)
    passes.append(time.perf_counter() - start)
  return {'devices': jax.device_count(), 'processes': jax.process_count(),
          'platform': jax.devices()[0].platform, 'step_seconds': step_seconds,
          'annotated': len(annotations), 'annotate_seconds': min(passes)}


def step_times(metrics_path, global_batch):
  """Seconds of each train step after the first, from a metrics.jsonl logged every step.

  `train.train` logs images/s since the end of step 1, so step k (k >= 2) ended
  (k - 1) * global_batch / rate_k seconds after it; successive differences are the steps.
  """
  with open(metrics_path, encoding='utf-8') as f:
    rows = [json.loads(line) for line in f if line.strip()]
  ends = [(r['step'] - 1) * global_batch / r['images_per_s'] for r in rows
          if r['step'] >= 2 and r['images_per_s'] > 0]
  return list(np.diff([0.0] + ends))


def _worker_env(args, process_id, per_process):
  """The environment of one worker: on GPUs, its own `per_process` GPUs only."""
  env = dict(os.environ)
  if args.platform == 'gpu':
    first = process_id * per_process
    env['CUDA_VISIBLE_DEVICES'] = ','.join(str(i) for i in range(first, first + per_process))
  else:
    env['JAX_PLATFORMS'] = 'cpu'
  return env


def launch(args, workdir, devices, processes):
  """Run one point as `processes` subprocesses of `devices // processes` devices each.

  Returns:
    the point's rates (train from process 0's log, annotate over all processes), its wall
    time 'seconds' and the machine's 'load' (1-minute average) at its end.
  """
  out = os.path.join(workdir, 'points', f'{processes}x{devices // processes}')
  shutil.rmtree(out, ignore_errors=True)
  os.makedirs(out)
  coordinator = f'127.0.0.1:{_free_port()}'
  procs, logs = [], []
  start = time.perf_counter()
  for process_id in range(processes):
    spec = {'args': vars(args), 'workdir': workdir, 'out': out,
            'devices': devices // processes, 'num_processes': processes,
            'process_id': process_id, 'coordinator': coordinator}
    cmd = [sys.executable, os.path.abspath(__file__), '--point', json.dumps(spec)]
    # Output to files, not pipes: a process blocked on a full pipe would stall the others
    # at their next collective.
    logs.append(os.path.join(out, f'process_{process_id}.log'))
    with open(logs[-1], 'w', encoding='utf-8') as log:
      env = _worker_env(args, process_id, devices // processes)
      procs.append(subprocess.Popen(cmd, cwd=REPO, env=env,
                                    stdout=log, stderr=subprocess.STDOUT))
  for p in procs:
    p.wait(timeout=args.timeout)
  seconds = time.perf_counter() - start
  results = []
  for p, path in zip(procs, logs):
    with open(path, encoding='utf-8', errors='replace') as f:
      output = f.read()
    if p.returncode != 0:
      raise RuntimeError(f'point {processes} process(es) x {devices // processes} devices '
                         f'failed (exit {p.returncode}); {path} ends:\n{output[-3000:]}')
    lines = [line for line in output.splitlines() if line.startswith(RESULT_PREFIX)]
    results.append(json.loads(lines[-1][len(RESULT_PREFIX):]))
  steps = results[0]['step_seconds']   # process 0 logs the steps of the whole job
  return {'devices': results[0]['devices'], 'processes': processes,
          'platform': results[0]['platform'],
          # The median step: the job's pace with bursts of load from other jobs left out.
          'train_images_per_s': args.batch_size / float(np.median(steps)),
          'train_mean_images_per_s': args.batch_size * len(steps) / float(np.sum(steps)),
          # Processes annotate their shares side by side: all images over the slowest.
          'annotate_images_per_s': sum(r['annotated'] for r in results)
                                   / max(r['annotate_seconds'] for r in results),
          'seconds': seconds, 'load': os.getloadavg()[0]}


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


# ----------------------------------------------------------------------------- pipeline


def time_pipeline(samples, flip_pairs, args, train):
  """Images/s of the Loader alone (crops, augmentation off as in the config, no model):
  `--pipeline_epochs` passes after one warm-up batch."""
  from neuralannot_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  from neuralannot_jax import train as train_lib  # pylint: disable=import-outside-toplevel
  loader = pipeline.Loader(samples, args.batch_size, train=train, out_size=args.crop_size,
                           augment=train_lib.NO_AUGMENT, flip_pairs=flip_pairs,
                           num_workers=args.workers, num_devices=1)
  images, start = 0, None
  for epoch in range(args.pipeline_epochs):
    for batch, _ in loader.epoch(epoch):
      if start is None:   # the first batch starts the threads: not counted
        start = time.perf_counter()
        continue
      images += int(batch['mask'].sum())
  return images / max(time.perf_counter() - start, 1e-9)


# ----------------------------------------------------------------------------- report


def machine():
  """'x86_64, 2 cores (AMD EPYC ...)' from /proc/cpuinfo where there is one."""
  name = platform.processor() or ''
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      name = next((line.split(':', 1)[1].strip() for line in f
                   if line.startswith('model name')), name)
  except OSError:
    pass
  return f'{platform.machine()}, {os.cpu_count()} cores' + (f' ({name})' if name else '')


def table(rows, pipeline_rates):
  """Markdown rows: one per point, speed-up and efficiency against the first point."""
  base = rows[0]
  lines = ['| processes x devices | train, median step (images/s) | speed-up | efficiency | '
           'train, mean (images/s) | annotate (images/s) | speed-up | efficiency | '
           'highest load (1 min) |',
           '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    n = r['devices'] / base['devices']
    cells = [f'{r["processes"]} x {r["devices"] // r["processes"]}']
    for key in ('train_images_per_s', 'annotate_images_per_s'):
      speedup = r[key] / base[key]
      cells += [f'{r[key]:.1f}', f'{speedup:.2f}x', f'{speedup / n:.0%}']
      if key == 'train_images_per_s':
        cells.append(f'{r["train_mean_images_per_s"]:.1f}')
    lines.append('| ' + ' | '.join(cells) + f' | {r["load"]:.1f} |')
  train, annotate = pipeline_rates
  lines.append(f'| input pipeline alone (no model) | {train:.0f} | | | | {annotate:.0f} | | | |')
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--platform', default='cpu', choices=('cpu', 'gpu'))
  parser.add_argument('--devices', default='1,2,4', help='comma-separated device counts')
  parser.add_argument('--processes', type=int, default=2,
                      help='also run the largest device count as this many processes (0: no)')
  parser.add_argument('--num_images', type=int, default=512, help='synthetic images')
  parser.add_argument('--batch_size', type=int, default=32, help='global batch, every point')
  parser.add_argument('--steps', type=int, default=40, help='train steps per point')
  parser.add_argument('--depth', type=int, default=18, help='ResNet depth')
  parser.add_argument('--crop_size', type=int, default=64)
  parser.add_argument('--workers', type=int, default=2, help='decode/warp threads per process')
  parser.add_argument('--rounds', type=int, default=2, help='turns of every point')
  parser.add_argument('--annotate_passes', type=int, default=2, help='timed passes, best kept')
  parser.add_argument('--pipeline_epochs', type=int, default=3)
  parser.add_argument('--timeout', type=int, default=1800, help='seconds per point')
  parser.add_argument('--workdir', help='work directory (default: a temporary one)')
  parser.add_argument('--write', help="update this tool's block in this Markdown file")
  parser.add_argument('--point', help=argparse.SUPPRESS)   # internal: run one point
  args = parser.parse_args()

  if args.point:
    print(RESULT_PREFIX + json.dumps(run_point(json.loads(args.point))), flush=True)
    return

  devices = [int(d) for d in args.devices.split(',')]
  points = [(d, 1) for d in devices]
  if args.processes > 1:
    if max(devices) % args.processes:
      parser.error(f'--processes {args.processes} does not divide {max(devices)} devices')
    points.append((max(devices), args.processes))
  for d, _ in points:
    if args.batch_size % d:
      parser.error(f'--batch_size {args.batch_size} is not divisible by {d} devices')

  workdir = args.workdir or tempfile.mkdtemp(prefix='benchmark_scaling_')
  samples, flip_pairs = prepare_data(load_config(workdir, args))
  pipeline_rates = (time_pipeline(samples, flip_pairs, args, True),
                    time_pipeline(samples, flip_pairs, args, False))
  print(f'input pipeline alone: train {pipeline_rates[0]:.0f} images/s, annotate '
        f'{pipeline_rates[1]:.0f} images/s', flush=True)
  # Points take turns, round after round; each keeps its best round (least disturbed by
  # other jobs on the machine).
  best = {}
  for round_ in range(args.rounds):
    for d, p in points:
      result = launch(args, workdir, d, p)
      print(f'round {round_ + 1}: {p} process(es) x {d // p} {result["platform"]} device(s): '
            f'train {result["train_images_per_s"]:.1f} images/s (median step; mean '
            f'{result["train_mean_images_per_s"]:.1f}), annotate '
            f'{result["annotate_images_per_s"]:.1f} images/s ({result["seconds"]:.0f} s, load '
            f'{result["load"]:.1f})', flush=True)
      kept = best.setdefault((d, p), result)
      for key in ('train_images_per_s', 'train_mean_images_per_s', 'annotate_images_per_s'):
        kept[key] = max(kept[key], result[key])
      kept['load'] = max(kept['load'], result['load'])
  rows = [best[point] for point in points]
  lines = table(rows, pipeline_rates)
  print('\n'.join(lines))
  if not args.workdir:
    shutil.rmtree(workdir, ignore_errors=True)

  if args.write:
    command = ' '.join(['python tools/benchmark_scaling.py'] + sys.argv[1:])
    header = [
        f'## Scaling: devices and processes, {time.strftime("%Y-%m-%d")}', '',
        f'Command: `{command}`  ',
        f'Machine: {machine()}; {rows[0]["platform"]} devices. Job: configs/synthetic_body.py '
        f'(ResNet-{args.depth}, {args.crop_size} px, MoCap mode), {args.num_images} synthetic '
        f'images, global batch {args.batch_size} at every point, {args.steps} train steps, '
        f'{args.workers} decode threads per process; best of {args.rounds} rounds (points take '
        'turns). Train images/s of the median step (after compilation) and of all steps; '
        'annotate: all images over the slowest process, best of '
        f'{args.annotate_passes} passes after a compiling one. Efficiency = speed-up / '
        f'(devices / {rows[0]["devices"]}).', '']
    markdown_block.write_block(args.write, 'benchmark_scaling', '\n'.join(header + lines))
    print(f'updated the benchmark_scaling block in {args.write}')


if __name__ == '__main__':
  main()
