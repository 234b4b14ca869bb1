"""Reader of 3DPW in the COCO-style JSON layout of the I2L-MeshNet / NeuralAnnot code.

The layout, as mks0601/I2L-MeshNet_RELEASE and mks0601/Hand4Whole_RELEASE (data/PW3D/PW3D.py)
read 3DPW_{train,validation,test}.json, and hongsukchoi/3DCrowdNet_RELEASE (data/PW3D/PW3D.py)
read its 3DPW_latest_*.json variant:

- 'images': {id, file_name, sequence, width, height, cam_param: {focal [fx, fy],
  princpt [cx, cy]}} in pixels; the file is <imageFiles>/<sequence>/<file_name>.
- 'annotations': {id, image_id, bbox [x, y, w, h] pixels (tight around the person),
  smpl_param: {pose (72,) axis-angle, shape (10,), trans (3,) metres, gender}}. The SMPL
  parameters are already in the image's camera frame: the loaders feed them straight to a
  gendered SMPL layer and compare the mesh in camera space, with no extrinsics.
- The '_latest' files also carry person_id and openpose_result, 18 OpenPose-order joints
  [x, y, confidence] * 18 from a detector.
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
from neuralannot_jax.data.reading import load_json
from neuralannot_jax.data.reading import numbers
from neuralannot_jax.data.reading import require
from neuralannot_jax.data.sample import make_sample

IMAGE_KEYS = ('id', 'file_name', 'sequence', 'height', 'width', 'cam_param')
OPENPOSE_JOINT_SET = 'OPENPOSE_18'
OPENPOSE_JOINTS = ('Nose', 'Neck', 'R_Shoulder', 'R_Elbow', 'R_Wrist', 'L_Shoulder', 'L_Elbow',
                   'L_Wrist', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'R_Eye',
                   'L_Eye', 'R_Ear', 'L_Ear')
GENDERS = {'m': 'male', 'male': 'male', 'f': 'female', 'female': 'female',
           'n': 'neutral', 'neutral': 'neutral'}


def camera(image, source):
  """(focal (2,), princpt (2,)) pixels from an image record's cam_param."""
  label = f'image {image["id"]!r}'
  cam = image['cam_param']
  return tuple(numbers(require(cam, key, source, label, f'cam_param.{key}'), source, label,
                       f'cam_param.{key}', 2) for key in ('focal', 'princpt'))


def image_fields(image, image_root, source, dataset):
  """Fields all people in one frame share: path, size (height, width), id, camera."""
  size = image_size(image, source)
  focal, princpt = camera(image, source)
  path = os.path.join(str(image_root), str(image['sequence']), str(image['file_name']))
  return dict(dataset=dataset, image_path=path, image_size=size, image_id=image['id'],
              focal=focal, princpt=princpt)


def smpl_params(ann, label, source):
  """(smplx-style GT parameters, gender) of one annotation.

  Returns ({'global_orient': (3,), 'body_pose': (69,), 'betas': (10,), 'transl': (3,)}, camera
  space, metres and axis-angle; gender 'male', 'female' or 'neutral').
  """
  smpl = require(ann, 'smpl_param', source, label)

  def get(key, size):
    field = f'smpl_param.{key}'
    return numbers(require(smpl, key, source, label, field), source, label, field, size)

  pose, shape, trans = get('pose', 72), get('shape', 10), get('trans', 3)
  gender = require(smpl, 'gender', source, label, 'smpl_param.gender')
  if str(gender).lower() not in GENDERS:
    fail(source, label, 'smpl_param.gender', f'{gender!r} is not one of {sorted(GENDERS)}')
  params = {'global_orient': pose[:3], 'body_pose': pose[3:], 'betas': shape, 'transl': trans}
  return params, GENDERS[str(gender).lower()]


def openpose_joints(ann, label, source, threshold):
  """(joints_2d (18, 2), joints_2d_valid (18,) 1 where confidence > threshold), or (None, None).

  Records without a detection (no or an empty openpose_result) give (None, None).
  """
  value = ann.get('openpose_result')
  if value is None or len(value) == 0:
    return None, None
  flat = numbers(value, source, label, 'openpose_result', 3 * len(OPENPOSE_JOINTS))
  flat = flat.reshape(len(OPENPOSE_JOINTS), 3)
  return flat[:, :2].copy(), (flat[:, 2] > threshold).astype(np.float32)


def read(annotation_path, image_root, *, min_box_size=0.0, check_images=False, openpose=False,
         openpose_threshold=0.05, dataset='3dpw'):
  """Read a 3DPW JSON file (3DPW_train.json, ...) into body samples with GT SMPL.

  Each annotation gives a body Sample with gt_family 'smpl', gt_params {'global_orient' (3,),
  'body_pose' (69,), 'betas' (10,), 'transl' (3,)} in the camera frame (metres, axis-angle),
  focal and princpt (2,) from the image's cam_param, bbox the file's tight xywh box. 3D joints
  are not in the file (they follow from gt_params through a SMPL model later), so joints_3d
  is None. The files carry no GT 2D joints either: joints_2d is None unless `openpose` is set
  and the record has an OpenPose detection ('_latest' files), then joint_set 'OPENPOSE_18'
  with joints_2d (18, 2). Those are a detector's output, not labels, hence opt-in.
  The SMPL gender is the Sample's gt_gender; result.extras[ann_id] holds 'sequence' and,
  where the file has it, 'person_id'.

  Args:
    annotation_path: the JSON file.
    image_root: the 3DPW imageFiles folder; images are <image_root>/<sequence>/<file_name>.
    min_box_size: boxes must be wider and taller than this, in pixels, else 'tiny_box'.
    check_images: skip (as 'missing_image') samples whose image file is absent.
    openpose: use openpose_result as joints_2d where present.
    openpose_threshold: a detected joint is valid when its confidence exceeds this (the
      3DCrowdNet loader's 0.05).
    dataset: name written into every Sample.
  Returns:
    ReadResult.
  Raises:
    AnnotationError naming file, record and field for structurally malformed input.
  """
  source = str(annotation_path)
  images, annotations = coco_tables(load_json(source), source, IMAGE_KEYS)
  result = ReadResult(source=source, dataset=dataset)
  images_exist = ImageCheck(check_images)
  shared = {}  # image id -> fields common to its samples, built once per frame
  for index, ann in enumerate(annotations):
    label = ann_label(ann, index)
    ann_id = require(ann, 'id', source, label)
    image = image_of(ann, images, source, label)
    if image['id'] not in shared:
      shared[image['id']] = image_fields(image, image_root, source, dataset)
    common = shared[image['id']]
    box = numbers(require(ann, 'bbox', source, label), source, label, 'bbox', 4)
    params, gender = smpl_params(ann, label, source)
    joints, valid = (openpose_joints(ann, label, source, openpose_threshold) if openpose
                     else (None, None))
    if not box_is_usable(box, min_box_size):
      result.skipped['tiny_box'] += 1
      continue
    if images_exist.missing(common['image_path']):
      result.skipped['missing_image'] += 1
      continue
    result.samples.append(make_sample(
        source, **common, ann_id=ann_id, bbox=box, part='body',
        joint_set=OPENPOSE_JOINT_SET if joints is not None else '',
        joints_2d=joints, joints_2d_valid=valid, gt_family='smpl', gt_gender=gender,
        gt_params=params))
    extra = {'sequence': image['sequence']}
    if 'person_id' in ann:
      extra['person_id'] = ann['person_id']
    result.extras[ann_id] = extra
  return result
