"""Where things are: joint layouts and the parts of the procedural meshes.

Rest-pose conventions, as in the official models:
- bodies (SMPL, SMPL-X): T-pose, metres, y up, facing +z, the model's left is +x,
  pelvis joint at the origin, soles at y = -0.945, about 1.73 m tall (neutral).
  Palms face down (-y), thumbs point forward (+z).
- MANO: a right hand, flat, fingers along -x, palm facing -y, thumb toward +z
  (the SMPL-X right hand in T-pose), with the middle-finger knuckle at the origin
  and the wrist at about x = +0.094. MANO_LEFT is its mirror (x negated).
- FLAME: head and neck facing +z, y up, the centre of the head ellipsoid at the
  origin, the neck down to y = -0.25.

The head and eyeballs are built in `head`; the torso, limbs, feet and hands here.
A part is a dict from `mesh.capsule` plus:
  name: str; kind: 'torso', 'neck', 'head', 'eyeball', 'arm', 'leg', 'foot',
  'palm', 'finger';
  skin: joint names whose bones may influence the part (distance-based skinning),
    or weights: {joint name: (N,) array} given explicitly;
  girth: how much the part takes part in the girth shape direction.
"""

import numpy as np

from body_models.synthetic import head as head_mod
from body_models.synthetic import mesh

# ---- the neutral body --------------------------------------------------------------

# Left-side and centre joints; right-side ones are mirrors. (x, y, z) in metres.
_BODY_JOINTS = {
    'pelvis': (0.0, 0.0, 0.0),
    'left_hip': (0.085, -0.08, 0.0),
    'left_knee': (0.095, -0.48, 0.012),
    'left_ankle': (0.095, -0.875, -0.035),
    'left_foot': (0.105, -0.925, 0.085),
    'spine1': (0.0, 0.105, -0.02),
    'spine2': (0.0, 0.235, -0.01),
    'spine3': (0.0, 0.295, 0.0),
    'neck': (0.0, 0.495, -0.02),
    'left_collar': (0.075, 0.41, -0.01),
    'head': (0.0, 0.57, 0.005),
    'left_shoulder': (0.185, 0.43, -0.025),
    'left_elbow': (0.445, 0.425, -0.035),
    'left_wrist': (0.695, 0.425, -0.035),
}
SOLE_Y = -0.945
HEAD_CENTRE = np.array([0.0, 0.675, 0.02])
HEAD_RADII = np.array([0.077, 0.112, 0.098])
# Eye centres and the jaw pivot relative to the head centre.
EYE_OFFSET = np.array([0.031, 0.028, 0.072])
JAW_OFFSET = np.array([0.0, -0.045, 0.015])

# Gender variants: overall height, shoulder width, hip width, girth.
_GENDER = {
    'neutral': dict(height=1.0, shoulders=1.0, hips=1.0, girth=1.0),
    'male': dict(height=1.035, shoulders=1.08, hips=0.96, girth=1.04),
    'female': dict(height=0.965, shoulders=0.93, hips=1.07, girth=0.95),
}


def _mirror_name(name):
  if name.startswith('left_'):
    return 'right_' + name[5:]
  if name.startswith('right_'):
    return 'left_' + name[6:]
  return name


def _mirror_point(p):
  return np.asarray(p, np.float64) * np.array([-1.0, 1.0, 1.0])


def _with_mirrors(d):
  """Add the right-side twin of every 'left_*' entry of a name -> point dict."""
  out = {k: np.asarray(v, np.float64) for k, v in d.items()}
  for k, v in list(out.items()):
    if k.startswith('left_'):
      out[_mirror_name(k)] = _mirror_point(v)
  return out


def _gendered(p, g):
  """Apply a gender variant to a neutral point: width scales, then height."""
  p = np.array(p, np.float64)
  # Shoulder width acts on everything lateral above the chest, hips below the waist.
  lateral = g['shoulders'] if p[1] > 0.3 else (g['hips'] if p[1] < 0.05 else 1.0)
  if abs(p[0]) > 0.06:
    p[0] = np.sign(p[0]) * (0.06 + (abs(p[0]) - 0.06) * lateral)
  return p * g['height']


# ---- hands -----------------------------------------------------------------------------

