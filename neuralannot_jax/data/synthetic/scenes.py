"""Scene pieces of the synthetic datasets: cameras, backgrounds, occluders, keypoints.

All functions are pure given a numpy Generator. Camera space is OpenCV's (x right,
y down, z forward, metres); the Human3.6M-style world is z up, millimetres in files.

Joint sets (names as `body_models.skeletons.output_joint_names`):
- COCO_17 takes each keypoint by name from the model's output joints: nose, eyes and
  ears are the extra vertex joints (points on the surface); shoulders, elbows, wrists,
  hips, knees and ankles are kinematic joints (inside the body).
- H36M_17 (the order of the Human3.6M annotation files) is read off the mesh by a vertex
  regressor (`body_models.synthetic.h36m_regressor`), as Human3.6M's marker-based joints
  are not SMPL's kinematic joints. The GT is made with a variant of the regressor the
  annotator is given (`GT_REGRESSOR`): real markers never sit where any regressor puts a
  joint.
"""

import cv2
import numpy as np

from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render as render_mod

COCO_17 = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
           'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
           'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
# The person category's skeleton as in the official COCO file (1-based keypoint pairs).
COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
                 (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5),
                 (4, 6), (5, 7))

H36M_17 = ('Pelvis', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'Torso',
           'Neck', 'Nose', 'Head_top', 'L_Shoulder', 'L_Elbow', 'L_Wrist', 'R_Shoulder',
           'R_Elbow', 'R_Wrist')
# The GT's Human3.6M joints: `h36m_regressor` with marker offsets 1.5x the given regressor's
# and 1 cm of seeded jitter per joint, so they lie 1-2 cm off the annotator's definition.
GT_REGRESSOR = {'offset_scale': 1.5, 'jitter': 0.01}

# Joints on the surface (mesh vertices) count as hidden once the visible surface at their
# pixel is this much nearer; joints inside the body need about a limb's radius more.
SURFACE_TOLERANCE_M = 0.05
INTERIOR_TOLERANCE_M = 0.15
SURFACE_JOINTS = frozenset(('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear'))


def coco_joints(joints, names):
  """(..., K, 3) model output joints named `names` -> (..., 17, 3) in COCO_17 order."""
  idx = [names.index(n) for n in COCO_17]
  return np.asarray(joints)[..., idx, :]


def h36m_joints(vertices, regressor):
  """(..., V, 3) mesh vertices -> (..., 17, 3) in H36M_17 order, by a (17, V) regressor."""
  return np.einsum('kv,...vc->...kc', np.asarray(regressor, np.float64),
                   np.asarray(vertices, np.float64))


# ---- cameras -------------------------------------------------------------------------------

def image_centre(size):
  """(2,) the centre of a (height, width) image in pixel-centre coordinates."""
  return np.array([(size[1] - 1) / 2.0, (size[0] - 1) / 2.0])


def coco_view_rotation(rng):
  """(3, 3) model frame (y up, facing +z) -> camera frame for a person facing the camera.

  The 180 degree turn about x makes the model upright in a y-down camera facing it; the
  camera's elevation (~N(0, 10 deg)) tilts the view up or down.
  """
  elevation = np.clip(rng.normal(0.0, np.radians(10)), -np.radians(25), np.radians(25))
  return poses.axis_rotation('x', elevation) @ poses.axis_rotation('x', np.pi)


def place_in_view(rng, vertices, size, distance=(2.5, 6.0), truncate_prob=0.15,
                  jitter=0.08, min_extent=0.3):
  """Pick focal length and translation that put a mesh in a square-pixel pinhole view.

  Args:
    vertices: (V, 3) the posed mesh in camera orientation, at the origin.
    size: (height, width) of the image.
    distance: range of the depth of the mesh's bounding-box centre, metres.
    truncate_prob: how often the person is drawn larger than the image (truncated).
    jitter: sd of the centre's offset from the image centre, as a fraction of the size.
    min_extent: metres; the framed extent is at least this (a body seen end-on is not
      blown up to fill the image); use about a hand's or a head's size for those.
  Returns:
    focal (2,), princpt (2,), transl (3,): the mesh's camera-space position is
    vertices + transl.
  """
  v = np.asarray(vertices, np.float64)
  lo, hi = v.min(axis=0), v.max(axis=0)
  centre = (lo + hi) / 2.0
  extent = max(hi[0] - lo[0], hi[1] - lo[1], min_extent)
  depth = rng.uniform(*distance)
  fill = rng.uniform(0.95, 1.5) if rng.uniform() < truncate_prob else rng.uniform(0.5, 0.95)
  f = fill * min(size) * depth / extent
  princpt = image_centre(size)
  target = princpt + np.clip(rng.normal(0.0, jitter, 2), -0.3, 0.3) * np.array(size[::-1])
  point = np.array([(target[0] - princpt[0]) / f * depth, (target[1] - princpt[1]) / f * depth,
                    depth])
  return np.array([f, f]), princpt, point - centre


