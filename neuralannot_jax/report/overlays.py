"""Mesh overlays of pseudo-GTs: how people judge them (the paper's figures are overlays).

    image = cv2.imread(sample.image_path)
    out = visualize.panel(image, entry, 'smpl', model, gt=sample)   # overlay | side view
    cv2.imwrite('panel.png', out)

Images are OpenCV's: (H, W, 3) uint8, BGR. Meshes are drawn by the synthetic renderer's
z-buffer rasteriser (`data.synthetic.render`): shaded, depth-correct, with its pixel
convention (pixel centres at integer coordinates) and camera (OpenCV camera space, focal
and princpt in pixels). A released-layout entry's cam_param is in original-image pixels,
so the same lines serve our pseudo_gt.json and the files released by the NeuralAnnot
authors.

Every function here is pure: it returns a new image and never writes files.
"""

import dataclasses
import os

import cv2
import jax
import numpy as np

import body_models
from body_models import mirror
from neuralannot_jax import export
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.synthetic import render

# BGR colours. A light blue mesh as in the paper's figures; left hands greenish so that
# the two hands of a person are told apart.
MESH_COLOR = (219, 189, 166)
LEFT_HAND_COLOR = (170, 215, 170)
GT_COLOR = (60, 220, 60)          # GT 2D joints: green dots
PRED_COLOR = (60, 60, 255)        # projected model joints: red rings
PAIR_COLOR = (0, 215, 255)        # line from a GT joint to its projected model joint
SIDE_BACKGROUND = (60, 60, 60)
CANVAS_COLOR = (110, 110, 110)    # background when no image is given

HAND_SIDES = ('right', 'left')
# Fixed-point bits for sub-pixel OpenCV drawing (coordinates x 16).
_SHIFT = 4

_FORWARD = jax.jit(body_models.forward)


# ---------------------------------------------------------------------------- images


