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

The regimes and each run's config: tools/comparison_regimes.py (tools/learning_curve.py
uses them too); the Markdown: tools/comparison_report.py.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import comparison_regimes
import comparison_report

# What a run's numbers depend on: a finished run made by other code is flagged when reused
# (the report's wording is not among them).
CODE_DIRS = ('neuralannot_jax', 'body_models', 'configs')
CODE_FILES = ('tools/compare_annotators.py', 'tools/comparison_regimes.py')


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
  if comparison_regimes.two_stage_steps(regime, args):
    annotators += ['neuralannot_2', 'neuralannot_2_refine']
  settings = comparison_regimes.user_settings(args)
  code = code_fingerprint()
  for annotator in annotators:
    config = comparison_regimes.regime_config(regime, annotator, args, prior)
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
        made_by = result.get('code', 'unrecorded')
        print(f'warning: {workdir} was finished by other code ({made_by}, this is {code}); '
              'reported as it is. Delete it to run it again.', file=sys.stderr)
        result['other_code'] = True
    if annotator.startswith('neuralannot_2') and 'neuralannot_refine' not in results:
      continue     # stage two without its stage one (--report_only): no fair row
    if result is None and getattr(args, 'report_only', False):
      continue     # not finished: left out of the report, nothing is run
    if result is None:
      share_rendered_set(os.path.join(args.workdir, regime, 'neuralannot'), workdir,
                         comparison_regimes.REGIMES[regime][0])
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


def code_fingerprint(repo=comparison_regimes.REPO):
  """12 hex digits of a hash over the Python files the runs execute (`CODE_DIRS` and
  `CODE_FILES` under `repo`): equal for equal code, whether installed from git or copied."""
  digest = hashlib.sha1()
  files = [os.path.join(repo, name) for name in CODE_FILES]
  for top in CODE_DIRS:
    for root, dirs, names in os.walk(os.path.join(repo, top)):
      dirs[:] = sorted(d for d in dirs if d != '__pycache__')
      files += [os.path.join(root, n) for n in sorted(names) if n.endswith('.py')]
  for path in files:
    digest.update(os.path.relpath(path, repo).encode() + b'\0')
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


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--regimes', default=','.join(comparison_regimes.REGIMES),
                      help=f'comma-separated subset of {",".join(comparison_regimes.REGIMES)}')
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
  comparison_regimes.add_set_options(parser)
  parser.add_argument('--workdir', default='work_dir/compare_annotators',
                      help='work directories, one per regime and annotator (resumable)')
  parser.add_argument('--out', default='COMPARISON.md', help='the Markdown report')
  parser.add_argument('--set', action='append', type=comparison_regimes.parse_setting, default=[],
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
  regimes = comparison_regimes.parse_regimes(parser, args.regimes)
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
      f.write(comparison_report.markdown(results, args))
  if not results:
    sys.exit(f'no finished run under {args.workdir} for {",".join(regimes)}: no report written')
  print(f'wrote {args.out}')
  return results


if __name__ == '__main__':
  main()