def look_at(position, target, up=(0.0, 0.0, 1.0)):
  """(3, 3) world -> camera rotation of a camera at `position` looking at `target`.

  OpenCV axes: z towards the target, y pointing down along the world's `up`.
  """
  forward = np.asarray(target, np.float64) - np.asarray(position, np.float64)
  forward /= np.linalg.norm(forward)
  right = np.cross(forward, up)
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  return np.stack([right, down, forward])


def h36m_rig(rng, size, num_cameras=4, distance=(2.5, 6.0), height=(0.8, 2.0)):
  """A ring of cameras around a capture volume centred on the world origin (z up).

  Returns a list of dicts R (3, 3), t (3,) millimetres (x_cam = R x_world + t), f (2,),
  c (2,) pixels: the Human3.6M camera file's fields. Focal lengths frame a 1.8 m person
  standing at the centre at 55-85% of the image height.
  """
  cams = []
  for k in range(num_cameras):
    azimuth = np.radians(45 + 90 * k + rng.uniform(-15, 15))
    d = rng.uniform(*distance)
    pos = np.array([d * np.cos(azimuth), d * np.sin(azimuth), rng.uniform(*height)])
    target = np.array([0.0, 0.0, rng.uniform(0.8, 1.0)])
    rot = look_at(pos, target)
    f = rng.uniform(0.55, 0.85) * min(size) * np.linalg.norm(target - pos) / 1.8
    c = image_centre(size) + rng.uniform(-0.02, 0.02, 2) * np.array(size[::-1])
    cams.append(dict(R=rot, t=-rot @ pos * 1000.0, f=np.array([f, f]), c=c))
  return cams


def model_to_world(body_orient):
  """(3, 3) orientation in the model frame (y up) -> the z-up world (x_world = A x_model)."""
  return poses.axis_rotation('x', np.pi / 2) @ body_orient


def camera_params(global_orient, transl, root, rot, t_m):
  """Re-express a body's global orientation and translation in another frame.

  Args:
    global_orient: (3, 3) world rotation of the body; transl: (3,) world translation.
    root: (3,) the rest-pose root joint of the shaped body (joints at zero pose, no
      transl): the model rotates about it, so it enters the translation.
    rot, t_m: (3, 3) and (3,) metres: x_cam = rot x_world + t_m.
  Returns:
    (3, 3) camera-space orientation and (3,) camera-space translation.
  """
  return rot @ global_orient, rot @ (root + transl) + t_m - root


# ---- appearance -------------------------------------------------------------------------

def _smooth_noise(rng, size, cells):
  """(H, W) values in [0, 1]: a random grid of `cells` interpolated up (cloudy texture)."""
  grid = rng.uniform(0.0, 1.0, (cells, cells)).astype(np.float32)
  return cv2.resize(grid, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def background(rng, size):
  """(H, W, 3) uint8 random textured background: noise, gradient, stripes or checkers."""
  h, w = size
  kind = rng.integers(4)
  c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
  angle = rng.uniform(0, np.pi)
  along = np.cos(angle) * xx + np.sin(angle) * yy
  if kind == 0:
    t = _smooth_noise(rng, size, int(rng.integers(3, 12)))
  elif kind == 1:
    t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
  elif kind == 2:
    t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 15) * along + rng.uniform(0, 6.3))
  else:
    n = rng.uniform(4, 12)
    t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
  img = c0 + t[..., None] * (c1 - c0)
  img += 40.0 * (_smooth_noise(rng, size, 24)[..., None] - 0.5)   # break up flat areas
  img += rng.normal(0.0, 4.0, img.shape)
  return np.clip(img, 0, 255).astype(np.uint8)