def as_bgr(image):
  """Any (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image -> a new (H, W, 3) uint8 array."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    scale = 255.0 if image.dtype.kind == 'f' and image.size and image.max() <= 1.0 else 1.0
    image = np.clip(np.round(image.astype(np.float64) * scale), 0, 255).astype(np.uint8)
  if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
    return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
  if image.ndim == 3 and image.shape[2] == 4:
    return np.ascontiguousarray(image[..., :3])
  if image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f'image has shape {image.shape}; expected (H, W) or (H, W, 3)')
  return image.copy()


def _hw(size):
  """size: S or (H, W) -> (H, W) ints."""
  if np.ndim(size) == 0:
    return int(size), int(size)
  h, w = size
  return int(h), int(w)


def _finite_mesh(vertices, faces):
  """(V, 3) float64 with non-finite rows zeroed, the faces (F', 3) that touch none of
  them, and which faces were kept (F,) bool."""
  v = np.asarray(vertices, np.float64).reshape(-1, 3)
  faces = np.asarray(faces, np.int64).reshape(-1, 3)
  bad = ~np.all(np.isfinite(v), axis=1)
  keep = ~np.any(bad[faces], axis=1)
  return np.where(bad[:, None], 0.0, v), faces[keep], keep


def overlay(image, vertices, faces, focal, princpt, *, color=MESH_COLOR, alpha=0.6,
            face_colors=None):
  """Draw a camera-space mesh over an image: shaded, depth-correct, alpha blended.

  Args:
    image: (H, W, 3) uint8 BGR (grey or float images are converted); not modified.
    vertices: (V, 3) camera space (OpenCV axes), metres. Faces with a non-finite vertex
      or a vertex behind the camera are left out.
    faces: (F, 3) vertex indices.
    focal, princpt: (2,) fx, fy and cx, cy in the image's pixels.
    color: (3,) BGR base colour of the mesh, 0..255.
    alpha: opacity of the mesh; pixels the mesh does not cover keep their values exactly.
    face_colors: (F, 3) BGR per-face colours instead of `color` (several parts or meshes).
  Returns:
    (H, W, 3) uint8, a new image.
  """
  image = as_bgr(image)
  v, kept, keep = _finite_mesh(vertices, faces)
  if not len(kept):
    return image
  if face_colors is not None:
    face_colors = np.asarray(face_colors, np.float64)[keep]
  out, _, _ = render.render(v, kept, np.asarray(focal, np.float64).reshape(2),
                            np.asarray(princpt, np.float64).reshape(2), image,
                            colors=np.asarray(color, np.float64), face_colors=face_colors,
                            alpha=float(alpha))
  return out


def _rotation_y(angle):
  """(3, 3) rotation by `angle` radians about the camera's vertical (y) axis."""
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def side_view_camera(vertices, size, *, angle=90.0, fill=0.85):
  """The mesh turned about the vertical axis through its centre, and a camera framing it.

  The turn is by `angle` degrees about the camera's y axis (image vertical) through the
  centre of the mesh's bounding box: at +90 the original camera's right side faces the new
  camera (original depth becomes the new image's horizontal axis, far = right).

  Args:
    vertices: (V, 3) camera space, metres (finite).
    size: S or (H, W) of the side image.
    angle: degrees.
    fill: fraction of the image the projected mesh may span, both ways.
  Returns:
    vertices (V, 3) in the virtual camera's space, focal (2,), princpt (2,).
  """
  h, w = _hw(size)
  v = np.asarray(vertices, np.float64).reshape(-1, 3)
  if not len(v):
    return v, np.array([1.0, 1.0]), np.array([(w - 1) / 2, (h - 1) / 2])
  centre = (v.min(0) + v.max(0)) / 2
  local = (v - centre) @ _rotation_y(np.deg2rad(angle)).T
  ex, ey, ez = np.maximum(np.abs(local).max(0), 1e-6)
  # A long lens (about 14 degrees across): nearly orthographic, so that a mesh deep in
  # the new view (two hands far apart) is not dwarfed by its nearest part.
  f = 4.0 * min(h, w)
  # The nearest points sit at depth d - ez; a half-extent e projects to f e / (d - ez),
  # which must stay within fill / 2 of the image's width (x) and height (y).
  d = ez + max(2 * f * ex / (fill * w), 2 * f * ey / (fill * h), 2 * ez)
  return (local + np.array([0.0, 0.0, d]), np.array([f, f]),
          np.array([(w - 1) / 2, (h - 1) / 2]))


def side_view(vertices, faces, size, *, angle=90.0, color=MESH_COLOR,
              background=SIDE_BACKGROUND, fill=0.85, face_colors=None):
  """Render a mesh from the side: turned `angle` degrees about the vertical axis.

  Args:
    vertices: (V, 3) camera space, metres (non-finite rows are dropped).
    faces: (F, 3).
    size: S or (H, W) of the image.
    angle, fill: see `side_view_camera`.
    color: (3,) BGR mesh colour; face_colors: (F, 3) per-face BGR colours instead.
    background: (3,) BGR of the empty image.
  Returns:
    (H, W, 3) uint8.
  """
  h, w = _hw(size)
  canvas = np.empty((h, w, 3), np.uint8)
  canvas[:] = np.asarray(background, np.uint8)
  v, kept, keep = _finite_mesh(vertices, faces)
  if not len(kept):
    return canvas
  if face_colors is not None:
    face_colors = np.asarray(face_colors, np.float64)[keep]
  used = np.unique(kept)
  cam_v, focal, princpt = side_view_camera(v[used], (h, w), angle=angle, fill=fill)
  full = np.zeros_like(v)
  full[used] = cam_v
  out, _, _ = render.render(full, kept, focal, princpt, canvas, colors=np.asarray(color, float),
                            face_colors=face_colors)
  return out


# ---------------------------------------------------------------------------- joints


def _to_fixed(point):
  return tuple(int(round(c * (1 << _SHIFT))) for c in point)


def draw_joints(image, gt_2d, valid, projected_2d=None, *, projected_valid=None,
                gt_color=GT_COLOR, pred_color=PRED_COLOR, pair_color=PAIR_COLOR,
                radius=None):
  """Mark GT 2D joints (filled dots) and projected model joints (rings), paired by lines.

  Args:
    image: (H, W, 3) uint8 BGR; not modified.
    gt_2d: (K, 2) GT joints in pixels, or None.
    valid: (K,) GT flags (> 0: annotated), or None for all.
    projected_2d: (K, 2) the model's joints of the same set, projected, or None.
    projected_valid: (K,) flags of the model joints (0 where the model lacks the joint),
      or None for all. Non-finite points are never drawn.
    gt_color, pred_color, pair_color: BGR.
    radius: dot radius in pixels; default grows with the image (2 px at 300 px).
  Returns:
    (H, W, 3) uint8, a new image.
  """
  out = as_bgr(image)
  h, w = out.shape[:2]
  r = max(2.0, min(h, w) / 150.0) if radius is None else float(radius)
  rf = int(round(r * (1 << _SHIFT)))
  thickness = max(1, int(round(r / 2)))

  def usable(points, flags):
    if points is None:
      return None, None
    points = np.asarray(points, np.float64).reshape(-1, 2)
    ok = np.all(np.isfinite(points), axis=1) & np.all(np.abs(points) < 1e5, axis=1)
    if flags is not None:
      ok &= np.asarray(flags).reshape(-1) > 0
    return points, ok

  gt, gt_ok = usable(gt_2d, valid)
  pred, pred_ok = usable(projected_2d, projected_valid)
  line = cv2.LINE_AA
  if gt is not None and pred is not None:
    if len(gt) != len(pred):
      raise ValueError(f'gt_2d has {len(gt)} joints and projected_2d {len(pred)}; '
                       'expected the same joint set')
    for k in np.nonzero(gt_ok & pred_ok)[0]:
      cv2.line(out, _to_fixed(gt[k]), _to_fixed(pred[k]), pair_color, 1, line, _SHIFT)
  if gt is not None:
    for k in np.nonzero(gt_ok)[0]:
      cv2.circle(out, _to_fixed(gt[k]), rf, gt_color, -1, line, _SHIFT)
  if pred is not None:
    for k in np.nonzero(pred_ok)[0]:
      cv2.circle(out, _to_fixed(pred[k]), rf, pred_color, thickness, line, _SHIFT)
  return out


def put_caption(image, text, *, scale=None):
  """Write `text` at the top left, white on a dark outline; returns a new image."""
  out = as_bgr(image)
  if not text:
    return out
  scale = max(0.35, out.shape[0] / 700.0) if scale is None else scale
  org = (4, int(6 + 18 * scale))
  cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
  cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
              cv2.LINE_AA)
  return out


