"""NeuralAnnot against the SMPLify-X style baseline on synthetic sets with known GT.

    python tools/compare_annotators.py                       # all four regimes -> COMPARISON.md
    python tools/compare_annotators.py --regimes body_3d,body_2d --num_images 400 --steps 600

The paper's Tables 4 (pseudo-GTs from GT 3D joints) and 5 (from GT 2D joints) compare the
two annotators by the error of their pseudo-GTs. Here each regime is one synthetic set
(`experiment.SYNTHETIC_KINDS`) annotated through `experiment.run`, exactly as
`python -m neuralannot_jax.main` runs it:

  neuralannot   --config.annotator=neuralannot: train on the set, annotate the same set;
  smplify       --config.annotator=smplify: fit each sample (`neuralannot_jax.fitting`);
                the in-the-wild body fit uses the same pose prior the network decodes;
  neuralannot_refine   the trained network's prediction refined per sample (to the GT 3D
                joints in MoCap regimes, to the 2D joints in the wild).
  neuralannot_2 (--two_stage_steps N)   two-stage training (the paper's Table 7): the
                network goes on training N more steps from where it stopped, its loss
                adding an L1 to its own refined pseudo-GTs (neuralannot_refine's file);
                it annotates the set alone, and refined (neuralannot_2_refine).

All start from configs/synthetic_body.py (ResNet-18 at 64 px for the network); the tool
sets the set, family and mode per regime, and --set FIELD=VALUE any field in every run
(tools/compare_on_gpu.sh: ResNet-50 at 256 px on a GPU, the regimes as parallel processes
gathered by --report_only). Each run has its own work directory under
--workdir and resumes like the main job, so a killed comparison continues; a finished run is
reused, and flagged in the report when other code made it (`code_fingerprint`). Wall time per
sample: the fit's seconds / samples; for the network (train + annotate) / samples and the
annotation pass alone (its training is paid once per dataset).
"""

import argparse
import ast
import datetime
import hashlib
import json
import os
import platform
import sys
import time

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
LABELS = {'smplify': 'SMPLify-X style fitting', 'neuralannot': 'NeuralAnnot (ours)',
          'neuralannot_refine': 'NeuralAnnot + per-sample refinement (ours)',
          'neuralannot_2': 'NeuralAnnot, two stages (ours)',
          'neuralannot_2_refine': 'NeuralAnnot, two stages + per-sample refinement (ours)'}
# The paper's direction (Tables 4 and 5, MPJPE mm, SMPLify-X vs NeuralAnnot).
# What a run's numbers depend on: a finished run made by other code is flagged when reused.
CODE_DIRS = ('neuralannot_jax', 'body_models', 'configs')
PAPER = ('Human3.6M from 3D joints: 13.1 vs 8.5 mm MPJPE; 3DPW from 2D joints: 147.4 vs '
         '60.1 mm MPJPE (NeuralAnnot, CVPRW 2022).')


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


