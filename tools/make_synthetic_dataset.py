"""Generate the synthetic datasets (COCO, Human3.6M, FreiHAND, COCO-WholeBody faces) with GT.

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
    OUT/freihand/training_{xyz,K,mano,verts}.json   OUT/freihand/training/rgb/00000000.jpg
    OUT/freihand/gt_mano.json   {index: {mano_param: {global_orient, hand_pose, betas,
                                transl}, cam_param}}                (--kinds freihand)
    OUT/face/annotations/coco_wholebody_train.json   OUT/face/images/train/*.jpg
    OUT/face/gt_flame.json      {ann id: {flame_param: {global_orient, neck_pose, jaw_pose,
                                expression, betas, transl}, cam_param}}   (--kinds face)
    OUT/synthetic_meta.json

Hands are right MANO hands in random coordinated finger poses, 0.3-0.7 m from the camera;
faces are FLAME heads with random neck, jaw, expression and shape, 0.4-1.0 m away, with
68 iBUG landmarks whose visibility comes from the depth map.

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
                      help='model root holding the families the kinds need (smpl/, mano/, '
                           'flame/; official or stand-in); default: write the missing '
                           'stand-ins to OUT/body_models (reused if there)')
  parser.add_argument('--num_images', type=int, default=1000,
                      help='images per dataset kind (default: 1000)')
  parser.add_argument('--size', type=int, default=128, help='square image side in pixels')
  parser.add_argument('--seed', type=int, default=0, help='random seed; fixes every byte')
  parser.add_argument('--kinds', default=','.join(writers.DEFAULT_KINDS),
                      help='comma-separated dataset kinds among: ' + ', '.join(writers.KINDS) +
                           ' (default: %(default)s)')
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


def ensure_body_models(out, kinds=writers.DEFAULT_KINDS):
  """The stand-in models the kinds need under OUT/body_models, each written unless there.

  SMPL for coco / h36m, the MANO hands for freihand, FLAME (with its landmark
  embeddings) for face.
  """
  import body_models  # pylint: disable=import-outside-toplevel
  from body_models.synthetic import write_model  # pylint: disable=import-outside-toplevel
  root = os.path.join(out, 'body_models')
  for family in sorted({writers.FAMILIES[k] for k in kinds}):
    try:
      body_models.io.resolve_model_path(root, family)
      if family == 'flame':      # the landmarks live in files of their own
        for name in ('flame_static_embedding.pkl', 'flame_dynamic_embedding.npy'):
          if not os.path.isfile(os.path.join(root, 'flame', name)):
            raise body_models.ModelFileError(name)
    except body_models.ModelFileError:
      print(f'writing the stand-in {family.upper()} model to {root}')
      write_model(family, root)
  return root


def main(argv=None):
  args = parse_args(argv)
  body_model_dir = args.body_models or ensure_body_models(args.out, args.kinds)
  writers.make_dataset(args.out, body_model_dir, num_images=args.num_images, size=args.size,
                       seed=args.seed, kinds=args.kinds, save_vertices=args.save_vertices,
                       jpeg_quality=args.jpeg_quality)


if __name__ == '__main__':
  main()
