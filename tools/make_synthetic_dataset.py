"""Generate the synthetic COCO-style and Human3.6M-style datasets with SMPL ground truth.

    python tools/make_synthetic_dataset.py --out data/synth --num_images 2000

People are stand-in (or official) SMPL bodies in random joint-limited poses, rendered by a
numpy z-buffer rasteriser over textured backgrounds, and annotated the way the real sets
are: COCO person keypoints (with visibility from the depth map, occluders, truncation,
missing and noisy keypoints) and Human3.6M (4 calibrated cameras per subject, world joints
in mm). The SMPL parameters of every annotation are saved in camera space for scoring:

    OUT/coco/annotations/person_keypoints_train.json   OUT/coco/images/train/*.jpg
    OUT/h36m/annotations/Human36M_subject{S}_{data,camera,joint_3d,smpl_param}.json
    OUT/h36m/images/s_01_act_02_subact_01_ca_01/s_01_act_02_subact_01_ca_01_000001.jpg
    OUT/{coco,h36m}/gt_smpl.json   {ann id: {smpl_param: {pose, shape, trans}, cam_param}}
    OUT/synthetic_meta.json

The same arguments always write the same bytes.
"""

import argparse
import os
import sys

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuralannot_jax.data.synthetic import writers  # noqa: E402


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', required=True, help='output folder (created)')
  parser.add_argument('--body_models', default=None,
                      help='model root holding smpl/SMPL_NEUTRAL.pkl (official or stand-in); '
                           'default: write the stand-in to OUT/body_models (reused if there)')
  parser.add_argument('--num_images', type=int, default=1000,
                      help='images per dataset kind (default: 1000)')
  parser.add_argument('--size', type=int, default=128, help='square image side in pixels')
  parser.add_argument('--seed', type=int, default=0, help='random seed; fixes every byte')
  parser.add_argument('--kinds', default='coco,h36m',
                      help='comma-separated dataset kinds among: ' + ', '.join(writers.KINDS))
  parser.add_argument('--save_vertices', action='store_true',
                      help='also write camera-space GT vertices (gt_vertices.npz, ~83 KB each)')
  parser.add_argument('--jpeg_quality', type=int, default=90, help='JPEG quality, 1..100')
  args = parser.parse_args(argv)
  args.kinds = tuple(k.strip() for k in args.kinds.split(',') if k.strip())
  bad = [k for k in args.kinds if k not in writers.KINDS]
  if bad or not args.kinds:
    parser.error(f'--kinds: unknown {bad}; choose from {", ".join(writers.KINDS)}')
  if args.num_images < 1 or args.size < 16:
    parser.error('--num_images must be >= 1 and --size >= 16')
  return args


def ensure_body_models(out):
  """The stand-in SMPL model under OUT/body_models, written unless already there."""
  root = os.path.join(out, 'body_models')
  if not os.path.exists(os.path.join(root, 'smpl', 'SMPL_NEUTRAL.pkl')):
    from body_models.synthetic import files  # pylint: disable=import-outside-toplevel
    print(f'writing the stand-in SMPL model to {root}')
    files.write_model('smpl', root)
  return root


def main(argv=None):
  args = parse_args(argv)
  body_model_dir = args.body_models or ensure_body_models(args.out)
  writers.make_dataset(args.out, body_model_dir, num_images=args.num_images, size=args.size,
                       seed=args.seed, kinds=args.kinds, save_vertices=args.save_vertices,
                       jpeg_quality=args.jpeg_quality)


if __name__ == '__main__':
  main()
