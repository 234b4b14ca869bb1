"""Write procedural stand-ins for the SMPL, SMPL-X, MANO and FLAME model files.

    python tools/make_synthetic_body_models.py --out models
    python -c "import smplx; print(smplx.create('models', model_type='smplx'))"

The official model files are licensed downloads; these stand-ins have the same
layouts, file names and array shapes (exact vertex and joint counts), so the
project's loader and the `smplx` library read them. See body_models/synthetic/.
Written (about 400 MB with the default float64, 10 shape + 10 expression dims):

    OUT/smpl/SMPL_NEUTRAL.pkl
    OUT/smplx/SMPLX_NEUTRAL.npz  OUT/smplx/SMPLX_NEUTRAL.pkl
    OUT/mano/MANO_RIGHT.pkl      OUT/mano/MANO_LEFT.pkl
    OUT/flame/FLAME_NEUTRAL.pkl  OUT/flame/generic_model.pkl
    OUT/flame/flame_static_embedding.pkl  OUT/flame/flame_dynamic_embedding.npy
"""

import argparse
import os
import sys
import time

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from body_models.synthetic import files  # noqa: E402

FAMILIES = ('smpl', 'smplx', 'mano', 'flame')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', required=True,
                      help='model root folder (what smplx.create takes as model_path)')
  parser.add_argument('--full_dims', action='store_true',
                      help='300 shape (+ 100 expression) dims like SMPL-X v1.1 and FLAME '
                           '2020, instead of 10 (+ 10); SMPL-X files grow to ~0.5 GB')
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of the random parts (pose correctives, extra shape dims); '
                           'the same seed writes the same bytes')
  parser.add_argument('--families', nargs='+', choices=FAMILIES, default=list(FAMILIES),
                      help='which families to write (default: all four)')
  parser.add_argument('--genders', nargs='+', choices=('neutral', 'male', 'female'),
                      default=['neutral'],
                      help='genders of the body and FLAME models (MANO has none)')
  parser.add_argument('--float32', action='store_true',
                      help='store float arrays as float32 (half the size) instead of float64')
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  dtype = np.float32 if args.float32 else np.float64
  start = time.perf_counter()
  written = []
  for family in args.families:
    for gender in (['neutral'] if family == 'mano' else args.genders):
      path = files.write_model(family, args.out, gender=gender, seed=args.seed,
                               full_dims=args.full_dims, ext='both', dtype=dtype)
      written.append(path)
      print(f'  {family:5s} {gender:7s} {path}')
  size = sum(os.path.getsize(os.path.join(root, name))
             for family in args.families
             for root, _, names in os.walk(os.path.join(args.out, family)) for name in names)
  print(f'wrote {len(written)} stand-in model(s) ({", ".join(args.families)}) to {args.out}: '
        f'{size / 2**20:.0f} MiB in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
  main()
