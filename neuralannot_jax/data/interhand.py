"""Reader for InterHand2.6M (facebookresearch's release layout): one hand Sample per hand.

Files in `<root>/annotations/<split>/`:
  InterHand2.6M_<split>_data.json      COCO-style: images {id, file_name, width, height,
                                       capture, camera, frame_idx, seq_name}, annotations
                                       {id, image_id, bbox (both hands), joint_valid (42),
                                       hand_type 'right' | 'left' | 'interacting',
                                       hand_type_valid}
  InterHand2.6M_<split>_camera.json    {str(capture): {'campos': {str(cam): (3,) mm},
                                       'camrot': {str(cam): (3,3)}, 'focal': {str(cam): (2,)},
                                       'princpt': {str(cam): (2,)}}}  (parameter, then camera)
  InterHand2.6M_<split>_joint_3d.json  {str(capture): {str(frame_idx): {world_coord (42,3) mm,
                                       joint_valid, hand_type, hand_type_valid}}}
  InterHand2.6M_<split>_MANO_NeuralAnnot.json  optional: {str(capture): {str(frame_idx):
                                       {'right': None | {pose (48), shape (10), trans (3) world
                                       m}, 'left': ...}}}
Images `<root>/images/<split>/<file_name>`.

Camera space is x_cam = camrot @ (x_world - campos) (the release's world2cam), then / 1000.
The 42 joints are right hand 0..20 then left hand 21..41, and each hand is listed tips first
with the wrist last: thumb4 (tip), thumb3, thumb2, thumb1, index4..1, middle4..1, ring4..1,
pinky4..1, wrist. Samples use HAND_21 (wrist, thumb1..4, index1..4, ..., pinky1..4), so every
hand is reordered by `TO_HAND_21`.
"""

import os

import numpy as np

from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import mocap
from neuralannot_jax.data.reading import ImageCheck
from neuralannot_jax.data.reading import ReadResult
from neuralannot_jax.data.reading import ann_label
from neuralannot_jax.data.reading import coco_tables
from neuralannot_jax.data.reading import fail
from neuralannot_jax.data.reading import image_of
from neuralannot_jax.data.reading import load_json
from neuralannot_jax.data.reading import numbers
from neuralannot_jax.data.reading import require
from neuralannot_jax.data.sample import make_sample

NUM_JOINTS = 21
HAND_TYPES = ('right', 'left', 'interacting')
FIRST_JOINT = joint_sets.INTERHAND_HAND_OFFSET
# TO_HAND_21[i] = the InterHand index (within one hand) of HAND_21 joint i (wrist last there).
TO_HAND_21 = np.array(joint_sets.INTERHAND_TO_HAND_21)


def hands_in(hand_type, source, label):
  """The sides an annotation's hand_type says are in the image."""
  if hand_type not in HAND_TYPES:
    fail(source, label, 'hand_type', f'{hand_type!r} is not one of {HAND_TYPES}')
  return ('right', 'left') if hand_type == 'interacting' else (hand_type,)


def camera(cameras, capture, cam, source, label):
  """(R (3,3), campos (3,) mm, focal (2,), princpt (2,)) float64 of one camera of a capture."""
  if str(capture) not in cameras:
    fail(source, label, 'camera', f'no capture {str(capture)!r}')
  record = cameras[str(capture)]
  values = []
  for name, size in (('camrot', 9), ('campos', 3), ('focal', 2), ('princpt', 2)):
    table = require(record, name, source, f'capture {str(capture)!r}')
    if not isinstance(table, dict) or str(cam) not in table:
      fail(source, label, name, f'no camera {str(cam)!r} in capture {str(capture)!r}')
    values.append(numbers(table[str(cam)], source, label, name, size).astype(np.float64))
  rotation, campos, focal, princpt = values
  return rotation.reshape(3, 3), campos, focal, princpt


