"""Tests of neuralannot_jax.annotate: order and keys, cameras mapped back to the image,
MoCap translation from the GT root, left hands mirrored back, files that load back.

The networks here are freshly initialised (predictions are arbitrary but deterministic):
what is tested is everything around the network, against geometry computed independently.
"""

import json
import os

import cv2
import numpy as np
import pytest

import body_models
from body_models import mirror
from body_models import synthetic
from neuralannot_jax import annotate as annotate_lib
from neuralannot_jax import export
from neuralannot_jax import train as train_lib
from neuralannot_jax import world_frame
from neuralannot_jax.data import crop as crop_lib
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.sample import make_sample
from test_train import fake_samples  # pylint: disable=wrong-import-order

CROP = 32


@pytest.fixture(scope='module')
def root(tmp_path_factory):
  path = tmp_path_factory.mktemp('annotate')
  synthetic.write_model('smpl', path)
  synthetic.write_model('mano', path)
  return str(path)


def _config(root, **kw):
  values = dict(model_path=root, family='smpl', mode='mocap', joint_set='H36M_17', depth=10,
                crop_size=CROP, batch_size=4, num_workers=0, progress=False, seed=0)
  values.update(kw)
  return train_lib.TrainConfig(**values)


def _run(config, samples, body_model, batch_size=4):
  model, _ = train_lib.create_train_state(config)
  return annotate_lib.annotate(model, body_model, samples, train_lib.make_step_spec(config),
                               batch_size=batch_size,
                               vposer_params=train_lib.load_vposer(config), num_workers=0,
                               progress=False)


def _forward(model, params):
  out = model(**{k: np.asarray(v)[None] for k, v in params.items()})
  return np.asarray(out.vertices[0]), np.asarray(out.joints[0])


def test_mocap_annotations_cover_every_sample_and_sit_on_the_gt_root(root):
  samples = fake_samples(root, n=7)  # batches of 4: the last one is padded
  smpl = body_models.load(root, 'smpl')
  annotations, loader = _run(_config(root), samples, smpl)
  assert list(annotations) == [s.ann_id for s in samples]
  assert not loader.skipped
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  for sample in samples:
    ann = annotations[sample.ann_id]
    assert ann.camera == 'dataset'
    # The dataset's camera comes back in original-image pixels.
    np.testing.assert_allclose(ann.focal, sample.focal, rtol=1e-5)
    np.testing.assert_allclose(ann.princpt, sample.princpt, atol=1e-3)
    verts, joints = _forward(smpl, ann.params)
    pelvis = mapping.apply(joints[None], verts[None])[0, 0]
    np.testing.assert_allclose(pelvis, sample.joints_3d[0], atol=1e-4)


def _wild_samples(root, n=5, size=96, seed=1):
  """COCO_17 samples with boxes of different sizes and places (no camera)."""
  rng = np.random.default_rng(seed)
  samples = []
  for i in range(n):
    path = os.path.join(root, f'wild_{i}.jpg')
    cv2.imwrite(path, rng.integers(0, 255, (size, size + 20, 3), dtype=np.uint8))
    w, h = rng.uniform(20, 60, 2)
    x, y = rng.uniform(0, size - 60, 2)
    joints = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17)], -1)
    samples.append(make_sample('fake', dataset='fake', ann_id=100 + i, image_path=path,
                               bbox=[x, y, w, h], joint_set='COCO_17', joints_2d=joints,
                               image_size=(size, size + 20)))
  return samples


def test_wild_cam_param_projects_like_the_crop_camera_mapped_back(root):
  samples = _wild_samples(root)
  smpl = body_models.load(root, 'smpl')
  config = _config(root, mode='wild', joint_set='COCO_17')
  annotations, _ = _run(config, samples, smpl)
  focal_crop = np.array([5000.0, 5000.0])
  princpt_crop = np.array([(CROP - 1) / 2, (CROP - 1) / 2])
  for sample in samples:
    ann = annotations[sample.ann_id]
    assert ann.camera == 'virtual'
    _, joints = _forward(smpl, ann.params)               # camera space, with transl
    in_crop = joints[:, :2] / joints[:, 2:] * focal_crop + princpt_crop
    # The crop's affine, rebuilt from the box as the pipeline defines it (x1.25 square).
    x, y, w, h = sample.bbox
    inverse = crop_lib.crop_transform(np.array([x + w / 2, y + h / 2]), max(w, h) * 1.25,
                                      CROP, inverse=True)
    expected = crop_lib.transform_points(in_crop, inverse)
    in_image = joints[:, :2] / joints[:, 2:] * ann.focal + ann.princpt
    np.testing.assert_allclose(in_image, expected, atol=1e-2)


