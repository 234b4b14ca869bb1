"""Tests of the written synthetic datasets: COCO / Human3.6M (tiny: 6 images of 64 px per
kind), FreiHAND hands and COCO-WholeBody faces (4 images of 80 px), read back through the
project's readers. The rasteriser and the body pose sampler: test_synthetic_render.py."""

import json
import os
import re

import cv2
import jax
import numpy as np
import pytest

import body_models
from body_models import skeletons
from body_models.synthetic import files as model_files
from neuralannot_jax.data import coco
from neuralannot_jax.data import freihand
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.synthetic import faces
from neuralannot_jax.data.synthetic import hands
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render
from neuralannot_jax.data.synthetic import scenes
from neuralannot_jax.data.synthetic import writers
import module_files  # pylint: disable=wrong-import-order

NUM, SIZE = 6, 64


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def smpl_dir(tmp_path_factory):
  """Only the stand-in SMPL file (the whole set is not needed here)."""
  out = tmp_path_factory.mktemp('smpl_model')
  model_files.write_model('smpl', str(out))
  return str(out)


@pytest.fixture(scope='module')
def smpl(smpl_dir):
  return body_models.load(smpl_dir, 'smpl')


def _run_tool(argv):
  """tools/make_synthetic_dataset.py's main, imported from its path."""
  module_files.tool('make_synthetic_dataset').main(argv)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory, smpl_dir):
  out = str(tmp_path_factory.mktemp('synth'))
  _run_tool(['--out', out, '--body_models', smpl_dir, '--num_images', str(NUM), '--size',
             str(SIZE), '--seed', '0', '--kinds', 'coco,h36m'])
  return out


def _load(path):
  with open(path) as f:
    return json.load(f)


def _all_files(root):
  out = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


def _gt_output(model, entry):
  p = entry['smpl_param']
  pose = np.asarray(p['pose'], np.float32)
  out = model(global_orient=pose[None, :3], body_pose=pose[None, 3:],
              betas=np.asarray(p['shape'], np.float32)[None],
              transl=np.asarray(p['trans'], np.float32)[None])
  return np.asarray(out.vertices[0], np.float64), np.asarray(out.joints[0], np.float64)


# ---- the datasets ---------------------------------------------------------------------------

def test_same_seed_writes_identical_bytes(dataset, smpl_dir, tmp_path):
  again = str(tmp_path / 'again')
  writers.make_dataset(again, smpl_dir, num_images=NUM, size=SIZE, seed=0, progress=False)
  first, second = _all_files(dataset), _all_files(again)
  assert sorted(first) == sorted(second)
  assert all(first[k] == second[k] for k in first), [k for k in first if first[k] != second[k]]
  assert sum(k.endswith('.jpg') for k in first) == 2 * NUM


def test_coco_json_has_the_coco_fields(dataset):
  js = _load(os.path.join(dataset, 'coco', 'annotations', 'person_keypoints_train.json'))
  assert {'images', 'annotations', 'categories'} <= set(js)
  assert js['categories'][0]['keypoints'] == list(scenes.COCO_17)
  assert len(js['images']) == len(js['annotations']) == NUM
  for img in js['images']:
    assert (img['width'], img['height']) == (SIZE, SIZE)
    assert os.path.exists(os.path.join(dataset, 'coco', 'images', 'train', img['file_name']))
  for ann in js['annotations']:
    kps = np.array(ann['keypoints']).reshape(17, 3)
    assert ann['iscrowd'] == 0 and ann['category_id'] == 1 and ann['image_id'] == ann['id']
    assert ann['num_keypoints'] == int((kps[:, 2] > 0).sum())
    assert set(kps[:, 2]) <= {0, 1, 2} and np.all(kps[kps[:, 2] == 0, :2] == 0)
    x, y, w, h = ann['bbox']
    assert w > 0 and h > 0 and 0 < ann['area'] <= w * h
    assert x >= 0 and y >= 0 and x + w <= SIZE and y + h <= SIZE


