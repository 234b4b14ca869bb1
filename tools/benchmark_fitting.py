"""Samples/s of the batched SMPLify-X style fitter, against fitting one sample at a time.

    python tools/benchmark_fitting.py                          # SMPL from 3D and 2D joints
    python tools/benchmark_fitting.py --batches 1,32,128 --write BENCHMARKS.md

SMPLify-X optimises one image at a time (its paper: about a minute per image on a GPU).
`neuralannot_jax.fitting` vmaps the same kind of objective over a batch and jits it. Here
both ways run in the same process on the stand-in SMPL (poses from the synthetic sampler,
clean joints): batch 1 is the one-at-a-time reference, the others are the batched fitter.
Reported: samples/s after compilation (a second call of the compiled fit), the ratio to
batch 1, and the fit's mean joint error (mm in 3D, pixels in 2D) so speed is not bought
with accuracy. The default step counts are `config.fitting`'s. --write replaces this tool's
block in the file (between `<!-- benchmark_fitting:begin -->` and `<!-- benchmark_fitting:end -->`,
tools/markdown_block.py; appended if absent).
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import jax
import numpy as np
from scipy.spatial.transform import Rotation

import body_models
from body_models import synthetic
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.fitting import fit2d
from neuralannot_jax.fitting import fit3d
from neuralannot_jax.method import camera

import markdown_block  # tools/, beside this script


def random_bodies(rng, n, depth):
  """{smplx name: (n, ...)} sampled SMPL people facing the camera at about `depth` metres."""
  facing = Rotation.from_rotvec([np.pi, 0.0, 0.0])
  orient = np.stack([(facing * Rotation.from_matrix(poses.sample_global_orient(rng))).as_rotvec()
                     for _ in range(n)])
  return {'global_orient': orient.astype(np.float32),
          'body_pose': np.stack([poses.sample_body_pose(rng, 'smpl').reshape(-1)
                                 for _ in range(n)]).astype(np.float32),
          'betas': (rng.normal(size=(n, 10)) * 0.5).astype(np.float32),
          'transl': np.concatenate([rng.normal(size=(n, 2)) * 0.3,
                                    rng.uniform(0.9, 1.1, (n, 1)) * depth], 1).astype(np.float32)}


def timed(fn, *args, **kwargs):
  """(result, seconds) of the second call: the first one compiles."""
  jax.block_until_ready(fn(*args, **kwargs)['error'])
  start = time.perf_counter()
  out = fn(*args, **kwargs)
  jax.block_until_ready(out['error'])
  return out, time.perf_counter() - start


def run(model, batches, num_samples, args):
  """Rows (mode, batch, samples/s, error) for the 3D and 2D fitters."""
  rng = np.random.default_rng(0)
  rows = []
  for mode in args.modes.split(','):
    if mode == '3d':
      mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
      gt = random_bodies(rng, num_samples, 3.0)
      out = model(**gt)
      target = np.asarray(mapping.apply(out.joints, out.vertices))
      fit = lambda t, v: fit3d.fit_3d(model, t, v, mapping, num_steps=args.steps_3d)
      scale, unit = 1000.0, 'mm'
    else:
      mapping = joint_sets.model_joint_mapping('smpl', 'COCO_17')
      gt = random_bodies(rng, num_samples, 45.0)      # ~200 px tall in a 256-px crop
      focal, princpt = camera.crop_camera(256)
      out = model(**gt)
      target = np.asarray(camera.project(mapping.apply(out.joints, out.vertices), focal,
                                         princpt))
      fit = lambda t, v: fit2d.fit_2d(model, t, v, mapping, focal=focal, princpt=princpt,
                                      steps_per_stage=args.steps_per_stage)
      scale, unit = 1.0, 'px'
    valid = np.ones(target.shape[:2], np.float32) * mapping.valid
    for b in batches:
      # A fixed number of samples per batch size (at least one batch), timed after compiling.
      n = max(b, min(num_samples, args.max_serial) if b == 1 else num_samples)
      n -= n % b
      seconds, errors = 0.0, []
      for start in range(0, n, b):
        res, s = timed(fit, target[start:start + b], valid[start:start + b])
        seconds += s
        errors.append(np.asarray(res['error']))
      rows.append({'mode': mode, 'batch': b, 'samples': n, 'samples_per_s': n / seconds,
                   'error': float(np.mean(np.concatenate(errors))) * scale, 'unit': unit})
      print(f'fit {mode} batch {b:4d}: {n / seconds:8.2f} samples/s, mean joint error '
            f'{rows[-1]["error"]:.2f} {unit}', flush=True)
  return rows


def table(rows, args):
  lines = ['| fit | batch | samples/s | vs batch 1 | s/sample | mean joint error |',
           '|---|---|---|---|---|---|']
  for r in rows:
    base = next(x for x in rows if x['mode'] == r['mode'] and x['batch'] == min(
        y['batch'] for y in rows if y['mode'] == r['mode']))
    lines.append(f'| {r["mode"].upper()} | {r["batch"]} | {r["samples_per_s"]:.2f} | '
                 f'{r["samples_per_s"] / base["samples_per_s"]:.1f}x | '
                 f'{1.0 / r["samples_per_s"]:.3f} | {r["error"]:.2f} {r["unit"]} |')
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--batches', default='1,32,128', help='batch sizes; 1 = one at a time')
  parser.add_argument('--num_samples', type=int, default=128, help='samples per batched run')
  parser.add_argument('--max_serial', type=int, default=4,
                      help='samples fitted one at a time (slow: each is a full fit)')
  parser.add_argument('--modes', default='3d,2d', help='3d (MoCap joints), 2d (keypoints)')
  parser.add_argument('--steps_3d', type=int, default=800, help='Adam steps of the 3D fit')
  parser.add_argument('--steps_per_stage', type=int, default=100, help='of the 2D fit')
  parser.add_argument('--write', default=None,
                      help="update this tool's block in this Markdown file")
  args = parser.parse_args()
  batches = [int(b) for b in args.batches.split(',')]
  with tempfile.TemporaryDirectory() as tmp:
    model = body_models.load(synthetic.write_model('smpl', tmp), 'smpl')
    rows = run(model, batches, args.num_samples, args)
  text = table(rows, args)
  print(text)
  if args.write:
    markdown_block.write_block(
        args.write, 'benchmark_fitting',
        f'## Batched SMPLify-X style fitter, {time.strftime("%Y-%m-%d")}\n\n'
        f'`python tools/benchmark_fitting.py {" ".join(sys.argv[1:])}` on '
        f'{platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} on '
        f'{jax.devices()[0].platform}; stand-in SMPL, clean joints (H36M_17 in 3D, '
        f'COCO_17 in 2D on a 256-px crop), {args.steps_3d} 3D steps, '
        f'{args.steps_per_stage} steps per 2D stage x 5 stages, no VPoser (axis-angle '
        f'body pose + L2 prior), two starts (facing and facing away) in 2D. Batch 1 is '
        f'the one-image-at-a-time reference, measured in the same run. SMPLify-X itself '
        f'reports about 60 s per image on a GPU.\n\n{text}\n')
    print(f'updated the benchmark_fitting block in {args.write}')


if __name__ == '__main__':
  main()