def test_written_files_load_back_to_the_same_meshes(root, tmp_path):
  samples = fake_samples(root, n=5)
  smpl = body_models.load(root, 'smpl')
  annotations, _ = _run(_config(root), samples, smpl)
  json_path, npz_path = annotate_lib.write(annotations, str(tmp_path), 'pseudo_gt')
  with open(json_path) as f:
    entries = json.load(f)
  assert sorted(entries) == sorted(str(s.ann_id) for s in samples)
  arrays = np.load(npz_path)
  assert list(arrays['ann_ids']) == [s.ann_id for s in samples]
  for i, sample in enumerate(samples):
    entry = entries[str(sample.ann_id)]
    assert len(entry['smpl_param']['pose']) == 72
    params, focal, princpt = export.from_released_entry('smpl', entry)
    np.testing.assert_allclose(focal, annotations[sample.ann_id].focal, rtol=1e-6)
    np.testing.assert_allclose(arrays['smpl_param.pose'][i], entry['smpl_param']['pose'])
    loaded, _ = _forward(smpl, params)
    original, _ = _forward(smpl, annotations[sample.ann_id].params)
    np.testing.assert_allclose(loaded, original, atol=1e-6)


def test_mirror_params_gives_the_mirrored_mesh_with_the_left_model(root):
  right = body_models.load(root, 'mano')
  left = body_models.load(root, 'mano', is_right_hand=False)
  rng = np.random.default_rng(0)
  params = {'global_orient': rng.normal(0, 0.5, 3), 'hand_pose': rng.normal(0, 0.3, 45),
            'betas': rng.normal(0, 1, 10), 'transl': rng.normal(0, 0.2, 3)}
  params = {k: v.astype(np.float32) for k, v in params.items()}
  verts_right, _ = _forward(right, params)
  verts_left, _ = _forward(left, mirror.mirror_params(params, 'mano'))
  np.testing.assert_allclose(verts_left, verts_right * [-1, 1, 1], atol=1e-5)


def _hand_pair(root, size=64):
  """A right-hand sample and its mirror image as a left hand (image, joints, camera)."""
  rng = np.random.default_rng(3)
  image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
  focal, princpt = np.array([80.0, 80.0]), np.array([30.0, 33.0])
  j3 = np.concatenate([rng.uniform(-0.05, 0.05, (21, 2)), 0.5 + rng.uniform(0, 0.05, (21, 1))],
                      -1)
  j2 = j3[:, :2] / j3[:, 2:] * focal + princpt
  lo, hi = j2.min(0), j2.max(0)
  box = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
  paths = [os.path.join(root, 'hand_right.png'), os.path.join(root, 'hand_left.png')]
  cv2.imwrite(paths[0], image)
  cv2.imwrite(paths[1], cv2.flip(image, 1))
  # Mirror about the vertical line through the image centre (pixel centres at integers).
  flip_x = lambda u: (size - 1) - u
  mirrored_box = box.copy()
  mirrored_box[0] = flip_x(box[0] + box[2])
  common = dict(dataset='fake', part='hand', joint_set='HAND_21', image_size=(size, size))
  right = make_sample('fake', ann_id='1_right', image_path=paths[0], bbox=box, joints_2d=j2,
                      joints_3d=j3, focal=focal, princpt=princpt, hand_side='right',
                      parent_id=1, **common)
  left = make_sample('fake', ann_id='1_left', image_path=paths[1], bbox=mirrored_box,
                     joints_2d=np.stack([flip_x(j2[:, 0]), j2[:, 1]], -1),
                     joints_3d=j3 * [-1, 1, 1], focal=focal,
                     princpt=[flip_x(princpt[0]), princpt[1]], hand_side='left', parent_id=1,
                     **common)
  return right, left


def test_a_mirrored_left_hand_is_annotated_as_the_mirror_of_the_right_one(root):
  right_sample, left_sample = _hand_pair(root)
  right = body_models.load(root, 'mano')
  left = body_models.load(root, 'mano', is_right_hand=False)
  config = _config(root, family='mano', joint_set='HAND_21', batch_size=2)
  annotations, _ = _run(config, [right_sample, left_sample], right, batch_size=2)
  ann_r, ann_l = annotations['1_right'], annotations['1_left']
  assert ann_l.hand_side == 'left' and ann_l.camera == 'dataset'
  verts_r, _ = _forward(right, ann_r.params)
  verts_l, _ = _forward(left, ann_l.params)
  # Same crop pixels and mirrored joints in, so the left mesh is the right one mirrored
  # (the crops agree up to interpolation, which moves the network's output slightly).
  np.testing.assert_allclose(verts_l, verts_r * [-1, 1, 1], atol=2e-3)
  np.testing.assert_allclose(ann_l.princpt, left_sample.princpt, atol=1e-3)
  # Both hands of person 1 land in one released MANO entry.
  entries = annotate_lib.to_entries(annotations)
  assert list(entries) == [1]
  assert entries[1]['right'] is not None and entries[1]['left'] is not None
  assert len(entries[1]['left']['mano_param']['pose']) == 48


