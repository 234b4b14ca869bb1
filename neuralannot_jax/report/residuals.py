"""The report's picture of per-sample quality: a histogram of the pseudo-GTs' residuals to
their own GT joints (the 'quality' key of every entry, `quality.batch_quality`).

It answers the question a user filtering the file asks: how many fits lie far from their
joints, and where to cut. The caption gives the median, the 90th percentile and the share of
implausible bodies.
"""

import cv2
import numpy as np

RESIDUAL_KEYS = (('joint_residual_mm', 'mm, to the GT 3D joints (root-relative)'),
                 ('joint_residual_px', 'px, to the GT 2D joints (original image)'))


def entry_qualities(entries):
  """The quality dicts of released-layout entries: {key: entry} -> list of dicts.

  SMPL / SMPL-X / FLAME entries carry 'quality' themselves; MANO entries
  ({'right': ..., 'left': ...}) carry it per hand."""
  out = []
  for entry in entries.values():
    if not isinstance(entry, dict):
      continue
    parts = [entry[s] for s in ('right', 'left') if isinstance(entry.get(s), dict)]
    for part in parts or [entry]:
      if isinstance(part.get('quality'), dict):
        out.append(part['quality'])
  return out


def residual_summary(qualities):
  """(key, unit text, values (N,), implausible share in % or None) for the residual kind
  most entries have; None when no entry has a residual."""
  counts = [(sum(key in q for q in qualities), key, unit) for key, unit in RESIDUAL_KEYS]
  count, key, unit = max(counts)
  if count == 0:
    return None
  values = np.array([q[key] for q in qualities if key in q], np.float64)
  flags = [bool(q['implausible']) for q in qualities if 'implausible' in q]
  share = 100.0 * float(np.mean(flags)) if flags else None
  return key, unit, values[np.isfinite(values)], share


def histogram_bins(values, num_bins=30):
  """Counts and bin edges over [0, the 99th percentile], the last bin also counting every
  larger value (so that one wild fit does not squeeze the rest into one bar).

  Args:
    values: (N,) non-negative residuals.
  Returns:
    counts (num_bins,) int, edges (num_bins + 1,).
  """
  values = np.asarray(values, np.float64)
  top = float(np.percentile(values, 99)) if values.size else 1.0
  top = top if top > 0 else 1.0
  edges = np.linspace(0.0, top, num_bins + 1)
  counts, _ = np.histogram(np.minimum(values, top), bins=edges)
  return counts, edges


def histogram_image(values, *, unit, implausible_pct=None, size=(300, 640), num_bins=30):
  """Draw the residuals' histogram with OpenCV.

  Args:
    values: (N,) residuals; unit: axis text, e.g. 'mm, to the GT 3D joints'.
    implausible_pct: the share of implausible bodies, shown when given.
    size: (H, W).
  Returns:
    (H, W, 3) uint8 BGR: bars, the median (blue) and 90th percentile (red) as lines.
  """
  h, w = size
  image = np.full((h, w, 3), 255, np.uint8)
  font, ink = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
  values = np.asarray(values, np.float64)
  if values.size == 0:
    cv2.putText(image, 'no residuals', (20, h // 2), font, 0.6, ink, 1, cv2.LINE_AA)
    return image
  counts, edges = histogram_bins(values, num_bins)
  left, right, top, bottom = 48, 16, 28, 40
  pw, ph = w - left - right, h - top - bottom
  to_x = lambda v: int(round(left + v / edges[-1] * pw))
  peak = max(int(counts.max()), 1)
  for count, lo, hi in zip(counts, edges[:-1], edges[1:]):
    if count:
      y = int(round(top + ph * (1 - count / peak)))
      cv2.rectangle(image, (to_x(lo) + 1, y), (to_x(hi) - 1, top + ph), (170, 170, 170), -1)
  median, p90 = np.median(values), np.percentile(values, 90)
  for value, color in ((median, (200, 80, 0)), (p90, (0, 0, 200))):
    x = to_x(min(value, edges[-1]))
    cv2.line(image, (x, top), (x, top + ph), color, 2)
  cv2.rectangle(image, (left, top), (left + pw, top + ph), ink, 1)
  for t in np.linspace(0.0, edges[-1], 6):
    label = f'{t:.3g}'
    cv2.putText(image, label, (to_x(t) - 4 * len(label), top + ph + 16), font, 0.4, ink, 1,
                cv2.LINE_AA)
  cv2.putText(image, str(peak), (4, top + 4), font, 0.4, ink, 1, cv2.LINE_AA)
  cv2.putText(image, unit + ('  (last bar: all above)' if values.max() > edges[-1] else ''),
              (left, h - 6), font, 0.45, ink, 1, cv2.LINE_AA)
  legend = f'median {median:.3g} (blue)   90th percentile {p90:.3g} (red)   n {values.size}'
  if implausible_pct is not None:
    legend += f'   implausible {implausible_pct:.1f}%'
  cv2.putText(image, legend, (left, 18), font, 0.45, ink, 1, cv2.LINE_AA)
  return image


__all__ = ['RESIDUAL_KEYS', 'entry_qualities', 'residual_summary', 'histogram_bins',
           'histogram_image']
