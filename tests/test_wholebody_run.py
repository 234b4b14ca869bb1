"""A whole-body run end to end: the synthetic COCO-WholeBody set, the body / hand / face
experiments, their merge into SMPL-X and the per-part scores (`wholebody_run`).

One tiny run through the real path (configs/synthetic_wholebody.py, 1 training step per
part) is shared by the tests. The references are independent of the code under test: the
keypoints are checked against the smplx library's forward pass of the GT and a pinhole
projection written here; the merged rotations against `body_models.forward`'s global
rotations of the merged body and the parts' own files, read with `json`.
"""

import json
import os

import jax
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import body_models
from body_models import skeletons
from neuralannot_jax import export
from neuralannot_jax.data import joint_sets
from neuralannot_jax.wholebody import run as wholebody_run
import module_files  # pylint: disable=wrong-import-order

# Jitted: an eager SMPL-X pass costs seconds of op-by-op dispatch.
_forward = jax.jit(body_models.forward)
TOL = 1e-4   # rad
PART_TINY = {'model.depth': 10, 'model.crop_size': 32, 'train.batch_size': 4, 'train.num_steps': 1,
             'train.lr_boundaries': (), 'train.checkpoint_every': 1, 'train.log_every': 1,
             'annotate.batch_size': 4, 'stages': 'train,annotate',
             'model.pose_prior.num_steps': 10, 'model.pose_prior.num_poses': 128,
             'model.pose_prior.hidden': 16, 'train.warm_start.steps': 0,
             # Recalibrating BatchNorm after one step changes nothing these tests read
             # (tests/test_annotate.py checks it): one compile per part saved.
             'annotate.batch_norm_batches': 0}


def _set(config, key, value):
  *path, last = key.split('.')
  for name in path:
    config = config[name]
  config[last] = value


def _config(name, workdir):
  config = module_files.config(name)
  config.workdir = workdir
  return config


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('wholebody_run'))
  config = _config('synthetic_wholebody', workdir)
  config.progress = False
  config.dataset.synthetic.num_images = 6
  config.dataset.synthetic.size = 160
  for part in wholebody_run.PARTS:
    for key, value in PART_TINY.items():
      _set(config.parts[part], key, value)
  summary = wholebody_run.run(config)
  return workdir, summary


def _load(*path):
  with open(os.path.join(*path)) as f:
    return json.load(f)


def _annotations(workdir):
  data = _load(workdir, 'data', 'wholebody', 'annotations', 'coco_wholebody_train.json')
  return {str(a['id']): a for a in data['annotations']}


def test_synthetic_keypoints_are_the_projections_of_the_gt_smplx(run):
  import smplx   # pylint: disable=import-outside-toplevel
  import torch   # pylint: disable=import-outside-toplevel
  workdir, _ = run
  anns = _annotations(workdir)
  gt = _load(workdir, 'data', 'wholebody', 'gt_smplx.json')
  assert sorted(gt) == sorted(anns)
  ref = smplx.create(os.path.join(workdir, 'body_models'), model_type='smplx',
                     use_face_contour=True, use_pca=False, flat_hand_mean=False)
  # Where each of the 133 keypoints sits among the smplx library's output joints.
  mapping = joint_sets.model_joint_mapping('smplx', 'COCO_WHOLEBODY_133', num_landmarks=68)
  assert all(s is not None and s[0] == 'joint' for s in mapping.sources)
  index = [s[1] for s in mapping.sources]
  pieces = ('keypoints', 'foot_kpts', 'face_kpts', 'lefthand_kpts', 'righthand_kpts')
  for ann_id, entry in gt.items():
    p = {k: torch.tensor(np.asarray(v, np.float32)[None])
         for k, v in entry['smplx_param'].items()}
    out = ref(global_orient=p['root_pose'], body_pose=p['body_pose'],
              left_hand_pose=p['lhand_pose'], right_hand_pose=p['rhand_pose'],
              jaw_pose=p['jaw_pose'], betas=p['shape'], expression=p['expr'],
              transl=p['trans'])
    xyz = out.joints[0].detach().numpy().astype(np.float64)[index]
    focal, princpt = (np.asarray(entry['cam_param'][k]) for k in ('focal', 'princpt'))
    uv = xyz[:, :2] / xyz[:, 2:] * focal + princpt
    kps = np.concatenate([np.reshape(anns[ann_id][k], (-1, 3)) for k in pieces])
    labelled = kps[:, 2] > 0
    assert labelled.sum() >= 10, ann_id
    np.testing.assert_allclose(kps[labelled, :2], uv[labelled], atol=0.02, err_msg=ann_id)
    np.testing.assert_array_equal(kps[~labelled, :2], 0.0)


