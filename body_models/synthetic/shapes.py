"""Shape and expression blend shapes, and the MANO-style hand pose PCA.

A direction is a (V, 3) offset field per unit coefficient. The first ten of each
space are designed (height, girth, limb length, ...; mouth open, smile, ...); any
further ones are smooth random fields (sums of sinusoids of the rest position).
Each space is orthogonalised in order (Gram-Schmidt, so direction k keeps its
meaning minus what earlier ones explain) and scaled so that its largest vertex
offset per unit coefficient decreases with k, like a PCA basis: coefficients in
[-3, 3] keep a plausible body (at most a few centimetres per coefficient).

Per-vertex template attributes used here (from `build.template`): verts, kind
(part kind per vertex), axis (centre-line point), head_dir (unit direction in
head-normalised coordinates, zero off the head), along, direction.
"""

import numpy as np

from body_models.synthetic.head import bump, smoothstep


def _softplus(x, width):
  """Smooth max(x, 0) with a rounded corner of the given width."""
  return width * np.logaddexp(0.0, x / width)


def _is(t, *kinds):
  return np.isin(t['kind'], kinds).astype(np.float64)


def orthogonal_basis(fields, sizes):
  """Orthogonalise (V, 3) fields in order and scale them.

  Args:
    fields: list of S arrays (V, 3).
    sizes: (S,) largest vertex offset (metres) per unit coefficient.
  Returns:
    (V, 3, S) directions.
  """
  a = np.stack([f.reshape(-1) for f in fields], 1)
  # Gram-Schmidt in order is A = Q R with R the Cholesky factor of A^T A; then
  # Q = A R^-1. Two matrix products instead of a Householder QR (several times
  # faster for 400 directions), and vertices that every field leaves still (zero
  # rows of A) stay exactly still, e.g. expressions off the face. R's diagonal is
  # positive, so each direction keeps its designed sign.
  gram = a.T @ a
  lower = np.linalg.cholesky(gram + 1e-12 * np.trace(gram) / len(gram) * np.eye(len(gram)))
  q = a @ np.linalg.inv(lower).T
  q = q.reshape(fields[0].shape[0], 3, len(fields))
  largest = np.sqrt(np.sum(q * q, 1)).max(0)
  return q * (np.asarray(sizes) / largest)[None, None]


def random_fields(verts, count, rng, wavelength, mask=None):
  """`count` smooth random (V, 3) offset fields: sums of two sinusoids per axis.

  Later fields get shorter wavelengths (finer detail), down to wavelength / 3.
  mask: optional (V,) factor applied to every field (exact zeros stay zero).
  """
  fields = []
  for k in range(count):
    lam = wavelength / (1.0 + 2.0 * k / max(count, 1))
    omega = rng.standard_normal((2, 3, 3)) * (2 * np.pi / lam)   # (term, axis, xyz)
    phase = rng.uniform(0, 2 * np.pi, (2, 3))
    amp = rng.standard_normal((2, 3))
    f = np.einsum('ta,vta->va', amp, np.sin(np.einsum('taj,vj->vta', omega, verts) + phase))
    if mask is not None:
      f = f * mask[:, None]
    fields.append(f)
  return fields


def _sizes(first, count):
  """Decreasing target sizes: the `first` ones, then a tail falling like 1 / k."""
  n = len(first)
  return list(first[:count]) + [0.7 * first[-1] * n / (n + k + 1)
                                for k in range(max(0, count - n))]


# ---- bodies ---------------------------------------------------------------------------


