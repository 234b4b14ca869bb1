"""Train a VPoser-layout pose prior when the licensed VPoser v2 weights are absent.

    python tools/train_pose_prior.py --out work/vposer_synthetic.npz
    python tools/train_pose_prior.py --out work/vposer_amass.npz --poses my_amass_poses.npz

Fits a VAE of the released VPoser v2 architecture (latent 32, hidden 512, 21 body
joints) to poses from the project's synthetic pose sampler, or to your own
AMASS-style poses, and writes it with `body_models.vposer.save`, so
`body_models.vposer.load` and the annotator's 'wild' body mode read it exactly like
the official weights. With the defaults it takes about 30-60 s on a 2-core CPU.
See neuralannot_jax/models/pose_prior.py for the objective.
"""

import argparse
import os
import sys
import time

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from neuralannot_jax.models import pose_prior  # noqa: E402
from body_models import vposer  # noqa: E402

# Poses kept out of training to report the reconstruction error on.
MAX_HELD_OUT = 2000


def build_parser():
  parser = argparse.ArgumentParser(
      prog='train_pose_prior', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', required=True, metavar='FILE.npz',
                      help='where to write the prior (.npz in the body_models.vposer layout, '
                      'written atomically)')
  parser.add_argument('--poses', metavar='FILE.npz',
                      help="your own poses: an AMASS-style .npz with 'pose_body' (N, 63) or "
                      "'poses' (N, 63/66/72/156/165; the 21 body joints after the global "
                      'orient are used). Default: poses from the synthetic sampler')
  parser.add_argument('--num_poses', type=int, default=None,
                      help='training poses: how many synthetic poses to draw (default '
                      f'{pose_prior.DEFAULT_NUM_POSES}), or a random subset of --poses '
                      '(default: all of them)')
  parser.add_argument('--num_steps', type=int, default=pose_prior.DEFAULT_NUM_STEPS,
                      help='Adam steps (default %(default)s)')
  parser.add_argument('--batch_size', type=int, default=pose_prior.DEFAULT_BATCH_SIZE,
                      help='poses per step (default %(default)s)')
  parser.add_argument('--kl_weight', type=float, default=pose_prior.DEFAULT_KL_WEIGHT,
                      help='weight of the KL term; larger gives more typical samples, smaller '
                      'sharper reconstructions (default %(default)s)')
  parser.add_argument('--hidden', type=int, default=512,
                      help='hidden width; 512 is the released VPoser (default %(default)s)')
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of the synthetic poses, the weights and the batches '
                      '(default %(default)s)')
  parser.add_argument('--overwrite', action='store_true',
                      help='replace --out if it exists (by default an existing file, which may '
                      'be the official weights, is left alone and the tool stops)')
  parser.add_argument('--quiet', action='store_true', help='no progress bar')
  return parser


def _split(poses, seed):
  """(N, 63) -> (train, held_out); held_out is empty when N is too small to spare any."""
  n_out = min(MAX_HELD_OUT, len(poses) // 10)
  if n_out == 0:
    return poses, poses[:0]
  order = np.random.default_rng(seed).permutation(len(poses))
  return poses[order[n_out:]], poses[order[:n_out]]


def main(argv=None):
  args = build_parser().parse_args(argv)
  if os.path.exists(args.out) and not args.overwrite:
    print(f'error: {args.out} exists; pass --overwrite to replace it', file=sys.stderr)
    return 2
  if args.num_poses is not None and args.num_poses < 2:
    print('error: --num_poses must be at least 2', file=sys.stderr)
    return 2
  t0 = time.perf_counter()
  if args.poses:
    try:
      poses = pose_prior.load_poses(args.poses)
    except (OSError, ValueError) as e:
      print(f'error: {e}', file=sys.stderr)
      return 1
    if args.num_poses is not None and args.num_poses < len(poses):
      poses = poses[np.random.default_rng(args.seed).choice(len(poses), args.num_poses, False)]
    train, held_out = _split(poses, args.seed)
    source = args.poses
  else:
    num = pose_prior.DEFAULT_NUM_POSES if args.num_poses is None else args.num_poses
    train = pose_prior.synthetic_poses(num, seed=args.seed)
    # A different seed gives an independent draw from the same distribution.
    held_out = pose_prior.synthetic_poses(min(MAX_HELD_OUT, max(num // 10, 1)), seed=args.seed + 1)
    source = 'synthetic'
  params = pose_prior.train_pose_prior(
      train, num_steps=args.num_steps, batch_size=args.batch_size, kl_weight=args.kl_weight,
      hidden=args.hidden, seed=args.seed, progress=not args.quiet)
  vposer.save(params, args.out)
  seconds = time.perf_counter() - t0
  evaluated, on = (held_out, 'held-out') if len(held_out) else (train, 'training')
  err = float(np.mean(pose_prior.geodesic_error_deg(params, evaluated)))
  latent_dim, hidden, _ = vposer.dimensions(params)
  print(f'trained on {len(train)} {source} poses, {args.num_steps} steps, {seconds:.1f} s; '
        f'reconstruction error {err:.2f} deg (mean per joint, {len(evaluated)} {on} poses); '
        f'latent {latent_dim}, hidden {hidden}; wrote {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