def test_coco_json_opens_with_pycocotools(dataset):
  coco_mod = pytest.importorskip('pycocotools.coco')
  coco = coco_mod.COCO(os.path.join(dataset, 'coco', 'annotations',
                                    'person_keypoints_train.json'))
  ann_ids = coco.getAnnIds(catIds=coco.getCatIds(catNms=['person']))
  assert len(ann_ids) == NUM
  assert coco.annToMask(coco.loadAnns(ann_ids[0])[0]).sum() > 0


def test_coco_keypoints_are_projections_of_the_gt_joints(dataset, smpl):
  js = _load(os.path.join(dataset, 'coco', 'annotations', 'person_keypoints_train.json'))
  gt = _load(os.path.join(dataset, 'coco', 'gt_smpl.json'))
  names = smpl.joint_names
  for ann in js['annotations']:
    entry = gt[str(ann['id'])]
    assert len(entry['smpl_param']['pose']) == 72 and len(entry['smpl_param']['shape']) == 10
    _, joints = _gt_output(smpl, entry)
    cam = entry['cam_param']
    uv = render.project(scenes.coco_joints(joints, names), cam['focal'], cam['princpt'])
    kps = np.array(ann['keypoints']).reshape(17, 3)
    labelled = kps[:, 2] > 0
    # Annotation noise is at most 2 x 0.5 px; keypoints are stored to 0.01 px.
    np.testing.assert_allclose(kps[labelled, :2], uv[labelled], atol=1.02)
    outside = ~scenes.in_image(uv, (SIZE, SIZE))
    assert np.all(kps[outside, 2] == 0)


def test_h36m_layout_and_world_joints_match_the_gt(dataset, smpl):
  ann_dir = os.path.join(dataset, 'h36m', 'annotations')
  gt = _load(os.path.join(dataset, 'h36m', 'gt_smpl.json'))
  regressor = np.load(os.path.join(dataset, 'h36m', 'gt_J_regressor_h36m.npy'))
  pattern = re.compile(r'^(s_(\d\d)_act_(\d\d)_subact_(\d\d)_ca_(\d\d))/\1_(\d{6})\.jpg$')
  seen = 0
  for name in sorted(os.listdir(ann_dir)):
    m = re.match(r'Human36M_subject(\d+)_data\.json$', name)
    if not m:
      continue
    subject = int(m.group(1))
    data = _load(os.path.join(ann_dir, name))
    cams = _load(os.path.join(ann_dir, f'Human36M_subject{subject}_camera.json'))
    joints3d = _load(os.path.join(ann_dir, f'Human36M_subject{subject}_joint_3d.json'))
    images = {img['id']: img for img in data['images']}
    for ann in data['annotations']:
      img = images[ann['image_id']]
      parts = pattern.match(img['file_name'])
      assert parts, img['file_name']
      assert [int(g) for g in parts.groups()[1:]] == [
          subject, img['action_idx'], img['subaction_idx'], img['cam_idx'],
          img['frame_idx'] + 1]
      assert os.path.exists(os.path.join(dataset, 'h36m', 'images', img['file_name']))
      cam = cams[str(img['cam_idx'])]
      rot, t = np.array(cam['R']), np.array(cam['t'])
      np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)
      world = np.array(joints3d[str(img['action_idx'])][str(img['subaction_idx'])][
          str(img['frame_idx'])])
      assert world.shape == (17, 3)
      cam_joints = (world @ rot.T + t) / 1000.0               # world mm -> camera metres
      entry = gt[str(ann['id'])]
      np.testing.assert_allclose(entry['cam_param']['focal'], cam['f'], atol=1e-3)
      vertices, _ = _gt_output(smpl, entry)
      np.testing.assert_allclose(cam_joints, scenes.h36m_joints(vertices, regressor),
                                 atol=1e-3)
      uv = render.project(cam_joints, cam['f'], cam['c'])
      vis = np.array(ann['keypoints_vis'])
      np.testing.assert_array_equal(vis, scenes.in_image(uv, (SIZE, SIZE)))
      x, y, w, h = ann['bbox']
      inside = uv[vis]
      assert np.all((inside[:, 0] >= x - 1) & (inside[:, 0] <= x + w) &
                    (inside[:, 1] >= y - 1) & (inside[:, 1] <= y + h))
      seen += 1
  assert seen == NUM == len(gt)


