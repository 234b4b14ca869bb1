"""Reader for the FreiHAND training set (lmb-freiburg's release layout).

Files in `<root>/`, one list entry per annotated hand pose (N = 32560 in the release):
  training_xyz.json    (N, 21, 3) joints, camera space, metres, in the HAND_21 order (wrist,
                       thumb1..4, index1..4, middle1..4, ring1..4, pinky1..4; 1 = base, 4 = tip)
  training_K.json      (N, 3, 3) intrinsics
  training_mano.json   (N, 1, 61): 48 MANO pose (3 global + 15x3 finger axis-angle, no PCA,
                       relative to MANO's mean hand pose: the official viewer builds the model
                       with ncomps=45, flat_hand_mean=False) | 10 shape | 2 root uv | 1 scale.
                       The last three are NOT a translation: they place the middle-finger base
                       keypoint by back-projection, so `transl` needs a model forward pass and is
                       left out here; gt_vertices carries the placed mesh instead.
  training_verts.json  (N, 778, 3) MANO vertices, camera space, metres (optional)
Images `<root>/training/rgb/%08d.jpg`, 224 x 224: the 130240 images are 4 colour versions
(green screen, homogenised, sample, auto) of the N poses, image i + N * v showing pose i, so
image index j uses annotation j % N.

FreiHAND has right hands only.
"""

import os

import numpy as np

from neuralannot_jax.data import mocap
from neuralannot_jax.data.reading import ImageCheck
from neuralannot_jax.data.reading import ReadResult
from neuralannot_jax.data.reading import fail
from neuralannot_jax.data.reading import load_json_file
from neuralannot_jax.data.reading import numbers
from neuralannot_jax.data.sample import make_sample

NUM_POSES = 32560  # annotated poses in the release; every colour version repeats them
VERSIONS = ('gs', 'hom', 'sample', 'auto')  # colour versions, in image-index order
IMAGE_SIZE = (224, 224)
NUM_JOINTS, NUM_VERTS = 21, 778


def image_index(pose_index, version, num_poses=NUM_POSES):
  """Index of the image of annotated pose `pose_index` in colour version `version` (0..3)."""
  return pose_index + num_poses * version


def pose_index(image_index, num_poses=NUM_POSES):
  """Index into the annotation lists of image `image_index`: images repeat every `num_poses`."""
  return image_index % num_poses


def _version_number(version):
  if isinstance(version, str) and version in VERSIONS:
    return VERSIONS.index(version)
  if isinstance(version, (int, np.integer)) and 0 <= version < len(VERSIONS):
    return int(version)
  raise ValueError(f'FreiHAND version {version!r} is not one of 0..3 or {VERSIONS}')


def _list(path, required=True):
  """The top-level list of a FreiHAND json file, or None when optional and absent."""
  data = load_json_file(path, required)
  if data is not None and not isinstance(data, list):
    fail(path, 'file', 'top level', f'is a {type(data).__name__}, expected a list')
  return data


def mano_params(theta, source, label):
  """A (61,) training_mano.json entry -> {'global_orient' (3,), 'hand_pose' (45,),
  'betas' (10,)}; the trailing root uv (2) and scale (1) are not parameters of the model."""
  theta = numbers(theta, source, label, 'mano', 61)
  return {'global_orient': theta[:3], 'hand_pose': theta[3:48], 'betas': theta[48:58]}


def read(root, *, versions=(0,), check_images=False, vertices=True, box_margin=1.2,
         set_name='training'):
  """Read FreiHAND training annotations into right-hand Samples.

  Args:
    root: the folder holding training_*.json and training/rgb/.
    versions: colour versions to include, as numbers 0..3 or names from `VERSIONS`; the default
      (0,) has one sample per annotated pose, since the versions differ only in background.
    check_images: skip (as 'missing_image') samples whose image file is absent.
    vertices: attach training_verts.json as gt_vertices when present (about 1.5 GB of json
      in the release: turn off when only joints are needed).
    box_margin: the box is the square around the projected joints, its side the longer side of
      their tight box times this (FreiHAND boxes are not in the release; the images are crops
      centred on the hand, so a joint box is the honest GT box).
    set_name: file prefix; only 'training' has annotations.
  Returns:
    ReadResult: Samples with ann_id = image_id = the image index, part 'hand', hand_side
    'right', joint_set 'HAND_21', joints_3d (21, 3) metres, joints_2d (21, 2) projected with
    K's focal length and principal point (FreiHAND's K has no skew), gt_family 'mano'.
  Raises:
    AnnotationError naming the file, the annotation index and the field.
  """
  numbers_of = [_version_number(v) for v in versions]
  paths = {key: os.path.join(root, f'{set_name}_{key}.json')
           for key in ('xyz', 'K', 'mano', 'verts')}
  lists = {key: _list(paths[key]) for key in ('xyz', 'K', 'mano')}
  lists['verts'] = _list(paths['verts'], required=False) if vertices else None
  n = len(lists['xyz'])
  for key, values in lists.items():
    if values is not None and len(values) != n:
      fail(paths[key], 'file', 'length', f'{len(values)} entries, but {paths["xyz"]} has {n}')
  result = ReadResult(source=paths['xyz'], dataset='freihand')
  images_exist = ImageCheck(check_images)
  image_dir = os.path.join(root, set_name, 'rgb')
  for version in numbers_of:
    for index in range(n):
      image_id = image_index(index, version, n)
      label = f'annotation {index}'
      image_path = os.path.join(image_dir, f'{image_id:08d}.jpg')
      if images_exist.missing(image_path):
        result.skipped['missing_image'] += 1
        continue
      joints_3d = numbers(lists['xyz'][index], paths['xyz'], label, 'xyz',
                          3 * NUM_JOINTS).reshape(NUM_JOINTS, 3).astype(np.float64)
      k = numbers(lists['K'][index], paths['K'], label, 'K', 9).reshape(3, 3).astype(np.float64)
      params = mano_params(lists['mano'][index], paths['mano'], label)
      verts = None
      if lists['verts'] is not None:
        verts = numbers(lists['verts'][index], paths['verts'], label, 'verts',
                        3 * NUM_VERTS).reshape(NUM_VERTS, 3)
      if np.any(joints_3d[:, 2] <= mocap.MIN_DEPTH):
        result.skipped['behind_camera'] += 1
        continue
      focal, princpt = k[[0, 1], [0, 1]], k[:2, 2]
      joints_2d = mocap.project(joints_3d, focal, princpt)
      box = mocap.points_box(joints_2d, np.ones(NUM_JOINTS), box_margin, square=True)
      if box[2] <= 0 or box[3] <= 0:
        result.skipped['zero_size_box'] += 1
        continue
      result.samples.append(make_sample(
          paths['xyz'], dataset='freihand', ann_id=image_id, image_id=image_id,
          image_path=image_path, bbox=box, part='hand', hand_side='right', joint_set='HAND_21',
          joints_2d=joints_2d, joints_3d=joints_3d, focal=focal, princpt=princpt,
          image_size=IMAGE_SIZE, gt_family='mano', gt_params=params, gt_vertices=verts))
  return result
