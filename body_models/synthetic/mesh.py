"""Triangle meshes made of rings: tubes, capsules and ellipsoids with exact vertex counts.

Every part of a stand-in model (torso, a finger, the head, an eyeball) is one closed
surface: a start pole, R rings of vertices around a centre line, an end pole. Rings
may hold different numbers of vertices; neighbouring rings are stitched by a zipper
that walks both rings by their angle parameter. So any vertex budget is reachable
exactly, and a part with N vertices always has 2N - 4 triangles (Euler: closed, genus 0).

Conventions: a ring vertex k of n has parameter t = k / n in [0, 1); its angle
phi(t) is measured from the ring's first axis e1 toward e2, and (e1, e2, tangent)
is right handed, so triangles listed as below face outward.
"""

import numpy as np


def allocate(total, weights, minimum=0):
  """Split the integer `total` over parts in proportion to `weights`.

  Largest-remainder rounding, then every part gets at least `minimum`.
  Args:
    total: int.
    weights: (P,) non-negative floats.
  Returns:
    (P,) int64 summing exactly to `total`.
  """
  weights = np.asarray(weights, np.float64)
  p = len(weights)
  if total < minimum * p:
    raise ValueError(f'cannot split {total} into {p} parts of at least {minimum}')
  spare = total - minimum * p
  ideal = spare * weights / weights.sum()
  counts = np.floor(ideal).astype(np.int64)
  short = spare - counts.sum()
  # Stable order so that equal remainders are broken by position: deterministic.
  order = np.argsort(-(ideal - counts), kind='stable')
  counts[order[:short]] += 1
  return counts + minimum


def warp_angle(t, front_density=0.0):
  """Ring parameter t in [0, 1) -> angle phi in [0, 2 pi).

  front_density in [0, 1) packs vertices toward phi = 0 (the e1 side): the
  density there is 1 / (1 - front_density) times the uniform one. The map is odd
  about t = 0.5, so t -> 1 - t mirrors phi -> -phi and mirror symmetry survives.
  """
  return 2 * np.pi * t - front_density * np.sin(2 * np.pi * t)


def ring_faces(counts):
  """Triangles of a closed surface: start pole, rings of `counts` vertices, end pole.

  Vertex numbering: 0 is the start pole, ring r occupies
  1 + sum(counts[:r]) ... , the last vertex is the end pole.
  Args:
    counts: (R,) ints >= 3.
  Returns:
    (2 * sum(counts), 3) int64 triangles, outward facing.
  """
  counts = np.asarray(counts, np.int64)
  starts = 1 + np.concatenate([[0], np.cumsum(counts)[:-1]])
  end_pole = 1 + counts.sum()
  tris = []
  n0 = counts[0]
  k = np.arange(n0)
  tris.append(np.stack([np.zeros(n0, np.int64), starts[0] + (k + 1) % n0, starts[0] + k], 1))
  for r in range(len(counts) - 1):
    tris.append(_zip_rings(starts[r], counts[r], starts[r + 1], counts[r + 1]))
  nl = counts[-1]
  k = np.arange(nl)
  tris.append(np.stack([np.full(nl, end_pole), starts[-1] + k, starts[-1] + (k + 1) % nl], 1))
  return np.concatenate(tris, 0)


def _zip_rings(oa, n, ob, m):
  """Stitch ring A (n vertices from index oa) to the next ring B (m from ob).

  Both rings start at parameter 0. Each step advances A or B, whichever's next
  vertex has the smaller parameter, emitting one triangle: n + m in all.
  """
  steps_t = np.concatenate([np.arange(1, n + 1) / n, np.arange(1, m + 1) / m])
  is_a = np.concatenate([np.ones(n, bool), np.zeros(m, bool)])
  order = np.lexsort((~is_a, steps_t))    # by parameter, A first on ties
  is_a = is_a[order]
  a = np.concatenate([[0], np.cumsum(is_a)[:-1]])     # A index before each step
  b = np.concatenate([[0], np.cumsum(~is_a)[:-1]])
  va, va1 = oa + a % n, oa + (a + 1) % n
  vb, vb1 = ob + b % m, ob + (b + 1) % m
  second = np.where(is_a, va1, vb1)
  return np.stack([va, second, vb], 1)