def frame_record(joints, capture, frame, source, label):
  """The joint_3d.json record of one frame."""
  record = joints.get(str(capture), {}) if isinstance(joints, dict) else {}
  if not isinstance(record, dict) or str(frame) not in record:
    fail(source, label, 'joint_3d', f'no entry [{str(capture)!r}][{str(frame)!r}]')
  return record[str(frame)]


def mano_fit(fits, capture, frame, side):
  """The world-frame MANO fit of one hand, or None (the release stores None where the fit
  failed, and has no entry for some frames)."""
  value = fits
  for key in (str(capture), str(frame), side):
    if not isinstance(value, dict) or key not in value:
      return None
    value = value[key]
  return value


def mano_params(fit, rotation, t_metres, rest_root, source, label):
  """{'global_orient' (3,), 'hand_pose' (45,), 'betas' (10,)[, 'transl' (3,)]}, camera space.

  hand_pose is axis-angle relative to MANO's mean hand pose (the release fits with
  flat_hand_mean=False); 'transl' needs the rest root joint, see `mocap.params_to_camera`.
  """
  pose = numbers(require(fit, 'pose', source, label), source, label, 'mano.pose', 48)
  betas = numbers(require(fit, 'shape', source, label), source, label, 'mano.shape', 10)
  trans = numbers(require(fit, 'trans', source, label), source, label, 'mano.trans', 3)
  root = None if rest_root is None else rest_root(betas)
  orient, transl = mocap.params_to_camera(pose[:3], trans, rotation, t_metres, root)
  params = {'global_orient': orient, 'hand_pose': pose[3:], 'betas': betas}
  if transl is not None:
    params['transl'] = transl
  return params


def hand_arrays(world_mm, joint_valid, side, cam):
  """One hand's camera-space joints, projections and validity, in HAND_21 order.

  Args:
    world_mm: (42, 3) both hands, world millimetres.
    joint_valid: (42,) 1 where annotated.
    side: 'right' or 'left'.
    cam: (R, campos mm, focal, princpt).
  Returns:
    (joints_3d (21, 3) metres, joints_2d (21, 2) pixels, valid (21,)); invalid joints are
    zeros, since their stored coordinates are not measurements. A hand whose wrist is not
    valid has no valid joint: like the release's loader, its root-relative 3D pose is unknown.
  """
  rotation, campos, focal, princpt = cam
  order = FIRST_JOINT[side] + TO_HAND_21
  valid = (joint_valid[order] > 0) & (joint_valid[order[0]] > 0)
  joints_3d = mocap.world_to_camera(world_mm[order] - campos, rotation, np.zeros(3)) / 1000.0
  joints_3d[~valid] = 0.0
  joints_2d = mocap.project(joints_3d, focal, princpt)
  return joints_3d, joints_2d, valid.astype(np.float32)