_SKIN = np.array([[60, 80, 110], [90, 125, 170], [130, 170, 215], [160, 195, 230],
                  [40, 55, 80]], np.float64)  # BGR tones


def skin_tone(rng):
  """(3,) BGR skin colour: one of a few tones, jittered."""
  return _SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 8, 3)


_HAIR = np.array([[20, 25, 30], [25, 45, 70], [60, 105, 150], [90, 150, 200],
                  [130, 130, 135]], np.float64)  # BGR: black, brown, auburn, blond, grey


def part_colors(rng, weights, joint_names, rest_vertices=None):
  """(V, 3) BGR per-vertex colours from skinning weights (V, J): skin, shirt, pants, shoes.

  Colours are given per joint and mixed by the skinning weights, which blends the seams.
  Sleeves and trouser legs are randomly short (forearms, shanks in skin colour).
  With `rest_vertices` (V, 3) (the model's rest mesh: y up, facing +z) the front and the
  back of a person differ, as in photos: hair on the back and the top of the head (90% of
  people), the face bare, and on half of the shirts a print on the chest. Without them an
  image does not show which way a person faces, and only the keypoints' left / right
  labels can tell (an image-only annotator then learns a sideways compromise).
  """
  skin = skin_tone(rng)
  shirt, pants, shoes = rng.uniform(20, 235, (3, 3))
  short_sleeves, shorts = rng.uniform() < 0.4, rng.uniform() < 0.25
  table = []
  for name in joint_names:
    base = name.replace('left_', '').replace('right_', '')
    if base in ('head', 'neck', 'jaw', 'wrist', 'hand') or 'eye' in base or base[:-1] in (
        'index', 'middle', 'pinky', 'ring', 'thumb'):
      table.append(skin)
    elif base == 'elbow':
      table.append(skin if short_sleeves else shirt)
    elif base in ('spine1', 'spine2', 'spine3', 'collar', 'shoulder'):
      table.append(shirt)
    elif base == 'knee':
      table.append(skin if shorts else pants)
    elif base in ('ankle', 'foot'):
      table.append(shoes)
    else:                                            # pelvis, hips
      table.append(pants)
  weights = np.asarray(weights, np.float64)
  colors = weights @ np.array(table)
  if rest_vertices is not None:
    colors = _front_and_back(rng, colors, weights, list(joint_names),
                             np.asarray(rest_vertices, np.float64), shirt)
  return np.clip(colors + rng.normal(0, 5, colors.shape), 0, 255)


def _front_and_back(rng, colors, weights, names, rest, shirt):
  """Hair on the head's back and top, a chest print on the shirt's front (see part_colors)."""
  owner = weights.argmax(axis=1)
  hair = _HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 6, 3)
  has_hair, has_print = rng.uniform() < 0.9, rng.uniform() < 0.5
  print_color = rng.uniform(20, 235, 3)
  if 'head' in names and has_hair:
    head = owner == names.index('head')
    lo, hi = rest[head].min(axis=0), rest[head].max(axis=0)
    rel = (rest - (lo + hi) / 2) / np.maximum((hi - lo) / 2, 1e-6)    # -1..1 over the head
    colors[head & ((rel[:, 2] < -0.1) | (rel[:, 1] > 0.55))] = hair
  chest = np.isin(owner, [names.index(n) for n in ('spine2', 'spine3') if n in names])
  if has_print and chest.any():
    lo, hi = rest[chest].min(axis=0), rest[chest].max(axis=0)
    rel = (rest - (lo + hi) / 2) / np.maximum((hi - lo) / 2, 1e-6)
    front = chest & (rel[:, 2] > 0.3) & (np.abs(rel[:, 0]) < 0.5)
    colors[front] = 0.5 * shirt + 0.5 * print_color
  return colors


