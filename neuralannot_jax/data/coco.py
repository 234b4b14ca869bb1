"""Readers of COCO person-keypoint and COCO-WholeBody annotation files.

The layouts, as the COCO format page (cocodataset/cocoapi), jin-s13/COCO-WholeBody's
data_format.md and the loaders of mks0601/I2L-MeshNet_RELEASE and mks0601/Hand4Whole_RELEASE
(data/MSCOCO/MSCOCO.py) describe them:

- 'images': records {id, file_name, height, width, ...}; the file is <image_root>/<file_name>
  (image_root being e.g. <coco>/images/train2017).
- 'annotations': one record per person {id, image_id, bbox [x, y, w, h] in pixels, iscrowd 0/1,
  keypoints [x, y, v] * 17, num_keypoints, ...}; v is 0 unlabelled (x = y = 0), 1 labelled but
  hidden, 2 labelled and visible.
- COCO-WholeBody keeps all of that and adds foot_kpts [x, y, v] * 6, face_kpts * 68,
  lefthand_kpts * 21, righthand_kpts * 21, face_box / lefthand_box / righthand_box (xywh) and
  bool flags face_valid / lefthand_valid / righthand_valid / foot_valid; a part that is not
  valid has all-zero keypoints and box.

Neither format has a camera: samples carry focal = princpt = None.
"""

import os

import numpy as np

from neuralannot_jax.data.reading import ImageCheck
from neuralannot_jax.data.reading import ReadResult
from neuralannot_jax.data.reading import ann_label
from neuralannot_jax.data.reading import box_is_usable
from neuralannot_jax.data.reading import coco_tables
from neuralannot_jax.data.reading import fail
from neuralannot_jax.data.reading import image_of
from neuralannot_jax.data.reading import image_size
from neuralannot_jax.data.reading import keypoints
from neuralannot_jax.data.reading import load_json
from neuralannot_jax.data.reading import numbers
from neuralannot_jax.data.reading import require
from neuralannot_jax.data.sample import PARTS
from neuralannot_jax.data.sample import make_sample

LAYOUTS = ('person_keypoints', 'wholebody')
BODY_JOINT_SETS = {'person_keypoints': 'COCO_17', 'wholebody': 'COCO_WHOLEBODY_133'}
# The 133 whole-body joints are the parts' keypoint lists concatenated in this order, which
# is the order of the dataset's own whole-body evaluation.
WHOLEBODY_PIECES = (('keypoints', 17), ('foot_kpts', 6), ('face_kpts', 68),
                    ('lefthand_kpts', 21), ('righthand_kpts', 21))
# Hand and face samples cut from a whole-body person, in the order they are emitted:
# (ann_id suffix, part, hand_side, joint_set, keypoints key, joint count, box key, flag key).
CROPS = (
    ('left', 'hand', 'left', 'HAND_21', 'lefthand_kpts', 21, 'lefthand_box', 'lefthand_valid'),
    ('right', 'hand', 'right', 'HAND_21', 'righthand_kpts', 21, 'righthand_box',
     'righthand_valid'),
    ('face', 'face', None, 'FACE_68', 'face_kpts', 68, 'face_box', 'face_valid'),
)


def detect_layout(annotations):
  """'wholebody' when any annotation carries hand keypoints, else 'person_keypoints'."""
  whole = any(isinstance(a, dict) and 'lefthand_kpts' in a for a in annotations)
  return 'wholebody' if whole else 'person_keypoints'


def skip_reason(box, valid, min_keypoints, min_box_size):
  """Why a candidate is not worth a sample, or None.

  Args:
    box: (4,) xywh pixels.
    valid: (K,) 1 where the joint is labelled.
  """
  if valid.sum() < min_keypoints:
    return 'no_keypoints'
  if not box_is_usable(box, min_box_size):
    return 'tiny_box'
  return None


def body_candidate(ann, label, source, layout):
  """Sample fields of one person's body: bbox (4,), joints_2d (K, 2), joints_2d_valid (K,).

  K is 17 for person keypoints, 133 for whole-body (body, foot, face, left hand, right hand).
  """
  box = numbers(require(ann, 'bbox', source, label), source, label, 'bbox', 4)
  pieces = WHOLEBODY_PIECES if layout == 'wholebody' else WHOLEBODY_PIECES[:1]
  joints, valid = zip(*(keypoints(require(ann, key, source, label), source, label, key, count)
                        for key, count in pieces))
  return dict(ann_id=ann['id'], part='body', joint_set=BODY_JOINT_SETS[layout], bbox=box,
              joints_2d=np.concatenate(joints), joints_2d_valid=np.concatenate(valid))


def crop_candidate(ann, label, source, crop):
  """Sample fields of one whole-body hand or face, or None when its flag says it is unlabelled.

  Returns fields with bbox (4,), joints_2d (K, 2), joints_2d_valid (K,); K = 21 or 68.
  """
  suffix, part, side, joint_set, kpts_key, count, box_key, flag_key = crop
  flag = require(ann, flag_key, source, label)
  if not isinstance(flag, (bool, int)):
    fail(source, label, flag_key, f'is {flag!r}, expected true or false')
  if not flag:
    return None
  box = numbers(require(ann, box_key, source, label), source, label, box_key, 4)
  joints, valid = keypoints(require(ann, kpts_key, source, label), source, label, kpts_key, count)
  return dict(ann_id=f'{ann["id"]}_{suffix}', parent_id=ann['id'], part=part, hand_side=side,
              joint_set=joint_set, bbox=box, joints_2d=joints, joints_2d_valid=valid)


