"""Tests of neuralannot_jax/data/synthetic: the rasteriser, the pose sampler and the written
COCO / Human3.6M datasets (tiny: 6 images of 64 px per kind)."""

import importlib.util
import json
import os
import re
import time

import numpy as np
import pytest

import body_models
from body_models.synthetic import files as model_files
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render
from neuralannot_jax.data.synthetic import scenes
from neuralannot_jax.data.synthetic import writers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
  spec = importlib.util.spec_from_file_location(
      'make_synthetic_dataset', os.path.join(REPO, 'tools', 'make_synthetic_dataset.py'))
  tool = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tool)
  tool.main(argv)


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


# ---- rasteriser ----------------------------------------------------------------------------

def _square(x0, y0, x1, y1, z, focal, princpt):
  """A camera-space square (two triangles) at depth z whose projection is [x0, x1] x [y0, y1]."""
  corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
  xy = (corners - princpt) / focal * z
  verts = np.column_stack([xy, np.full(4, z)])
  return verts, np.array([[0, 1, 2], [0, 2, 3]])


def test_square_fills_exactly_its_projected_area():
  focal, princpt = np.array([50.0, 50.0]), np.array([15.5, 15.5])
  # Edges on pixel boundaries (centres are integers): pixels 5..14 x 8..19 inside.
  verts, faces = _square(4.5, 7.5, 14.5, 19.5, 2.0, focal, princpt)
  for cull in (False, True):
    image, mask, depth = render.render(verts, faces, focal, princpt, size=(32, 32),
                                       colors=(255, 255, 255), cull_backfaces=cull)
    expected = np.zeros((32, 32), bool)
    expected[8:20, 5:15] = True
    if cull:          # seen from its back (clockwise on screen in y-down) it is culled
      assert not mask.any()
      continue
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_allclose(depth[mask], 2.0, rtol=1e-6)
    assert np.all(np.isinf(depth[~mask]))
    assert image.dtype == np.uint8 and np.all(image[~mask] == 0) and np.all(image[mask] > 0)


def test_depth_equals_the_plane_depth_on_a_tilted_quad():
  focal, princpt = np.array([40.0, 44.0]), np.array([20.0, 18.0])
  # Plane z = 3 + 0.5 x - 0.3 y, a quad on it spanning most of the view.
  xy = np.array([[-1.0, -0.8], [1.0, -0.8], [1.0, 0.8], [-1.0, 0.8]])
  plane = lambda x, y: 3.0 + 0.5 * x - 0.3 * y
  verts = np.column_stack([xy, plane(xy[:, 0], xy[:, 1])])
  faces = np.array([[0, 2, 1], [0, 3, 2]])
  _, mask, depth = render.render(verts, faces, focal, princpt, size=(40, 40))
  assert mask.sum() > 300
  v, u = np.nonzero(mask)
  dx, dy = (u - princpt[0]) / focal[0], (v - princpt[1]) / focal[1]
  # Ray t * (dx, dy, 1) meets the plane at t = 3 / (1 - 0.5 dx + 0.3 dy).
  np.testing.assert_allclose(depth[mask], 3.0 / (1 - 0.5 * dx + 0.3 * dy), rtol=1e-5)


def test_nearer_triangle_hides_farther_in_any_order():
  focal, princpt = np.array([30.0, 30.0]), np.array([15.5, 15.5])
  near, f_near = _square(5.5, 5.5, 20.5, 20.5, 2.0, focal, princpt)
  far, f_far = _square(10.5, 10.5, 28.5, 28.5, 4.0, focal, princpt)
  verts = np.concatenate([near, far])
  colors = np.array([[0, 0, 255]] * 4 + [[0, 255, 0]] * 4, np.float64)
  for faces in (np.concatenate([f_near, f_far + 4]), np.concatenate([f_far + 4, f_near])):
    image, mask, depth = render.render(verts, faces, focal, princpt, size=(32, 32),
                                       colors=colors, ambient=1.0, diffuse=0.0)
    assert np.all(image[11:21, 11:21] == [0, 0, 255])          # overlap: the near one
    assert np.all(depth[11:21, 11:21] == np.float32(2.0))
    assert np.all(image[22:29, 22:29] == [0, 255, 0])          # the far one elsewhere
    assert np.all(depth[22:29, 22:29] == np.float32(4.0))


def test_interpenetrating_triangles_are_resolved_per_pixel():
  """Two quads crossing along x = 0: each is in front on one side (no painter's order)."""
  focal, princpt = np.array([30.0, 30.0]), np.array([15.5, 15.5])
  ys = np.array([-1.0, -1.0, 1.0, 1.0])
  xs = np.array([-1.0, 1.0, 1.0, -1.0])
  a = np.column_stack([xs, ys, 4.0 + 0.5 * xs])      # nearer on the left
  b = np.column_stack([xs, ys, 4.0 - 0.5 * xs])      # nearer on the right
  faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
  frags = render.rasterize(np.concatenate([a, b]), faces, focal, princpt, (32, 32))
  row = frags.face[15]
  # Both quads cover columns 9..22; they cross at u = 15.5.
  assert set(row[9:16]) <= {0, 1} and set(row[16:23]) <= {2, 3}