def body_shape(t, joints, count, rng):
  """(V, 3, count) SMPL / SMPL-X shape directions; see the list in the code."""
  v = t['verts']
  x, y, z = v[:, 0], v[:, 1], v[:, 2]
  sx = np.sign(x)
  zero = np.zeros_like(x)
  girth = t['girth'][:, None] * (v - t['axis'])
  limbs = _is(t, 'arm', 'palm', 'finger') - _is(t, 'leg', 'foot')
  hip_y = joints['left_hip'][1]
  head_c = t['head_centre']
  on_head = _is(t, 'head', 'eyeball')
  fields = [
      # 0 height: stretch about the pelvis, mostly vertical.
      np.stack([0.3 * x, y, 0.3 * z], 1),
      # 1 girth: away from each part's centre line.
      girth,
      # 2 leg length: everything below the hips moves down, more the lower it is.
      np.stack([zero, -_softplus(hip_y - y, 0.03), zero], 1),
      # 3 shoulder width.
      np.stack([sx * smoothstep(np.abs(x), 0.04, 0.2) * smoothstep(y, 0.2, 0.38),
                zero, zero], 1),
      # 4 arm length: outward along the arms beyond the shoulders.
      np.stack([sx * _softplus(np.abs(x) - 0.19, 0.02) * smoothstep(y, 0.25, 0.32),
                zero, zero], 1),
      # 5 belly.
      np.stack([zero, zero, _is(t, 'torso') * _softplus(z - 0.03, 0.02) *
                np.exp(-((y - 0.05) / 0.12) ** 2)], 1),
      # 6 head size.
      on_head[:, None] * (v - head_c),
      # 7 torso length: what is above the pelvis moves up, up to the shoulders.
      np.stack([zero, _softplus(y, 0.02) - _softplus(y - 0.45, 0.02), zero], 1),
      # 8 hip width.
      np.stack([sx * smoothstep(np.abs(x), 0.02, 0.12) * (1 - smoothstep(y, -0.05, 0.12)),
                zero, zero], 1),
      # 9 arms thicker, legs thinner.
      limbs[:, None] * (v - t['axis']),
  ]
  fields = fields[:count] + random_fields(v, max(0, count - len(fields)), rng, 1.2)
  sizes = _sizes([0.03, 0.03, 0.03, 0.02, 0.025, 0.025, 0.012, 0.02, 0.015, 0.012], count)
  dirs = orthogonal_basis(fields, sizes)
  # Height keeps a fixed meaning: +1 is 3.5% taller (pure height, not RMS-scaled).
  dirs[..., 0] = fields[0] * 0.035
  return dirs


def face_mask(t):
  """(V,) 1 on the face, fading to exactly 0 behind it and off the head."""
  d = t['head_dir']
  return (_is(t, 'head') * smoothstep(d[:, 2], 0.1, 0.45) *
          (1 - smoothstep(d[:, 1], 0.6, 0.8)))


def expression(t, joints, jaw_name, count, rng):
  """(V, 3, count) expression directions; they move face vertices only."""
  d = t['head_dir']
  dx, dy = d[:, 0], d[:, 1]
  adx = np.abs(dx)
  sx = np.sign(dx)
  one = np.ones_like(dx)
  zero = np.zeros_like(dx)
  v = t['verts']
  jaw = joints[jaw_name]
  below_mouth = smoothstep(dy, -0.3, -0.5)
  rel = v - jaw
  fields = [
      # 0 mouth open: the lower face turns down about the jaw's x axis.
      below_mouth[:, None] * np.stack([zero, -rel[:, 2], rel[:, 1]], 1),
      # 1 smile: mouth corners up, out and back.
      (bump(adx, dy, 0.33, -0.45, 0.15, 0.12)[:, None] * np.stack([0.3 * sx, one, -0.4 * one], 1)),
      # 2 pucker: lips forward and together.
      (bump(dx, dy, 0.0, -0.45, 0.3, 0.15)[:, None] * np.stack([-0.5 * dx, zero, one], 1)),
      # 3 brows up.
      bump(adx, dy, 0.38, 0.42, 0.3, 0.12)[:, None] * np.stack([zero, one, zero], 1),
      # 4 frown: inner brows down and together.
      (bump(adx, dy, 0.2, 0.38, 0.15, 0.1)[:, None] * np.stack([-0.5 * sx, -one, zero], 1)),
      # 5 eyes closing: upper lids down.
      (bump(adx, dy, 0.4, 0.3, 0.16, 0.06)[:, None] * np.stack([zero, -one, 0.2 * one], 1)),
      # 6 cheeks puffed.
      bump(adx, dy, 0.5, -0.3, 0.2, 0.2)[:, None] * d,
      # 7 mouth to the side.
      bump(dx, dy, 0.0, -0.45, 0.35, 0.15)[:, None] * np.stack([one, zero, zero], 1),
      # 8 lips pressed.
      ((bump(dx, dy, 0.0, -0.52, 0.24, 0.06) - bump(dx, dy, 0.0, -0.38, 0.28, 0.06))[:, None]
       * np.stack([zero, one, zero], 1)),
      # 9 nose wrinkle.
      (bump(adx, dy, 0.12, -0.1, 0.12, 0.15)[:, None] * np.stack([zero, one, 0.3 * one], 1)),
  ]
  mask = face_mask(t)
  fields = [f * mask[:, None] for f in fields[:count]]
  fields += random_fields(v, max(0, count - len(fields)), rng, 0.15, mask)
  sizes = _sizes([0.008, 0.005, 0.005, 0.004, 0.004, 0.003, 0.004, 0.004, 0.003, 0.003],
                 count)
  return orthogonal_basis(fields, sizes)