def add_occluders(rng, image, depth, bbox, prob=0.3, max_count=2):
  """Paste flat rectangles over part of a person, nearer than the person.

  Args:
    image: (H, W, 3) uint8; depth: (H, W) float32 (+inf = empty); both copied.
    bbox: (4,) x, y, w, h of the person in pixels.
  Returns:
    image, depth with the occluders drawn (their depth is nearer than any person pixel),
    and the (H, W) bool mask of the occluders.
  """
  image, depth = image.copy(), depth.copy()
  occ = np.zeros(depth.shape, bool)
  if rng.uniform() >= prob:
    return image, depth, occ
  near = float(np.min(depth)) * 0.7 if np.isfinite(depth).any() else 1.0
  x, y, w, h = bbox
  for _ in range(int(rng.integers(1, max_count + 1))):
    rw, rh = rng.uniform(0.2, 0.5) * w, rng.uniform(0.15, 0.4) * h
    x0, y0 = x + rng.uniform(-0.2, 1.0) * w - rw / 2, y + rng.uniform(0.0, 1.0) * h - rh / 2
    x0, y0, x1, y1 = (int(round(a)) for a in (x0, y0, x0 + rw, y0 + rh))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, depth.shape[1]), min(y1, depth.shape[0])
    if x1 <= x0 or y1 <= y0:
      continue
    patch = background(rng, (y1 - y0, x1 - x0))
    image[y0:y1, x0:x1] = patch
    depth[y0:y1, x0:x1] = near
    occ[y0:y1, x0:x1] = True
  return image, depth, occ


# ---- annotations ----------------------------------------------------------------------------

def mask_bbox(mask):
  """(H, W) bool -> (4,) x, y, w, h covering the True pixels (pixel-corner convention)."""
  ys, xs = np.nonzero(mask)
  if len(xs) == 0:
    return np.zeros(4)
  return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1],
                  np.float64)


def mask_polygons(mask):
  """(H, W) bool -> COCO polygons: a list of flat [x0, y0, x1, y1, ...] outlines."""
  contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                 cv2.CHAIN_APPROX_SIMPLE)
  return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def in_image(points_2d, size):
  """(K, 2) pixels -> (K,) bool: inside the image (pixel centres, half-pixel margin)."""
  h, w = size
  x, y = points_2d[:, 0], points_2d[:, 1]
  return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


def visibility(joints_cam, names, focal, princpt, depth):
  """COCO visibility of camera-space joints against a depth map.

  Args:
    joints_cam: (K, 3) metres; names: their K names (to pick the tolerance).
    focal, princpt: (2,); depth: (H, W) nearest surface (+inf where empty).
  Returns:
    (K,) int: 2 visible, 1 inside the image but behind a nearer surface, 0 outside
    the image or behind the camera.
  """
  uv = render_mod.project(joints_cam, focal, princpt)
  inside = in_image(uv, depth.shape) & (joints_cam[:, 2] > 0)
  vis = np.zeros(len(joints_cam), np.int64)
  tol = np.array([SURFACE_TOLERANCE_M if n in SURFACE_JOINTS else INTERIOR_TOLERANCE_M
                  for n in names])
  px = np.clip(np.round(uv).astype(np.int64), 0, [depth.shape[1] - 1, depth.shape[0] - 1])
  surface = depth[px[:, 1], px[:, 0]]
  hidden = surface < joints_cam[:, 2] - tol
  vis[inside] = np.where(hidden[inside], 1, 2)
  return vis


def coco_keypoints(rng, joints_cam, focal, princpt, depth, missing_prob=0.05,
                   noise_px=0.5):
  """COCO keypoints of the 17 COCO_17 joints.

  Args:
    joints_cam: (17, 3) camera space, COCO_17 order.
    focal, princpt: (2,); depth: (H, W) with occluders.
    missing_prob: chance that a labelled keypoint is dropped (annotator skipped it).
    noise_px: sd of the annotation noise, pixels, clipped to 2 sd.
  Returns:
    (17, 3) x, y, v; x = y = 0 where v = 0, as in COCO.
  """
  uv = render_mod.project(joints_cam, focal, princpt)
  uv = uv + np.clip(rng.normal(0.0, noise_px, uv.shape), -2 * noise_px, 2 * noise_px)
  vis = visibility(joints_cam, COCO_17, focal, princpt, depth)
  vis[rng.uniform(size=len(vis)) < missing_prob] = 0
  vis[~in_image(uv, depth.shape)] = 0
  kps = np.concatenate([uv, vis[:, None].astype(np.float64)], axis=1)
  kps[vis == 0, :2] = 0.0
  return kps
