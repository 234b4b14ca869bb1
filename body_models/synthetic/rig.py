"""The rig of a stand-in model: skinning weights, joint regressor, pose correctives.

All functions are pure numpy on the assembled mesh (V vertices) and the designed
joints (J). Joint names index into the family's kinematic joint list.
"""

import numpy as np

MAX_INFLUENCES = 4

# Width of the blend between neighbouring bones, per part kind (metres): about the
# part's radius, so a joint blends over a stretch comparable to the limb's thickness.
BLEND_WIDTH = {'torso': 0.05, 'neck': 0.03, 'arm': 0.04, 'leg': 0.05, 'foot': 0.03,
               'palm': 0.015, 'finger': 0.008}


def assemble(parts):
  """Concatenate parts into one mesh.

  Returns:
    verts (V, 3), faces (F, 3) int64, part_of (V,) int64 index into `parts`,
    starts (P + 1,) the first vertex of each part (and V).
  """
  sizes = [len(p['verts']) for p in parts]
  starts = np.concatenate([[0], np.cumsum(sizes)])
  verts = np.concatenate([p['verts'] for p in parts], 0)
  faces = np.concatenate([p['faces'] + starts[i] for i, p in enumerate(parts)], 0)
  part_of = np.repeat(np.arange(len(parts)), sizes)
  return verts, faces.astype(np.int64), part_of, starts


def _segment_distance(x, a, b):
  """Distances of points x (N, 3) to segments a->b (S, 3): (N, S)."""
  ab = b - a
  len2 = np.maximum(np.sum(ab * ab, 1), 1e-18)
  t = np.clip(((x[:, None, :] - a[None]) * ab[None]).sum(-1) / len2, 0, 1)
  closest = a[None] + t[..., None] * ab[None]
  return np.linalg.norm(x[:, None, :] - closest, axis=-1)


def bones(joints, parents, extra):
  """Segments that stand for each joint's bone.

  A joint's bone runs from it to each of its children, plus any `extra` end points
  (for leaves: fingertip, toe tip, top of the head). A joint with neither is a point.
  Args:
    joints: (J, 3); parents: length J; extra: {joint index: [(3,) ...]}.
  Returns:
    a (S, 3), b (S, 3) segment ends, owner (S,) joint of each segment.
  """
  a, b, owner = [], [], []
  for j in range(len(parents)):
    ends = [joints[c] for c in range(len(parents)) if parents[c] == j]
    ends += list(extra.get(j, []))
    if not ends:
      ends = [joints[j]]
    for e in ends:
      a.append(joints[j])
      b.append(e)
      owner.append(j)
  return np.array(a), np.array(b), np.array(owner)


def skinning_weights(parts, starts, num_vertices, name_to_index, joints, parents, extra):
  """(V, J) blend weights: rows sum to 1, at most MAX_INFLUENCES nonzeros.

  Parts with explicit 'weights' use them. Otherwise each vertex weighs the bones
  of the part's 'skin' joints by exp(-(d / width)^2) of its distance d to each
  bone, so that at a joint (equidistant from both bones) it blends half and half
  and a limb's thickness away it belongs to one bone.
  """
  num_joints = len(parents)
  seg_a, seg_b, owner = bones(joints, parents, extra)
  w = np.zeros((num_vertices, num_joints))
  for i, p in enumerate(parts):
    rows = slice(starts[i], starts[i + 1])
    if 'weights' in p:
      for name, value in p['weights'].items():
        w[rows, name_to_index[name]] += value
      continue
    cand = [name_to_index[n] for n in p['skin']]
    sel = np.isin(owner, cand)
    d = _segment_distance(p['verts'], seg_a[sel], seg_b[sel])
    per_joint = np.full((len(p['verts']), num_joints), np.inf)
    for s, j in enumerate(owner[sel]):
      per_joint[:, j] = np.minimum(per_joint[:, j], d[:, s])
    width = BLEND_WIDTH[p['kind']]
    d2 = per_joint ** 2
    w[rows] = np.exp(-(d2 - d2.min(1, keepdims=True)) / width ** 2)
  return limit_influences(w, MAX_INFLUENCES)


def limit_influences(w, k):
  """Keep the k largest weights of each row, minus the (k+1)-th, renormalised.

  Subtracting the first dropped weight keeps the result continuous where the
  ranking of two small influences swaps, so the skinning stays smooth.
  """
  w = np.maximum(w, 0)
  order = np.argsort(-w, axis=1, kind='stable')
  ranked = np.take_along_axis(w, order, 1)
  floor = ranked[:, k:k + 1] if w.shape[1] > k else np.zeros((len(w), 1))
  kept = np.maximum(ranked[:, :k] - floor, 0)
  kept /= kept.sum(1, keepdims=True)
  out = np.zeros_like(w)
  np.put_along_axis(out, order[:, :k], kept, 1)
  return out