def flame_shape(t, joints, count, rng):
  """(V, 3, count) FLAME head-shape directions."""
  v = t['verts']
  d = t['head_dir']
  dx, dy = d[:, 0], d[:, 1]
  adx = np.abs(dx)
  head = _is(t, 'head')
  eyes = _is(t, 'eyeball')
  zero = np.zeros(len(v))
  one = np.ones(len(v))
  c = t['head_centre']
  front = smoothstep(d[:, 2], 0.1, 0.45) * head
  fields = [
      v - c,                                                            # 0 head size
      np.stack([(head + eyes) * (v[:, 0] - c[0]), zero, zero], 1),      # 1 head width
      np.stack([zero, head * np.minimum(v[:, 1] - c[1], 0), zero], 1),  # 2 face length
      (front * bump(dx, dy, 0.0, -0.05, 0.12, 0.25))[:, None] * d,     # 3 nose size
      np.stack([head * v[:, 0] * smoothstep(dy, -0.2, -0.6), zero, zero], 1),  # 4 jaw width
      (front * bump(dx, dy, 0.0, 0.6, 0.5, 0.25))[:, None] * np.stack([zero, zero, one], 1),  # 5
      np.stack([np.sign(v[:, 0]) * (eyes + front * bump(adx, dy, 0.4, 0.25, 0.2, 0.15)),
                zero, zero], 1),                                        # 6 eye spacing
      _is(t, 'neck')[:, None] * (v - t['axis']),                        # 7 neck thickness
      (front * bump(adx, dy, 0.55, 0.05, 0.2, 0.15))[:, None] * d,     # 8 cheekbones
      (front * bump(dx, dy, 0.0, -0.8, 0.3, 0.15))[:, None] * np.stack([zero, -0.5 * one, one], 1),
  ]
  fields = fields[:count] + random_fields(v, max(0, count - len(fields)), rng, 0.25)
  sizes = _sizes([0.008, 0.006, 0.006, 0.005, 0.005, 0.004, 0.004, 0.004, 0.003, 0.003],
                 count)
  return orthogonal_basis(fields, sizes)


def mano_shape(t, joints, count, rng):
  """(V, 3, count) hand shape directions (right hand)."""
  v = t['verts']
  wrist = joints['wrist']
  finger = _is(t, 'finger')
  thumb = (t['name'] == 'thumb').astype(np.float64)
  palm = _is(t, 'palm')
  along = np.maximum(t['along'], 0)[:, None] * t['direction']
  zero = np.zeros(len(v))
  sign_index = np.select([t['name'] == 'index', t['name'] == 'pinky'], [1.0, -1.0], 0.0)
  fields = [
      v - wrist,                                                          # 0 hand size
      (finger - thumb)[:, None] * along,                                  # 1 finger length
      np.stack([zero, zero, v[:, 2] - wrist[2]], 1) * (palm + finger)[:, None],  # 2 width
      finger[:, None] * (v - t['axis']),                                  # 3 finger girth
      thumb[:, None] * along,                                             # 4 thumb length
      np.stack([zero, palm * (v[:, 1] - wrist[1]), zero], 1),             # 5 palm thickness
      np.stack([(palm * (v[:, 0] - wrist[0]) + finger * (joints['middle1'][0] - wrist[0])),
                zero, zero], 1),                                          # 6 palm length
      sign_index[:, None] * along,                                        # 7 index vs pinky
      palm[:, None] * (v - t['axis']),                                    # 8 palm girth
  ]
  fields = fields[:count] + random_fields(v, max(0, count - len(fields)), rng, 0.15)
  sizes = _sizes([0.006, 0.005, 0.004, 0.0025, 0.004, 0.003, 0.004, 0.003, 0.002, 0.002],
                 count)
  return orthogonal_basis(fields, sizes)


