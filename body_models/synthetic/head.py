"""The procedural head: skull, face features, eyeballs.

The surface is a function of direction: an ellipsoid (centre, radii) whose radius
is modulated by smooth bumps for the nose, eye sockets, brows, cheeks, lips, chin
and ears (`head_point`). The same function places the mesh vertices, the named
face spots used for extra joints, and the landmark spots, so they all agree.
Head-normalised coordinates: x to the model's left, y up, z to the front, in
units of the head radii.
"""

import numpy as np

from body_models.synthetic import mesh

EYE_RADIUS = 0.0115


def smoothstep(x, lo, hi):
  """0 below lo, 1 above hi (or reversed when lo > hi), C1 in between."""
  t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
  return t * t * (3 - 2 * t)


def bump(dx, dy, x0, y0, wx, wy):
  return np.exp(-((dx - x0) / wx) ** 2 - ((dy - y0) / wy) ** 2)


def head_point(d, centre, radii):
  """The face and skull surface as a function of direction.

  Args:
    d: (N, 3) unit directions in head-normalised coordinates (x left, y up, z front).
    centre, radii: (3,) the head ellipsoid.
  Returns:
    (N, 3) surface points: an ellipsoid narrowed toward the chin, with a nose, eye
    sockets, brows, cheeks, lips, chin and ears as smooth radial bumps.
  """
  dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
  front = smoothstep(dz, 0.25, 0.7)
  adx = np.abs(dx)
  # Nose: a ridge from the bridge (dy 0.22) growing to the tip (dy -0.14).
  grow = np.clip((0.22 - dy) / 0.36, 0, 1)
  nose_y = np.where(dy < -0.14, np.exp(-((dy + 0.14) / 0.06) ** 2),
                    np.where(dy > 0.22, np.exp(-((dy - 0.22) / 0.08) ** 2), 1.0))
  nose = (0.03 + 0.15 * grow) * nose_y * np.exp(-(dx / (0.08 + 0.05 * grow)) ** 2)
  rho = (1.0 + front * (
      nose + 0.05 * bump(adx, dy, 0.12, -0.2, 0.06, 0.05)          # nostril wings
      + 0.07 * bump(dx, dy, 0.0, -0.5, 0.45, 0.3)                  # muzzle: flatter face
      - 0.07 * bump(adx, dy, 0.40, 0.25, 0.17, 0.11)               # eye sockets
      + 0.035 * bump(adx, dy, 0.38, 0.42, 0.25, 0.07)              # brows
      + 0.03 * bump(adx, dy, 0.50, -0.10, 0.2, 0.2)                # cheeks
      + 0.06 * bump(dx, dy, 0.0, -0.38, 0.28, 0.06)                # upper lip
      + 0.055 * bump(dx, dy, 0.0, -0.52, 0.24, 0.06)               # lower lip
      - 0.03 * bump(dx, dy, 0.0, -0.45, 0.30, 0.025)               # mouth line
      + 0.06 * bump(dx, dy, 0.0, -0.78, 0.30, 0.12))               # chin
         + 0.18 * smoothstep(adx, 0.7, 0.95) * bump(dy, dz, 0.05, -0.12, 0.22, 0.12))
  # The lower face is narrower than the skull.
  taper = 1.0 - 0.2 * smoothstep(dy, 0.0, -1.0)
  p = d * rho[:, None]
  p[:, 0] *= taper
  return centre + radii * p


def _unit(v):
  v = np.asarray(v, np.float64)
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def face_spot(name, centre, radii):
  """Surface point of a named face feature: 'nose', 'left_eye', 'left_ear', ..."""
  dirs = {'nose': (0.0, -0.14, 0.99), 'left_eye': (0.40, 0.25, 0.88),
          'left_ear': (1.0, 0.05, -0.12)}
  key = 'left_' + name[6:] if name.startswith('right_') else name
  d = _unit(dirs[key])
  if name.startswith('right_'):
    d = d * np.array([-1.0, 1.0, 1.0])
  return head_point(d[None], centre, radii)[0]


def head_part(count, centre, radii, roles):
  """The head (skull and face) as one closed surface.

  roles: joint names {'head', 'below', 'jaw' (or None)}: the head joint, the
  joint under it that the back of the skull base blends into, the jaw.
  """
  part = mesh.capsule([(0, -1e-3, 0), (0, 1e-3, 0)], [1.0, 1.0], [1.0, 1.0],
                      ref=(0, 0, 1), count=count, front_density=0.45)
  d = _unit(part['verts'])
  part['verts'] = head_point(d, centre, radii)
  part['axis'] = np.repeat(np.asarray(centre, np.float64)[None], count, 0)
  part['head_dir'] = d
  dy, dz = d[:, 1], d[:, 2]
  jaw = smoothstep(dy, -0.2, -0.5) * smoothstep(dz, -0.15, 0.35) if roles['jaw'] else 0 * dy
  below = smoothstep(dy, -0.55, -0.95) * (1 - jaw)
  weights = {roles['head']: 1 - jaw - below, roles['below']: below}
  if roles['jaw']:
    weights[roles['jaw']] = jaw
  part.update(name='head', kind='head', weights=weights, girth=0.1)
  return part


def eyeball_part(count, centre, joint):
  """A sphere around an eye joint, poles on the optical axis (+z front pole)."""
  c = np.asarray(centre, np.float64)
  part = mesh.capsule([c - (0, 0, 1e-4), c + (0, 0, 1e-4)], [EYE_RADIUS] * 2,
                      [EYE_RADIUS] * 2, ref=(0, 1, 0), count=count)
  part.update(name=joint, kind='eyeball', weights={joint: np.ones(count)}, girth=0.0)
  return part


