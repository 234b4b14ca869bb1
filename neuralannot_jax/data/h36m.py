"""Readers for Human3.6M and MPI-INF-3DHP in the json layout of the NeuralAnnot / I2L-MeshNet
releases (MoCap mode: every sample carries GT 3D joints in camera space).

Human3.6M, `<root>/annotations/`, one set of files per subject S:
  Human36M_subject{S}_data.json      COCO-style: images {id, file_name, height, width, subject,
                                     action_idx, subaction_idx, frame_idx, cam_idx},
                                     annotations {id, image_id, bbox (xywh)}
  Human36M_subject{S}_camera.json    {str(cam_idx): {R (3,3), t (3,) mm, f (2,), c (2,)}}
  Human36M_subject{S}_joint_3d.json  {str(action): {str(subaction): {str(frame): (17,3) world mm}}}
  Human36M_subject{S}_SMPL_NeuralAnnot.json (or the older _smpl_param.json), optional:
                                     same nesting -> {pose (72), shape (10), trans (3) world m}
  images: <root>/images/<file_name>.

MPI-INF-3DHP, all in `<root>/` (the release's `data` folder):
  MPI-INF-3DHP_1k.json               COCO-style: images {id, file_name, height, width,
                                     subject_idx, seq_idx, frame_idx, cam_idx}, annotations
  MPI-INF-3DHP_camera_1k.json        {str(subject): {str(seq): {str(cam): {R, t mm, focal,
                                     princpt}}}}
  MPI-INF-3DHP_joint_3d.json         {str(subject): {str(seq): {str(frame): (17,3) world mm}}}
  MPI-INF-3DHP_SMPL_NeuralAnnot.json optional, nesting as the joints -> {pose, shape, trans}
  images: <root>/images_1k/S{subject}/Seq{seq}/imageSequence/<file_name>.

Both apply the extrinsics as x_cam = R @ x_world + t with t in millimetres (the loaders'
world2cam), then divide by 1000. 2D joints are the projection of the camera-space joints with
the file's focal length and principal point, as the loaders compute them.
"""

import os

import numpy as np

from neuralannot_jax.data import mocap
from neuralannot_jax.data.reading import ImageCheck
from neuralannot_jax.data.reading import ReadResult
from neuralannot_jax.data.reading import ann_label
from neuralannot_jax.data.reading import coco_tables
from neuralannot_jax.data.reading import fail
from neuralannot_jax.data.reading import image_of
from neuralannot_jax.data.reading import load_json_file
from neuralannot_jax.data.reading import numbers
from neuralannot_jax.data.reading import require
from neuralannot_jax.data.sample import make_sample

NUM_JOINTS = 17
TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
H36M_SMPL_NAMES = ('Human36M_subject{}_SMPL_NeuralAnnot.json', 'Human36M_subject{}_smpl_param.json')
MPI_SMPL_NAME = 'MPI-INF-3DHP_SMPL_NeuralAnnot.json'


def nested(table, keys, source, label, field):
  """table[str(k0)][str(k1)]...; AnnotationError naming `field` and the key that is missing."""
  value = table
  for depth, key in enumerate(keys):
    if not isinstance(value, dict) or str(key) not in value:
      path = ''.join(f'[{k!r}]' for k in map(str, keys[:depth + 1]))
      fail(source, label, field, f'no entry {path}')
    value = value[str(key)]
  return value


def nested_or_none(table, keys):
  """table[str(k0)][str(k1)]... or None: model fits are missing for some frames."""
  value = table
  for key in keys:
    if not isinstance(value, dict) or str(key) not in value:
      return None
    value = value[str(key)]
  return value


def integer(record, key, source, label):
  """record[key] as an int (json ints, or floats/strings holding one), else AnnotationError."""
  value = require(record, key, source, label)
  try:
    number = int(value)
    if number == float(value):
      return number
  except (TypeError, ValueError):
    pass
  fail(source, label, key, f'{value!r} is not an integer')


