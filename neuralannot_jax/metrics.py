"""Error metrics of point sets, pure numpy (float64 inside): MPJPE, PA-MPJPE, PCK, AUC.

Error functions take metres and return **millimetres** (`unit_scale=1000`); pass
unit_scale=1 for points already in mm. `pck` / `auc` take errors and thresholds in the same
unit (mm). `neuralannot_jax.evaluate` applies them to body-model parameter sets; its
docstring gives the conventions (root, alignment, AUC thresholds).
"""

import numpy as np

MM_PER_M = 1000.0
# PCK thresholds of the hand benchmarks (FreiHAND, InterHand2.6M): 0..50 mm.
HAND_AUC_THRESHOLDS_MM = np.linspace(0.0, 50.0, 21)


def as_float64(x):
  return np.asarray(x, np.float64)


def point_weights(valid, shape):
  """(..., N) float64 0/1 weights for points of `shape` (..., N, D); valid > 0 counts."""
  if valid is None:
    return np.ones(shape[:-1])
  return np.broadcast_to(np.asarray(valid) > 0, shape[:-1]).astype(np.float64)


def _check_pair(pred, gt):
  if pred.shape != gt.shape or pred.ndim < 2:
    raise ValueError(f'pred has shape {pred.shape} and gt {gt.shape}; expected the same '
                     '(..., N, D)')


def procrustes_transform(pred, gt, valid=None):
  """The similarity transform x -> scale * R x + t that best maps pred onto gt (Umeyama).

  Minimises sum_n valid_n |scale R pred_n + t - gt_n|^2 over rotations R (det +1: a
  reflection is never chosen, even where it would fit better), scale > 0 and t.

  Args:
    pred, gt: (..., N, D) point sets; leading dims are a batch.
    valid: (..., N) or (N,) flags; only points with valid > 0 are fitted. None: all.
  Returns:
    scale (...,), rotation (..., D, D), translation (..., D), float64.
  """
  pred, gt = as_float64(pred), as_float64(gt)
  _check_pair(pred, gt)
  w = point_weights(valid, pred.shape)[..., None]              # (..., N, 1)
  total = np.maximum(w.sum(-2), 1e-300)                         # (..., 1)
  mu_p = (w * pred).sum(-2) / total                             # (..., D)
  mu_g = (w * gt).sum(-2) / total
  p, g = pred - mu_p[..., None, :], gt - mu_g[..., None, :]
  cov = np.swapaxes(w * g, -1, -2) @ p / total[..., None]       # (..., D, D)
  var_p = (w * p * p).sum((-2, -1)) / total[..., 0]             # (...,)
  u, d, vt = np.linalg.svd(cov)
  # det(U) det(V) = -1 means the best orthogonal map is a reflection: flip the axis of
  # the smallest singular value instead (Umeyama's S matrix).
  sign = np.where(np.linalg.det(u) * np.linalg.det(vt) < 0, -1.0, 1.0)
  s = np.ones(d.shape)
  s[..., -1] = sign
  rotation = u @ (s[..., :, None] * vt)
  # Degenerate sources (all points equal, or no valid point) keep their size.
  scale = np.where(var_p > 0, (d * s).sum(-1) / np.where(var_p > 0, var_p, 1.0), 1.0)
  translation = mu_g - scale[..., None] * np.einsum('...ij,...j->...i', rotation, mu_p)
  return scale, rotation, translation


def procrustes_align(pred, gt, valid=None):
  """pred (..., N, D) mapped by `procrustes_transform(pred, gt, valid)`: (..., N, D) float64.

  Every point is moved, the invalid ones too; only the valid ones chose the transform.
  """
  scale, rotation, translation = procrustes_transform(pred, gt, valid)
  moved = as_float64(pred) @ np.swapaxes(rotation, -1, -2)
  return scale[..., None, None] * moved + translation[..., None, :]