def test_part_boxes_and_flags_follow_the_official_layout(run):
  workdir, _ = run
  anns = _annotations(workdir)
  valid_parts = 0
  for ann in anns.values():
    for kpts, box, flag in (('lefthand_kpts', 'lefthand_box', 'lefthand_valid'),
                            ('righthand_kpts', 'righthand_box', 'righthand_valid'),
                            ('face_kpts', 'face_box', 'face_valid')):
      k = np.reshape(ann[kpts], (-1, 3))
      b = np.asarray(ann[box])
      assert isinstance(ann[flag], bool)
      if not ann[flag]:     # an unlabelled part: all zero
        assert not k.any() and not b.any()
        continue
      valid_parts += 1
      pts = k[k[:, 2] > 0, :2]
      assert (pts >= b[:2] - 0.01).all() and (pts <= b[:2] + b[2:] + 0.01).all()
    body = np.reshape(ann['keypoints'], (-1, 3))
    assert ann['num_keypoints'] == int((body[:, 2] > 0).sum())
  assert valid_parts >= 6   # most of 6 people show hands and face


def test_the_merged_file_has_every_person_with_valid_flags_and_loads(run):
  workdir, summary = run
  anns = _annotations(workdir)
  merged = _load(workdir, 'pseudo_gt_smplx.json')
  body = _load(workdir, 'body', 'pseudo_gt.json')
  hands = _load(workdir, 'hand', 'pseudo_gt.json')
  faces = _load(workdir, 'face', 'pseudo_gt.json')
  # Every person with enough body keypoints (min_keypoints 6) is annotated and merged.
  persons = sorted(k for k, a in anns.items() if a['num_keypoints'] >= 6)
  assert sorted(body) == persons and sorted(merged) == persons
  for person in persons:
    param = merged[person]['smplx_param']
    for side, key, flag in (('right', 'rhand_valid', 'righthand_valid'),
                            ('left', 'lhand_valid', 'lefthand_valid')):
      has_hand = (hands.get(person) or {}).get(side) is not None
      assert param[key] is has_hand is anns[person][flag], (person, side)
    assert param['face_valid'] is (f'{person}_face' in faces) is anns[person]['face_valid']
  assert summary['merged']['persons'] == len(persons)
  model = body_models.load(os.path.join(workdir, 'body_models'), 'smplx')
  out = _forward(model, **_stacked(merged, persons))
  assert out.vertices.shape == (len(persons), 10475, 3)
  assert np.isfinite(np.asarray(out.vertices)).all()
  scores = _load(workdir, 'evaluation.json')
  counted_hands = sum(p is not None for h in hands.values() for p in h.values())
  assert scores['hands']['annotation']['count'] == counted_hands
  assert scores['face']['annotation']['count'] == len(faces)
  assert scores['body']['merged']['count'] == len(persons)
  # The face part is a FLAME in-the-wild run on 68 keypoints (test_main's tiny runs leave
  # FLAME to this one): its file is in the released FLAME layout, keyed '<person>_face'.
  assert faces and all(key.endswith('_face') for key in faces)
  assert all(set(e['flame_param']) == {'root_pose', 'jaw_pose', 'expr', 'shape', 'trans'}
             for e in faces.values())


def _stacked(entries, persons):
  """{smplx name: (N, P)} of released SMPL-X entries, in `persons` order."""
  rows = [export.from_released_entry('smplx', entries[p])[0] for p in persons]
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _angles(a, b):
  """Rotation angles (rad) between matching rotations of two scipy `Rotation`s."""
  return (a.inv() * b).magnitude()


_rotvec = lambda x: Rotation.from_rotvec(np.reshape(np.asarray(x, np.float64), (-1, 3)))