def camera(record, source, label, names):
  """(R (3,3), t (3,) mm, focal (2,), princpt (2,)) float64 from a camera record.

  `names` are the record's keys for the four, which differ between the two datasets.
  """
  arrays = [numbers(require(record, name, source, label), source, label, name, size)
            for name, size in zip(names, (9, 3, 2, 2))]
  rotation, t, focal, princpt = (a.astype(np.float64) for a in arrays)
  return rotation.reshape(3, 3), t, focal, princpt


def smpl_params(fit, rotation, t_metres, rest_root, source, label):
  """A world-frame SMPL fit {pose (72), shape (10), trans (3)} in camera space.

  Returns:
    {'global_orient' (3,), 'body_pose' (69,), 'betas' (10,), 'transl' (3,)}; 'transl' only
    when `rest_root` (betas -> (3,) rest root joint, metres) is given, because the root joint
    the model rotates about depends on the model file (see `mocap.params_to_camera`).
  """
  pose = numbers(require(fit, 'pose', source, label), source, label, 'smpl.pose', 72)
  betas = numbers(require(fit, 'shape', source, label), source, label, 'smpl.shape', 10)
  trans = numbers(require(fit, 'trans', source, label), source, label, 'smpl.trans', 3)
  root = None if rest_root is None else rest_root(betas)
  orient, transl = mocap.params_to_camera(pose[:3], trans, rotation, t_metres, root)
  params = {'global_orient': orient, 'body_pose': pose[3:], 'betas': betas}
  if transl is not None:
    params['transl'] = transl
  return params


def body_sample(*, dataset, source, ann, image, image_path, joint_set, world_mm, cam, fit,
                fit_source, rest_root, label, result):
  """One Sample from world joints and a camera, or None after counting why it was skipped.

  Args:
    world_mm: (17, 3) world joints, millimetres.
    cam: (R, t mm, focal, princpt) from `camera`.
    fit: the SMPL fit record of this frame, or None; fit_source: its file, named in errors.
  """
  rotation, t_mm, focal, princpt = cam
  joints_3d = mocap.world_to_camera(world_mm, rotation, t_mm) / 1000.0
  if np.any(joints_3d[:, 2] <= mocap.MIN_DEPTH):
    result.skipped['behind_camera'] += 1
    return None
  joints_2d = mocap.project(joints_3d, focal, princpt)
  height, width = image['height'], image['width']
  if 'bbox' in ann:
    box = numbers(ann['bbox'], source, label, 'bbox', 4).astype(np.float64)
  else:
    # The release always has a box; a converted file that dropped it gets the joints' box.
    box = mocap.points_box(joints_2d, np.ones(NUM_JOINTS))
  box = mocap.clip_box(box, width, height)
  if box[2] <= 0 or box[3] <= 0:
    result.skipped['zero_size_box'] += 1
    return None
  gt = {}
  if fit is not None:
    gt = {'gt_family': 'smpl',
          'gt_params': smpl_params(fit, rotation, t_mm / 1000.0, rest_root, fit_source, label)}
  return make_sample(
      source, dataset=dataset, ann_id=ann['id'], image_id=image['id'], image_path=image_path,
      bbox=box, part='body', joint_set=joint_set, joints_2d=joints_2d,
      joints_3d=joints_3d, focal=focal, princpt=princpt, image_size=(height, width), **gt)


def mocap_extras(frame_key, cam_idx, cam):
  """The `ReadResult.extras` of a MoCap sample: where its frame sits in the released pseudo-GT
  files and its world -> camera extrinsics, for writing world-frame outputs.

  Args:
    frame_key: Human3.6M (subject, action, subaction, frame), MPI-INF-3DHP (subject, seq,
      frame): the nesting of the released files.
    cam_idx: the camera number.
    cam: (R (3, 3), t (3,) mm, focal, princpt) from `camera`.
  Returns:
    {'frame_key': [ints], 'camera': int, 'R': 3x3 list, 't_mm': 3 list} (json data).
  """
  rotation, t_mm = cam[0], cam[1]
  return {'frame_key': [int(k) for k in frame_key], 'camera': int(cam_idx),
          'R': np.asarray(rotation, np.float64).tolist(),
          't_mm': np.asarray(t_mm, np.float64).tolist()}


