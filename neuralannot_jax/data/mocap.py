"""Geometry the motion-capture readers share: cameras, projection, boxes, model parameters.

Motion-capture datasets (Human3.6M, MPI-INF-3DHP, FreiHAND, InterHand2.6M) store 3D joints and
model fits in a world frame with millimetres and per-camera extrinsics; `Sample` wants OpenCV
camera space in metres. Everything here is numpy, float64 inside (a 5 m depth keeps 1e-7 m
resolution) and pure, so the readers stay thin and the tests can check each step.
"""

import numpy as np

# Joints at or behind this depth (metres) cannot be projected: the record is unusable.
MIN_DEPTH = 1e-3


def world_to_camera(points, rotation, translation):
  """x_cam = R @ x_world + t, for every row.

  Args:
    points: (K, 3) world coordinates.
    rotation: (3, 3) world-to-camera rotation R.
    translation: (3,) t, in the same unit as `points`.
  Returns:
    (K, 3) float64 camera coordinates, same unit.
  """
  points = np.asarray(points, np.float64)
  return points @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)


def project(points, focal, princpt):
  """Pinhole projection u = fx x / z + cx, v = fy y / z + cy.

  Args:
    points: (K, 3) camera space; only rows with z > MIN_DEPTH are projected.
    focal: (2,) fx, fy in pixels.
    princpt: (2,) cx, cy in pixels.
  Returns:
    (K, 2) float64 pixels; 0 where the point is not in front of the camera (callers mark
    those joints invalid or skip the record, so the zeros are never used as data).
  """
  points = np.asarray(points, np.float64)
  z = points[:, 2:3]
  front = z > MIN_DEPTH
  safe_z = np.where(front, z, 1.0)
  uv = points[:, :2] / safe_z * np.asarray(focal, np.float64) + np.asarray(princpt, np.float64)
  return np.where(front, uv, 0.0)


def points_box(points, valid, margin=1.2, square=False):
  """The box around the valid 2D points, grown by `margin` about its centre.

  Args:
    points: (K, 2) pixels.
    valid: (K,) nonzero for the points to enclose.
    margin: each side of the tight box is multiplied by this (1.2 = 10% on every side, as the
      reference loaders' get_bbox does), so fingertips and the head top are not on the edge.
    square: make both sides the longer one first; hand boxes of a pointing hand or a flat
      palm seen edge-on would otherwise be a thin sliver.
  Returns:
    (4,) float64 x, y, width, height; width or height 0 when fewer than two distinct valid
    points exist (the caller skips such records as 'zero_size_box').
  """
  points = np.asarray(points, np.float64)[np.asarray(valid) > 0]
  if points.shape[0] == 0:
    return np.zeros(4)
  low, high = points.min(0), points.max(0)
  size = high - low
  if square:
    size = np.full(2, size.max())
  centre, size = (low + high) / 2, size * margin
  return np.concatenate([centre - size / 2, size])


def clip_box(box, width, height):
  """An xywh box cut to the image [0, width) x [0, height); width/height 0 when outside it."""
  x1, y1 = max(box[0], 0.0), max(box[1], 0.0)
  x2, y2 = min(box[0] + box[2], float(width)), min(box[1] + box[3], float(height))
  return np.array([x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0)])


def _skew(v):
  return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def axis_angle_to_matrix(aa):
  """(3,) axis-angle -> (3, 3) rotation (Rodrigues; first order near the identity)."""
  aa = np.asarray(aa, np.float64)
  angle = np.linalg.norm(aa)
  if angle < 1e-12:
    return np.eye(3) + _skew(aa)
  k = _skew(aa / angle)
  return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def matrix_to_axis_angle(m):
  """(3, 3) rotation -> (3,) axis-angle with angle in [0, pi].

  Goes through the quaternion (largest-component branch), which stays accurate at angles near
  pi where the trace formula loses the axis.
  """
  m = np.asarray(m, np.float64)
  trace = np.trace(m)
  diag = np.diag(m)
  if trace >= diag.max():
    w = np.sqrt(max(1 + trace, 0.0)) / 2
    xyz = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (4 * w)
  else:
    i = int(np.argmax(diag))
    j, k = (i + 1) % 3, (i + 2) % 3
    xyz = np.zeros(3)
    xyz[i] = np.sqrt(max(1 + m[i, i] - m[j, j] - m[k, k], 0.0)) / 2
    xyz[j] = (m[j, i] + m[i, j]) / (4 * xyz[i])
    xyz[k] = (m[k, i] + m[i, k]) / (4 * xyz[i])
    w = (m[k, j] - m[j, k]) / (4 * xyz[i])
  if w < 0:
    w, xyz = -w, -xyz
  sin_half = np.linalg.norm(xyz)
  if sin_half < 1e-12:
    return 2 * xyz
  return xyz / sin_half * 2 * np.arctan2(sin_half, w)


def params_to_camera(global_orient, transl, rotation, translation, rest_root):
  """Move a world-frame SMPL/MANO fit into camera space.

  The model rotates about its root joint j0 (the rest-pose root for the fit's betas), not about
  the origin, so rotating the mesh by R and adding t needs the translation
    transl_cam = R @ (transl + j0) + t - j0
  (the reference loaders get j0 by running the model; it is exactly the rest root).

  Args:
    global_orient: (3,) world-frame root axis-angle.
    transl: (3,) world-frame translation, metres.
    rotation: (3, 3) world-to-camera R.
    translation: (3,) world-to-camera t, metres.
    rest_root: (3,) j0 in metres, or None when unknown.
  Returns:
    ((3,) camera-frame global_orient, (3,) camera-frame transl or None when rest_root is None).
  """
  rotation = np.asarray(rotation, np.float64)
  orient = matrix_to_axis_angle(rotation @ axis_angle_to_matrix(global_orient))
  if rest_root is None:
    return orient, None
  root = np.asarray(rest_root, np.float64)
  return orient, rotation @ (np.asarray(transl, np.float64) + root) + translation - root


def rest_root_of(model):
  """betas -> (3,) rest-pose root joint, for a body model with `joint_template` (J, 3) and
  `joint_shapedirs` (J, 3, S) (a `body_models.BodyModel` or anything shaped like it).

  Betas longer than S are cut, shorter ones padded with zeros, as the smplx library does.
  """
  template = np.asarray(model.joint_template, np.float64)[0]
  dirs = np.asarray(model.joint_shapedirs, np.float64)[0]

  def rest_root(betas):
    betas = np.asarray(betas, np.float64).reshape(-1)[:dirs.shape[1]]
    return template + dirs[:, :betas.shape[0]] @ betas

  return rest_root
