"""COMPARISON.md: the comparison's results in the layout of the paper's Tables 4 and 5.

`markdown(results, args)` of tools/compare_annotators.py's {regime: {annotator: result}}.
"""

import datetime
import os
import platform

import comparison_regimes

LABELS = {'smplify': 'SMPLify-X style fitting', 'neuralannot': 'NeuralAnnot (ours)',
          'neuralannot_refine': 'NeuralAnnot + per-sample refinement (ours)',
          'neuralannot_2': 'NeuralAnnot, two stages (ours)',
          'neuralannot_2_refine': 'NeuralAnnot, two stages + per-sample refinement (ours)'}
# The paper's direction (Tables 4 and 5, MPJPE mm, SMPLify-X vs NeuralAnnot).
PAPER = ('Human3.6M from 3D joints: 13.1 vs 8.5 mm MPJPE; 3DPW from 2D joints: 147.4 vs '
         '60.1 mm MPJPE (NeuralAnnot, CVPRW 2022).')


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
    regimes = [r for r in comparison_regimes.REGIMES if r.endswith(supervision) and r in results]
    if not regimes:
      continue
    lines += [f'## {table}', '']
    head = ['Annotator']
    for r in regimes:
      head += [f'{comparison_regimes.REGIMES[r][3]}: MPJPE', 'PA-MPJPE', 'MPVPE', 'implausible %']
    head += ['s/sample (all)', 's/sample (annotation pass)']
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for annotator in comparison_regimes.ANNOTATORS:
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
    title = comparison_regimes.REGIMES[regime][3]
    lines.append(f'| {title} | {LABELS[annotator]} | {res["mpjpe"]:.1f} / '
                 f'{res["mpvpe"]:.1f} | {world["mpjpe"]:.1f} / {world["pa_mpjpe"]:.1f} / '
                 f'{world["mpvpe"]:.1f} |')
  return lines + ['']


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
  settings = comparison_regimes.user_settings(args)
  config = comparison_regimes.base_config(args)
  mocap_lr = settings.get('train.lr', comparison_regimes.MOCAP_LR)
  return (f'configs/synthetic_body.py{" with --set" if settings else ""}: ResNet-'
          f'{config.model.depth}, {config.model.crop_size} px crops from '
          f'{config.dataset.synthetic.size} px images, batch {config.train.batch_size}, '
          f'{config.model.compute_dtype}; Adam at {config.train.lr:g}, {mocap_lr:g} after the '
          'joint branch\'s warm start in the MoCap regimes')


def two_stage_sentence(args):
  """The header's words on stage two, or '' without it."""
  mocap, wild = (comparison_regimes.two_stage_steps(regime, args)
                 for regime in ('body_3d', 'body_2d'))
  if not (mocap or wild):
    return ''
  lengths = ' and '.join(f'{n} more steps from {what} joints' for n, what in
                         ((mocap, '3D'), (wild, '2D')) if n)
  if not (mocap and wild):
    lengths += ' (from ' + ('2D' if mocap else '3D') + ' joints: one stage only)'
  weights = comparison_regimes.base_config(args).train.two_stage
  return (f' Two stages: the network then trains {lengths}, '
          f'from where it stopped, with an L1 to its own refined '
          f'pseudo-GTs (rotation weight {weights.rot_weight:g}, shape '
          f'{weights.betas_weight:g}); its time includes stage one and the '
          'refinement that made its targets.')
