"""The annotator's camera: a virtual pinhole on the crop, and its map back to the image.

NeuralAnnot does not know the real camera of an in-the-wild image, so the network works
with a *virtual* perspective camera on its crop, as the authors' code does (Hand4Whole /
Pose2Pose by G. Moon, github.com/mks0601/Hand4Whole_RELEASE, `main/model.py` and
`main/config.py`; the released pseudo-GTs are made this way):

  * focal length (5000, 5000) pixels on the network input (`cfg.focal`). So long a focal
    makes the projection nearly orthographic, which suits an unknown camera.
  * The head predicts three numbers c per sample. c[:2] are the camera-space x, y
    translation in metres, taken as they are. The authors take the depth as
    k * sigmoid(c[2]), with
        k = sqrt(fx * fy * camera_3d_size^2 / (W * H))
    (W x H the input size): the depth at which an object camera_3d_size metres across
    spans the whole crop. That formula was made for 256x192 body crops; on square crops
    (ours: the box x1.25) a standing body needs t_z ~ 0.85 k, where the sigmoid is nearly
    saturated, and a box smaller than its 3D extent implies (scale augmentation, bent
    people) needs t_z > k, which it cannot give: the only way left to fit such a sample
    in 2D is to shrink or bend the body. So the depth here is log-parametrised around k:
        t_z = k * exp(R * tanh(c[2] / R)),   R = DEPTH_LOG_RANGE
    which reaches every depth in k * [e^-R, e^R] with d t_z / d c = t_z near the middle
    (a relative change per unit of c, the same for near and far subjects), and stays
    bounded so a bad prediction cannot overflow. `camera_3d_size` is 2.5 for bodies
    (main branch, and the 'body' parts of the Pose2Pose branch) and 0.4 for hands and
    faces (Pose2Pose branch, `cfg.set_args`). (0.3 there is `bbox_3d_size`, a depth
    range for heatmaps, not this.)
  * The translation is added to the model's camera-space joints before projecting
    (x = (X + t_x) / (Z + t_z) * fx + cx, ...); the released files store it as the
    body model's `transl`, so `model(transl=t)` gives camera-space points.

Pixel convention: the one of `data/crop.py` (pixel centres at integers; the crop covers
[-0.5, S - 0.5]), so the crop's centre, where the box centre lands, is ((W-1)/2, (H-1)/2).
The authors put the virtual principal point at (W/2, H/2) because their crop maps the box
centre there; either way it is the image of the box centre. Camera space is OpenCV's
(x right, y down, z forward), metres.
"""

import jax.numpy as jnp
import numpy as np

# Virtual focal length of the crop camera, pixels (the authors' `cfg.focal`).
FOCAL = (5000.0, 5000.0)

# `camera_3d_size` (metres) by the part a family annotates (see the module docstring).
CAMERA_3D_SIZE = {'body': 2.5, 'hand': 0.4, 'face': 0.4}
FAMILY_PART = {'smpl': 'body', 'smplx': 'body', 'mano': 'hand', 'flame': 'face'}

# Half-width of the log-depth range of `camera_translation`: t_z in k * [e^-R, e^R], a
# subject from 20x smaller to 20x larger on the crop than camera_3d_size fills it.
DEPTH_LOG_RANGE = 3.0

# A subject's typical largest extent in metres (a standing body; a hand or face with its
# box), for the depth the head starts at: on a square crop of 1.25x the box the subject
# then spans 0.8 of the crop (`typical_depth_logit`).
TYPICAL_EXTENT = {'body': 1.7, 'hand': 0.2, 'face': 0.25}
BOX_SCALE = 1.25

# Depth (metres) below which `project` clamps z. Real subjects are metres away (a body
# filling a 256 px crop at f = 5000 is ~40 m deep), so this only ever acts on a bad
# prediction, where it keeps the division and its gradient finite.
MIN_DEPTH = 1e-3


def _hw(crop_size):
  """crop_size: S or (H, W) -> (H, W) floats."""
  if isinstance(crop_size, (tuple, list)):
    h, w = crop_size
  else:
    h = w = crop_size
  return float(h), float(w)


def default_camera_3d_size(family):
  """The authors' camera_3d_size for a body-model family: 2.5 (SMPL, SMPL-X) or 0.4."""
  return CAMERA_3D_SIZE[FAMILY_PART[family]]


def depth_scale(crop_size, focal=FOCAL, camera_3d_size=2.5):
  """k = sqrt(fx fy camera_3d_size^2 / (W H)): the depth at which camera_3d_size metres span
  the crop, the centre of `camera_translation`'s log-depth range."""
  h, w = _hw(crop_size)
  fx, fy = focal
  return (fx * fy * camera_3d_size ** 2 / (w * h)) ** 0.5


def camera_translation(cam, crop_size, focal=FOCAL, camera_3d_size=2.5):
  """Camera-space translation of the subject from the head's three camera numbers.

  Args:
    cam: (..., 3) raw outputs: t_x, t_y in metres, and a log-depth number c.
    crop_size: the network input side S, or (H, W).
    focal: (fx, fy) virtual focal length on the crop, pixels (Python numbers).
    camera_3d_size: metres; see the module docstring (2.5 body, 0.4 hand / face).
  Returns:
    (..., 3) translation (t_x, t_y, k * exp(R tanh(c / R))), metres; t_z in
    k * (e^-R, e^R), R = DEPTH_LOG_RANGE.
  """
  cam = jnp.asarray(cam)
  k = depth_scale(crop_size, focal, camera_3d_size)
  r = DEPTH_LOG_RANGE
  t_z = k * jnp.exp(r * jnp.tanh(cam[..., 2] / r))
  return jnp.concatenate([cam[..., :2], t_z[..., None]], axis=-1)


