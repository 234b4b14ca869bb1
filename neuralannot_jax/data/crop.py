"""Crop geometry and augmentation: one `Sample` -> one square network input (pure numpy + OpenCV).

Conventions (every function here):
  * Pixel coordinates are continuous with pixel centres at integers (OpenCV's and COCO keypoints'
    convention): pixel (row i, column j) is centred at (x=j, y=i); an image of width W covers
    x in [-0.5, W - 0.5].
  * An affine is a (2, 3) float32 matrix A acting on column vectors [x, y, 1]. The crop's `affine`
    maps ORIGINAL-image pixels -> CROP pixels (the direction cv2.warpAffine expects); `inverse`
    maps crop -> original, for taking predictions back to the image.
  * The square box [cx - s/2, cx + s/2] maps onto the crop's extent [-0.5, S - 0.5], so the box
    centre lands at ((S - 1) / 2, (S - 1) / 2), and a horizontal flip is x -> S - 1 - x.
  * A positive `rotation_deg` turns the image content counter-clockwise on screen (as
    cv2.getRotationMatrix2D). In y-down pixel coordinates that is the matrix [[c, s], [-s, c]];
    3D joints get the same block about the camera z axis, [[c, s, 0], [-s, c, 0], [0, 0, 1]].
  * Images are RGB.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

FlipPairs = Sequence[Tuple[int, int]]


# ----------------------------------------------------------------------------- geometry


def square_box(bbox_xywh, scale=1.25):
  """Square box around the centre of `bbox_xywh`, side max(w, h) * scale.

  Args:
    bbox_xywh: (4,) x, y, width, height in pixels.
    scale: enlargement of the longer side (NeuralAnnot crops x1.25 for context).
  Returns:
    (4,) float32 x, y, side, side.
  """
  x, y, w, h = np.asarray(bbox_xywh, np.float64)
  side = max(w, h) * scale
  cx, cy = x + w / 2, y + h / 2
  return np.array([cx - side / 2, cy - side / 2, side, side], np.float32)


def rotation_2d(rotation_deg):
  """(2, 2) float64: rotates pixel offsets counter-clockwise on screen (y down) by the angle."""
  t = np.deg2rad(rotation_deg)
  c, s = np.cos(t), np.sin(t)
  return np.array([[c, s], [-s, c]])


def rotation_3d(rotation_deg):
  """(3, 3) float64: the same rotation about the camera z axis, for camera-space points."""
  r = np.eye(3)
  r[:2, :2] = rotation_2d(rotation_deg)
  return r


def crop_transform(center, size, out_size, rotation_deg=0.0, flip=False, inverse=False):
  """Affine taking the square box (centre `center`, side `size`) onto an out_size crop.

  Scale about the box centre, then rotate about the crop centre, then mirror x about it.
  Args:
    center: (2,) box centre, original-image pixels.
    size: box side, pixels.
    out_size: crop side S, pixels.
    rotation_deg: in-plane rotation, counter-clockwise on screen.
    flip: mirror the crop horizontally.
    inverse: return the crop -> original map instead.
  Returns:
    (2, 3) float32, original -> crop (or crop -> original with `inverse`).
  """
  mirror = np.diag([-1.0 if flip else 1.0, 1.0])
  linear = (out_size / float(size)) * mirror @ rotation_2d(rotation_deg)
  crop_center = np.full(2, (out_size - 1) / 2.0)
  shift = crop_center - linear @ np.asarray(center, np.float64)
  affine = np.concatenate([linear, shift[:, None]], 1)
  return invert_affine(affine) if inverse else affine.astype(np.float32)


def invert_affine(affine):
  """(..., 2, 3) -> (..., 2, 3) inverse map, computed in float64, returned as float32."""
  affine = np.asarray(affine, np.float64)
  linear_inv = np.linalg.inv(affine[..., :2])
  shift = -np.einsum('...ij,...j->...i', linear_inv, affine[..., 2])
  return np.concatenate([linear_inv, shift[..., None]], -1).astype(np.float32)


def transform_points(points, affine):
  """Apply (..., 2, 3) affine(s) to (..., K, 2) points; returns (..., K, 2) float32."""
  points = np.asarray(points, np.float64)
  affine = np.asarray(affine, np.float64)
  out = np.einsum('...ij,...kj->...ki', affine[..., :2], points) + affine[..., None, :, 2]
  return out.astype(np.float32)


def warp_image(image, affine, out_size):
  """(H, W, C) image -> (S, S, C) crop: bilinear, black outside the image, same dtype.

  Plain bilinear, like the paper-era code: a box far larger than the crop aliases a little.
  """
  return cv2.warpAffine(image, np.asarray(affine, np.float64), (int(out_size), int(out_size)),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def swap_pairs(array, flip_pairs):
  """Exchange rows i and j of (K, ...) `array` for each (i, j) pair: left <-> right joints."""
  array = np.array(array, copy=True)
  if flip_pairs:
    pairs = np.asarray(flip_pairs, np.int64).reshape(-1, 2)
    array[pairs[:, 0]], array[pairs[:, 1]] = array[pairs[:, 1]].copy(), array[pairs[:, 0]].copy()
  return array


def crop_to_camera_3d(joints_3d, rotation_deg, flipped):
  """Undo the crop's 3D rotation/mirror: (..., K, 3) crop-frame points -> original camera space.

  Args:
    joints_3d: (..., K, 3) points in the crop's camera frame (what `to_crop` outputs).
    rotation_deg: (...) the crops' rotations.
    flipped: (...) bool, the crops' mirror flags.
  Returns:
    (..., K, 3) float32. Left/right joint swaps (body flips) are not undone here.
  """
  joints_3d = np.asarray(joints_3d, np.float64)
  rotation_deg = np.broadcast_to(np.asarray(rotation_deg, np.float64), joints_3d.shape[:-2])
  sign = np.where(np.asarray(flipped, bool), -1.0, 1.0)[..., None]
  unmirrored = np.concatenate([joints_3d[..., :1] * sign[..., None], joints_3d[..., 1:]], -1)
  # Forward was X' = M R X with R a rotation; the inverse is R^T M.
  rot = np.vectorize(rotation_3d, signature='()->(3,3)')(rotation_deg)
  return np.einsum('...ji,...kj->...ki', rot, unmirrored).astype(np.float32)


# ----------------------------------------------------------------------------- augmentation


@dataclasses.dataclass(frozen=True)
class Augment:
  """Training augmentation config; defaults are the paper-era (mks0601) values.

  Attributes:
    scale_factor: box side times 1 + clip(N(0, 1), -1, 1) * scale_factor.
    rotation_factor: degrees; rotation = clip(N(0, 1), -rotation_clip, rotation_clip) * factor ...
    rotation_clip: ... in standard deviations (2 -> at most +-60 deg at the default factor) ...
    rotation_prob: ... applied with this probability, else 0.
    color_factor: per-channel RGB gain drawn uniformly from [1 - f, 1 + f].
    flip_prob: probability of a horizontal flip (bodies/faces, only when flip pairs are given).
  """
  scale_factor: float = 0.25
  rotation_factor: float = 30.0
  rotation_clip: float = 2.0
  rotation_prob: float = 0.6
  color_factor: float = 0.2
  flip_prob: float = 0.5


@dataclasses.dataclass(frozen=True)
class AugParams:
  """One draw of `Augment`: what `to_crop` applies to one sample."""
  scale: float = 1.0
  rotation_deg: float = 0.0
  color: Tuple[float, float, float] = (1.0, 1.0, 1.0)
  flip: bool = False


def draw_augment(config: Augment, rng: np.random.Generator) -> AugParams:
  """Draw one `AugParams`; the same Generator state always gives the same draw."""
  scale = 1.0 + np.clip(rng.standard_normal(), -1.0, 1.0) * config.scale_factor
  rotation = np.clip(rng.standard_normal(), -config.rotation_clip, config.rotation_clip)
  rotation = rotation * config.rotation_factor if rng.random() < config.rotation_prob else 0.0
  color = rng.uniform(1.0 - config.color_factor, 1.0 + config.color_factor, 3)
  flip = rng.random() < config.flip_prob
  return AugParams(float(scale), float(rotation), tuple(float(c) for c in color), bool(flip))


# ----------------------------------------------------------------------------- one sample


def jpeg_is_complete(data):
  """False for JPEG bytes cut short; True for complete JPEGs and for other formats.

  OpenCV decodes a truncated JPEG with only a warning on stderr, the missing part grey, so
  the end-of-image marker is checked: it must follow the last start-of-scan marker (in
  scan data 0xFF is followed by 0x00 or a restart marker, so FFD9 there is the end; an
  EXIF thumbnail's own markers come before the image's scans).
  """
  if not data.startswith(b'\xff\xd8'):
    return True
  return data.rfind(b'\xff\xd9') > data.rfind(b'\xff\xda')


def read_image(path):
  """(H, W, 3) uint8 RGB, or None when the file is missing, cannot be decoded or is a
  truncated JPEG (`jpeg_is_complete`)."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
    if not jpeg_is_complete(data):
      return None
    # imdecode applies the EXIF orientation as imread does.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  except (cv2.error, OSError, ValueError):
    return None
  if image is None or image.ndim != 3 or image.size == 0:
    return None
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_crop(sample, out_size=256, scale=1.25, aug: Optional[AugParams] = None,
            flip_pairs: Optional[FlipPairs] = None, image=None, index=-1):
  """Crop one sample to the network input, with everything needed to map predictions back.

  Left hands are mirrored into right hands (`flipped` = True; joints are mirrored but NOT
  swapped, since a hand has no left/right pairs; 3D x is negated). A flip augmentation
  mirrors bodies and faces only when `flip_pairs` are given (left/right joints swapped),
  and never hands, so a hand crop is always a right hand.

  Camera of the crop: focal = (S / side) * focal, principal point = affine(princpt).
  For a scale + translation (+ flip) crop this is exact. With a rotation the 3D joints are
  rotated about the camera z axis by the same angle, and the projection of the rotated 3D
  joints with the crop camera equals the rotated 2D joints exactly when fx == fy (square
  pixels, true of nearly every dataset); with fx != fy it is off by about |fx - fy| / f
  relative to the distance from the principal point.

  Args:
    sample: a `Sample`.
    out_size: crop side S in pixels.
    scale: box enlargement (`square_box`).
    aug: one augmentation draw (training), or None.
    flip_pairs: the joint set's left/right (i, j) pairs; needed for flipping bodies/faces.
    image: (H, W, 3) uint8 RGB; read from `sample.image_path` when None.
    index: the sample's position in its list, carried through to the batch.
  Returns:
    dict: image (S, S, 3) RGB, uint8 (float32 in [0, 255] when colour jitter applies);
      joints_2d (K, 2) crop px; valid (K,) (0 where the joint falls outside the crop);
      joints_3d (K, 3) camera space, rotated/mirrored like the crop; valid3d (K,); has_3d;
      affine (2, 3) original -> crop; inverse (2, 3) crop -> original; focal (2,) and
      princpt (2,) crop px (zeros without a camera); has_camera; rotation (deg); flipped;
      index. K is 0 when the sample has no joints.
  Raises:
    IOError when `image` is None and the file cannot be read.
  """
  aug = aug or AugParams()
  if image is None:
    image = read_image(sample.image_path)
    if image is None:
      raise IOError(f'{sample.image_path}: cannot read image (annotation {sample.ann_id!r})')
  x, y, w, h = np.asarray(sample.bbox, np.float64)
  center = np.array([x + w / 2, y + h / 2])  # = square_box's centre, kept in float64
  side = max(w, h) * scale * aug.scale
  if sample.part == 'hand':
    flip, swap = sample.hand_side == 'left', False
  else:
    flip = swap = bool(aug.flip and flip_pairs)
  affine = crop_transform(center, side, out_size, aug.rotation_deg, flip)
  inverse = crop_transform(center, side, out_size, aug.rotation_deg, flip, inverse=True)

  crop = warp_image(image, affine, out_size)
  if not np.allclose(aug.color, 1.0):
    crop = np.clip(crop.astype(np.float32) * np.asarray(aug.color, np.float32), 0, 255)

  k = sample.num_joints
  joints_2d, valid = np.zeros((k, 2), np.float32), np.zeros(k, np.float32)
  if sample.joints_2d is not None:
    joints_2d = transform_points(sample.joints_2d, affine)
    inside = np.all((joints_2d >= -0.5) & (joints_2d < out_size - 0.5), axis=1)
    valid = sample.joints_2d_valid * inside
  joints_3d, valid3d = np.zeros((k, 3), np.float32), np.zeros(k, np.float32)
  if sample.joints_3d is not None:
    mirror = np.diag([-1.0 if flip else 1.0, 1.0, 1.0])
    joints_3d = (sample.joints_3d @ (mirror @ rotation_3d(aug.rotation_deg)).T).astype(np.float32)
    valid3d = sample.joints_3d_valid
  if swap:
    joints_2d, valid = swap_pairs(joints_2d, flip_pairs), swap_pairs(valid, flip_pairs)
    joints_3d, valid3d = swap_pairs(joints_3d, flip_pairs), swap_pairs(valid3d, flip_pairs)

  has_camera = sample.focal is not None and sample.princpt is not None
  focal, princpt = np.zeros(2, np.float32), np.zeros(2, np.float32)
  if has_camera:
    focal = (sample.focal * (out_size / side)).astype(np.float32)
    princpt = transform_points(sample.princpt[None], affine)[0]
  return dict(
      image=crop, joints_2d=joints_2d, valid=np.asarray(valid, np.float32),
      joints_3d=joints_3d, valid3d=np.asarray(valid3d, np.float32),
      has_3d=np.bool_(sample.joints_3d is not None), affine=affine, inverse=inverse,
      focal=focal, princpt=princpt, has_camera=np.bool_(has_camera),
      rotation=np.float32(aug.rotation_deg), flipped=np.bool_(flip), index=np.int32(index))