def root_align(points, root):
  """Points relative to a root: (..., N, D) float64.

  Args:
    points: (..., N, D).
    root: an int (the index of the root among the N points) or root points (..., D).
  """
  points = as_float64(points)
  if isinstance(root, (int, np.integer)):
    root = points[..., root, :]
  return points - as_float64(root)[..., None, :]


def point_errors(pred, gt):
  """(..., N) Euclidean distance between corresponding points of (..., N, D); same unit."""
  pred, gt = as_float64(pred), as_float64(gt)
  _check_pair(pred, gt)
  return np.linalg.norm(pred - gt, axis=-1)


def mean_error(errors, valid, unit_scale):
  """(..., N) errors -> (...,) mean over valid points x unit_scale; NaN where none valid."""
  w = point_weights(valid, errors.shape + (1,))
  count = w.sum(-1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(count > 0, (w * errors).sum(-1) / count, np.nan) * unit_scale


def mpjpe(pred, gt, valid=None, *, unit_scale=MM_PER_M):
  """Mean per-point position error, no alignment (root-align first for MPJPE proper).

  Args:
    pred, gt: (..., N, D) in metres.
    valid: (..., N) or (N,) flags, or None for all points.
    unit_scale: multiplies the result: 1000 turns metres into millimetres.
  Returns:
    (...,) mean Euclidean error over valid points, millimetres; NaN with none valid.
  """
  return mean_error(point_errors(pred, gt), valid, unit_scale)


def pa_error(pred, gt, valid=None, *, unit_scale=MM_PER_M):
  """Procrustes-aligned error: `procrustes_align` on the valid points, then `mpjpe`.

  Args: as `mpjpe` (metres in). Returns: (...,) millimetres.
  """
  return mpjpe(procrustes_align(pred, gt, valid), gt, valid, unit_scale=unit_scale)


def pck(errors, threshold, valid=None):
  """Percentage of correct keypoints: the fraction of valid errors <= threshold.

  Args:
    errors: (...) point errors, pooled over every axis (mm).
    threshold: a scalar or (T,) thresholds in the same unit.
    valid: flags broadcastable to errors, or None.
  Returns:
    a float for a scalar threshold, else (T,); NaN when no error is valid.
  """
  errors = as_float64(errors)
  w = np.broadcast_to(np.ones((), bool) if valid is None else np.asarray(valid) > 0, errors.shape)
  values = errors[w]
  thresholds = as_float64(threshold)
  if values.size == 0:
    curve = np.full(thresholds.shape, np.nan)
  else:
    curve = (values[:, None] <= thresholds.reshape(-1)[None]).mean(0).reshape(thresholds.shape)
  return float(curve) if curve.ndim == 0 else curve


def auc_of_curve(curve, thresholds):
  """Trapezoid area under a PCK curve (T,) over thresholds (T,), divided by their range."""
  curve, thresholds = as_float64(curve), as_float64(thresholds)
  if thresholds.ndim != 1 or thresholds.size < 2 or np.any(np.diff(thresholds) <= 0):
    raise ValueError('thresholds must be (T,) increasing, T >= 2')
  area = ((curve[1:] + curve[:-1]) / 2 * np.diff(thresholds)).sum()
  return float(area / (thresholds[-1] - thresholds[0]))


def auc(errors, thresholds=HAND_AUC_THRESHOLDS_MM, valid=None):
  """Area under the PCK curve, in [0, 1] (FreiHAND's `get_measures` normalisation).

  Args:
    errors: (...) point errors in mm (pooled).
    thresholds: (T,) increasing, mm; default 0..50 mm in 20 steps, as the hand papers.
    valid: flags broadcastable to errors, or None.
  """
  return auc_of_curve(pck(errors, as_float64(thresholds).reshape(-1), valid), thresholds)


__all__ = [
    'HAND_AUC_THRESHOLDS_MM', 'MM_PER_M', 'as_float64', 'auc', 'auc_of_curve', 'mean_error',
    'mpjpe', 'pa_error', 'pck', 'point_errors', 'point_weights', 'procrustes_align',
    'procrustes_transform', 'root_align',
]
