"""Pseudo-GT error against annotation time: the network by training step, the fitter by budget.

    python tools/learning_curve.py --regimes body_2d --num_images 480 --steps 1200 --points 6
    python tools/learning_curve.py --regimes body_3d,body_2d,hand_3d,hand_2d

Answers issue 16's question "does more training, or a bigger fitting budget, help, and where
does each stop?". For each regime (`comparison_regimes.REGIMES`, same synthetic sets, noise
and defects as the comparison, in work directories of its own):

  network  trains `--steps` steps once, keeping a checkpoint every steps / points; each kept
           checkpoint annotates the set (`annotate.step`) and is scored against the GT. Its
           time is the training time up to that step (steps x batch / the logged images/s)
           plus the annotation pass, per sample.
  fitter   fits the set at fractions of its default steps (`--fit_fractions`), each scored
           the same way; its time is the fit's wall time per sample.

Writes a Markdown table (`--out`) and a figure beside it (<out>.png): MPJPE against seconds
per sample (log scale), one panel per regime. Every run resumes, like the comparison.
"""

import argparse
import copy
import datetime
import json
import os
import platform
import sys

import cv2
import numpy as np

import comparison_regimes


def _evaluate(config):
  """Runs `config` through the main job; (scores, annotation seconds) of its output."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  summary = experiment.run(config)
  output = os.path.join(os.path.abspath(config.workdir), config.annotate.output)
  with open(output + '.record.json') as f:
    seconds = float(json.load(f)['seconds'])
  return summary['evaluation'], seconds


def _seconds_at(train_dir, step, batch_size):
  """Training seconds up to `step`: steps x batch / the images/s logged nearest it."""
  with open(os.path.join(train_dir, 'metrics.jsonl')) as f:
    logged = [json.loads(line) for line in f if line.strip()]
  rate = min(logged, key=lambda r: abs(r['step'] - step))['images_per_s']
  return step * batch_size / max(rate, 1e-9)


def _with(config, overrides):
  """A copy of `config` with {'a.b': value} set (ml_collections' flattened update)."""
  config = copy.deepcopy(config)
  config.update_from_flattened_dict(overrides)
  return config


def network_curve(regime, args):
  """([(step, seconds per sample, scores)] at each kept checkpoint, the pose prior's path)."""
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  config = _with(comparison_regimes.regime_config(regime, 'neuralannot', args), {
      'stages': 'train', 'train.checkpoint_every': max(args.steps // args.points, 1),
      'train.max_to_keep': args.points + 1})
  experiment.run(config)                  # trains, or resumes a stopped run
  workdir = os.path.abspath(config.workdir)
  train_dir = os.path.join(workdir, 'train')
  steps = sorted(int(d) for d in os.listdir(os.path.join(train_dir, 'checkpoints'))
                 if d.isdigit())
  scored = [(step, *_evaluate(_with(config, {'stages': 'annotate,evaluate',
                                              'annotate.step': step,
                                              'annotate.output': f'curve_{step}'})))
            for step in steps]
  # Every pass does the same work; the first one also compiles: their median is the pass.
  annotation = float(np.median([seconds for _, _, seconds in scored]))
  points = []
  for step, scores, _ in scored:
    train = _seconds_at(train_dir, step, int(config.train.batch_size))
    points.append((step, (train + annotation) / max(int(scores['count']), 1), scores))
  prior = os.path.join(workdir, 'pose_prior.npz')
  return points, (prior if os.path.exists(prior) else '')


def fitter_curve(regime, args, prior):
  """[(fraction, seconds per sample, scores)] of the fitter at fractions of its budget."""
  base = comparison_regimes.regime_config(regime, 'smplify', args, prior)
  key = 'steps_3d' if comparison_regimes.REGIMES[regime][2] == 'mocap' else 'steps_per_stage'
  points = []
  for fraction in args.fit_fractions:
    steps = max(int(round(base.fitting[key] * fraction)), 1)
    scores, seconds = _evaluate(_with(base, {'annotate.output': f'curve_fit_{fraction:g}',
                                             f'fitting.{key}': steps}))
    points.append((fraction, seconds / max(int(scores['count']), 1), scores))
  return points


def plot(curves, path, size=(420, 320)):
  """One panel per regime: MPJPE (mm) against seconds per sample, log x; writes `path`."""
  w, h = size
  panels = []
  for regime, (network, fitter) in curves.items():
    img = np.full((h, w, 3), 255, np.uint8)
    xs = [p[1] for p in network + fitter]
    ys = [p[2]['mpjpe'] for p in network + fitter]
    lo, hi = np.log10(min(xs)) - 0.1, np.log10(max(xs)) + 0.1
    top = max(ys) * 1.1
    left, right, up, down = 50, w - 15, 30, h - 40
    px = lambda x: int(left + (np.log10(x) - lo) / (hi - lo) * (right - left))
    py = lambda y: int(down - y / top * (down - up))
    cv2.rectangle(img, (left, up), (right, down), (0, 0, 0), 1)
    for frac in np.linspace(0, 1, 5):
      y = top * frac
      cv2.putText(img, f'{y:.0f}', (5, py(y) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    for x in (min(xs), max(xs)):        # log axis: the extremes' seconds
      cv2.putText(img, f'{x:.2g}', (px(x) - 10, down + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                  (0, 0, 0), 1)
    for points, colour, name in ((network, (200, 80, 0), 'network (by step)'),
                                 (fitter, (0, 0, 200), 'fitter (by budget)')):
      pts = [(px(p[1]), py(p[2]['mpjpe'])) for p in points]
      for a, b in zip(pts, pts[1:]):
        cv2.line(img, a, b, colour, 2)
      for p in pts:
        cv2.circle(img, p, 3, colour, -1)
      cv2.putText(img, name, (left + 5, up + (14 if colour[0] else 28)),
                  cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    cv2.putText(img, f'{regime}: MPJPE mm vs s/sample', (left, 20), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, (0, 0, 0), 1)
    panels.append(img)
  cv2.imwrite(path, np.concatenate(panels, axis=1))


def markdown(curves, args, figure):
  lines = ['# Learning curve: pseudo-GT error against annotation time', '',
           f'Command: `python tools/learning_curve.py {" ".join(args.argv)}`'.rstrip(), '',
           f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU '
           f'cores, JAX on CPU; {datetime.date.today().isoformat()}. {args.num_images} images '
           f'per set, noise and defects as in the comparison (--swap {args.swap:g}, --drop '
           f'{args.drop:g}). Seconds per sample: the network\'s training up to the step plus '
           'its annotation pass (the median pass: the first also compiles); the fitter\'s whole '
           'fit, compilation included. Figure: '
           f'[{os.path.basename(figure)}]({os.path.basename(figure)}).', '']
  for regime, (network, fitter) in curves.items():
    lines += [f'## {comparison_regimes.REGIMES[regime][3]}', '',
              '| annotator | step / budget | s/sample | MPJPE | PA-MPJPE | MPVPE | implausible % |',
              '|---|---|---|---|---|---|---|']
    for name, points, label in (('network', network, lambda p: f'step {p[0]}'),
                                ('fitter', fitter, lambda p: f'{p[0]:g} x steps')):
      for p in points:
        s = p[2]
        implausible = s.get('implausible_pct')
        lines.append(f'| {name} | {label(p)} | {p[1]:.3f} | {s["mpjpe"]:.1f} | '
                     f'{s["pa_mpjpe"]:.1f} | {s["mpvpe"]:.1f} | '
                     f'{"-" if implausible is None else f"{implausible:.0f}"} |')
    lines.append('')
  return '\n'.join(lines)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--regimes', default='body_2d',
                      help=f'comma-separated subset of {",".join(comparison_regimes.REGIMES)}')
  parser.add_argument('--num_images', type=int, default=480, help='images per synthetic set')
  parser.add_argument('--steps', type=int, default=1200, help='network training steps')
  parser.add_argument('--points', type=int, default=6, help='checkpoints scored along them')
  parser.add_argument('--fit_fractions', default='0.25,0.5,1',
                      help='fitter budgets, as fractions of its default steps')
  comparison_regimes.add_set_options(parser)
  parser.add_argument('--workdir', default='work_dir/learning_curve',
                      help='work directories, one per regime and annotator (resumable)')
  parser.add_argument('--out', default='LEARNING_CURVE.md', help='the Markdown table')
  args = parser.parse_args(argv)
  args.argv = argv
  args.fit_fractions = [float(x) for x in args.fit_fractions.split(',') if x.strip()]
  regimes = comparison_regimes.parse_regimes(parser, args.regimes)
  if args.points < 1 or args.steps < args.points:
    parser.error('--points must be at least 1 and at most --steps')
  curves = {}
  figure = os.path.splitext(args.out)[0] + '.png'
  for regime in regimes:
    network, prior = network_curve(regime, args)
    curves[regime] = (network, fitter_curve(regime, args, prior))
    with open(args.out, 'w') as f:          # after each regime: a stopped run still reports
      f.write(markdown(curves, args, figure))
    plot(curves, figure)
    print(f'{regime}: network ' + ', '.join(f'{p[0]}: {p[2]["mpjpe"]:.1f}' for p in network)
          + '; fitter ' + ', '.join(f'{p[0]:g}: {p[2]["mpjpe"]:.1f}' for p in curves[regime][1]),
          flush=True)
  print(f'wrote {args.out} and {figure}')
  return curves


if __name__ == '__main__':
  main()
