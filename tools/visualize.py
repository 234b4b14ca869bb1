"""Draw pseudo-GT meshes over their images: one PNG per annotation id.

    python tools/visualize.py --pred work_dir/synthetic_body/pseudo_gt.json \\
        --config configs/synthetic_body.py --out work_dir/synthetic_body/overlays --max 20

Each PNG is the original image with the mesh drawn over it (shaded, depth-correct, alpha
blended, with the entry's own camera), GT 2D joints (green dots) vs the model's projected
joints (red rings), and beside it the mesh seen from the side. Works for SMPL, SMPL-X, MANO
(both hands; left hands with the left MANO model) and FLAME files in the released NeuralAnnot
COCO-style layout: ours (`annotate` writes them) and the files the NeuralAnnot authors
released, e.g. MSCOCO_train_SMPLX_NeuralAnnot.json with --config configs/coco_body.py.

The config (the experiment's, as given to neuralannot_jax.main) says where the dataset is:
its samples give each annotation's image and GT joints, found by annotation id. Without
--config the meshes are drawn on a grey canvas, without GT joints.
"""

import argparse
import os
import sys

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAMILIES = ('smpl', 'smplx', 'mano', 'flame')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      prog='python tools/visualize.py',
      description=__doc__.split('\n\n')[0] + ': the mesh over the image with GT vs projected '
      'joints, side by side with a view from the side.',
      epilog='Example: python tools/visualize.py --pred work_dir/synthetic_body/pseudo_gt.json '
      '--config configs/synthetic_body.py --out overlays --ids 1,2,3',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--pred', required=True,
                      help='pseudo-GT file in the released COCO-style layout '
                      '({ann_id: {"smpl_param": ..., "cam_param": ...}}; MANO {ann_id: '
                      '{"right": ..., "left": ...}})')
  parser.add_argument('--config', default=None,
                      help='experiment config file (configs/X.py): its dataset gives the '
                      'images and GT 2D joints, its body_model the model; omit to draw on '
                      'a grey canvas')
  parser.add_argument('--workdir', default=None,
                      help="the run's work directory (overrides the config's workdir: where "
                      'the dataset build, synthetic data and stand-in models are)')
  parser.add_argument('--out', required=True, help='folder for the PNGs (<id>.png)')
  parser.add_argument('--family', default=None, choices=FAMILIES,
                      help="body-model family of --pred; default: the config's")
  parser.add_argument('--model_path', default=None,
                      help='model file or folder in the smplx layout (<dir>/smpl/'
                      'SMPL_NEUTRAL.pkl, <dir>/mano/MANO_RIGHT.pkl + MANO_LEFT.pkl, ...); '
                      "default: the config's body_model.path, or the run's stand-ins")
  parser.add_argument('--gender', default=None, choices=('neutral', 'male', 'female'),
                      help="model gender (not MANO); default: the config's, else neutral")
  parser.add_argument('--ids', default=None,
                      help='comma-separated annotation ids (keys of --pred); default: the '
                      'first --max keys of the file')
  parser.add_argument('--max', type=int, default=20, help='how many ids without --ids')
  parser.add_argument('--regressor', default=None,
                      help='.npy (T, V) vertex regressor of the GT joint set, to project '
                      'the joints as the dataset defines them (e.g. J_regressor_h36m.npy)')
  parser.add_argument('--alpha', type=float, default=0.6, help='mesh opacity')
  parser.add_argument('--min_height', type=int, default=256,
                      help='smaller images are scaled up to this height first')
  return parser.parse_args(argv)


def read_entries(path):
  """{str key: entry} of a released COCO-style file, null entries dropped."""
  from neuralannot_jax import evaluate  # pylint: disable=import-outside-toplevel
  tree = evaluate.read_json_tree(path, 'prediction file')
  return {str(k): v for k, v in tree.items() if v is not None}


def choose_ids(entries, ids, max_count, pred_path):
  """The keys to draw: --ids (each checked) or the first max_count keys."""
  if not ids:
    return list(entries)[:max(0, max_count)]
  chosen = [i.strip() for i in ids.split(',') if i.strip()]
  missing = [i for i in chosen if i not in entries]
  if missing:
    raise KeyError(f'prediction file {pred_path}: no entry for id(s) {missing[:10]} '
                   f'(its ids look like {list(entries)[:3]})')
  return chosen


def file_name(key):
  """An id as a file name: path separators and odd characters become '_'."""
  return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in str(key)) + '.png'


def main(argv=None):
  """CLI entry; returns the exit status (0: every id drawn, 1: bad input or a failure)."""
  args = parse_args(argv)
  # Heavy imports after argument parsing, so that --help is instant.
  import cv2  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.report import page as report  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.report import overlays as visualize  # pylint: disable=import-outside-toplevel
  try:
    entries = read_entries(args.pred)
    keys = choose_ids(entries, args.ids, args.max, args.pred)
    config = None
    if args.config:
      from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
      config = experiment.load_config(args.config,
                                      {'workdir': args.workdir} if args.workdir else None)
    family = args.family or (config.body_model.family if config else None)
    if family is None:
      raise ValueError('--family is needed without --config')
    gender = args.gender or (config.body_model.gender if config else 'neutral')
    model_path = args.model_path
    samples = None
    if config is not None:
      if model_path is None:
        model_path = experiment.prepare_body_model(config)
      samples, _, _ = experiment.load_samples(config, model_path)
    if model_path is None:
      raise ValueError('--model_path is needed without --config')
    if not os.path.exists(model_path):
      raise FileNotFoundError(f'body model {model_path}: no such file or folder')
    models = visualize.as_models(model_path, family, gender=gender)
    found = report.index_samples(samples, keys, family) if samples is not None else {}
  except (OSError, ValueError, KeyError) as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f'error: {message}', file=sys.stderr)
    return 1

  os.makedirs(args.out, exist_ok=True)
  written, failed = [], []
  for key in keys:
    sample = found.get(key)
    try:
      image = None
      if samples is not None:
        if sample is None:
          raise KeyError(f'id {key}: no sample of the dataset has this annotation id')
        path = report.sample_image_path(sample)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
          raise FileNotFoundError(f'id {key}: image {path}: missing or unreadable')
      out = visualize.panel(image, entries[key], family, models, gt=sample,
                            hand_side=report.sample_hand_side(sample),
                            regressor=args.regressor, alpha=args.alpha,
                            min_height=args.min_height, caption=f'id {key}')
      written.append(report.write_png(os.path.join(args.out, file_name(key)), out))
    except (OSError, ValueError, KeyError) as e:
      message = e.args[0] if isinstance(e, KeyError) and e.args else e
      print(f'error: {args.pred}: {message}', file=sys.stderr)
      failed.append(key)
  print(f'wrote {len(written)} images to {args.out}' +
        (f'; {len(failed)} failed: {failed[:10]}' if failed else ''))
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