def run_regime(regime, args):
  """{annotator: scores and timings} of one regime.

  Each run's result is kept as <its workdir>/comparison.json, so a re-run of the tool
  reports finished runs without redoing them (and keeps their timings).
  """
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  from neuralannot_jax import export  # pylint: disable=import-outside-toplevel
  results = {}
  prior = ''
  annotators = ['neuralannot', 'smplify', 'neuralannot_refine']
  if two_stage_steps(regime, args):
    annotators += ['neuralannot_2', 'neuralannot_2_refine']
  settings = user_settings(args)
  code = code_fingerprint()
  for annotator in annotators:
    config = regime_config(regime, annotator, args, prior)
    workdir = os.path.abspath(config.workdir)
    output = config.annotate.output
    done = os.path.join(workdir, 'comparison.json' if output == 'pseudo_gt'
                        else f'comparison_{output}.json')
    result = None
    if os.path.exists(done):
      with open(done) as f:
        result = json.load(f)
      if annotator.startswith('neuralannot') and result.get('train_steps') != int(
          config.train.num_steps):
        result = None    # another schedule's network: train on (or again) and re-annotate
      elif result.get('settings', {}) != settings:
        result = None    # made under other --set fields: not this comparison's
      elif result.get('code') != code:
        # Kept (a resumed comparison must not redo hours of work), but never silently.
        print(f'warning: {workdir} was finished by other code ({result.get("code", "unrecorded")}, this is '
              f'{code}); reported as it is. Delete it to run it again.', file=sys.stderr)
        result['other_code'] = True
    if annotator.startswith('neuralannot_2') and 'neuralannot_refine' not in results:
      continue     # stage two without its stage one (--report_only): no fair row
    if result is None and getattr(args, 'report_only', False):
      continue     # not finished: left out of the report, nothing is run
    if result is None:
      share_rendered_set(os.path.join(args.workdir, regime, 'neuralannot'), workdir,
                         REGIMES[regime][0])
      start = time.time()
      summary = experiment.run(config)
      wall = time.time() - start
      with open(os.path.join(workdir, f'{output}.record.json')) as f:
        record = json.load(f)
      scores = summary['evaluation']
      result = {'samples': int(record['samples']), 'annotate_seconds': float(record['seconds']),
                'train_seconds': summary.get('train_seconds'),
                'train_steps': int(config.train.num_steps), 'settings': settings,
                'code': code, 'wall_seconds': wall,
                **{k: scores[k] for k in ('mpjpe', 'pa_mpjpe', 'mpvpe', 'pa_mpvpe')}}
      if 'implausible_pct' in scores:
        result['implausible_pct'] = scores['implausible_pct']
      if 'auc' in scores:
        result['auc'] = scores['auc']
      world = summary.get('evaluation_world_frame')
      if world:   # Human3.6M-style sets: the released world-frame files, scored per camera
        result['world_frame'] = {k: world[k] for k in ('mpjpe', 'pa_mpjpe', 'mpvpe')}
      export.write_json(done, result)
    if annotator.startswith('neuralannot'):
      result['train_seconds'] = train_seconds(workdir, int(config.train.batch_size))
    if annotator.startswith('neuralannot_2'):
      # Stage two's cost includes stage one's training and refinement pass.
      result['train_seconds'] += (results['neuralannot_refine']['train_seconds']
                                  + results['neuralannot_refine']['annotate_seconds'])
    if annotator == 'neuralannot':
      # The in-the-wild body fit uses the prior the network decodes (same prior, fair).
      candidate = os.path.join(workdir, 'pose_prior.npz')
      prior = candidate if os.path.exists(candidate) else ''
    results[annotator] = result
  return results


def code_fingerprint():
  """12 hex digits of a hash over the Python files the runs execute (`CODE_DIRS` and this
  tool): equal for equal code, whether installed from git or copied."""
  digest = hashlib.sha1()
  files = [os.path.abspath(__file__)]
  for top in CODE_DIRS:
    for root, dirs, names in os.walk(os.path.join(REPO, top)):
      dirs[:] = sorted(d for d in dirs if d != '__pycache__')
      files += [os.path.join(root, n) for n in sorted(names) if n.endswith('.py')]
  for path in files:
    digest.update(os.path.relpath(path, REPO).encode() + b'\0')
    with open(path, 'rb') as f:
      digest.update(f.read() + b'\0')
  return digest.hexdigest()[:12]