def _polyline(points):
  """Cumulative arc length of a (P, 3) polyline: (P,)."""
  seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
  return np.concatenate([[0.0], np.cumsum(seg)])


def _interp_rows(s, knots, values):
  """Piecewise-linear interpolation of (P, C) `values` at (S,) positions, clamped."""
  return np.stack([np.interp(s, knots, values[:, c]) for c in range(values.shape[1])], 1)


def capsule(points, ra, rb, ref, count, *, cap=(1.0, 1.0), power=2.0,
            front_density=0.0):
  """A closed tube around a polyline with rounded (half-ellipsoid) end caps.

  Args:
    points: (P, 3) centre line, P >= 2; the surface extends past both ends by
      cap[i] times the mean end radius.
    ra, rb: (P,) half-widths of the cross-section along e1 and e2 at each point.
    ref: (3,) direction that e1 follows (projected off the tangent).
    count: exact number of vertices of the part.
    cap: cap lengths in units of the end radius; 0 gives a flat cap.
    power: superellipse exponent of the cross-section (2 = ellipse, more = boxier).
    front_density: see `warp_angle`.
  Returns a dict:
    verts (count, 3), faces (2 count - 4, 3) local indices,
    axis (count, 3) the centre-line point of each vertex's ring (poles: themselves),
    along (count,) arc-length position of each vertex's ring from the first point,
    phi (count,) ring angle (poles: 0).
  """
  points = np.asarray(points, np.float64)
  ra = np.asarray(ra, np.float64)
  rb = np.asarray(rb, np.float64)
  knots = _polyline(points)
  length = knots[-1]
  c0 = cap[0] * 0.5 * (ra[0] + rb[0])
  c1 = cap[1] * 0.5 * (ra[-1] + rb[-1])

  # Fine samples of the meridian profile (position, mean radius incl. the cap).
  fine = np.linspace(-c0, length + c1, 1200)
  rmean = np.interp(fine, knots, 0.5 * (ra + rb)) * _cap_profile(fine, length, c0, c1)
  arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(fine), np.diff(rmean)))])
  perim = 2 * np.pi * rmean
  area = np.sum(0.5 * (perim[1:] + perim[:-1]) * np.diff(arc))
  spacing = np.sqrt(area / count)
  n_rings = int(np.clip(round(arc[-1] / spacing) - 1, 2, (count - 2) // 3))

  # Rings at equal arc length along the profile, the poles at its two ends.
  ring_arc = np.linspace(0, arc[-1], n_rings + 2)[1:-1]
  s = np.interp(ring_arc, arc, fine)
  prof = _cap_profile(s, length, c0, c1)
  a = np.interp(s, knots, ra) * prof
  b = np.interp(s, knots, rb) * prof
  counts = allocate(count - 2, np.sqrt(0.5 * (a * a + b * b)), minimum=3)

  centres = _centre(s, points, knots)
  # Tangent from a wide central difference: smooth frames across polyline bends.
  h = 0.25 * (np.interp(s, knots, 0.5 * (ra + rb)) + 1e-3)
  tang = _centre(s + h, points, knots) - _centre(s - h, points, knots)
  tang /= np.linalg.norm(tang, axis=1, keepdims=True)
  ref = np.asarray(ref, np.float64)
  e1 = ref[None] - (tang @ ref)[:, None] * tang
  e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
  e2 = np.cross(tang, e1)

  ring = np.repeat(np.arange(n_rings), counts)
  t = np.concatenate([np.arange(n) / n for n in counts])
  phi = warp_angle(t, front_density)
  c, si = np.cos(phi), np.sin(phi)
  ex = 2.0 / power
  g1 = np.sign(c) * np.abs(c) ** ex
  g2 = np.sign(si) * np.abs(si) ** ex
  ring_verts = (centres[ring] + (a[ring] * g1)[:, None] * e1[ring] +
                (b[ring] * g2)[:, None] * e2[ring])
  start = _centre(np.array([-c0]), points, knots)
  end = _centre(np.array([length + c1]), points, knots)
  verts = np.concatenate([start, ring_verts, end], 0)
  axis = np.concatenate([start, centres[ring], end], 0)
  along = np.concatenate([[-c0], s[ring], [length + c1]])
  return dict(verts=verts, faces=ring_faces(counts), axis=axis, along=along,
              phi=np.concatenate([[0.0], phi, [0.0]]),
              ring=np.concatenate([[-1], ring, [n_rings]]))


def _cap_profile(s, length, c0, c1):
  """Radius factor along the tube: 1 in the middle, a quarter ellipse over each cap."""
  f = np.ones_like(s)
  if c0 > 0:
    lo = s < 0
    f[lo] = np.sqrt(np.clip(1 - (s[lo] / c0) ** 2, 0, 1))
  if c1 > 0:
    hi = s > length
    f[hi] = np.sqrt(np.clip(1 - ((s[hi] - length) / c1) ** 2, 0, 1))
  return f


def _centre(s, points, knots):
  """Centre-line point at arc length s (S,), extrapolated straight past the ends."""
  inner = _interp_rows(np.clip(s, 0, knots[-1]), knots, points)
  t0 = points[1] - points[0]
  t1 = points[-1] - points[-2]
  t0 /= np.linalg.norm(t0)
  t1 /= np.linalg.norm(t1)
  inner += np.minimum(s, 0)[:, None] * t0 + np.maximum(s - knots[-1], 0)[:, None] * t1
  return inner


def mirror_x(part):
  """Mirror a part through the x = 0 plane; triangles are re-wound to face outward."""
  out = dict(part)
  flip = np.array([-1.0, 1.0, 1.0])
  out['verts'] = part['verts'] * flip
  out['axis'] = part['axis'] * flip
  out['faces'] = part['faces'][:, ::-1].copy()
  return out


def signed_volume(verts, faces):
  """Volume enclosed by a closed triangle mesh; positive when faces point outward."""
  a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
  return np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0


def closest_on_triangles(points, verts, faces, candidates=8):
  """Barycentric embedding of points onto the nearest of a set of triangles.

  Args:
    points: (N, 3).
    verts: (V, 3); faces: (F, 3) the triangles to search (global vertex indices).
    candidates: how many triangles (nearest by centroid) get the exact test.
  Returns:
    face (N,) int64 row of `faces`; bary (N, 3) non-negative, summing to 1.
  The point is projected on the triangle's plane; a projection outside the
  triangle is clamped to it (good enough for points near a fine mesh).
  """
  points = np.asarray(points, np.float64)
  tri = verts[faces]                                   # (F, 3, 3)
  cent = tri.mean(1)
  d2 = (np.sum(points ** 2, 1)[:, None] - 2 * points @ cent.T + np.sum(cent ** 2, 1)[None])
  k = min(candidates, len(faces))
  near = np.argpartition(d2, k - 1, axis=1)[:, :k]    # (N, k)
  t = tri[near]                                        # (N, k, 3, 3)
  e0 = t[..., 1, :] - t[..., 0, :]
  e1 = t[..., 2, :] - t[..., 0, :]
  rel = points[:, None] - t[..., 0, :]
  d00 = np.sum(e0 * e0, -1)
  d01 = np.sum(e0 * e1, -1)
  d11 = np.sum(e1 * e1, -1)
  r0 = np.sum(rel * e0, -1)
  r1 = np.sum(rel * e1, -1)
  den = d00 * d11 - d01 * d01
  v = (d11 * r0 - d01 * r1) / den
  w = (d00 * r1 - d01 * r0) / den
  bary = np.clip(np.stack([1 - v - w, v, w], -1), 0, None)
  bary /= bary.sum(-1, keepdims=True)
  proj = np.einsum('nki,nkid->nkd', bary, t)
  best = np.argmin(np.sum((proj - points[:, None]) ** 2, -1), 1)
  rows = np.arange(len(points))
  return near[rows, best].astype(np.int64), bary[rows, best]