# ---------------------------------------------------------------------------- entries


@dataclasses.dataclass(frozen=True)
class Mesh:
  """One posed model of an entry, in its camera's space.

  side: 'right' / 'left' for MANO hands, else None.
  vertices: (V, 3) metres; joints: (K, 3) `Output.joints`; faces: (F, 3).
  focal, princpt: (2,) pixels of the original image.
  num_landmarks: the model's face landmark count (for joint mappings).
  """
  side: object
  vertices: np.ndarray
  joints: np.ndarray
  faces: np.ndarray
  focal: np.ndarray
  princpt: np.ndarray
  num_landmarks: int


def as_models(models, family, *, gender='neutral'):
  """A model path, a BodyModel, or {side: BodyModel} -> {side or None: BodyModel}.

  A path loads the family (MANO: both hands from a folder, as `evaluate.load_models`).
  A single BodyModel for MANO serves as the right hand; left hands are then drawn by
  mirroring it (exact for the official pair and our stand-ins).
  """
  if isinstance(models, body_models.BodyModel):
    return {'right': models} if family == 'mano' else {None: models}
  if isinstance(models, dict):
    return dict(models)
  if isinstance(models, (str, os.PathLike)):
    from neuralannot_jax import evaluate  # pylint: disable=import-outside-toplevel
    path = os.fspath(models)
    if not os.path.exists(path):
      raise FileNotFoundError(f'body model {path}: no such file or folder')
    if family == 'mano' and os.path.isfile(path):
      return {'right': body_models.load(path, 'mano', is_right_hand=True)}
    return evaluate.load_models(path, family, gender=gender)
  raise TypeError(f'models: expected a path, a BodyModel or a dict, not {type(models).__name__}')


def _full_pose_model(model):
  """The model with hand PCA off: released files hold full 45-d hand poses."""
  return dataclasses.replace(model, hand_components={}) if model.hand_components else model