def test_h36m_world_smpl_params_reproduce_the_world_joints(dataset, smpl):
  ann_dir = os.path.join(dataset, 'h36m', 'annotations')
  params = _load(os.path.join(ann_dir, 'Human36M_subject1_smpl_param.json'))
  joints3d = _load(os.path.join(ann_dir, 'Human36M_subject1_joint_3d.json'))
  regressor = np.load(os.path.join(dataset, 'h36m', 'gt_J_regressor_h36m.npy'))
  action = next(iter(params))
  sub = next(iter(params[action]))
  frame = next(iter(params[action][sub]))
  vertices, _ = _gt_output(smpl, {'smpl_param': params[action][sub][frame]})
  np.testing.assert_allclose(scenes.h36m_joints(vertices, regressor) * 1000.0,
                             joints3d[action][sub][frame], atol=0.5)


def test_h36m_data_json_opens_with_pycocotools(dataset):
  coco_mod = pytest.importorskip('pycocotools.coco')
  coco = coco_mod.COCO(os.path.join(dataset, 'h36m', 'annotations',
                                    'Human36M_subject1_data.json'))
  assert len(coco.anns) > 0


def test_another_seed_gives_other_images(smpl_dir, tmp_path):
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  for out, seed in ((a, 0), (b, 1)):
    writers.make_dataset(out, smpl_dir, num_images=2, size=32, seed=seed, kinds=('coco',),
                         progress=False)
  fa, fb = _all_files(a), _all_files(b)
  assert fa.keys() == fb.keys()
  assert fa['coco/images/train/000000000001.jpg'] != fb['coco/images/train/000000000001.jpg']


def test_unknown_kind_is_refused(smpl_dir, tmp_path):
  with pytest.raises(ValueError, match='unknown dataset kinds'):
    writers.make_dataset(str(tmp_path), smpl_dir, num_images=1, kinds=('mpii',))


# ---- hands (FreiHAND layout) and faces (COCO-WholeBody layout) ----------------------------

PART_NUM, PART_SIZE = 4, 80


@pytest.fixture(scope='module')
def part_sets(tmp_path_factory):
  """freihand + face through the tool, which writes the stand-in MANO and FLAME itself."""
  out = str(tmp_path_factory.mktemp('synth_parts'))
  _run_tool(['--out', out, '--num_images', str(PART_NUM), '--size', str(PART_SIZE),
             '--seed', '3', '--kinds', 'freihand,face'])
  return out


def _gt_forward(model, entries, key):
  """Stacked GT parameters of `entries` (a list of GT records) through one jitted pass."""
  names = entries[0][key].keys()
  params = {n: np.stack([np.asarray(e[key][n], np.float32) for e in entries]) for n in names}
  out = jax.jit(body_models.forward)(model, **params)
  return np.asarray(out.vertices, np.float64), np.asarray(out.joints, np.float64)


def test_tool_writes_only_the_stand_ins_the_kinds_need(part_sets):
  root = os.path.join(part_sets, 'body_models')
  for name in ('mano/MANO_RIGHT.pkl', 'flame/FLAME_NEUTRAL.pkl',
               'flame/flame_static_embedding.pkl', 'flame/flame_dynamic_embedding.npy'):
    assert os.path.isfile(os.path.join(root, name)), name
  assert not os.path.exists(os.path.join(root, 'smpl'))
  meta = _load(os.path.join(part_sets, 'synthetic_meta.json'))
  assert meta['counts'] == {'freihand': PART_NUM, 'face': PART_NUM}
  assert meta['families'] == {'freihand': 'mano', 'face': 'flame'}


