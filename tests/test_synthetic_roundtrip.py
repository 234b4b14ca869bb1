"""The synthetic sets, read back through the real readers, give back their ground truth.

The generator and the readers were written independently; here the only link between
them is the official file layout. The GT SMPL parameters (camera space) are run through
the body model and mapped to each dataset's joint set by name, then compared with what
the readers produce.
"""

import json
import os
import re

import numpy as np
import pytest

import body_models
from neuralannot_jax.data import coco
from neuralannot_jax.data import h36m
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import mocap
from neuralannot_jax.data import synthetic


@pytest.fixture(scope='module')
def dataset(model_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp('synthetic_set')
  synthetic.make_dataset(out, model_dir, num_images=6, size=96, seed=3,
                         kinds=('coco', 'h36m'), progress=False)
  return out


@pytest.fixture(scope='module')
def smpl(model_dir):
  return body_models.load(model_dir, 'smpl')


def _gt_joints(smpl, entry, joint_set, regressor=None):
  """GT SMPL of one annotation -> (joints (K, 3) camera space, valid (K,)) in `joint_set`
  (read by `regressor` (K, V) when given)."""
  p = entry['smpl_param']
  pose = np.asarray(p['pose'], np.float32)
  out = smpl(global_orient=pose[None, :3], body_pose=pose[None, 3:],
             betas=np.asarray(p['shape'], np.float32)[None],
             transl=np.asarray(p['trans'], np.float32)[None])
  mapping = joint_sets.model_joint_mapping('smpl', joint_set, regressor=regressor)
  return np.asarray(mapping.apply(out.joints, out.vertices))[0], mapping.valid


def test_coco_set_reads_back_with_projected_gt_joints(dataset, smpl):
  root = os.path.join(dataset, 'coco')
  result = coco.read(os.path.join(root, 'annotations', 'person_keypoints_train.json'),
                     os.path.join(root, 'images', 'train'), check_images=True)
  gt = json.load(open(os.path.join(root, 'gt_smpl.json')))
  assert len(result.samples) + sum(result.skipped.values()) == 6
  assert len(result.samples) >= 4
  for sample in result.samples:
    entry = gt[str(sample.ann_id)]
    joints, valid = _gt_joints(smpl, entry, 'COCO_17')
    cam = entry['cam_param']
    projected = mocap.project(joints, np.asarray(cam['focal']), np.asarray(cam['princpt']))
    labelled = (sample.joints_2d_valid > 0) & (valid > 0)
    assert labelled.sum() >= 5
    # Keypoints carry up to 1 px of noise and are rounded to 0.01 px.
    np.testing.assert_allclose(sample.joints_2d[labelled], projected[labelled], atol=1.05)
    # The GT box holds the labelled keypoints that are visible (v = 2 is not stored, so
    # check only that the person's keypoints are near the box).
    x, y, w, h = sample.bbox
    inside = ((sample.joints_2d[labelled, 0] > x - 0.2 * w) &
              (sample.joints_2d[labelled, 0] < x + 1.2 * w))
    assert inside.mean() > 0.8


def test_h36m_set_reads_back_with_gt_camera_joints(dataset, smpl):
  root = os.path.join(dataset, 'h36m')
  subjects = sorted(int(re.match(r'Human36M_subject(\d+)_data.json', name).group(1))
                    for name in os.listdir(os.path.join(root, 'annotations'))
                    if name.endswith('_data.json'))
  result = h36m.read(root, subjects=tuple(subjects), check_images=True)
  gt = json.load(open(os.path.join(root, 'gt_smpl.json')))
  regressor = np.load(os.path.join(root, 'gt_J_regressor_h36m.npy'))
  assert len(result.samples) == 6, result.summary()
  for sample in result.samples:
    joints, valid = _gt_joints(smpl, gt[str(sample.ann_id)], 'H36M_17', regressor)
    assert valid.all()                     # all 17, the head top included
    assert sample.joint_set == 'H36M_17'
    np.testing.assert_allclose(sample.joints_3d[valid > 0], joints[valid > 0], atol=1e-4)
    projected = mocap.project(sample.joints_3d, sample.focal, sample.princpt)
    np.testing.assert_allclose(sample.joints_2d, projected, atol=1e-3)
