"""The one record every dataset reader produces: a `Sample` per annotated person, hand or face.

Readers know file formats; everything downstream (pipeline, annotator, export, scoring) sees
only `Sample`s. Arrays are numpy, float32; units are pixels in 2D and metres in 3D, camera
space as OpenCV's (x right, y down, z forward).
"""

import dataclasses
from typing import Any, Optional

import numpy as np

PARTS = ('body', 'hand', 'face')
HAND_SIDES = ('right', 'left')


class AnnotationError(ValueError):
  """A malformed annotation: the message names the file, the record and the field."""


@dataclasses.dataclass(frozen=True, eq=False)
class Sample:
  """One annotated instance.

  Attributes:
    dataset: name of the source dataset, e.g. 'coco', 'h36m'.
    ann_id: the dataset's annotation id (int or str); output files are keyed by it.
    image_path: path of the image file.
    bbox: (4,) GT box x, y, width, height in pixels of the original image.
    part: 'body', 'hand' or 'face'.
    joint_set: name of the joint set of joints_2d / joints_3d (see `joint_sets`).
    joints_2d: (K, 2) pixels in the original image, or None.
    joints_2d_valid: (K,) 1 where the 2D joint is annotated, else 0; None with joints_2d.
    joints_3d: (K, 3) camera space, metres, or None.
    joints_3d_valid: (K,) 1 where the 3D joint is valid; None with joints_3d.
    focal: (2,) fx, fy in pixels, or None when the camera is unknown.
    princpt: (2,) cx, cy in pixels, or None.
    image_size: (height, width) when known.
    image_id: the dataset's image id, when it has one.
    parent_id: for hands and faces cut from a whole-body record, the person's ann_id.
    hand_side: 'right' or 'left' for hands, else None.
    gt_family: 'smpl', 'smplx', 'mano' or 'flame' when GT parameters are known (scoring only).
    gt_gender: 'neutral', 'male' or 'female': which model of the family gt_params are for.
    gt_params: {smplx-library parameter name: array}, camera space, or None.
    gt_vertices: (V, 3) camera space, metres, or None.
  """
  dataset: str
  ann_id: Any
  image_path: str
  bbox: np.ndarray
  part: str = 'body'
  joint_set: str = ''
  joints_2d: Optional[np.ndarray] = None
  joints_2d_valid: Optional[np.ndarray] = None
  joints_3d: Optional[np.ndarray] = None
  joints_3d_valid: Optional[np.ndarray] = None
  focal: Optional[np.ndarray] = None
  princpt: Optional[np.ndarray] = None
  image_size: Optional[tuple] = None
  image_id: Any = None
  parent_id: Any = None
  hand_side: Optional[str] = None
  gt_family: Optional[str] = None
  gt_gender: Optional[str] = None
  gt_params: Optional[dict] = None
  gt_vertices: Optional[np.ndarray] = None

  @property
  def num_joints(self):
    joints = self.joints_2d if self.joints_2d is not None else self.joints_3d
    return 0 if joints is None else joints.shape[0]


def _fail(source, ann_id, field, message):
  raise AnnotationError(f'{source}: annotation {ann_id!r}: {field}: {message}')


def _array(value, source, ann_id, field, shape):
  """float32 array of the given shape (None in `shape` = any size), or AnnotationError."""
  try:
    array = np.asarray(value, dtype=np.float32)
  except (TypeError, ValueError) as e:
    _fail(source, ann_id, field, f'not numeric ({e})')
  if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
    want = str(tuple('K' if s is None else s for s in shape)).replace("'", '')
    _fail(source, ann_id, field, f'has shape {array.shape}, expected {want}')
  if not np.all(np.isfinite(array)):
    _fail(source, ann_id, field, 'has non-finite values')
  return array


def make_sample(source, **fields):
  """Build a `Sample`, converting and checking every array field.

  Args:
    source: the annotation file, named in errors.
    **fields: `Sample` fields; arrays may be lists. Missing validity flags default to
      all-valid; joints must agree in count with their flags.
  Raises:
    AnnotationError naming the file, the annotation id and the field.
  """
  ann_id = fields.get('ann_id')
  for name in ('dataset', 'ann_id', 'image_path', 'bbox'):
    if fields.get(name) is None:
      _fail(source, ann_id, name, 'missing')
  f = dict(fields)
  f['bbox'] = _array(f['bbox'], source, ann_id, 'bbox', (4,))
  if f['bbox'][2] <= 0 or f['bbox'][3] <= 0:
    _fail(source, ann_id, 'bbox', f'has non-positive size {f["bbox"][2:].tolist()}')
  if f.get('part', 'body') not in PARTS:
    _fail(source, ann_id, 'part', f'{f["part"]!r} is not one of {PARTS}')
  if f.get('hand_side') not in (None,) + HAND_SIDES:
    _fail(source, ann_id, 'hand_side', f'{f["hand_side"]!r} is not one of {HAND_SIDES}')
  for dim in (2, 3):
    key, valid = f'joints_{dim}d', f'joints_{dim}d_valid'
    if f.get(key) is None:
      if f.get(valid) is not None:
        _fail(source, ann_id, valid, f'given without {key}')
      continue
    f[key] = _array(f[key], source, ann_id, key, (None, dim))
    k = f[key].shape[0]
    f[valid] = (np.ones(k, np.float32) if f.get(valid) is None
                else _array(f[valid], source, ann_id, valid, (k,)))
  for key in ('focal', 'princpt'):
    if f.get(key) is not None:
      f[key] = _array(f[key], source, ann_id, key, (2,))
  if f.get('gt_vertices') is not None:
    f['gt_vertices'] = _array(f['gt_vertices'], source, ann_id, 'gt_vertices', (None, 3))
  if f.get('gt_params') is not None:
    f['gt_params'] = {k: _array(v, source, ann_id, f'gt_params.{k}', (None,))
                      for k, v in f['gt_params'].items()}
  try:
    return Sample(**f)
  except TypeError as e:
    _fail(source, ann_id, 'fields', str(e))