def _check_stride(frame_stride):
  if not isinstance(frame_stride, int) or frame_stride < 1:
    raise ValueError(f'frame_stride must be a positive integer, got {frame_stride!r}')


_load = load_json_file


def read(root, *, subjects=TRAIN_SUBJECTS, frame_stride=1, check_images=False, smpl=True,
         rest_root=None, annot_dir=None, image_dir=None):
  """Read Human3.6M subjects into body Samples with camera-space 3D joints.

  Args:
    root: the Human3.6M folder holding `annotations/` and `images/`.
    subjects: subject numbers to read (default the usual training split 1, 5, 6, 7, 8).
    frame_stride: keep frames whose frame_idx is a multiple of this (the usual training
      protocol keeps every 5th; the default 1 keeps all). Dropped frames count as
      'frame_stride' in `skipped`.
    check_images: skip (as 'missing_image') annotations whose image file is absent.
    smpl: attach the SMPL fits when a subject's fit file exists (gt_family 'smpl').
    rest_root: betas (10,) -> (3,) rest-pose root joint of the SMPL model, metres (e.g.
      `mocap.rest_root_of(model)`); needed for a camera-frame 'transl', left out without it.
    annot_dir, image_dir: override `root/annotations` and `root/images`.
  Returns:
    ReadResult with one Sample per annotation: joint_set 'H36M_17' (the file's order),
    joints_3d (17, 3) metres, joints_2d (17, 2) pixels, focal, princpt, bbox from the file;
    extras[ann_id] from `mocap_extras` (frame_key (subject, action, subaction, frame)).
  Raises:
    AnnotationError naming file, record and field for a missing file or malformed record.
  """
  _check_stride(frame_stride)
  annot_dir = annot_dir or os.path.join(root, 'annotations')
  image_dir = image_dir or os.path.join(root, 'images')
  result = ReadResult(source=annot_dir, dataset='h36m')
  images_exist = ImageCheck(check_images)
  for subject in subjects:
    prefix = os.path.join(annot_dir, f'Human36M_subject{subject}')
    data_path, camera_path, joint_path = (
        f'{prefix}_{name}.json' for name in ('data', 'camera', 'joint_3d'))
    images, anns = coco_tables(_load(data_path), data_path)
    cameras, joints = _load(camera_path), _load(joint_path)
    fits, fit_path = None, None
    for name in H36M_SMPL_NAMES if smpl else ():
      fit_path = os.path.join(annot_dir, name.format(subject))
      fits = _load(fit_path, required=False)
      if fits is not None:
        break
    for index, ann in enumerate(anns):
      label = ann_label(ann, index)
      require(ann, 'id', data_path, label)
      image = image_of(ann, images, data_path, label)
      image_label = f'image {image["id"]!r}'
      keys = [integer(image, key, data_path, image_label)
              for key in ('action_idx', 'subaction_idx', 'frame_idx', 'cam_idx')]
      if keys[2] % frame_stride != 0:
        result.skipped['frame_stride'] += 1
        continue
      image_path = os.path.join(image_dir, image['file_name'])
      if images_exist.missing(image_path):
        result.skipped['missing_image'] += 1
        continue
      cam = camera(nested(cameras, keys[3:], camera_path, label, 'camera'), camera_path,
                   f'camera {keys[3]!r}', ('R', 't', 'f', 'c'))
      world = numbers(nested(joints, keys[:3], joint_path, label, 'joint_3d'), joint_path,
                      label, 'joint_3d', 3 * NUM_JOINTS).reshape(NUM_JOINTS, 3)
      fit = None if fits is None else nested_or_none(fits, keys[:3])
      sample = body_sample(
          dataset='h36m', source=data_path, ann=ann, image=image, image_path=image_path,
          joint_set='H36M_17', world_mm=world, cam=cam, fit=fit, rest_root=rest_root,
          fit_source=fit_path, label=label, result=result)
      if sample is not None:
        result.samples.append(sample)
        result.extras[sample.ann_id] = mocap_extras((subject,) + tuple(keys[:3]), keys[3], cam)
  return result


