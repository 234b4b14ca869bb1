"""make_sample: conversion, defaults, and errors that name file, annotation and field."""

import numpy as np
import pytest

from neuralannot_jax.data import AnnotationError
from neuralannot_jax.data import make_sample

BASE = dict(dataset='coco', ann_id=7, image_path='img.jpg', bbox=[10, 20, 30, 40])


def test_converts_arrays_and_defaults_validity():
  s = make_sample('ann.json', joint_set='COCO_17', joints_2d=[[1, 2]] * 17, focal=[500, 500],
                  princpt=[64, 64], **BASE)
  assert s.bbox.dtype == np.float32 and s.bbox.tolist() == [10, 20, 30, 40]
  assert s.joints_2d.shape == (17, 2) and s.joints_2d_valid.tolist() == [1.0] * 17
  assert s.joints_3d is None and s.joints_3d_valid is None
  assert s.num_joints == 17 and s.part == 'body'


@pytest.mark.parametrize('fields,field', [
    (dict(bbox=[1, 2, 3]), 'bbox'),
    (dict(bbox=[1, 2, 0, 3]), 'bbox'),
    (dict(joints_2d=[[1, 2, 3]] * 4), 'joints_2d'),
    (dict(joints_2d=[[1, 2]] * 4, joints_2d_valid=[1, 1]), 'joints_2d_valid'),
    (dict(joints_3d=[[1, 2, np.nan]]), 'joints_3d'),
    (dict(joints_3d_valid=[1]), 'joints_3d_valid'),
    (dict(focal=[1, 2, 3]), 'focal'),
    (dict(part='torso'), 'part'),
    (dict(hand_side='middle'), 'hand_side'),
    (dict(image_path=None), 'image_path'),
    (dict(joints_2d='abc'), 'joints_2d'),
])
def test_errors_name_file_record_and_field(fields, field):
  with pytest.raises(AnnotationError) as e:
    make_sample('ann.json', **{**BASE, **fields})
  message = str(e.value)
  assert 'ann.json' in message and '7' in message and field in message