def test_chunked_rasterisation_matches_one_pass(smpl, monkeypatch):
  verts = np.asarray(smpl.v_template, np.float64) * [1, -1, -1] + [0, 0, 3.0]
  faces = np.asarray(smpl.faces)
  whole = render.rasterize(verts, faces, (150, 150), (47.5, 47.5), (96, 96))
  monkeypatch.setattr(render, '_CHUNK', 500)
  parts = render.rasterize(verts, faces, (150, 150), (47.5, 47.5), (96, 96))
  np.testing.assert_array_equal(whole.face, parts.face)
  np.testing.assert_array_equal(whole.depth, parts.depth)


def test_render_body_mesh_is_fast(smpl):
  verts = np.asarray(smpl.v_template, np.float64) * [1, -1, -1] + [0, 0, 3.0]
  faces = np.asarray(smpl.faces)
  bg = np.zeros((128, 128, 3), np.uint8)
  render.render(verts, faces, (100, 100), (63.5, 63.5), bg)
  start = time.perf_counter()
  for _ in range(5):
    _, mask, _ = render.render(verts, faces, (100, 100), (63.5, 63.5), bg)
  per_image = (time.perf_counter() - start) / 5
  assert mask.sum() > 200
  assert per_image < 0.25, per_image           # ~0.01 s measured; loose for shared CPUs


# ---- pose sampler ---------------------------------------------------------------------------

@pytest.mark.parametrize('order', ['xyz', 'xzy', 'yxz', 'yzx', 'zxy', 'zyx'])
def test_euler_round_trip(order):
  angles = np.radians(np.random.default_rng(0).uniform(-85, 85, (50, 3)))
  back = poses.matrix_to_euler(poses.euler_to_matrix(angles, order), order)
  np.testing.assert_allclose(back, angles, atol=1e-9)


def test_axis_angle_round_trip_including_pi():
  rng = np.random.default_rng(1)
  aa = rng.normal(size=(200, 3))
  aa *= (rng.uniform(0, np.pi, 200) / np.linalg.norm(aa, axis=1))[:, None]
  aa[:3] = [[np.pi, 0, 0], [0, 0, 0], [0, 1e-9, 0]]
  m = poses.axis_angle_to_matrix(aa)
  np.testing.assert_allclose(poses.axis_angle_to_matrix(poses.matrix_to_axis_angle(m)), m,
                             atol=1e-7)


@pytest.mark.parametrize('family', ['smpl', 'smplx'])
def test_pose_sampler_respects_limits(family):
  rng = np.random.default_rng(0)
  count = len(poses.body_joint_names(family))
  samples = np.stack([poses.sample_body_pose(rng, family) for _ in range(300)])
  assert samples.shape == (300, count, 3)
  assert all(poses.within_limits(p, family).all() for p in samples)
  # Knees and elbows bend one way only, and they do bend.
  names = poses.body_joint_names(family)
  for name, axis, sign in (('left_knee', 0, 1), ('right_knee', 0, 1),
                           ('left_elbow', 1, -1), ('right_elbow', 1, 1)):
    lim = poses.JOINT_LIMITS[name]
    deg = np.degrees(poses.matrix_to_euler(
        poses.axis_angle_to_matrix(samples[:, names.index(name)]), lim.order))[:, axis]
    assert np.all(sign * deg >= -1e-6) and np.max(sign * deg) > 60
  # A pose outside the limits is reported: a knee bent forwards.
  bad = np.zeros((count, 3))
  bad[names.index('left_knee')] = [-0.5, 0, 0]
  assert not poses.within_limits(bad, family)[names.index('left_knee')]


def test_samplers_are_deterministic():
  a, b = np.random.default_rng(7), np.random.default_rng(7)
  np.testing.assert_array_equal(poses.sample_body_pose(a), poses.sample_body_pose(b))
  betas = poses.sample_betas(a, 10)
  np.testing.assert_array_equal(betas, poses.sample_betas(b, 10))
  assert np.all(np.abs(betas) <= 2.5)
  orient = poses.sample_global_orient(a)
  np.testing.assert_allclose(orient @ orient.T, np.eye(3), atol=1e-12)


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
      _, joints = _gt_output(smpl, entry)
      np.testing.assert_allclose(cam_joints, scenes.h36m_joints(joints, smpl.joint_names),
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
  action = next(iter(params))
  sub = next(iter(params[action]))
  frame = next(iter(params[action][sub]))
  _, joints = _gt_output(smpl, {'smpl_param': params[action][sub][frame]})
  np.testing.assert_allclose(scenes.h36m_joints(joints, smpl.joint_names) * 1000.0,
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