def read(root, *, split='train', check_images=False, mano=True, rest_root=None,
         box_margin=1.2, annot_dir=None, image_dir=None):
  """Read InterHand2.6M into hand Samples, one per hand that an annotation's hand_type names.

  Args:
    root: the InterHand2.6M folder holding `annotations/` and `images/`.
    split: 'train', 'val' or 'test'.
    check_images: skip (as 'missing_image') annotations whose image file is absent.
    mano: attach the NeuralAnnot MANO fits when the file exists (gt_family 'mano').
    rest_root: {'right': fn, 'left': fn}, fn: betas (10,) -> (3,) rest-pose wrist joint of
      that side's MANO model in metres (`mocap.rest_root_of(model)`); needed for a camera-frame
      'transl', which is left out without it.
    box_margin: each hand's box is the square around its valid projected joints, side times
      this (the file's box covers both hands, so it cannot be a hand's box).
    annot_dir, image_dir: override `root/annotations/<split>` and `root/images/<split>`.
  Returns:
    ReadResult; samples have ann_id f'{id}_right' / f'{id}_left', parent_id the annotation id,
    part 'hand', hand_side, joint_set 'HAND_21', joints_3d (21, 3) metres, joints_2d (21, 2).
    hand_type_valid is not used: the joints' own validity decides what supervises.
    Skipped hands count as 'no_valid_joints', 'behind_camera', 'zero_size_box',
    'missing_image'.
  Raises:
    AnnotationError naming file, record and field for a missing file or malformed record.
  """
  annot_dir = annot_dir or os.path.join(root, 'annotations', split)
  image_dir = image_dir or os.path.join(root, 'images', split)
  path = {key: os.path.join(annot_dir, f'InterHand2.6M_{split}_{key}.json')
          for key in ('data', 'camera', 'joint_3d', 'MANO_NeuralAnnot')}
  for key in ('data', 'camera', 'joint_3d'):
    if not os.path.isfile(path[key]):
      fail(path[key], 'file', 'path', 'missing')
  images, anns = coco_tables(load_json(path['data']), path['data'])
  cameras, joints = load_json(path['camera']), load_json(path['joint_3d'])
  fits = None
  if mano and os.path.isfile(path['MANO_NeuralAnnot']):
    fits = load_json(path['MANO_NeuralAnnot'])
  result = ReadResult(source=path['data'], dataset='interhand26m')
  images_exist = ImageCheck(check_images)
  for index, ann in enumerate(anns):
    label = ann_label(ann, index)
    ann_id = require(ann, 'id', path['data'], label)
    image = image_of(ann, images, path['data'], label)
    image_label = f'image {image["id"]!r}'
    capture, cam, frame = (require(image, key, path['data'], image_label)
                           for key in ('capture', 'camera', 'frame_idx'))
    sides = hands_in(require(ann, 'hand_type', path['data'], label), path['data'], label)
    image_path = os.path.join(image_dir, image['file_name'])
    if images_exist.missing(image_path):
      result.skipped['missing_image'] += len(sides)
      continue
    record = frame_record(joints, capture, frame, path['joint_3d'], label)
    world = numbers(require(record, 'world_coord', path['joint_3d'], label), path['joint_3d'],
                    label, 'world_coord', 6 * NUM_JOINTS).reshape(2 * NUM_JOINTS, 3)
    if 'joint_valid' in ann:
      joint_valid = numbers(ann['joint_valid'], path['data'], label, 'joint_valid', 42)
    else:  # some conversions keep validity only in the joint file
      joint_valid = numbers(require(record, 'joint_valid', path['joint_3d'], label),
                            path['joint_3d'], label, 'joint_valid', 42)
    cam_params = camera(cameras, capture, cam, path['camera'], label)
    rotation, campos = cam_params[:2]
    for side in sides:
      joints_3d, joints_2d, valid = hand_arrays(world, joint_valid, side, cam_params)
      if not valid.any():
        result.skipped['no_valid_joints'] += 1
        continue
      if np.any(joints_3d[valid > 0, 2] <= mocap.MIN_DEPTH):
        result.skipped['behind_camera'] += 1
        continue
      box = mocap.points_box(joints_2d, valid, box_margin, square=True)
      box = mocap.clip_box(box, image['width'], image['height'])
      if box[2] <= 0 or box[3] <= 0:
        result.skipped['zero_size_box'] += 1
        continue
      gt = {}
      fit = None if fits is None else mano_fit(fits, capture, frame, side)
      if fit is not None:
        fit_label = f'{label} ({side} hand, capture {capture}, frame {frame})'
        roots = rest_root or {}
        params = mano_params(fit, rotation, -rotation @ campos / 1000.0, roots.get(side),
                             path['MANO_NeuralAnnot'], fit_label)
        gt = {'gt_family': 'mano', 'gt_params': params}
      result.samples.append(make_sample(
          path['data'], dataset='interhand26m', ann_id=f'{ann_id}_{side}', parent_id=ann_id,
          image_id=image['id'], image_path=image_path, bbox=box, part='hand', hand_side=side,
          joint_set='HAND_21', joints_2d=joints_2d, joints_2d_valid=valid, joints_3d=joints_3d,
          joints_3d_valid=valid, focal=cam_params[2], princpt=cam_params[3],
          image_size=(image['height'], image['width']), **gt))
  return result
