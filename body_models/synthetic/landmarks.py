"""Face landmark embeddings (iBUG-68 layout) on the procedural head.

Landmarks are given as (face index, barycentric coordinates) on the mesh, like
the SMPL-X `lmk_*` arrays and FLAME's embedding files. Their spots are written in
head-normalised coordinates (x, y) on the front of the head (x to the model's
left, y up, both in units of the head radii); `head.head_point` lifts them
onto the surface, and the nearest head triangle gets them.
"""

import numpy as np

from body_models.synthetic import head, mesh

# iBUG points 18..68 (1-based): brows 18-27, nose 28-36, eyes 37-48, mouth 49-68.
# The subject's right (iBUG's first side) is -x.
_BROWS = [(-0.62, 0.40), (-0.52, 0.45), (-0.40, 0.47), (-0.28, 0.46), (-0.15, 0.43)]
_RIGHT_EYE = [(-0.58, 0.25), (-0.47, 0.30), (-0.33, 0.30), (-0.22, 0.25), (-0.33, 0.21),
              (-0.47, 0.21)]
STATIC = np.array(
    _BROWS + [(-x, y) for x, y in reversed(_BROWS)]                       # 18-27
    + [(0.0, 0.27), (0.0, 0.14), (0.0, 0.01), (0.0, -0.12)]               # 28-31 bridge
    + [(-0.2, -0.24), (-0.1, -0.25), (0.0, -0.26), (0.1, -0.25), (0.2, -0.24)]  # 32-36
    + _RIGHT_EYE                                                          # 37-42
    + [(0.22, 0.25), (0.33, 0.30), (0.47, 0.30), (0.58, 0.25), (0.47, 0.21),
       (0.33, 0.21)]                                                      # 43-48
    + [(-0.33, -0.45), (-0.21, -0.39), (-0.08, -0.36), (0.0, -0.37), (0.08, -0.36),
       (0.21, -0.39), (0.33, -0.45), (0.21, -0.52), (0.08, -0.55), (0.0, -0.56),
       (-0.08, -0.55), (-0.21, -0.52)]                                    # 49-60 outer lip
    + [(-0.28, -0.45), (-0.1, -0.43), (0.0, -0.43), (0.1, -0.43), (0.28, -0.45),
       (0.1, -0.47), (0.0, -0.47), (-0.1, -0.47)])                       # 61-68 inner lip
NUM_YAW_ROWS = 79   # smplx looks rows up by neck yaw in whole degrees, -39..39


def _lift(xy, centre, radii):
  """(N, 2) front-of-head coordinates -> (N, 3) surface points."""
  xy = np.asarray(xy, np.float64)
  z = np.sqrt(np.clip(1 - np.sum(xy ** 2, 1), 0, 1))
  d = np.concatenate([xy, z[:, None]], 1)
  return head.head_point(d / np.linalg.norm(d, axis=1, keepdims=True), centre, radii)


def contour_spots(yaw_deg, centre, radii):
  """(17, 3) jaw-line points from the subject's right ear via the chin to the left.

  yaw_deg: rotation of the head about +y (positive turns the face toward +x). The
  camera then sees the face from further round on the -x side, so the visible
  jaw line (and these points) slide the other way round the head.
  """
  phi = np.deg2rad(np.linspace(-80.0, 80.0, 17) - 0.8 * yaw_deg)
  t = np.minimum(np.abs(phi) / np.deg2rad(80.0), 1.0)
  dy = -0.85 + 0.75 * t ** 1.5
  c = np.sqrt(1 - dy ** 2)
  d = np.stack([np.sin(phi) * c, dy, np.cos(phi) * c], 1)
  return head.head_point(d, centre, radii)


def yaw_of_row(row):
  """Head yaw in degrees (about +y) that the smplx lookup maps to `row`.

  smplx takes y = round(-yaw) clamped to [-39, 39]: rows 0..39 hold y = 0..39,
  rows 40..78 hold y = -1..-39.
  """
  y = row if row < 40 else 39 - row
  return -float(y)


def embed(verts, faces, head_faces, centre, radii):
  """All landmark embeddings of a head.

  Args:
    verts (V, 3), faces (F, 3); head_faces (F,) bool, the triangles to land on.
    centre, radii: the head ellipsoid of `head.head_point`.
  Returns dict:
    lmk_faces_idx (51,) int64, lmk_bary_coords (51, 3),
    dynamic_lmk_faces_idx (79, 17) int64, dynamic_lmk_bary_coords (79, 17, 3).
  """
  rows = np.flatnonzero(head_faces)
  f, b = mesh.closest_on_triangles(_lift(STATIC, centre, radii), verts, faces[rows])
  spots = np.concatenate([contour_spots(yaw_of_row(r), centre, radii)
                          for r in range(NUM_YAW_ROWS)], 0)
  df, db = mesh.closest_on_triangles(spots, verts, faces[rows])
  return dict(lmk_faces_idx=rows[f], lmk_bary_coords=b,
              dynamic_lmk_faces_idx=rows[df].reshape(NUM_YAW_ROWS, 17),
              dynamic_lmk_bary_coords=db.reshape(NUM_YAW_ROWS, 17, 3))