def share_rendered_set(source_workdir, workdir, kind):
  """Links <workdir>/data to the set already rendered in <source_workdir>/data: every run
  of a regime renders the same set (same kind, size, count, seed; the run checks the set's
  marker), and rendering it again cost a minute per run. Only a finished set (its marker
  written) is shared; the link is relative, so the work directories can move together."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  source, target = (os.path.abspath(os.path.join(w, 'data')) for w in (source_workdir, workdir))
  if source != target and os.path.exists(os.path.join(source, kind, '.complete')):
    experiment.link(source, target)


def train_seconds(workdir, batch_size):
  """Training time as steps x batch / the images/s of the last log line: a training run
  that was stopped and resumed is counted whole (the wall time of its last part is not)."""
  with open(os.path.join(workdir, 'train', 'metrics.jsonl')) as f:
    last = json.loads([line for line in f if line.strip()][-1])
  return last['step'] * batch_size / max(last['images_per_s'], 1e-9)


def per_sample(result, annotator):
  """(wall seconds per sample in all, of the annotation pass alone)."""
  n = max(result['samples'], 1)
  if annotator == 'smplify':
    return result['annotate_seconds'] / n, result['annotate_seconds'] / n
  train = result.get('train_seconds') or 0.0
  return (train + result['annotate_seconds']) / n, result['annotate_seconds'] / n


def markdown(results, args):
  """The report: one table per supervision (the paper's Tables 4 and 5)."""
  lines = ['# NeuralAnnot vs the SMPLify-X style baseline (synthetic sets, known GT)', '',
           f'Command: `python tools/compare_annotators.py {" ".join(args.argv)}`'.rstrip(), '',
           f'Machine: {machine()}; {datetime.date.today().isoformat()}. '
           f'{args.num_images} images per set; the network trains {args.steps} steps from 3D '
           f'joints and {getattr(args, "wild_steps", 0) or args.steps} from 2D joints '
           f'({network_sentence(args)}).' + two_stage_sentence(args), '',
           'Errors in mm against the synthetic GT (MPJPE / PA-MPJPE on the set\'s joints, '
           'MPVPE on the mesh; hands: MANO joints). Both annotators see the same GT '
           f'joints with seeded Gaussian noise, std {args.noise_px:g} px per 2D and '
           f'{args.noise_mm:g} mm (hands {args.hand_noise_mm:g} mm) per 3D coordinate, '
           f'left/right swaps in {100 * args.swap:g}% of the 2D samples and '
           f'{100 * args.drop:g}% of the joints missing (the synthetic joints are exact, '
           'real annotations are not); the GT they are scored against is clean. The '
           'Human3.6M-style '
           'GT joints are read off the mesh by a regressor 1-2 cm off the one the annotators '
           'are given (as markers are). Implausible: the share of bodies with a joint beyond '
           'the synthetic pose sampler\'s limits by more than 15 degrees (`plausibility`; '
           'bodies only, the GT scores 0).', '']
  for supervision, table in (('3d', 'Table 4 layout: pseudo-GTs from GT 3D joints'),
                             ('2d', 'Table 5 layout: pseudo-GTs from GT 2D joints')):
    regimes = [r for r in REGIMES if r.endswith(supervision) and r in results]
    if not regimes:
      continue
    lines += [f'## {table}', '']
    head = ['Annotator']
    for r in regimes:
      head += [f'{REGIMES[r][3]}: MPJPE', 'PA-MPJPE', 'MPVPE', 'implausible %']
    head += ['s/sample (all)', 's/sample (annotation pass)']
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for annotator in ANNOTATORS:
      if not all(annotator in results[r] for r in regimes):
        continue
      row = [LABELS[annotator]]
      total, annotation = 0.0, 0.0
      for r in regimes:
        res = results[r][annotator]
        implausible = res.get('implausible_pct')
        row += [f'{res["mpjpe"]:.1f}', f'{res["pa_mpjpe"]:.1f}', f'{res["mpvpe"]:.1f}',
                '-' if implausible is None else f'{implausible:.0f}']
        t_all, t_ann = per_sample(res, annotator)
        total, annotation = total + t_all / len(regimes), annotation + t_ann / len(regimes)
      row += [f'{total:.3f}', f'{annotation:.4f}']
      lines.append('| ' + ' | '.join(row) + ' |')
    lines.append('')
  lines += world_frame_table(results)
  lines += provenance(results)
  lines += [f'Paper, for the direction: {PAPER}', '',
            'Times are wall clock on this machine for the whole set (compilation included) '
            'divided by its samples, averaged over the table\'s regimes; SMPLify-X itself '
            'reports about a minute per image on a GPU.', '']
  return '\n'.join(lines)


def provenance(results):
  """Lines on the runs themselves: their summed wall time (when every run recorded it), and
  which reused runs other code made."""
  runs = [(f'{regime}/{name}', run) for regime, by_name in results.items()
          for name, run in by_name.items()]
  lines = []
  if runs and all('wall_seconds' in run for _, run in runs):
    total = sum(run['wall_seconds'] for _, run in runs)
    lines += [f'Wall time of all {len(runs)} runs: {total / 60:.0f} min (each run once: stage '
              'two\'s time per sample above includes stage one, this does not count it twice; '
              'a run stopped and resumed counts its last attempt only, and runs made in '
              'parallel add up).', '']
  stale = [name for name, run in runs if run.get('other_code')]
  if stale:
    lines += [f'**Made by other code than the tool\'s present code:** {", ".join(stale)} '
              '(finished runs are reused; delete their work directories to run them again).', '']
  return lines


def machine():
  """'x86_64, 2 CPU cores, JAX on cpu' or '..., JAX on NVIDIA H200': where the report ran."""
  import jax  # pylint: disable=import-outside-toplevel
  device = jax.devices()[0]
  accelerator = device.platform if device.platform == 'cpu' else device.device_kind
  return (f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, JAX on '
          f'{accelerator}')


def network_sentence(args):
  """The network's settings as the runs used them (configs/synthetic_body.py and --set;
  the tool's per-regime fields do not touch these)."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  settings = user_settings(args)
  config = experiment.load_config(BASE_CONFIG, settings)
  mocap_lr = settings.get('train.lr', MOCAP_LR)
  return (f'configs/synthetic_body.py{" with --set" if settings else ""}: ResNet-'
          f'{config.model.depth}, {config.model.crop_size} px crops from '
          f'{config.dataset.synthetic.size} px images, batch {config.train.batch_size}, '
          f'{config.model.compute_dtype}; Adam at {config.train.lr:g}, {mocap_lr:g} after the '
          'joint branch\'s warm start in the MoCap regimes')


def two_stage_sentence(args):
  """The header's words on stage two, or '' without it."""
  mocap, wild = two_stage_steps('body_3d', args), two_stage_steps('body_2d', args)
  if not (mocap or wild):
    return ''
  lengths = ' and '.join(f'{n} more steps from {what} joints' for n, what in
                         ((mocap, '3D'), (wild, '2D')) if n)
  if not (mocap and wild):
    lengths += ' (from ' + ('2D' if mocap else '3D') + ' joints: one stage only)'
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  weights = experiment.load_config(BASE_CONFIG, user_settings(args)).train.two_stage
  return (f' Two stages: the network then trains {lengths}, '
          f'from where it stopped, with an L1 to its own refined '
          f'pseudo-GTs (rotation weight {weights.rot_weight:g}, shape '
          f'{weights.betas_weight:g}); its time includes stage one and the '
          'refinement that made its targets.')


def world_frame_table(results):
  """Markdown lines scoring the world-frame files (one body per frame, as the Human3.6M
  release has them) moved back into every camera, beside the camera-frame file."""
  rows = [(r, a, res) for r in results for a, res in results[r].items() if 'world_frame' in res]
  if not rows:
    return []
  lines = ['## World-frame files (one body per frame, moved back into each camera)', '',
           '| Regime | Annotator | camera-frame MPJPE / MPVPE | world-frame MPJPE / PA-MPJPE / '
           'MPVPE |', '|---|---|---|---|']
  for regime, annotator, res in rows:
    world = res['world_frame']
    lines.append(f'| {REGIMES[regime][3]} | {LABELS[annotator]} | {res["mpjpe"]:.1f} / '
                 f'{res["mpvpe"]:.1f} | {world["mpjpe"]:.1f} / {world["pa_mpjpe"]:.1f} / '
                 f'{world["mpvpe"]:.1f} |')
  return lines + ['']


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


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--regimes', default=','.join(REGIMES),
                      help=f'comma-separated subset of {",".join(REGIMES)}')
  parser.add_argument('--num_images', type=int, default=600, help='images per synthetic set')
  parser.add_argument('--steps', type=int, default=1000, help='network training steps')
  parser.add_argument('--wild_steps', type=int, default=0,
                      help='network training steps in the regimes from 2D joints (image only: '
                      'they learn slower than the MoCap ones, whose joint branch is warm-'
                      'started); 0: --steps')
  parser.add_argument('--two_stage_steps', type=int, default=0,
                      help='two-stage training: steps the network goes on training on its '
                      'own refined pseudo-GTs (two more rows); 0: off')
  parser.add_argument('--wild_two_stage_steps', type=int, default=0,
                      help='the same in the regimes from 2D joints; 0: --two_stage_steps')
  add_set_options(parser)
  parser.add_argument('--workdir', default='work_dir/compare_annotators',
                      help='work directories, one per regime and annotator (resumable)')
  parser.add_argument('--out', default='COMPARISON.md', help='the Markdown report')
  parser.add_argument('--set', action='append', type=parse_setting, default=[],
                      metavar='FIELD=VALUE',
                      help='a config field for every run, after the tool\'s own (repeatable), '
                      'e.g. --set model.depth=50 --set model.crop_size=256 '
                      '(tools/compare_on_gpu.sh)')
  parser.add_argument('--report_only', action='store_true',
                      help='write the report from the runs already finished under --workdir '
                      '(several regimes run as separate processes); run nothing')
  args = parser.parse_args(argv)
  args.argv = argv
  args.set = dict(args.set)
  regimes = parse_regimes(parser, args.regimes)
  from neuralannot_jax import export  # pylint: disable=import-outside-toplevel
  results = {}
  if args.report_only:
    for stale in (args.out, os.path.join(args.workdir, 'comparison.json')):
      if os.path.exists(stale):
        os.remove(stale)      # written again below from the finished runs, or not at all
  for regime in regimes:
    results[regime] = run_regime(regime, args)
    if not results[regime]:
      del results[regime]
      continue
    print(f'{regime}: ' + ', '.join(
        f'{a} MPJPE {r["mpjpe"]:.1f} mm' for a, r in results[regime].items()), flush=True)
    # Written after each regime: a long comparison stopped half-way still reports.
    export.write_json(os.path.join(args.workdir, 'comparison.json'), results)
    with export.atomic_open(args.out, 'w') as f:
      f.write(markdown(results, args))
  if not results:
    sys.exit(f'no finished run under {args.workdir} for {",".join(regimes)}: no report written')
  print(f'wrote {args.out}')
  return results


if __name__ == '__main__':
  main()