def test_merged_hand_and_face_rotations_come_from_the_part_annotations(run):
  workdir, _ = run
  root = os.path.join(workdir, 'body_models')
  smplx_model = body_models.load(root, 'smplx')
  mano = {side: body_models.load(root, 'mano', is_right_hand=side == 'right')
          for side in ('right', 'left')}
  merged = _load(workdir, 'pseudo_gt_smplx.json')
  body = _load(workdir, 'body', 'pseudo_gt.json')
  hands = _load(workdir, 'hand', 'pseudo_gt.json')
  faces = _load(workdir, 'face', 'pseudo_gt.json')
  names = skeletons.SMPLX_JOINTS
  persons = list(merged)
  out = _forward(smplx_model, **_stacked(merged, persons))
  checked = 0
  for row, person in enumerate(persons):
    param = merged[person]['smplx_param']
    # The body's own rotations are kept: the root and every joint but the wrists.
    body_param = body[person]['smplx_param']
    np.testing.assert_allclose(param['root_pose'], body_param['root_pose'], atol=1e-7)
    keep = [j for j in range(21) if names[j + 1] not in ('left_wrist', 'right_wrist')]
    np.testing.assert_allclose(np.reshape(param['body_pose'], (21, 3))[keep],
                               np.reshape(body_param['body_pose'], (21, 3))[keep], atol=1e-7)
    for side, first in (('right', 40), ('left', 25)):
      hand = (hands.get(person) or {}).get(side)
      if hand is None:
        continue
      checked += 1
      pose = np.asarray(hand['mano_param']['pose'], np.float32)
      # The hand turns in the camera frame as MANO's root did ...
      wrist = names.index(f'{side}_wrist')
      hand_rot = Rotation.from_matrix(np.asarray(out.global_rotations, np.float64)[row, wrist])
      assert _angles(hand_rot, _rotvec(pose[:3])).max() < TOL
      # ... and its fingers end up with MANO's final rotations (hand means included).
      mano_out = _forward(mano[side], global_orient=pose[None, :3], hand_pose=pose[None, 3:])
      assert _angles(_rotvec(np.asarray(out.full_pose)[row, first:first + 15]),
                     _rotvec(np.asarray(mano_out.full_pose)[0, 1:])).max() < TOL
    face = faces.get(f'{person}_face')
    if face is not None:
      checked += 1
      np.testing.assert_allclose(param['jaw_pose'], face['flame_param']['jaw_pose'], atol=1e-7)
      np.testing.assert_allclose(param['expr'], face['flame_param']['expr'][:10], atol=1e-7)
  assert checked >= 6


def test_the_coco_config_holds_three_paper_setting_parts():
  config = _config('coco_wholebody', '/tmp/unused')
  assert wholebody_run.is_wholebody(config)
  for name, (family, _) in wholebody_run.PARTS.items():
    part = config.parts[name]
    assert part.body_model.family == family and part.model.mode == 'wild'
    assert (part.model.depth, part.model.crop_size, part.train.batch_size,
            part.train.lr) == (50, 256, 192, 1e-4)
  part = wholebody_run.part_config(config, 'hand', '/models', '/coco', {'image_dir': 'x'}, '')
  assert part.workdir == os.path.join('/tmp/unused', 'hand')
  assert dict(part.dataset.options) == {'image_dir': 'x', 'min_keypoints': 6,
                                        'parts': ['hand']}
  assert (part.dataset.root, part.body_model.path) == ('/coco', '/models')
  with pytest.raises(ValueError, match='dataset.root is empty'):
    wholebody_run.prepare_data(config, '/models')


def test_a_part_two_stage_training_cannot_run_is_refused_before_any_part_runs(tmp_path,
                                                                              monkeypatch):
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  def no_part(config):
    raise AssertionError(f'a part ran: {config.workdir}')
  monkeypatch.setattr(experiment, 'run', no_part)
  config = _config('synthetic_wholebody', str(tmp_path))
  config.progress = False
  config.dataset.synthetic.num_images = 2
  config.dataset.synthetic.size = 160
  config.parts.body.train.two_stage.steps = 5     # fine for the body ...
  config.parts.face.train.two_stage.steps = 5     # ... but faces have no per-sample fit
  with pytest.raises(ValueError, match='FLAME faces have no per-sample fit'):
    wholebody_run.run(config)