def test_world_frame_files_read_back_through_the_human36m_reader(root, tmp_path):
  """GT camera-frame parameters, written as the Human3.6M release lays them out (world
  frame, one merged body per frame from its views), read back by our Human3.6M reader
  (which moves fits into each camera as the release's demo code does) give the GT again."""
  from neuralannot_jax.data import h36m, mocap  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.data.synthetic import writers  # pylint: disable=import-outside-toplevel
  data = str(tmp_path / 'data')
  writers.make_dataset(data, root, num_images=8, size=64, kinds=('h36m',), progress=False)
  h36m_root = os.path.join(data, 'h36m')
  subjects = tuple(sorted({int(n.split('subject')[1].split('_')[0])
                           for n in os.listdir(os.path.join(h36m_root, 'annotations'))}))
  # The synthetic set ships its own world fits: hide them so the reader reads ours.
  for name in os.listdir(os.path.join(h36m_root, 'annotations')):
    if name.endswith('_smpl_param.json'):
      os.remove(os.path.join(h36m_root, 'annotations', name))
  result = h36m.read(h36m_root, subjects=subjects)
  smpl = body_models.load(root, 'smpl')
  rest_root = mocap.rest_root_of(smpl)
  with open(os.path.join(h36m_root, 'gt_smpl.json')) as f:
    gt = json.load(f)
  annotations = {}
  for sample in result.samples:
    params, focal, princpt = export.from_released_entry('smpl', gt[str(sample.ann_id)])
    annotations[sample.ann_id] = annotate_lib.Annotation(params, focal, princpt, 'smpl',
                                                         camera='dataset')
  paths, left_out, merged_as, frames = world_frame.write_mocap(
      annotations, result.extras, smpl, 'smpl', 'h36m', os.path.join(h36m_root, 'annotations'))
  assert left_out == 0
  # The frames moved back into each camera (what the comparison scores) are the GT again.
  in_cameras = world_frame.in_cameras(frames, annotations, result.extras, smpl)
  assert sorted(in_cameras) == sorted(annotations)
  for ann_id, ann in in_cameras.items():
    np.testing.assert_allclose(_forward(smpl, ann.params)[0],
                               _forward(smpl, annotations[ann_id].params)[0], atol=2e-4)
  assert 'medoid' not in merged_as        # exact views agree: they are averaged
  assert sorted(os.path.basename(p) for p in paths) == [
      f'Human36M_subject{s}_SMPL_NeuralAnnot.json' for s in subjects]
  back = h36m.read(h36m_root, subjects=subjects, rest_root=rest_root)
  assert len(back.samples) == len(result.samples)
  for sample in back.samples:
    want, _ = _forward(smpl, annotations[sample.ann_id].params)
    got, _ = _forward(smpl, sample.gt_params)
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_merge_views_averages_rotations_on_the_rotation_group(root):
  from neuralannot_jax.data import mocap  # pylint: disable=import-outside-toplevel
  smpl = body_models.load(root, 'smpl')
  rest_root = mocap.rest_root_of(smpl)
  rng = np.random.default_rng(5)
  base = {'global_orient': rng.normal(0, 1, 3), 'body_pose': rng.normal(0, 0.3, 69),
          'betas': rng.normal(0, 1, 10), 'transl': rng.normal(0, 1, 3)}
  # Two views: the same body with +-0.1 rad about one axis on the root: the mean is the base.
  views = []
  for sign in (1, -1):
    view = {k: v.astype(np.float32) for k, v in base.items()}
    view['global_orient'] = np.asarray(rotations_compose(base['global_orient'],
                                                         [0, 0, 0.1 * sign]), np.float32)
    views.append(view)
  merged = world_frame.merge_views(views, rest_root)
  verts_merged, _ = _forward(smpl, merged)
  verts_base, _ = _forward(smpl, {k: v.astype(np.float32) for k, v in base.items()})
  np.testing.assert_allclose(verts_merged, verts_base, atol=1e-4)