# Left hand in its local frame (u along the fingers, w toward the thumb, n out of the
# palm): knuckle position, spread angle in the palm plane (degrees, + toward the
# thumb), phalanx lengths, and (thickness, width) radii at base, knuckle, two joints
# and the tip.
_FINGERS = {
    'index': ((0.090, 0.025, 0.0), 5.0, (0.039, 0.024, 0.021), 1.0),
    'middle': ((0.094, 0.005, 0.0), 0.0, (0.044, 0.027, 0.023), 1.03),
    'ring': ((0.089, -0.014, 0.0), -5.0, (0.041, 0.026, 0.022), 0.97),
    'pinky': ((0.081, -0.031, 0.0), -11.0, (0.032, 0.020, 0.020), 0.85),
}
_FINGER_RADII = np.array([(0.0095, 0.0100), (0.0095, 0.0100), (0.0085, 0.0090),
                          (0.0075, 0.0080), (0.0068, 0.0068)])
_THUMB = dict(base=(0.020, 0.020, 0.010), angle=48.0, lift=0.15,
              lengths=(0.040, 0.033, 0.027),
              radii=np.array([(0.015, 0.017), (0.014, 0.016), (0.011, 0.012),
                              (0.0095, 0.010), (0.0085, 0.0085)]))
HAND_BUDGET = {'palm': 190, 'thumb': 126, 'index': 118, 'middle': 122, 'ring': 118,
               'pinky': 104}


def left_hand(wrist, counts):
  """A flat left hand: palm and five fingers, fingers along +x, palm facing -y.

  Args:
    wrist: (3,) wrist joint position.
    counts: vertices per part, keys as HAND_BUDGET.
  Returns:
    parts (list; each with hand_u (N,), the coordinate along the fingers from the
    wrist), joints {(finger, k): (3,)} for k = 1, 2, 3, tips {finger: (3,)}.
  """
  wrist = np.asarray(wrist, np.float64)
  u, w, n = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, -1.0, 0])

  def at(a):
    return wrist + a[0] * u + a[1] * w + a[2] * n

  parts, joints, tips = [], {}, {}
  palm = mesh.capsule([at((0.0, -0.002, 0)), at((0.045, -0.002, 0)),
                       at((0.086, -0.002, 0))],
                      [0.014, 0.016, 0.014], [0.030, 0.040, 0.043], ref=n,
                      count=counts['palm'], cap=(0.5, 0.6), power=3.0)
  palm.update(name='palm', kind='palm', girth=0.2)
  parts.append(palm)
  for f, (base, angle, lengths, scale) in _FINGERS.items():
    a = np.deg2rad(angle)
    direction = np.cos(a) * u + np.sin(a) * w
    knuckle = at(base)
    chain = [knuckle]
    for length in lengths:
      chain.append(chain[-1] + length * direction)
    radii = _FINGER_RADII * scale
    parts.append(_finger_part(f, chain, direction, radii, n, counts[f], 0.012))
    tips[f] = chain[3]
    for k in range(3):
      joints[(f, k + 1)] = chain[k]
  t = _THUMB
  a = np.deg2rad(t['angle'])
  direction = np.cos(a) * u + np.sin(a) * w + t['lift'] * n
  direction /= np.linalg.norm(direction)
  chain = [at(t['base'])]
  for length in t['lengths']:
    chain.append(chain[-1] + length * direction)
  parts.append(_finger_part('thumb', chain, direction, t['radii'], n, counts['thumb'], 0.015))
  tips['thumb'] = chain[3]
  for k in range(3):
    joints[('thumb', k + 1)] = chain[k]
  for p in parts:
    p['hand_u'] = (p['verts'] - wrist) @ u
  return parts, joints, tips


def _finger_part(name, chain, direction, radii, normal, count, overlap):
  """Capsule through knuckle, two joints and the tip; the cap ends exactly at the tip."""
  r_tip = radii[-1, 0]
  pts = [chain[0] - overlap * direction, chain[0], chain[1], chain[2],
         chain[3] - r_tip * direction]
  part = mesh.capsule(pts, radii[:, 0], radii[:, 1], ref=normal, count=count)
  part.update(name=name, kind='finger', girth=0.15)
  return part


# ---- assemblies --------------------------------------------------------------------------