def test_freihand_set_reads_back_with_the_gt_joints(part_sets):
  root = os.path.join(part_sets, 'freihand')
  mano = body_models.load(os.path.join(part_sets, 'body_models'), 'mano', is_right_hand=True)
  result = freihand.read(root, vertices=True, check_images=True)
  assert not result.skipped and len(result.samples) == PART_NUM
  gt = _load(os.path.join(root, 'gt_mano.json'))
  assert sorted(gt) == sorted(str(s.ann_id) for s in result.samples)
  entries = [gt[str(s.ann_id)] for s in result.samples]
  verts, joints = _gt_forward(mano, entries, 'mano_param')
  joints = joint_sets.model_joint_mapping('mano', 'HAND_21').apply(joints, verts)
  for s, entry, v, j in zip(result.samples, entries, verts, joints):
    assert s.part == 'hand' and s.hand_side == 'right' and s.joint_set == 'HAND_21'
    np.testing.assert_allclose(s.joints_3d, j, atol=1e-5)
    np.testing.assert_allclose(s.gt_vertices, v, atol=1e-5)
    cam = entry['cam_param']
    np.testing.assert_allclose(s.focal, cam['focal'], rtol=1e-6)
    np.testing.assert_allclose(s.princpt, cam['princpt'], rtol=1e-6)
    np.testing.assert_allclose(s.joints_2d, render.project(j, cam['focal'], cam['princpt']),
                               atol=2e-3)
    for name in ('global_orient', 'hand_pose', 'betas'):
      np.testing.assert_allclose(s.gt_params[name], entry['mano_param'][name], atol=1e-6)
    assert 0.3 <= np.linalg.norm(j.mean(axis=0)) <= 0.8         # camera 0.3-0.7 m away
    assert cv2.imread(s.image_path).shape == (PART_SIZE, PART_SIZE, 3)


def test_freihand_root_uv_and_scale_place_the_hand_as_freihand_does(part_sets):
  """FreiHAND's last three numbers: back-project keypoint 9's pixel with focal / scale."""
  root = os.path.join(part_sets, 'freihand')
  mano = body_models.load(os.path.join(part_sets, 'body_models'), 'mano', is_right_hand=True)
  thetas = np.array(_load(os.path.join(root, 'training_mano.json')))[:, 0]
  ks = np.array(_load(os.path.join(root, 'training_K.json')))
  xyz = np.array(_load(os.path.join(root, 'training_xyz.json')))
  assert thetas.shape == (PART_NUM, 61) and ks.shape == (PART_NUM, 3, 3)
  entries = [{'p': {'global_orient': t[:3], 'hand_pose': t[3:48], 'betas': t[48:58]}}
             for t in thetas]
  verts, joints = _gt_forward(mano, entries, 'p')                  # no translation
  joints = joint_sets.model_joint_mapping('mano', 'HAND_21').apply(joints, verts)
  for theta, k, j, target in zip(thetas, ks, joints, xyz):
    focal = 0.5 * (k[0, 0] + k[1, 1])
    root_xyz = np.append(theta[58:60] - k[:2, 2], focal) / theta[60]
    np.testing.assert_allclose(j - j[hands.ROOT_KEYPOINT] + root_xyz, target, atol=1e-5)


def test_face_set_reads_back_with_projected_landmarks(part_sets):
  folder = os.path.join(part_sets, 'face')
  flame = body_models.load(os.path.join(part_sets, 'body_models'), 'flame',
                           use_face_contour=True)
  path = os.path.join(folder, 'annotations', faces.ANNOTATION_FILE)
  result = coco.read(path, os.path.join(folder, 'images', 'train'), layout='wholebody',
                     parts=('face',), check_images=True)
  assert not result.skipped and len(result.samples) == PART_NUM
  anns = {a['id']: a for a in _load(path)['annotations']}
  gt = _load(os.path.join(folder, 'gt_flame.json'))
  entries = [gt[str(s.parent_id)] for s in result.samples]
  assert set(entries[0]['flame_param']) == {'global_orient', 'neck_pose', 'jaw_pose',
                                            'expression', 'betas', 'transl'}
  _, joints = _gt_forward(flame, entries, 'flame_param')
  landmarks = joint_sets.model_joint_mapping(
      'flame', 'FACE_68', num_landmarks=flame.num_landmarks).apply(joints)
  for s, entry, lmk in zip(result.samples, entries, landmarks):
    ann = anns[s.parent_id]
    assert s.part == 'face' and s.joint_set == 'FACE_68' and s.ann_id == f'{s.parent_id}_face'
    assert ann['num_keypoints'] == 0 and not any(ann['keypoints'] + ann['foot_kpts'])
    assert not (ann['lefthand_valid'] or ann['righthand_valid'] or ann['foot_valid'])
    assert ann['bbox'] == ann['face_box'] and ann['face_valid'] is True
    kps = np.array(ann['face_kpts']).reshape(68, 3)
    assert set(kps[:, 2]) <= {0, 1, 2} and np.all(kps[kps[:, 2] == 0, :2] == 0)
    cam = entry['cam_param']
    uv = render.project(lmk, cam['focal'], cam['princpt'])
    valid = s.joints_2d_valid > 0
    assert valid.sum() >= 20
    np.testing.assert_allclose(s.joints_2d[valid], uv[valid], atol=6e-3)  # stored to 0.01 px
    np.testing.assert_array_equal(valid, scenes.in_image(uv, (PART_SIZE, PART_SIZE)))
    x, y, w, h = s.bbox
    seen = s.joints_2d[kps[:, 2] == 2]
    assert len(seen) and np.all((seen[:, 0] >= x) & (seen[:, 0] <= x + w) &
                                (seen[:, 1] >= y) & (seen[:, 1] <= y + h))
    assert 0.4 <= lmk[:, 2].mean() <= 1.1                         # camera 0.4-1.0 m away