def test_merged_world_body_is_never_farther_from_the_views_than_the_best_view(root):
  """Issue 16, item 10: two views agree, a third is turned 90 degrees about the vertical.
  Averaging every rotation over the three gives a body unlike any view; the frame's body
  must be the agreeing views' one."""
  from neuralannot_jax.data import mocap  # pylint: disable=import-outside-toplevel
  smpl = body_models.load(root, 'smpl')
  rest_root = mocap.rest_root_of(smpl)
  rng = np.random.default_rng(6)
  base = {'global_orient': np.array([np.pi / 2, 0.0, 0.0]), 'body_pose': rng.normal(0, 0.2, 69),
          'betas': rng.normal(0, 1, 10), 'transl': np.array([0.2, -0.1, 1.0])}
  base = {k: np.asarray(v, np.float32) for k, v in base.items()}
  turned = dict(base, global_orient=np.asarray(
      rotations_compose([0, 0, np.pi / 2], base['global_orient']), np.float32))
  nudged = dict(base, body_pose=base['body_pose'] + np.float32(0.01))
  views = [base, turned, nudged]
  joints_of = world_frame.joints_function(smpl)
  joints = joints_of(views)
  merged, how = world_frame.merge_frame(views, joints, rest_root, joints_of)
  assert how == 'average'                              # of the two that agree
  got = joints_of([merged])[0]
  spread = lambda a: np.linalg.norm(a - got, axis=-1).mean()
  assert spread(joints[0]) < 0.01 and spread(joints[2]) < 0.01
  # The plain average of all three stands far from every view.
  plain = joints_of([world_frame.merge_views(views, rest_root)])[0]
  assert min(np.linalg.norm(plain - j, axis=-1).mean() for j in joints) > 0.05


def rotations_compose(aa, delta):
  """axis-angle of R(aa) @ R(delta), with scipy as the reference."""
  from scipy.spatial.transform import Rotation  # pylint: disable=import-outside-toplevel
  return (Rotation.from_rotvec(aa) * Rotation.from_rotvec(delta)).as_rotvec()


def test_a_sample_without_its_root_keeps_its_3d_joints_and_camera():
  """Real sets lose joints, the root among them. Such a sample keeps its GT 3D joints as the
  MoCap network's input, and its pseudo-GT is placed by the labelled joints' mean (it used
  to lose both: no joint input, and the virtual camera's translation in a MoCap file)."""
  rng = np.random.default_rng(4)
  gt = rng.normal(0, 0.3, (2, 6, 3)) + [0.0, 0.0, 4.0]
  shift = np.array([[0.1, -0.2, 0.3], [-0.4, 0.1, 0.2]])
  model_joints = gt - shift[:, None]            # the model's joints, exact up to a shift
  valid = np.ones((2, 6))
  valid[1, 0] = 0                               # sample 1 lacks its root
  np.testing.assert_allclose(annotate_lib.gt_translation(model_joints, gt, valid, 0), shift,
                             atol=1e-5)

  class MoCap:
    mocap = True

  batch = {'image': None, 'joints_3d': gt, 'valid3d': valid, 'has_3d': np.ones(2)}
  _, rel, inputs_valid = train_lib.network_inputs(MoCap(), batch, 0)
  np.testing.assert_array_equal(np.asarray(inputs_valid), valid)
  np.testing.assert_allclose(np.asarray(rel)[1], gt[1] - gt[1, 1:].mean(0), atol=1e-5)


def test_annotation_recomputes_the_batch_norm_statistics_under_the_weights(root):
  """With `batch_norm_batches`, the checkpoint's running averages do not reach the output:
  stale ones and fresh ones give the same annotations; without it they differ."""
  from neuralannot_jax.models import batch_norm  # pylint: disable=import-outside-toplevel
  samples = fake_samples(root, n=8)
  smpl = body_models.load(root, 'smpl')
  config = _config(root)
  spec = train_lib.make_step_spec(config)

  def run(stale, batches):
    model, _ = train_lib.create_train_state(config)
    if stale:
      for _, m in batch_norm.batch_norms(model):
        m.mean[...] = m.mean[...] + 2.0
        m.var[...] = m.var[...] * 30.0
    annotations, _ = annotate_lib.annotate(model, smpl, samples, spec, batch_size=4,
                                           num_workers=0, progress=False,
                                           batch_norm_batches=batches)
    return np.stack([annotations[s.ann_id].params['body_pose'] for s in samples])

  fresh, stale = run(False, 2), run(True, 2)
  np.testing.assert_allclose(stale, fresh, atol=1e-5)
  assert np.abs(run(True, 0) - run(False, 0)).max() > 1e-3