def depth_logit(t_z, crop_size, focal=FOCAL, camera_3d_size=2.5):
  """The camera number c[2] that `camera_translation` turns into depth t_z (its inverse).

  Args:
    t_z: depth(s) in metres, inside k * (e^-R, e^R).
  Returns:
    c with the shape of t_z (numpy).
  """
  k = depth_scale(crop_size, focal, camera_3d_size)
  r = DEPTH_LOG_RANGE
  return r * np.arctanh(np.log(np.asarray(t_z, np.float64) / k) / r)


def typical_depth_logit(family):
  """c[2] of a subject of `TYPICAL_EXTENT` spanning 1 / BOX_SCALE of a square crop.

  The depth is f * extent / (S / BOX_SCALE) and k = f * camera_3d_size / S, so their
  ratio, and hence c, does not depend on the crop size or the focal length.
  """
  part = FAMILY_PART[family]
  ratio = TYPICAL_EXTENT[part] * BOX_SCALE / CAMERA_3D_SIZE[part]
  return float(depth_logit(ratio, 1, (1.0, 1.0), 1.0))


def _per_point(x, dtype):
  """(2,) or (..., 2) camera numbers -> broadcastable against (..., K, 2)."""
  x = jnp.asarray(x, dtype)
  return x if x.ndim == 1 else x[..., None, :]


def project(points, focal, princpt, min_depth=MIN_DEPTH):
  """Pinhole projection.

  Args:
    points: (..., K, 3) camera-space points, metres (add the translation first).
    focal: (2,) shared or (..., 2) per sample, (fx, fy) pixels.
    princpt: (2,) or (..., 2), (cx, cy) pixels.
    min_depth: z is clamped to at least this, so points at or behind the camera give
      large but finite pixels and finite gradients (the authors add 1e-4 to z instead,
      which still divides by ~0 at z = -1e-4).
  Returns:
    (..., K, 2) pixels: (X / Z * fx + cx, Y / Z * fy + cy).
  """
  points = jnp.asarray(points)
  z = jnp.maximum(points[..., 2:], min_depth)
  return (points[..., :2] / z * _per_point(focal, points.dtype)
          + _per_point(princpt, points.dtype))


def crop_camera(crop_size, focal=FOCAL):
  """The virtual camera of a crop.

  Args:
    crop_size: S or (H, W).
    focal: (fx, fy) pixels.
  Returns:
    focal (2,) float32 and princpt (2,) float32 = ((W - 1) / 2, (H - 1) / 2), the crop
    centre in `data/crop.py`'s pixel convention.
  """
  h, w = _hw(crop_size)
  return (jnp.asarray(focal, jnp.float32),
          jnp.asarray([(w - 1.0) / 2.0, (h - 1.0) / 2.0], jnp.float32))


def to_original_camera(focal, princpt, inverse_affine):
  """The crop camera seen in original-image pixels: the `cam_param` of the released files.

  For a crop that only scales and translates (annotation crops: no rotation, no flip)
  the inverse affine is u_o = s_x u_c + t_x, v_o = s_y v_c + t_y, so projecting with
  (s * focal, inverse_affine(princpt)) equals projecting with the crop camera and then
  mapping the pixels back with the inverse affine. Here s is the length of each column
  of the affine's linear part, so the focal lengths stay positive.

  Rotations and mirrors are not intrinsics: for a rotated or flipped crop (training
  augmentation, left hands mirrored into right ones) first take the 3D points back to
  the original camera frame with `data.crop.crop_to_camera_3d` (un-mirror, un-rotate);
  their projection with this camera then equals the inverse-affine-mapped crop pixels
  exactly when fx == fy, as it is for the virtual camera.

  Args:
    focal: (2,) or (B, 2) crop focal lengths, pixels.
    princpt: (2,) or (B, 2) crop principal point, crop pixels.
    inverse_affine: (B, 2, 3) crop -> original (the batch's `inverse`).
  Returns:
    focal (B, 2) and princpt (B, 2), original-image pixels.
  """
  inverse_affine = jnp.asarray(inverse_affine)
  dtype = inverse_affine.dtype
  linear, shift = inverse_affine[..., :2], inverse_affine[..., 2]
  scale = jnp.linalg.norm(linear, axis=-2)                 # (B, 2) column norms
  focal = jnp.asarray(focal, dtype) * scale
  princpt = jnp.einsum('...ij,...j->...i', linear,
                       jnp.broadcast_to(jnp.asarray(princpt, dtype), shift.shape)) + shift
  return focal, princpt


__all__ = ['FOCAL', 'CAMERA_3D_SIZE', 'FAMILY_PART', 'DEPTH_LOG_RANGE', 'TYPICAL_EXTENT',
           'BOX_SCALE', 'MIN_DEPTH', 'default_camera_3d_size', 'depth_scale',
           'camera_translation', 'depth_logit', 'typical_depth_logit', 'project', 'crop_camera',
           'to_original_camera']
