"""A small report of one run, readable without a server: <workdir>/report/index.html.

    path = report.write_report(workdir, samples, workdir + '/pseudo_gt.json', evaluation,
                               workdir + '/train/metrics.jsonl', model_path, 'smpl')

It holds grids of the worst and the best samples by per-sample joint error (overlay | side
view, GT 2D joints vs projected model joints; `visualize.panel`), the training loss curve
(drawn with OpenCV: no plotting dependency), and the summary numbers. Every link is
relative and every asset a PNG beside index.html, so the folder can be copied or opened
from disk. Files are written atomically (temporary file, then rename).

A sample that cannot be drawn (missing image, bad entry) becomes a grey tile naming the
reason: the report of a long run is never lost to one bad record.
"""

import html
import json
import math
import os

from absl import logging
import cv2
import numpy as np

from neuralannot_jax import export
from neuralannot_jax.report import overlays as visualize
from neuralannot_jax.report import residuals as residual_plot

REPORT_DIR = 'report'
# Metrics tried, in order, to rank samples.
RANK_METRICS = ('mpjpe', 'pa_mpjpe', 'mpvpe', 'pa_mpvpe')
# Scalars of an evaluation shown in the summary table, with their labels.
SUMMARY_ROWS = (('count', 'samples scored', '{:d}'), ('joints', 'joints', '{}'),
                ('mpjpe', 'MPJPE (mm)', '{:.2f}'), ('pa_mpjpe', 'PA-MPJPE (mm)', '{:.2f}'),
                ('mpvpe', 'MPVPE (mm)', '{:.2f}'), ('pa_mpvpe', 'PA-MPVPE (mm)', '{:.2f}'),
                ('auc_pa_joints', 'AUC PA joints', '{:.3f}'),
                ('auc_pa_vertices', 'AUC PA vertices', '{:.3f}'),
                ('missing_in_pred', 'GT ids without prediction', '{}'),
                ('missing_in_gt', 'predictions without GT', '{}'))
# Training-log keys that are not losses.
_NOT_LOSSES = ('step', 'images_per_s', 'lr', 'learning_rate', 'seconds', 'time')
_CURVE_COLORS = ((200, 80, 30), (40, 160, 40), (30, 60, 220), (160, 40, 160),
                 (20, 150, 200), (120, 120, 0), (90, 90, 90))
TILE_HEIGHT = 256
GRID_COLUMNS = 2


# ----------------------------------------------------------------------------- files


def write_png(path, image):
  """Encode (H, W, 3) uint8 BGR as PNG and write it atomically. Returns path."""
  ok, data = cv2.imencode('.png', image)
  if not ok:
    raise ValueError(f'{path}: OpenCV could not encode a {np.shape(image)} image as PNG')
  with export.atomic_open(path, 'wb') as f:
    f.write(data.tobytes())
  _readable(path)
  return path


def _readable(path):
  # mkstemp makes 0600 files; a report is meant to be opened, copied and served.
  os.chmod(path, 0o644)


def read_metrics(path):
  """metrics.jsonl -> {name: (steps (N,), values (N,))}, sorted by step.

  A resumed run logs some steps again: the last line of a step wins. Lines that are not
  JSON objects (a line cut by a crash) are skipped.
  """
  by_step = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if isinstance(record, dict) and 'step' in record:
        by_step[int(record['step'])] = record
  series = {}
  for step in sorted(by_step):
    for key, value in by_step[step].items():
      if key == 'step' or not isinstance(value, (int, float)) or isinstance(value, bool):
        continue
      series.setdefault(key, ([], []))
      series[key][0].append(step)
      series[key][1].append(float(value))
  return {k: (np.array(s, np.int64), np.array(v, np.float64)) for k, (s, v) in series.items()}


# ----------------------------------------------------------------------------- curve


def _nice_ticks(lo, hi, count=5):
  """About `count` round tick values covering [lo, hi]."""
  if not hi > lo:
    return [lo]
  raw = (hi - lo) / count
  mag = 10 ** math.floor(math.log10(raw))
  step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
  first = math.ceil(lo / step) * step
  return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(value):
  return f'{value:.3g}'