def read_mpi_inf_3dhp(root, *, frame_stride=1, check_images=False, smpl=True, rest_root=None,
                      image_dir=None):
  """Read MPI-INF-3DHP (the NeuralAnnot json release) into body Samples.

  Args:
    root: the folder holding MPI-INF-3DHP_1k.json, _camera_1k.json, _joint_3d.json.
    frame_stride: keep frames whose frame_idx is a multiple of this (the Hand4Whole loader
      keeps every 3rd); default 1 keeps all.
    check_images, smpl, rest_root: as for `read` (fits in MPI-INF-3DHP_SMPL_NeuralAnnot.json).
    image_dir: override `root/images_1k`.
  Returns:
    ReadResult of body Samples with joint_set 'MPI_INF_3DHP_17' (the file's order);
    extras[ann_id] from `mocap_extras` (frame_key (subject, seq, frame)).
  """
  _check_stride(frame_stride)
  image_dir = image_dir or os.path.join(root, 'images_1k')
  data_path = os.path.join(root, 'MPI-INF-3DHP_1k.json')
  camera_path = os.path.join(root, 'MPI-INF-3DHP_camera_1k.json')
  joint_path = os.path.join(root, 'MPI-INF-3DHP_joint_3d.json')
  result = ReadResult(source=data_path, dataset='mpi_inf_3dhp')
  images_exist = ImageCheck(check_images)
  images, anns = coco_tables(_load(data_path), data_path)
  cameras, joints = _load(camera_path), _load(joint_path)
  fit_path = os.path.join(root, MPI_SMPL_NAME)
  fits = _load(fit_path, required=False) if smpl else None
  for index, ann in enumerate(anns):
    label = ann_label(ann, index)
    require(ann, 'id', data_path, label)
    image = image_of(ann, images, data_path, label)
    image_label = f'image {image["id"]!r}'
    subject, seq, frame, cam_idx = [integer(image, key, data_path, image_label)
                                    for key in ('subject_idx', 'seq_idx', 'frame_idx', 'cam_idx')]
    if frame % frame_stride != 0:
      result.skipped['frame_stride'] += 1
      continue
    image_path = os.path.join(image_dir, f'S{subject}', f'Seq{seq}', 'imageSequence',
                              image['file_name'])
    if images_exist.missing(image_path):
      result.skipped['missing_image'] += 1
      continue
    cam = camera(nested(cameras, (subject, seq, cam_idx), camera_path, label, 'camera'),
                 camera_path, f'camera {subject}/{seq}/{cam_idx}', ('R', 't', 'focal', 'princpt'))
    world = numbers(nested(joints, (subject, seq, frame), joint_path, label, 'joint_3d'),
                    joint_path, label, 'joint_3d', 3 * NUM_JOINTS).reshape(NUM_JOINTS, 3)
    fit = None if fits is None else nested_or_none(fits, (subject, seq, frame))
    sample = body_sample(
        dataset='mpi_inf_3dhp', source=data_path, ann=ann, image=image, image_path=image_path,
        joint_set='MPI_INF_3DHP_17', world_mm=world, cam=cam, fit=fit, rest_root=rest_root,
        fit_source=fit_path, label=label, result=result)
    if sample is not None:
      result.samples.append(sample)
      result.extras[sample.ann_id] = mocap_extras((subject, seq, frame), cam_idx, cam)
  return result