# ---- hand pose PCA ----------------------------------------------------------------------

# Joint order of a hand pose: index, middle, pinky, ring, thumb; three joints each.
_HAND_FINGERS = ('index', 'middle', 'pinky', 'ring', 'thumb')
# Right hand (fingers along -x, palm -y, thumb +z): flexion turns a finger about +z,
# the thumb about an axis across its own direction; spreading turns about y.
_FLEX = {'index': (0, 0, 1.0), 'middle': (0, 0, 1.0), 'pinky': (0, 0, 1.0),
         'ring': (0, 0, 1.0), 'thumb': (0.74, 0.0, 0.67)}


def _hand_vector(per_joint):
  """{(finger, k): (3,) axis-angle} -> (45,) in the smplx hand-pose layout."""
  out = np.zeros((5, 3, 3))
  for (f, k), aa in per_joint.items():
    out[_HAND_FINGERS.index(f), k - 1] = aa
  return out.reshape(45)


def _flex(f, amount):
  return amount * np.asarray(_FLEX[f])


def hand_pca(rng):
  """Right-hand PCA basis and mean, as MANO stores them.

  Returns:
    components (45, 45) orthonormal rows, the first ones coordinated motions
      (fist, spread, claw, thumb opposition, ...), then random completions;
    mean (45,) a relaxed, slightly curled hand.
  """
  four = ('index', 'middle', 'pinky', 'ring')
  spread = {'index': 1.0, 'middle': 0.2, 'ring': -0.6, 'pinky': -1.0}
  gradient = {'index': -1.0, 'middle': -0.3, 'ring': 0.4, 'pinky': 1.0}
  designed = [
      # fist
      {**{(f, k): _flex(f, a) for f in four for k, a in ((1, 1.0), (2, 1.1), (3, 0.7))},
       ('thumb', 1): _flex('thumb', 0.3), ('thumb', 2): _flex('thumb', 0.6),
       ('thumb', 3): _flex('thumb', 0.5)},
      # spread
      {**{(f, 1): np.array([0, spread[f], 0]) for f in four},
       ('thumb', 1): np.array([0, 0.5, 0])},
      # claw: knuckles straight, finger joints bent, and the reverse
      {(f, k): _flex(f, a) for f in four for k, a in ((1, -0.8), (2, 1.0), (3, 0.8))},
      # thumb opposition
      {('thumb', 1): _flex('thumb', 1.0) + np.array([0.4, 0, 0]),
       ('thumb', 2): _flex('thumb', 0.5), ('pinky', 1): _flex('pinky', 0.3)},
      # curl graded from index to pinky
      {(f, k): _flex(f, gradient[f]) for f in four for k in (1, 2, 3)},
      # pointing: index straight, the others curled
      {(f, k): _flex(f, -1.0 if f == 'index' else 0.5) for f in four for k in (1, 2, 3)},
      # pinch: index and thumb
      {('index', 1): _flex('index', 0.6), ('index', 2): _flex('index', 0.6),
       ('thumb', 1): _flex('thumb', 0.6), ('thumb', 2): _flex('thumb', 0.4)},
  ]
  cols = [_hand_vector(d) for d in designed]
  cols += list(rng.standard_normal((45 - len(cols), 45)))
  q, r = np.linalg.qr(np.stack(cols, 1))
  q *= np.where(np.diag(r) < 0, -1.0, 1.0)[None]
  components = q.T.copy()
  curl = {'index': 0.0, 'middle': 0.05, 'ring': 0.1, 'pinky': 0.15}
  mean = _hand_vector({
      **{(f, k): _flex(f, a + curl[f]) for f in four
         for k, a in ((1, 0.15), (2, 0.3), (3, 0.2))},
      **{(f, 1): np.array([0, 0.08 * spread[f], 0]) for f in four},
      ('thumb', 1): _flex('thumb', 0.1) + np.array([0, 0.1, 0]),
      ('thumb', 2): _flex('thumb', 0.2), ('thumb', 3): _flex('thumb', 0.15)})
  return components, mean


def mirror_hand_pose(x):
  """Right <-> left hand pose (..., 45): mirroring through x = 0 negates y and z."""
  x = np.asarray(x)
  flip = np.tile(np.array([1.0, -1.0, -1.0]), 15)
  return x * flip
