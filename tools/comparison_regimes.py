"""The comparison's regimes and the config of each (regime, annotator) run.

Shared by tools/compare_annotators.py (which runs them) and tools/learning_curve.py: one
synthetic set per regime (`experiment.SYNTHETIC_KINDS`), the annotators run on it through
`experiment.run` as `python -m neuralannot_jax.main` runs them, from
configs/synthetic_body.py with the regime's set, family and mode.
"""

import argparse
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_CONFIG = os.path.join(REPO, 'configs', 'synthetic_body.py')

# name: (synthetic kind, family, mode, title)
REGIMES = {
    'body_3d': ('h36m', 'smpl', 'mocap', 'Body from 3D joints (synthetic Human3.6M-style, SMPL)'),
    'body_2d': ('coco', 'smpl', 'wild', 'Body from 2D joints (synthetic COCO-style, SMPL)'),
    'hand_3d': ('freihand', 'mano', 'mocap', 'Hand from 3D joints (synthetic FreiHAND-style, MANO)'),
    'hand_2d': ('freihand', 'mano', 'wild', 'Hand from 2D joints (synthetic FreiHAND-style, MANO)'),
}
# Adam's rate for the full training of the MoCap regimes, after the warm start (the paper's).
MOCAP_LR = 1e-4
ANNOTATORS = ('smplify', 'neuralannot', 'neuralannot_refine', 'neuralannot_2',
              'neuralannot_2_refine')


def regime_config(regime, annotator, args, vposer_path=''):
  """The experiment config of one (regime, annotator) run. The refinement annotates in the
  network's work directory (it starts from that network) into its own output; stage two
  trains in its own work directory from stage one's network and refined file."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  kind, family, mode, _ = REGIMES[regime]
  refine = annotator.endswith('_refine')
  network = annotator[:-len('_refine')] if refine else annotator
  stage_one = os.path.join(args.workdir, regime, 'neuralannot')
  steps = regime_steps(regime, args)
  overrides = {
      'workdir': os.path.join(args.workdir, regime, network),
      'annotator': 'neuralannot_refine' if refine else network.replace('neuralannot_2',
                                                                       'neuralannot'),
      'annotate.output': 'pseudo_gt_refine' if refine else 'pseudo_gt',
      'stages': ('train,annotate,evaluate' if network != 'smplify' and not refine
                 else 'annotate,evaluate'),
      'progress': not args.quiet,
      'dataset.synthetic.kind': kind,
      'dataset.synthetic.num_images': args.num_images,
      'body_model.family': family,
      'model.mode': mode,
      'model.vposer_path': vposer_path,
      'train.num_steps': steps,
      'train.lr_boundaries': (int(steps * 0.8),),
      'fitting.batch_size': args.fit_batch,
      'dataset.joint_noise.px': args.noise_px,
      'dataset.joint_noise.mm': args.hand_noise_mm if family == 'mano' else args.noise_mm,
      'dataset.joint_noise.swap': args.swap,
      'dataset.joint_noise.drop': args.drop,
  }
  if mode == 'mocap':
    # The joint branch's warm start does most of the MoCap learning; the full training then
    # fine-tunes it. At the demo config's 1e-3 the hand network lost what the warm start had
    # learned (MPJPE 11.2 -> 20.0 mm at 600 steps); at 1e-4 it keeps it (11.2 mm).
    overrides['train.lr'] = MOCAP_LR
  if network == 'neuralannot_2':
    more = two_stage_steps(regime, args)
    overrides.update({
        'train.num_steps': more, 'train.lr_boundaries': (int(more * 0.8),),
        'train.two_stage.init': os.path.join(stage_one, 'pseudo_gt_refine.json'),
        'train.two_stage.init_weights': stage_one})
  overrides.update(user_settings(args))   # --set: the user's word comes last
  return experiment.load_config(BASE_CONFIG, overrides)


def user_settings(args):
  """{field: value} of the --set options (none in an args without them)."""
  return dict(getattr(args, 'set', None) or {})


def base_config(args):
  """configs/synthetic_body.py with the --set fields: what every run shares before the tool's
  per-regime fields."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  return experiment.load_config(BASE_CONFIG, user_settings(args))


def parse_setting(text):
  """'model.depth=50' -> ('model.depth', 50): the value as a Python literal, else the
  string (`--set model.compute_dtype=bfloat16`)."""
  key, sep, value = text.partition('=')
  if not sep or not key.strip():
    raise argparse.ArgumentTypeError(f'--set {text!r}: expected FIELD=VALUE, e.g. model.depth=50')
  try:
    value = ast.literal_eval(value)
  except (ValueError, SyntaxError):
    pass
  return key.strip(), value


def _steps_of(regime, args, name):
  """args.<name>, or args.wild_<name> in the regimes from 2D joints when that is set."""
  if REGIMES[regime][2] == 'wild' and getattr(args, f'wild_{name}', 0):
    return int(getattr(args, f'wild_{name}'))
  return int(getattr(args, name, 0) or 0)


def two_stage_steps(regime, args):
  """Stage two's steps in a regime: --two_stage_steps, or --wild_two_stage_steps from 2D
  joints; 0: no stage two."""
  return _steps_of(regime, args, 'two_stage_steps')


def regime_steps(regime, args):
  """The network's training steps in a regime: --steps, or --wild_steps from 2D joints."""
  return _steps_of(regime, args, 'steps')


def add_set_options(parser):
  """The options every tool on these sets shares: the GT joints' noise and defects, the
  fit's batch, progress bars."""
  parser.add_argument('--noise_px', type=float, default=2.0,
                      help='std of the Gaussian noise on the GT 2D joints both annotators see, '
                      'pixels (the synthetic keypoints are exact; real ones are not)')
  parser.add_argument('--noise_mm', type=float, default=15.0,
                      help='std of the noise on the GT 3D body joints, mm per coordinate')
  parser.add_argument('--hand_noise_mm', type=float, default=5.0,
                      help='the same for hand joints (a hand is about a tenth of a body)')
  parser.add_argument('--swap', type=float, default=0.05,
                      help='probability of one left/right pair swapped in a sample\'s 2D '
                      'joints (COCO annotators\' confusion)')
  parser.add_argument('--drop', type=float, default=0.05,
                      help='probability of each labelled joint going missing (occlusion, '
                      'truncation, capture failure), 2D and 3D')
  parser.add_argument('--fit_batch', type=int, default=32, help='samples per compiled fit')
  parser.add_argument('--quiet', action='store_true', help='no progress bars')


def parse_regimes(parser, text):
  """'a,b' -> ['a', 'b'], or the parser's error naming the unknown ones."""
  regimes = [r.strip() for r in text.split(',') if r.strip()]
  unknown = sorted(set(regimes) - set(REGIMES))
  if unknown:
    parser.error(f'--regimes: unknown {unknown}; choose from {sorted(REGIMES)}')
  return regimes