def _maxent_weights(x, target, scale):
  """Non-negative weights over points x (K, 3) whose mean is `target` (3,).

  The maximum-entropy solution relative to a Gaussian prior around the target:
  p_i ~ exp(-|x_i - t|^2 / scale^2 + a . (x_i - t)), with `a` found by Newton's
  method on the convex dual. Returns (K,) summing to 1, or None when the target is
  not inside the points' convex hull (Newton does not converge).
  """
  rel = x - target
  log_prior = -np.sum(rel * rel, 1) / scale ** 2
  a = np.zeros(3)

  def objective(a):
    z = log_prior + rel @ a
    m = z.max()
    return m + np.log(np.exp(z - m).sum())

  f = objective(a)
  for _ in range(100):
    z = log_prior + rel @ a
    p = np.exp(z - z.max())
    p /= p.sum()
    g = p @ rel
    if np.linalg.norm(g) < 1e-10:
      return p
    h = (rel * p[:, None]).T @ rel - np.outer(g, g)
    step = -np.linalg.solve(h + 1e-12 * np.eye(3), g)
    size = 1.0
    while size > 1e-8:
      f_new = objective(a + size * step)
      if f_new <= f + 1e-4 * size * (g @ step):
        break
      size *= 0.5
    if size <= 1e-8:
      return None
    a = a + size * step
    f = f_new
  return None


def joint_regressor(verts, weights, joints, parents):
  """(J, V) regressor: non-negative sparse rows summing to 1, exact on the template.

  Each joint is the weighted mean of the vertices nearest to it, the weights from
  `_maxent_weights`. The vertices are taken first among those that move with the
  joint (skinning weight > 0.02), then among those that move with it or its
  parent, then among all; within a pool the neighbourhood grows until it
  surrounds the joint.
  """
  num_joints = len(joints)
  reg = np.zeros((num_joints, len(verts)))
  for j in range(num_joints):
    own = weights[:, j] > 0.02
    family = own | (weights[:, parents[j]] > 0.02) if parents[j] >= 0 else own
    found = None
    for pool, sizes in ((own, (24, 48, 96)), (family, (24, 48, 96, 192)),
                        (np.ones(len(verts), bool), (48, 96, 192, 384, 768, 1536))):
      pool = np.flatnonzero(pool)
      d = np.linalg.norm(verts[pool] - joints[j], axis=1)
      order = np.argsort(d, kind='stable')
      for k in sizes:
        near = order[:k]
        p = _maxent_weights(verts[pool[near]], joints[j], max(np.median(d[near]), 1e-3))
        if p is not None:
          found = (pool[near], p)
          break
        if k >= len(pool):
          break
      if found is not None:
        break
    if found is None:
      raise RuntimeError(f'joint {j} lies outside the mesh; cannot regress it')
    idx, p = found
    # Drop negligible weights; the mean moves by far less than a micrometre.
    keep = p > 1e-6
    reg[j, idx[keep]] = p[keep] / p[keep].sum()
  return reg


def pose_correctives(verts, joints, parents, rng, amplitude=0.3):
  """(V, 3, 9 (J - 1)) pose blend shapes: smooth, small, concentrated at joints.

  For joint k and each of its 9 rotation-matrix features c, the offset field is
  falloff(|v - J_k| / r_k) * B_kc (v - J_k) / r_k, with B_kc a random 3x3 matrix and
  r_k about a third of the bone to the parent. The falloff 1 / (1 + s^2)^2 is never zero, so
  the array is dense (as learned correctives are), but it fades as s^-3 away from
  the joint; a unit feature moves vertices by at most ~amplitude * r_k / 3
  (millimetres at the fingers, about a centimetre at hips and shoulders).
  """
  num_joints = len(parents)
  out = np.empty((len(verts), 3, 9 * (num_joints - 1)))
  for k in range(1, num_joints):
    bone = np.linalg.norm(joints[k] - joints[parents[k]])
    r = float(np.clip(0.35 * bone, 0.006, 0.08))
    rel = (verts - joints[k]) / r
    fall = 1.0 / (1.0 + np.sum(rel * rel, 1)) ** 2
    mats = rng.standard_normal((9, 3, 3)) / np.sqrt(3.0)
    field = np.einsum('cij,vj->vic', mats, rel)          # (V, 3, 9)
    out[:, :, 9 * (k - 1):9 * k] = (amplitude * r) * fall[:, None, None] * field
  return out