BODY_BUDGET = {
    'smpl': dict(torso=1500, neck=160, head=1250, arm=420, leg=560, foot=260,
                 palm=170, thumb=95, index=85, middle=90, ring=85, pinky=75),
    'smplx': dict(torso=1700, neck=200, head=3000, eyeball=220, arm=430, leg=600,
                  foot=280, palm=260, thumb=130, index=120, middle=125, ring=120,
                  pinky=105),
}
_CENTRE_PARTS = ('torso', 'neck', 'head')


def _budget(total, weights):
  """Exact vertex counts: paired (left/right) parts get equal counts.

  weights: {part kind: relative size}; kinds not in _CENTRE_PARTS appear twice.
  """
  mult = {k: 1 if k in _CENTRE_PARTS else 2 for k in weights}
  scale = total / sum(mult[k] * v for k, v in weights.items())
  counts = {k: int(round(v * scale)) for k, v in weights.items() if mult[k] == 2}
  rest = total - 2 * sum(counts.values())
  centre = [k for k in weights if mult[k] == 1]
  for k, c in zip(centre, mesh.allocate(rest, [weights[k] for k in centre])):
    counts[k] = int(c)
  return counts


def build_body(family, gender='neutral'):
  """SMPL or SMPL-X stand-in geometry.

  Returns a dict:
    parts: list of part dicts (left parts then their mirrors follow the centre ones),
    joints: {kinematic joint name: (3,)},
    segments: {joint name: [(3,) ...]} extra bone end points for leaf joints,
    targets: {extra joint name: (3,)} anatomical spots for skeletons.EXTRA_JOINTS,
    head: (centre, radii) of the head ellipsoid.
  """
  g = _GENDER[gender]
  counts = _budget(6890 if family == 'smpl' else 10475, BODY_BUDGET[family])
  j = {k: _gendered(v, g) for k, v in _BODY_JOINTS.items()}
  hs = g['height']
  head_c = HEAD_CENTRE * hs
  head_r = HEAD_RADII * (0.5 + 0.5 * hs)
  girth = g['girth']
  sole = SOLE_Y * hs

  centre_parts = []
  # Torso: a boxy tube from the crotch to the base of the neck; (y, z, depth, width).
  prof = np.array([(-0.15, 0.0, 0.075, 0.10), (-0.09, 0.0, 0.10, 0.16),
                   (0.00, 0.005, 0.105, 0.158), (0.10, 0.005, 0.095, 0.14),
                   (0.22, 0.015, 0.105, 0.15), (0.33, 0.012, 0.105, 0.165),
                   (0.41, -0.005, 0.09, 0.17), (0.455, -0.02, 0.07, 0.13)])
  width = np.array([_gendered((w, y, 0), g)[0] / hs for y, _, _, w in prof])
  pts = np.stack([np.zeros(len(prof)), prof[:, 0], prof[:, 1]], 1) * hs
  torso = mesh.capsule(pts, prof[:, 2] * girth * hs, width * girth * hs, ref=(0, 0, 1),
                       count=counts['torso'], cap=(0.45, 0.35), power=2.6,
                       front_density=0.2)
  torso.update(name='torso', kind='torso', girth=1.0,
               skin=['pelvis', 'spine1', 'spine2', 'spine3', 'neck', 'left_hip',
                     'right_hip', 'left_collar', 'right_collar', 'left_shoulder',
                     'right_shoulder'])
  centre_parts.append(torso)
  neck = mesh.capsule(np.array([(0, 0.44, -0.03), (0, 0.63, 0.0)]) * hs, [0.05, 0.05],
                      [0.052, 0.052], ref=(0, 0, 1), count=counts['neck'])
  neck.update(name='neck', kind='neck', girth=0.5, skin=['spine3', 'neck', 'head'])
  centre_parts.append(neck)
  has_face = family == 'smplx'
  head = head_mod.head_part(counts['head'], head_c, head_r,
                            {'head': 'head', 'below': 'neck', 'jaw': 'jaw' if has_face else None})
  centre_parts.append(head)

  left = []
  if has_face:
    j['jaw'] = head_c + JAW_OFFSET * hs
    j['left_eye_smplhf'] = head_c + EYE_OFFSET * hs
    j['right_eye_smplhf'] = _mirror_point(j['left_eye_smplhf'])
    left.append(head_mod.eyeball_part(counts['eyeball'], j['left_eye_smplhf'], 'left_eye_smplhf'))

  sh, el, wr = j['left_shoulder'], j['left_elbow'], j['left_wrist']
  arm_pts = [sh + (-0.065, 0, 0), sh, 0.5 * (sh + el), el, 0.5 * (el + wr), wr]
  arm = mesh.capsule(arm_pts, np.array([0.055, 0.057, 0.048, 0.040, 0.038, 0.024]) * girth,
                     np.array([0.055, 0.055, 0.046, 0.042, 0.043, 0.032]) * girth,
                     ref=(0, 1, 0), count=counts['arm'], cap=(1.0, 0.8))
  arm.update(name='left_arm', kind='arm', girth=0.6,
             skin=['left_collar', 'left_shoulder', 'left_elbow', 'left_wrist'])
  left.append(arm)

  hip, knee, ankle = j['left_hip'], j['left_knee'], j['left_ankle']
  leg_pts = [hip + (0, 0.06, 0), hip, hip + 0.45 * (knee - hip), knee,
             knee + 0.35 * (ankle - knee), ankle]
  leg = mesh.capsule(leg_pts, np.array([0.085, 0.085, 0.075, 0.052, 0.055, 0.035]) * girth,
                     np.array([0.085, 0.085, 0.07, 0.05, 0.048, 0.032]) * girth,
                     ref=(0, 0, 1), count=counts['leg'], cap=(0.8, 0.8))
  leg.update(name='left_leg', kind='leg', girth=0.6,
             skin=['pelvis', 'left_hip', 'left_knee', 'left_ankle'])
  left.append(leg)

  fx = j['left_ankle'][0]
  # Foot along +z from heel to toes, flat sole; (z, half height, half width, x shift).
  fprof = np.array([(-0.065, 0.040, 0.032, 0.0), (0.02, 0.042, 0.040, 0.004),
                    (0.085, 0.025, 0.047, 0.008), (0.15, 0.017, 0.040, 0.01)])
  foot_pts = np.stack([fx + fprof[:, 3] * hs, sole + fprof[:, 1] * hs, fprof[:, 0] * hs], 1)
  foot = mesh.capsule(foot_pts, fprof[:, 1] * hs, fprof[:, 2] * hs, ref=(0, 1, 0),
                      count=counts['foot'], cap=(0.8, 1.0))
  foot.update(name='left_foot', kind='foot', girth=0.2, skin=['left_ankle', 'left_foot'])
  left.append(foot)
  toe_tip = foot_pts[-1] + (0, 0, 0.5 * (fprof[-1, 1] + fprof[-1, 2]) * hs)

  hand_counts = {k: counts[k] for k in HAND_BUDGET}
  hparts, hjoints, tips = left_hand(wr, hand_counts)
  if family == 'smpl':
    j['left_hand'] = wr + np.array([0.0885, 0.0, 0.0])
    for p in hparts:
      wh = head_mod.smoothstep(p['hand_u'], 0.06, 0.10)
      p['weights'] = {'left_wrist': 1 - wh, 'left_hand': wh}
  else:
    for (f, k), pos in hjoints.items():
      j[f'left_{f}{k}'] = pos
    for p in hparts:
      if p['kind'] == 'palm':
        p['skin'] = ['left_wrist'] + [f'left_{f}1' for f in ('index', 'middle', 'ring',
                                                              'pinky', 'thumb')]
      else:
        p['skin'] = ['left_wrist'] + [f'left_{p["name"]}{k}' for k in (1, 2, 3)]
  for p in hparts:
    p['name'] = 'left_' + p['name']
  left.extend(hparts)

  parts = centre_parts + left + [_mirror_part(p) for p in left]
  joints = _with_mirrors(j)
  segments = {'head': [head_c + (0, head_r[1], 0)], 'left_foot': [toe_tip]}
  if family == 'smpl':
    segments['left_hand'] = [tips['middle']]
  else:
    segments['jaw'] = [head_c + (0, -head_r[1], head_r[2] * 0.6)]
    for f in tips:
      segments[f'left_{f}3'] = [tips[f]]
  segments = {k: [np.asarray(p, np.float64) for p in v] for k, v in segments.items()}
  for k in list(segments):
    if k.startswith('left_'):
      segments[_mirror_name(k)] = [_mirror_point(p) for p in segments[k]]

  targets = {'nose': head_mod.face_spot('nose', head_c, head_r),
             'left_ear': head_mod.face_spot('left_ear', head_c, head_r)}
  if has_face:
    targets['left_eye'] = j['left_eye_smplhf'] + (0, 0, head_mod.EYE_RADIUS)
  else:
    targets['left_eye'] = head_mod.face_spot('left_eye', head_c, head_r)
  s = hs
  targets['left_big_toe'] = np.array([fx - 0.012 * s, sole + 0.01 * s, toe_tip[2] - 0.005 * s])
  targets['left_small_toe'] = np.array([fx + 0.04 * s, sole + 0.01 * s, toe_tip[2] - 0.04 * s])
  targets['left_heel'] = np.array([fx, sole + 0.01 * s, -0.105 * s])
  for f, p in tips.items():
    targets[f'left_{f}_tip'] = p
  targets = _with_mirrors(targets)
  return dict(parts=parts, joints=joints, segments=segments, targets=targets,
              head=(head_c, head_r))