def loss_curve_image(series, *, keys=None, size=(360, 640)):
  """Draw training curves with OpenCV.

  Args:
    series: {name: (steps (N,), values (N,))} (`read_metrics`).
    keys: names to draw; default 'loss' then the other losses (not images_per_s etc.).
    size: (H, W) of the image.
  Returns:
    (H, W, 3) uint8 BGR: lines over steps, y logarithmic when the values are positive
    and span more than a factor of 20, with ticks and a legend.
  """
  h, w = size
  image = np.full((h, w, 3), 255, np.uint8)
  if keys is None:
    keys = sorted((k for k in series if k not in _NOT_LOSSES),
                  key=lambda k: (k != 'loss', k))[:len(_CURVE_COLORS)]
  curves = []
  for key in keys:
    steps, values = series[key]
    ok = np.isfinite(values)
    if ok.any():
      curves.append((key, steps[ok].astype(np.float64), values[ok]))
  font = cv2.FONT_HERSHEY_SIMPLEX
  if not curves:
    cv2.putText(image, 'no training metrics', (20, h // 2), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return image
  all_x = np.concatenate([c[1] for c in curves])
  all_y = np.concatenate([c[2] for c in curves])
  log = bool(np.all(all_y > 0) and all_y.max() / all_y.min() > 20)
  ty = np.log10 if log else (lambda v: np.asarray(v, np.float64))
  x0, x1 = float(all_x.min()), float(all_x.max())
  y0, y1 = float(ty(all_y).min()), float(ty(all_y).max())
  if x1 <= x0:
    x0, x1 = x0 - 1, x1 + 1
  if y1 <= y0:
    y0, y1 = y0 - 0.5, y1 + 0.5
  pad = 0.05 * (y1 - y0)
  y0, y1 = y0 - pad, y1 + pad
  left, right, top, bottom = 64, 16, 16, 40
  pw, ph = w - left - right, h - top - bottom

  def to_px(x, y):
    return (left + (np.asarray(x) - x0) / (x1 - x0) * pw,
            top + (1 - (ty(y) - y0) / (y1 - y0)) * ph)

  grid, ink = (225, 225, 225), (0, 0, 0)
  if log:
    yticks = [10.0 ** e for e in range(math.floor(y0), math.ceil(y1) + 1)
              if y0 <= e <= y1]
    if len(yticks) < 2:   # less than a decade: linear ticks of the values
      yticks = [t for t in _nice_ticks(10 ** y0, 10 ** y1) if t > 0]
  else:
    yticks = _nice_ticks(y0, y1)
  for t in yticks:
    _, py = to_px(x0, t)
    py = int(round(float(py)))
    cv2.line(image, (left, py), (left + pw, py), grid, 1)
    cv2.putText(image, _fmt(t), (4, py + 4), font, 0.4, ink, 1, cv2.LINE_AA)
  for t in _nice_ticks(x0, x1):
    px, _ = to_px(t, 10 ** y0 if log else y0)
    px = int(round(float(px)))
    cv2.line(image, (px, top), (px, top + ph), grid, 1)
    label = f'{int(round(t))}'
    cv2.putText(image, label, (px - 4 * len(label), top + ph + 16), font, 0.4, ink, 1,
                cv2.LINE_AA)
  cv2.rectangle(image, (left, top), (left + pw, top + ph), ink, 1)
  cv2.putText(image, 'step' + ('   (log y)' if log else ''), (left + pw // 2 - 20, h - 6),
              font, 0.45, ink, 1, cv2.LINE_AA)
  for k, (key, xs, ys) in enumerate(curves):
    color = _CURVE_COLORS[k % len(_CURVE_COLORS)]
    px, py = to_px(xs, ys)
    points = np.stack([px, py], 1) * 16
    cv2.polylines(image, [np.round(points).astype(np.int32)], False, color,
                  2 if key == 'loss' else 1, cv2.LINE_AA, 4)
    ly = top + 16 + 16 * k
    cv2.line(image, (left + pw - 150, ly - 4), (left + pw - 130, ly - 4), color, 2)
    cv2.putText(image, f'{key} {_fmt(ys[-1])}', (left + pw - 124, ly), font, 0.4, ink, 1,
                cv2.LINE_AA)
  return image


# ----------------------------------------------------------------------------- samples


def _as_evaluation(evaluation):
  """A dict, a path of evaluation.json, or None -> dict or None."""
  if evaluation is None or isinstance(evaluation, dict):
    return evaluation
  path = os.fspath(evaluation)
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _entry_key(sample_id, entries, family):
  """An evaluation id -> the key of its entry in the prediction file, or None.

  MANO hands are scored as '<key>_right' / '<key>_left' (`evaluate.load_entries`).
  """
  sample_id = str(sample_id)
  if sample_id in entries:
    return sample_id
  if family == 'mano':
    for side in visualize.HAND_SIDES:
      if sample_id.endswith('_' + side) and sample_id[:-len(side) - 1] in entries:
        return sample_id[:-len(side) - 1]
  return None


def rank_samples(evaluation, entries, family, num, metric=None):
  """Pick the samples to show.

  Args:
    evaluation: an `evaluate` result with 'per_sample' ({'ids', metric: (N,)}), or None.
    entries: {key: entry} of the prediction file.
    family: the body-model family (MANO hands of one key count with their worst hand).
    num: how many samples per group.
    metric: the per-sample metric to rank by; default the first of RANK_METRICS present.
  Returns:
    (metric or None, {group: [(key, error or None)]}): groups 'worst' (largest error
    first) and 'best' (smallest first) when errors exist, else 'first' (file order).
  """
  per_sample = (evaluation or {}).get('per_sample') or {}
  if metric is None:
    metric = next((m for m in RANK_METRICS if m in per_sample), None)
  if metric is None or metric not in per_sample or 'ids' not in per_sample:
    return None, {'first': [(k, None) for k in list(entries)[:num]]}
  errors = {}
  for sample_id, value in zip(per_sample['ids'], np.asarray(per_sample[metric], np.float64)):
    key = _entry_key(sample_id, entries, family)
    if key is not None and np.isfinite(value):
      errors[key] = max(errors.get(key, -np.inf), float(value))
  if not errors:
    return None, {'first': [(k, None) for k in list(entries)[:num]]}
  order = sorted(errors, key=lambda k: errors[k])
  worst = order[::-1][:num]
  # With fewer than 2 num samples the groups would overlap: best keeps the others.
  best = [k for k in order if k not in worst][:num] if len(order) < 2 * num else order[:num]
  return metric, {'worst': [(k, errors[k]) for k in worst],
                  'best': [(k, errors[k]) for k in best]}


def index_samples(samples, keys, family):
  """{key: Sample, or for MANO {side: Sample}} of the given entry keys, reading `samples` once.

  Args:
    samples: a sequence of `Sample` (len / [i]; may be lazy, e.g. a tfds data source).
    keys: the prediction-file keys wanted (str).
    family: MANO entries gather the hands whose parent_id (or own ann_id) is the key.
  Reading stops early once every wanted body / face key is found.
  """
  wanted = {str(k) for k in keys}
  found = {}
  for i in range(len(samples)):
    sample = samples[i]
    if family == 'mano':
      key = next((str(k) for k in (sample.parent_id, sample.ann_id)
                  if k is not None and str(k) in wanted), None)
      if key is not None:
        found.setdefault(key, {})[sample.hand_side or 'right'] = sample
    elif str(sample.ann_id) in wanted:
      found[str(sample.ann_id)] = sample
      if len(found) == len(wanted):
        break
  return found


def sample_image_path(sample):
  """The image of a Sample, or of the first hand of {side: Sample}; None for None."""
  if sample is None:
    return None
  if isinstance(sample, dict):
    return next((s.image_path for s in sample.values() if s is not None), None)
  return sample.image_path


def sample_hand_side(sample):
  """A single hand Sample's side, else None."""
  if isinstance(sample, dict) or sample is None:
    return None
  return sample.hand_side


def placeholder(text, size):
  """(H, W, 3) grey tile with `text`: a sample that could not be drawn."""
  h, w = size
  tile = np.full((h, w, 3), 90, np.uint8)
  width = max(10, w // 8)   # characters per line at this font size
  words = [word[i:i + width] for word in str(text).split()
           for i in range(0, len(word), width)]   # long paths are cut into pieces
  lines = ['']
  for word in words:
    if lines[-1] and len(lines[-1]) + len(word) + 1 > width:
      lines.append('')
    lines[-1] = f'{lines[-1]} {word}'.strip()
  for k, line in enumerate(lines[:12]):
    cv2.putText(tile, line, (6, 20 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (255, 255, 255), 1, cv2.LINE_AA)
  return tile


def sample_tile(key, entry, sample, family, models, *, caption, height=TILE_HEIGHT,
                regressor=None):
  """One sample's panel scaled to `height` (H, W, 3), or a placeholder saying what failed."""
  try:
    path = sample_image_path(sample)
    image = None
    if path is not None:
      image = cv2.imread(path, cv2.IMREAD_COLOR)
      if image is None:
        raise FileNotFoundError(f'image {path}: missing or unreadable')
    out = visualize.panel(image, entry, family, models, gt=sample,
                          hand_side=sample_hand_side(sample), regressor=regressor,
                          min_height=height, caption=caption)
  except Exception as e:  # pylint: disable=broad-except
    # One bad record must not cost the report of a whole run: show why instead.
    logging.warning('report: sample %s not drawn: %s', key, e)
    return placeholder(f'{caption}: {type(e).__name__}: {e}', (height, 2 * height))
  if out.shape[0] != height:
    out = cv2.resize(out, (int(round(out.shape[1] * height / out.shape[0])), height),
                     interpolation=cv2.INTER_AREA)
  return out


def grid(tiles, columns=GRID_COLUMNS, gap=4):
  """Tiles (each (h, w_i, 3)) -> one (rows*(h+gap), columns*(max w + gap), 3) white image."""
  if not tiles:
    return np.full((32, 32, 3), 255, np.uint8)
  h = max(t.shape[0] for t in tiles)
  w = max(t.shape[1] for t in tiles)
  rows = -(-len(tiles) // columns)
  cols = min(columns, len(tiles))
  out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
  for k, tile in enumerate(tiles):
    r, c = divmod(k, columns)
    y, x = r * (h + gap), c * (w + gap)
    out[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
  return out


# ----------------------------------------------------------------------------- html


def _summary_rows(evaluation):
  rows = []
  for key, label, fmt in SUMMARY_ROWS:
    value = (evaluation or {}).get(key)
    if value is None:
      continue
    try:
      text = fmt.format(value)
    except (ValueError, TypeError):
      text = str(value)
    rows.append((label, text))
  return rows


def _training_rows(series):
  if not series:
    return []
  rows = []
  loss = series.get('loss')
  if loss is not None and len(loss[0]):
    rows.append(('training steps logged', f'{int(loss[0][-1])}'))
    rows.append(('final loss', f'{loss[1][-1]:.4g}'))
  rate = series.get('images_per_s')
  if rate is not None and len(rate[1]):
    rows.append(('images/s (median)', f'{float(np.median(rate[1])):.1f}'))
  return rows


def _table(rows):
  if not rows:
    return ''
  body = ''.join(f'<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>'
                 for a, b in rows)
  return f'<table>{body}</table>'


_GROUP_TITLES = {'worst': 'Worst samples', 'best': 'Best samples', 'first': 'Samples'}


def render_html(title, summary_rows, training_rows, figures, notes, warnings=()):
  """The page: warnings, tables of numbers, then each (heading, relative png, caption)
  figure."""
  parts = [
      '<!DOCTYPE html>', '<html><head><meta charset="utf-8">',
      f'<title>{html.escape(title)}</title>',
      '<style>body{font-family:sans-serif;margin:1.5em;max-width:1100px}'
      'table{border-collapse:collapse;margin:0.5em 0 1em}'
      'th,td{border:1px solid #ccc;padding:3px 10px;text-align:left}'
      'img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:90%}'
      '</style></head><body>', f'<h1>{html.escape(title)}</h1>']
  for warning in warnings:
    parts.append('<p style="border:2px solid #c00;background:#fee;padding:6px">'
                 f'<b>Warning:</b> {html.escape(warning)}</p>')
  if summary_rows:
    parts += ['<h2>Evaluation</h2>', _table(summary_rows)]
  if training_rows:
    parts += ['<h2>Training</h2>', _table(training_rows)]
  for heading, src, caption in figures:
    parts += [f'<h2>{html.escape(heading)}</h2>',
              f'<figure><a href="{html.escape(src)}"><img src="{html.escape(src)}" '
              f'alt="{html.escape(heading)}"></a>'
              f'<figcaption>{html.escape(caption)}</figcaption></figure>']
  for note in notes:
    parts.append(f'<p>{html.escape(note)}</p>')
  parts.append('</body></html>')
  return '\n'.join(parts) + '\n'


# ----------------------------------------------------------------------------- report


def write_report(workdir, samples, pred_file, evaluation, metrics_path, body_model, family, *,
                 num=8, metric=None, regressor=None, tile_height=TILE_HEIGHT,
                 title=None, warnings=()):
  """Write <workdir>/report/index.html with sample grids, the loss curve and the numbers.

  Args:
    workdir: the run's work directory; the report goes to <workdir>/report/.
    samples: the run's `Sample` sequence (len / [i], may be lazy): image paths and GT 2D
      joints, found by ann_id (one pass, stopping early when it can).
    pred_file: the released-layout pseudo-GT file (pseudo_gt.json).
    evaluation: the `evaluate` result (with 'per_sample'), a path of evaluation.json, or
      None: then the first `num` samples of the file are shown.
    metrics_path: train/metrics.jsonl, or None / a missing file (no curve).
    body_model: a model path (file or smplx-layout folder; MANO: both hands), a BodyModel,
      or {side: BodyModel}. A PCA-hand model is used with full hand poses, as the files
      hold them.
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    num: samples per grid (worst and best).
    metric: per-sample metric to rank by (default MPJPE, else the first present).
    regressor: (T, V) vertex regressor of the dataset's joint set, array or .npy path,
      to project the model's joints as the GT defines them; None: joints by name.
    tile_height: pixel height of each sample's panel in the grids.
    title: page title; default 'NeuralAnnot report: <workdir name>'.
    warnings: sentences shown first, in a box (e.g. a stand-in used on real data).
  Returns:
    path of index.html.
  Raises:
    FileNotFoundError when pred_file is missing.
  """
  workdir = os.path.abspath(os.fspath(workdir))
  out_dir = os.path.join(workdir, REPORT_DIR)
  os.makedirs(out_dir, exist_ok=True)
  pred_file = os.fspath(pred_file)
  if not os.path.isfile(pred_file):
    raise FileNotFoundError(f'prediction file {pred_file}: no such file')
  with open(pred_file, encoding='utf-8') as f:
    entries = {str(k): v for k, v in json.load(f).items() if v is not None}
  evaluation = _as_evaluation(evaluation)
  models = visualize.as_models(body_model, family)
  metric, groups = rank_samples(evaluation, entries, family, num, metric)
  keys = [k for group in groups.values() for k, _ in group]
  found = index_samples(samples, keys, family) if samples is not None else {}

  figures, notes = [], []
  for group, chosen in groups.items():
    tiles = []
    for key, error in chosen:
      caption = f'id {key}' + ('' if error is None else f'  {metric} {error:.1f} mm')
      tiles.append(sample_tile(key, entries[key], found.get(key), family, models,
                               caption=caption, height=tile_height, regressor=regressor))
    if not tiles:
      continue
    name = f'{group}.png'
    write_png(os.path.join(out_dir, name), grid(tiles))
    what = (f'{len(tiles)} samples, {"largest" if group == "worst" else "smallest"} '
            f'{metric} first' if group != 'first' else f'the first {len(tiles)} samples')
    figures.append((_GROUP_TITLES[group], name,
                    f'{what}: mesh over the image | seen from the side. Green dots: GT 2D '
                    'joints; red rings: projected model joints.'))

  residuals = residual_plot.residual_summary(residual_plot.entry_qualities(entries))
  if residuals is not None:
    key, unit, values, implausible_pct = residuals
    write_png(os.path.join(out_dir, 'residuals.png'),
              residual_plot.histogram_image(values, unit=unit, implausible_pct=implausible_pct))
    figures.append(('Per-sample residuals', 'residuals.png',
                    f'every pseudo-GT\'s {key} (its "quality" key): filter the file by it'))

  series = {}
  if metrics_path and os.path.isfile(os.fspath(metrics_path)):
    series = read_metrics(os.fspath(metrics_path))
    write_png(os.path.join(out_dir, 'loss.png'), loss_curve_image(series))
    figures.append(('Training loss', 'loss.png', f'from {os.fspath(metrics_path)}'))
  else:
    notes.append('No training metrics (train/metrics.jsonl) were found.')
  if evaluation is None:
    notes.append('No evaluation: this dataset has no GT parameters to score against.')
  notes.append(f'Pseudo-GTs: {pred_file} ({len(entries)} entries, {family}).')

  page = render_html(title or f'NeuralAnnot report: {os.path.basename(workdir)}',
                     _summary_rows(evaluation), _training_rows(series), figures, notes,
                     warnings)
  path = os.path.join(out_dir, 'index.html')
  with export.atomic_open(path, 'w') as f:
    f.write(page)
  _readable(path)
  return path


__all__ = ['REPORT_DIR', 'write_png', 'read_metrics', 'loss_curve_image', 'rank_samples',
           'index_samples', 'sample_image_path', 'sample_hand_side', 'placeholder',
           'sample_tile', 'grid', 'render_html', 'write_report']