def _fit_params(params, model):
  """Released params -> what `forward` takes: betas / expression cut or padded to the model."""
  shapes = model.param_shapes()
  out = {}
  for name, value in params.items():
    if name not in shapes:
      continue
    value = np.asarray(value, np.float32).reshape(-1)
    size = shapes[name][0]
    if name in ('betas', 'expression'):
      value = np.pad(value[:size], (0, max(0, size - value.size)))
    out[name] = value
  return out


def pose(model, params):
  """One sample's {smplx name: 1-D array} -> vertices (V, 3), joints (K, 3), float64."""
  model = _full_pose_model(model)
  out = _FORWARD(model, **_fit_params(params, model))
  return np.asarray(out.vertices, np.float64), np.asarray(out.joints, np.float64)


def _hand_entries(entry, hand_side):
  """A MANO value -> [(side, single-hand entry)]: {'right':..,'left':..} or one hand."""
  if 'right' in entry or 'left' in entry:
    return [(s, entry.get(s)) for s in HAND_SIDES if entry.get(s) is not None]
  return [(hand_side or 'right', entry)]


def entry_meshes(entry, family, models, *, hand_side=None):
  """The posed meshes of one released-layout entry.

  Args:
    entry: a COCO-style entry ({'smpl_param': ..., 'cam_param': ...}; MANO:
      {'right': entry or None, 'left': entry or None}, or one hand's entry).
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    models: see `as_models`. MANO left hands use models['left'] when present, else the
      right model mirrored.
    hand_side: the side of a MANO entry given as one hand (default right).
  Returns:
    [Mesh], one per body / face / present hand.
  Raises:
    ValueError for an entry without cam_param (MoCap layouts: world coordinates).
  """
  if family not in export.RELEASED_LAYOUT:
    raise ValueError(f'unknown family {family!r}; expected one of '
                     f'{sorted(export.RELEASED_LAYOUT)}')
  if not isinstance(entry, dict):
    raise ValueError(f'entry is a {type(entry).__name__}, not a dict')
  models = as_models(models, family)
  parts = _hand_entries(entry, hand_side) if family == 'mano' else [(None, entry)]
  meshes = []
  for side, part in parts:
    params, focal, princpt = export.from_released_entry(family, part)
    if focal is None:
      raise ValueError(f'{family} entry has no cam_param (a MoCap file in world '
                       'coordinates?); only COCO-style entries can be drawn')
    model = models.get(side) if family == 'mano' else models.get(None)
    if family == 'mano' and model is None and side == 'left' and models.get('right') is not None:
      # The left hand is the mirror image of the right hand with mirrored parameters.
      as_right = mirror.mirror_params({k: np.asarray(v) for k, v in params.items()}, 'mano')
      vertices, joints = pose(models['right'], as_right)
      vertices, joints = vertices * [-1, 1, 1], joints * [-1, 1, 1]
      model = models['right']
    elif model is None:
      raise ValueError(f'no {family} model for {side or "the"} entry '
                       f'(have {sorted(map(str, models))})')
    else:
      vertices, joints = pose(model, params)
    meshes.append(Mesh(side, vertices, joints, np.asarray(model.faces, np.int64),
                       np.asarray(focal, np.float64), np.asarray(princpt, np.float64),
                       model.num_landmarks))
  return meshes


def project_joints(mesh, family, joint_set, *, regressor=None):
  """A mesh's joints of a dataset's joint set, projected with its camera.

  Args:
    mesh: `Mesh`.
    joint_set: `joint_sets` name of the GT (e.g. 'COCO_17', 'HAND_21').
    regressor: (T, V) vertex regressor for that set, array or .npy path, or None.
  Returns:
    points (T, 2) pixels, valid (T,) float32 (0 where the model lacks the joint or it is
    behind the camera).
  """
  mapping = joint_sets.model_joint_mapping(family, joint_set, num_landmarks=mesh.num_landmarks,
                                           regressor=regressor, side=mesh.side)
  points = mapping.apply(mesh.joints, mesh.vertices)
  valid = mapping.valid * (points[:, 2] > 1e-6)
  with np.errstate(divide='ignore', invalid='ignore'):
    uv = render.project(points, mesh.focal, mesh.princpt)
  return uv, valid.astype(np.float32)