def _mirror_part(p):
  out = mesh.mirror_x(p)
  out['name'] = _mirror_name(p['name'])
  if 'skin' in p:
    out['skin'] = [_mirror_name(n) for n in p['skin']]
  if 'weights' in p:
    out['weights'] = {_mirror_name(k): v for k, v in p['weights'].items()}
  if 'head_dir' in p:
    out['head_dir'] = p['head_dir'] * np.array([-1.0, 1.0, 1.0])
  return out


def build_mano():
  """Right MANO hand geometry (see the module docstring for its layout)."""
  wrist_left = np.array([-0.094, 0.0, 0.0])   # left hand whose mirror is MANO_RIGHT
  counts = dict(zip(HAND_BUDGET, mesh.allocate(778, list(HAND_BUDGET.values()))))
  parts, hjoints, tips = left_hand(wrist_left, counts)
  joints = {'wrist': wrist_left}
  for (f, k), pos in hjoints.items():
    joints[f'{f}{k}'] = pos
  for p in parts:
    if p['kind'] == 'palm':
      p['skin'] = ['wrist'] + [f'{f}1' for f in ('index', 'middle', 'ring', 'pinky', 'thumb')]
    else:
      p['skin'] = ['wrist'] + [f'{p["name"]}{k}' for k in (1, 2, 3)]
  parts = [_mirror_part(p) for p in parts]
  joints = {k: _mirror_point(v) for k, v in joints.items()}
  segments = {f'{f}3': [_mirror_point(tips[f])] for f in tips}
  targets = {f'{f}_tip': _mirror_point(tips[f]) for f in tips}
  return dict(parts=parts, joints=joints, segments=segments, targets=targets, head=None)