def image_fields(image, image_root, source, dataset):
  """Sample fields every instance in one image shares: path, size (height, width), id."""
  size = image_size(image, source)
  return dict(dataset=dataset, image_path=os.path.join(str(image_root), str(image['file_name'])),
              image_size=size, image_id=image['id'])


def candidates(ann, label, source, layout, parts, min_keypoints, min_box_size):
  """(skip reason or None, Sample fields) for each sample one person annotation may give.

  Hand and face reasons carry their part as prefix ('hand_invalid', 'face_tiny_box').
  """
  if 'body' in parts:
    fields = body_candidate(ann, label, source, layout)
    yield skip_reason(fields['bbox'], fields['joints_2d_valid'], min_keypoints,
                      min_box_size), fields
  for crop in CROPS:
    part = crop[1]
    if part not in parts:
      continue
    fields = crop_candidate(ann, label, source, crop)
    if fields is None:
      yield f'{part}_invalid', None
      continue
    reason = skip_reason(fields['bbox'], fields['joints_2d_valid'], min_keypoints, min_box_size)
    yield (f'{part}_{reason}' if reason else None), fields


def read(annotation_path, image_root, *, layout=None, parts=None, min_keypoints=1,
         min_box_size=0.0, check_images=False, dataset='coco'):
  """Read a COCO person-keypoints or COCO-WholeBody file into samples.

  Every non-crowd person with at least `min_keypoints` labelled joints and a box wider and
  taller than `min_box_size` gives a body Sample: joint_set 'COCO_17' with joints_2d (17, 2),
  or for whole-body 'COCO_WHOLEBODY_133' with joints_2d (133, 2) (17 body + 6 foot + 68 face
  + 21 left hand + 21 right hand); joints_2d_valid is 1 where v > 0; ann_id is the
  annotation's 'id'. Whole-body persons also give, where the part's flag is true and the same
  keypoint and box tests pass, hand Samples (part 'hand', joint_set 'HAND_21', ann_id
  f'{id}_left' / f'{id}_right', bbox from lefthand_box / righthand_box) and a face Sample
  (part 'face', joint_set 'FACE_68', ann_id f'{id}_face', bbox face_box), each with
  parent_id = the person's id, even when the person's own body sample was skipped.
  Boxes are the file's xywh, unclipped. No camera: focal and princpt are None.

  Args:
    annotation_path: the JSON file, e.g. person_keypoints_train2017.json or
      coco_wholebody_train_v1.0.json.
    image_root: folder the images' file_name is relative to, e.g. <coco>/images/train2017.
    layout: 'person_keypoints', 'wholebody', or None to detect from the annotations.
    parts: subset of ('body', 'hand', 'face'); None means every part the layout has.
    min_keypoints: fewest labelled joints a sample needs (counted in its own joint set).
    min_box_size: boxes must be wider and taller than this, in pixels.
    check_images: skip samples whose image file is absent (off by default: stat-ing every
      image of a 100k-image set is slow on network disks).
    dataset: name written into every Sample.
  Returns:
    ReadResult; skipped reasons are 'crowd' (per annotation), 'no_keypoints', 'tiny_box',
    'missing_image', and for hands and faces 'hand_invalid', 'hand_no_keypoints', ...
  Raises:
    AnnotationError naming file, record and field for structurally malformed input.
    ValueError for options that do not fit the file.
  """
  source = str(annotation_path)
  images, annotations = coco_tables(load_json(source), source)
  layout = layout or detect_layout(annotations)
  if layout not in LAYOUTS:
    raise ValueError(f'layout {layout!r} is not one of {LAYOUTS}')
  available = PARTS if layout == 'wholebody' else ('body',)
  parts = available if parts is None else tuple(parts)
  if not set(parts) <= set(available):
    raise ValueError(f'{source}: parts {parts} asked for, but a {layout} file has only '
                     f'{available}')
  result = ReadResult(source=source, dataset=dataset)
  images_exist = ImageCheck(check_images)
  shared = {}  # image id -> fields common to its samples, built once per image
  for index, ann in enumerate(annotations):
    label = ann_label(ann, index)
    require(ann, 'id', source, label)
    image = image_of(ann, images, source, label)
    if ann.get('iscrowd', 0):
      result.skipped['crowd'] += 1
      continue
    if image['id'] not in shared:
      shared[image['id']] = image_fields(image, image_root, source, dataset)
    common = shared[image['id']]
    for reason, fields in candidates(ann, label, source, layout, parts, min_keypoints,
                                     min_box_size):
      if reason is None and images_exist.missing(common['image_path']):
        reason = 'missing_image'
      if reason is not None:
        result.skipped[reason] += 1
        continue
      result.samples.append(make_sample(source, **common, **fields))
  return result