def _gt_of(gt):
  """A Sample or (joints_2d, valid, joint_set) -> that tuple, or None."""
  if gt is None:
    return None
  if hasattr(gt, 'joints_2d'):
    if gt.joints_2d is None or not gt.joint_set:
      return None
    return gt.joints_2d, gt.joints_2d_valid, gt.joint_set
  joints, valid, joint_set = gt
  return joints, valid, joint_set


def _gt_for_side(gt, side):
  if isinstance(gt, dict):
    return _gt_of(gt.get(side))
  return _gt_of(gt)


def _scale_points(points, scale):
  """Pixel coordinates after resizing by (sx, sy): centres at integers stay centres."""
  return (np.asarray(points, np.float64) + 0.5) * scale - 0.5


def panel(image, entry, family, models, *, gt=None, hand_side=None, regressor=None,
          alpha=0.6, min_height=256, caption=None, side_angle=90.0):
  """The side-by-side picture of one released-layout entry: overlay | side view.

  Args:
    image: (H, W, 3) uint8 BGR original image of the annotation, or None for a grey
      canvas as large as twice the principal point.
    entry: the entry of the released-layout file for this annotation (see `entry_meshes`).
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    models: a model path, a BodyModel, or {side: BodyModel} (`as_models`).
    gt: GT 2D joints to mark: a `Sample` or (joints_2d (K, 2), valid (K,), joint_set name);
      for MANO entries with both hands, {'right': ..., 'left': ...} of those. None: no
      joints drawn.
    hand_side: side of a MANO entry that is one hand's entry.
    regressor: (T, V) vertex regressor of the GT joint set, or None.
    alpha: mesh opacity over the image.
    min_height: smaller images are scaled up to this height first (cameras and joints
      follow), so that small dataset images stay readable.
    caption: text drawn at the top left, or None.
    side_angle: degrees the side view turns the mesh (see `side_view_camera`).
  Returns:
    (H', 2 W', 3) uint8: the image with the meshes and joints, then the side view; H', W'
    the (scaled) image size.
  """
  meshes = entry_meshes(entry, family, models, hand_side=hand_side)
  if image is None:
    cx, cy = meshes[0].princpt if meshes else (127.5, 127.5)
    image = np.empty((max(16, int(round(2 * cy + 1))), max(16, int(round(2 * cx + 1))), 3),
                     np.uint8)
    image[:] = CANVAS_COLOR
  image = as_bgr(image)
  h, w = image.shape[:2]
  scale = np.array([1.0, 1.0])
  if min_height and h < min_height:
    new_w, new_h = int(round(w * min_height / h)), int(min_height)
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    scale = np.array([new_w / w, new_h / h])
  out = image
  for mesh in meshes:
    color = LEFT_HAND_COLOR if mesh.side == 'left' else MESH_COLOR
    out = overlay(out, mesh.vertices, mesh.faces, mesh.focal * scale,
                  _scale_points(mesh.princpt, scale), color=color, alpha=alpha)
  for mesh in meshes:
    truth = _gt_for_side(gt, mesh.side)
    if truth is None:
      continue
    joints, valid, joint_set = truth
    try:
      projected, projected_valid = project_joints(mesh, family, joint_set,
                                                  regressor=regressor)
    except ValueError:   # the model provides none of the set's joints
      projected, projected_valid = None, None
    out = draw_joints(out, _scale_points(joints, scale), valid,
                      None if projected is None else _scale_points(projected, scale),
                      projected_valid=projected_valid)
  # Both hands go into one side view; each is in its own camera's space, which is one
  # space whenever the hands share a camera (a whole-body image).
  if meshes:
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    vertices = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    face_colors = np.concatenate([
        np.tile(LEFT_HAND_COLOR if m.side == 'left' else MESH_COLOR, (len(m.faces), 1))
        for m in meshes]).astype(np.float64)
    side = side_view(vertices, faces, out.shape[:2], angle=side_angle,
                     face_colors=face_colors)
  else:
    side = np.full_like(out, SIDE_BACKGROUND)
  return put_caption(np.concatenate([out, side], axis=1), caption)


__all__ = ['MESH_COLOR', 'LEFT_HAND_COLOR', 'GT_COLOR', 'PRED_COLOR', 'Mesh', 'as_bgr',
           'overlay', 'side_view_camera', 'side_view', 'draw_joints', 'put_caption',
           'as_models', 'pose', 'entry_meshes', 'project_joints', 'panel']