# FLAME: the SMPL-X head moved so that the head centre is the origin.
def build_flame(gender='neutral'):
  """FLAME head-and-neck geometry."""
  hs = _GENDER[gender]['height']
  head_c = np.zeros(3)
  head_r = HEAD_RADII * (0.5 + 0.5 * hs)
  shift = -HEAD_CENTRE
  counts = dict(head=3900, neck=423, eyeball=350)
  joints = {
      'root': (np.array(_BODY_JOINTS['neck']) + shift) * hs,
      'neck': (np.array(_BODY_JOINTS['head']) + shift) * hs,
      'jaw': head_c + JAW_OFFSET * hs,
      'left_eye': head_c + EYE_OFFSET * hs,
  }
  joints['right_eye'] = _mirror_point(joints['left_eye'])
  head = head_mod.head_part(counts['head'], head_c, head_r,
                            {'head': 'neck', 'below': 'root', 'jaw': 'jaw'})
  neck = mesh.capsule(np.array([(0, -0.25, -0.05), (0, -0.18, -0.04), (0, -0.04, -0.015)]) * hs,
                      [0.055, 0.05, 0.05], [0.062, 0.052, 0.052], ref=(0, 0, 1),
                      count=counts['neck'], cap=(0.3, 1.0))
  neck.update(name='neck', kind='neck', girth=0.5, skin=['root', 'neck'])
  eye = head_mod.eyeball_part(counts['eyeball'], joints['left_eye'], 'left_eye')
  parts = [neck, head, eye, _mirror_part(eye)]
  segments = {'neck': [head_c + (0, head_r[1], 0)],
              'jaw': [head_c + (0, -head_r[1], head_r[2] * 0.6)]}
  return dict(parts=parts, joints=joints, segments=segments, targets={},
              head=(head_c, head_r))