def test_hand_and_face_sets_are_byte_identical_for_a_seed(part_sets, tmp_path):
  again = str(tmp_path / 'again')
  writers.make_dataset(again, os.path.join(part_sets, 'body_models'), num_images=PART_NUM,
                       size=PART_SIZE, seed=3, kinds=('freihand', 'face'), progress=False,
                       batch_size=3)           # another batch size: no byte changes either
  first = {k: v for k, v in _all_files(part_sets).items() if not k.startswith('body_models')}
  second = _all_files(again)
  assert sorted(first) == sorted(second)
  assert all(first[k] == second[k] for k in first), [k for k in first if first[k] != second[k]]
  assert sum(k.endswith('.jpg') for k in first) == 2 * PART_NUM


def test_hand_pose_sampler_stays_in_limits_and_curls_toward_the_palm(part_sets):
  rng = np.random.default_rng(0)
  angles = np.stack([hands.sample_hand_angles(rng) for _ in range(300)])
  names = skeletons.MANO_JOINTS[1:]
  for k, name in enumerate(names):
    lims = np.array(hands.limits(name))
    assert np.all((angles[:, k] >= lims[:, 0]) & (angles[:, k] <= lims[:, 1])), name
  assert 0 < np.median(angles[:, :, 0]) < 45 and angles[:, :, 0].max() > 80   # mostly small
  mano = body_models.load(os.path.join(part_sets, 'body_models'), 'mano', is_right_hand=True)
  rest = np.asarray(mano.joint_template, np.float64)
  tips = np.asarray(mano.v_template, np.float64)[list(skeletons.MANO_TIP_VERTICES)]
  axes = hands.joint_axes(rest, tips)
  curled = np.zeros((15, 3))
  curled[:, 0] = 40.0
  mean = np.asarray(mano.pose_mean, np.float64)[1:]
  pose = np.stack([-mean, poses.matrix_to_axis_angle(hands.finger_rotations(curled, axes)) -
                   mean]).reshape(2, 45)                            # flat, then curled
  out = jax.jit(body_models.forward)(mano, hand_pose=pose.astype(np.float32))
  moved = np.asarray(out.vertices, np.float64)[:, list(skeletons.MANO_TIP_VERTICES)]
  palm = np.cross(rest[names.index('index1') + 1] - rest[0],
                  rest[names.index('pinky1') + 1] - rest[0])
  assert np.all((moved[1] - moved[0]) @ palm > 0.01 * np.linalg.norm(palm))


def test_landmark_visibility_follows_the_depth_map():
  depth = np.full((20, 20), np.inf, np.float32)
  depth[:, :10] = 1.0                      # a wall at 1 m on the left half
  focal, princpt = np.array([10.0, 10.0]), np.array([9.5, 9.5])
  points = np.array([[-0.5, 0.0, 1.0], [-0.5, 0.0, 1.2], [0.5, 0.0, 1.2], [5.0, 0.0, 1.0],
                     [-0.5, 0.0, 1.01]])
  np.testing.assert_array_equal(
      faces.landmark_visibility(points, focal, princpt, depth), [2, 1, 2, 0, 2])
