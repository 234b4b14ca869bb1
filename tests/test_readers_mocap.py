"""Tests of the motion-capture readers: Human3.6M, MPI-INF-3DHP, FreiHAND, InterHand2.6M.

Every fixture is written in the release's exact json layout from a known camera and known
camera-space joints (metres): the world joints in the files are derived from them with the
dataset's own extrinsics convention, so reading back must give the known joints, and 2D joints
equal to a direct pinhole computation.
"""

import json
import os

import numpy as np
import pytest

from neuralannot_jax.data import freihand
from neuralannot_jax.data import h36m
from neuralannot_jax.data import interhand
from neuralannot_jax.data import mocap
from neuralannot_jax.data.sample import AnnotationError

TOL = 1e-5  # metres


def rotation(rng):
  """A random proper rotation, by QR (independent of the code under test)."""
  q, r = np.linalg.qr(rng.normal(size=(3, 3)))
  q = q * np.sign(np.diag(r))
  return q if np.linalg.det(q) > 0 else -q


def pinhole(points, focal, princpt):
  """(K, 3) camera points -> (K, 2) pixels through the intrinsic matrix."""
  k = np.array([[focal[0], 0, princpt[0]], [0, focal[1], princpt[1]], [0, 0, 1]])
  uvw = points @ k.T
  return uvw[:, :2] / uvw[:, 2:]


def joints_in_front(rng, count, depth=4.0, spread=0.3):
  return np.array([0.1, -0.2, depth]) + rng.normal(scale=spread, size=(count, 3))


def write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(data, f)


def tolist(a):
  return np.asarray(a).tolist()


# ---- geometry ----------------------------------------------------------------------------------

def test_axis_angle_round_trip_including_near_pi():
  rng = np.random.default_rng(0)
  for angle in (0.0, 1e-9, 0.3, 2.0, np.pi - 1e-6, np.pi):
    axis = rng.normal(size=3)
    aa = axis / np.linalg.norm(axis) * angle
    back = mocap.matrix_to_axis_angle(mocap.axis_angle_to_matrix(aa))
    np.testing.assert_allclose(mocap.axis_angle_to_matrix(back), mocap.axis_angle_to_matrix(aa),
                               atol=1e-9)
    assert np.linalg.norm(back) <= np.pi + 1e-9


def test_params_to_camera_moves_a_model_rigidly():
  """A toy model rotating about its root j0: world fit + extrinsics == camera-space fit."""
  rng = np.random.default_rng(1)
  r_cam, t_cam = rotation(rng), rng.normal(size=3)
  orient, transl, root = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3)
  points = rng.normal(size=(10, 3))

  def posed(aa, tr):
    return (points - root) @ mocap.axis_angle_to_matrix(aa).T + root + tr

  world = posed(orient, transl)
  orient_c, transl_c = mocap.params_to_camera(orient, transl, r_cam, t_cam, root)
  np.testing.assert_allclose(posed(orient_c, transl_c), world @ r_cam.T + t_cam, atol=1e-9)
  assert mocap.params_to_camera(orient, transl, r_cam, t_cam, None)[1] is None


def test_rest_root_of_reads_the_model_arrays():
  class Model:
    joint_template = np.arange(6.0).reshape(2, 3)
    joint_shapedirs = np.ones((2, 3, 4))
  fn = mocap.rest_root_of(Model)
  np.testing.assert_allclose(fn(np.ones(10)), [4.0, 5.0, 6.0])  # betas cut to 4
  np.testing.assert_allclose(fn(np.ones(2)), [2.0, 3.0, 4.0])  # shorter betas padded


# ---- Human3.6M ---------------------------------------------------------------------------------

class H36MFixture:
  """Two subjects; subject 1 holds every kind of record, subject 5 one plain record."""

  def __init__(self, root, rng):
    self.root = root
    self.annot = os.path.join(root, 'annotations')
    self.cams = {}
    self.truth = {}  # ann id -> camera-space joints (17, 3) metres
    self.fits = {}
    for subject in (1, 5):
      self.write_subject(subject, rng)

  def write_subject(self, subject, rng):
    r, t = rotation(rng), rng.normal(scale=500, size=3)  # t in mm
    f, c = rng.uniform(1100, 1200, size=2), rng.uniform(480, 520, size=2)
    self.cams[subject] = (r, t, f, c)
    images, anns, joints, fits = [], [], {}, {}
    # (frame, kind): kinds exercise the skip reasons and the fallbacks.
    frames = [(0, 'ok'), (1, 'ok'), (5, 'fit'), (10, 'behind'), (15, 'flat_box'), (20, 'no_box')]
    if subject == 5:
      frames = [(0, 'ok')]
    for n, (frame, kind) in enumerate(frames):
      ann_id = subject * 100 + n
      cam_joints = joints_in_front(rng, 17)
      if kind == 'behind':
        cam_joints[3, 2] = -0.5
      world = (cam_joints * 1000 - t) @ r  # inverse of x_cam = R x + t, mm
      joints.setdefault('2', {}).setdefault('1', {})[str(frame)] = tolist(world)
      images.append({'id': ann_id + 5000, 'file_name': f's{subject}/{frame:06d}.jpg',
                     'height': 1002, 'width': 1000, 'subject': subject, 'action_idx': 2,
                     'subaction_idx': 1, 'frame_idx': frame, 'cam_idx': 1})
      ann = {'id': ann_id, 'image_id': ann_id + 5000, 'bbox': [300.0, 200.0, 400.0, 600.0]}
      if kind == 'flat_box':
        ann['bbox'] = [300.0, 200.0, 0.0, 600.0]
      if kind == 'no_box':
        del ann['bbox']
      anns.append(ann)
      self.truth[ann_id] = cam_joints
      if kind == 'fit':
        fit = {'pose': tolist(rng.normal(scale=0.3, size=72)),
               'shape': tolist(rng.normal(size=10)), 'trans': tolist(rng.normal(size=3))}
        fits.setdefault('2', {}).setdefault('1', {})[str(frame)] = fit
        self.fits[ann_id] = fit
    prefix = os.path.join(self.annot, f'Human36M_subject{subject}')
    write(f'{prefix}_data.json', {'images': images, 'annotations': anns})
    write(f'{prefix}_camera.json', {'1': {'R': tolist(r), 't': tolist(t), 'f': tolist(f),
                                          'c': tolist(c)}})
    write(f'{prefix}_joint_3d.json', joints)
    if fits:
      write(f'{prefix}_SMPL_NeuralAnnot.json', fits)


@pytest.fixture
def h36m_data(tmp_path):
  return H36MFixture(str(tmp_path), np.random.default_rng(2))


def test_h36m_camera_joints_projection_and_skips(h36m_data):
  result = h36m.read(h36m_data.root, subjects=(1, 5))
  by_id = {s.ann_id: s for s in result.samples}
  assert sorted(by_id) == [100, 101, 102, 105, 500]
  assert dict(result.skipped) == {'behind_camera': 1, 'zero_size_box': 1}
  for ann_id, sample in by_id.items():
    r, t, f, c = h36m_data.cams[ann_id // 100]
    np.testing.assert_allclose(sample.joints_3d, h36m_data.truth[ann_id], atol=TOL)
    np.testing.assert_allclose(sample.joints_2d, pinhole(h36m_data.truth[ann_id], f, c),
                               atol=1e-3)
    np.testing.assert_allclose(sample.focal, f, rtol=1e-6)
    np.testing.assert_allclose(sample.princpt, c, rtol=1e-6)
    assert sample.joint_set == 'H36M_17' and sample.part == 'body'
    assert sample.image_size == (1002, 1000) and sample.image_id == ann_id + 5000
  np.testing.assert_allclose(by_id[100].bbox, [300, 200, 400, 600])
  assert by_id[100].image_path == os.path.join(h36m_data.root, 'images', 's1', '000000.jpg')
  # Without a box in the file, the box encloses the projected joints with a margin.
  box, uv = by_id[105].bbox, by_id[105].joints_2d
  assert np.all(uv >= box[:2] - 1e-3) and np.all(uv <= box[:2] + box[2:] + 1e-3)
  assert 'h36m: 5 samples (5 body)' in result.summary()


def test_h36m_frame_stride_and_subjects(h36m_data):
  result = h36m.read(h36m_data.root, subjects=(1,), frame_stride=5)
  assert sorted(s.ann_id for s in result.samples) == [100, 102, 105]
  assert result.skipped['frame_stride'] == 1
  with pytest.raises(ValueError, match='frame_stride'):
    h36m.read(h36m_data.root, subjects=(1,), frame_stride=0)
  with pytest.raises(AnnotationError, match=r'Human36M_subject6_data\.json: file: path: missing'):
    h36m.read(h36m_data.root, subjects=(1, 6))


def test_h36m_smpl_fit_in_camera_space(h36m_data):
  root_fn = lambda betas: np.array([0.01, -0.2, 0.03]) + 0.01 * betas[:3]
  sample = {s.ann_id: s for s in h36m.read(h36m_data.root, subjects=(1,),
                                           rest_root=root_fn).samples}[102]
  fit = h36m_data.fits[102]
  r, t, _, _ = h36m_data.cams[1]
  assert sample.gt_family == 'smpl'
  assert sorted(sample.gt_params) == ['betas', 'body_pose', 'global_orient', 'transl']
  np.testing.assert_allclose(sample.gt_params['body_pose'], fit['pose'][3:], rtol=1e-6)
  np.testing.assert_allclose(mocap.axis_angle_to_matrix(sample.gt_params['global_orient']),
                             r @ mocap.axis_angle_to_matrix(fit['pose'][:3]), atol=1e-6)
  root = root_fn(np.array(fit['shape']))
  np.testing.assert_allclose(sample.gt_params['transl'],
                             r @ (np.array(fit['trans']) + root) + t / 1000 - root, atol=1e-6)
  plain = h36m.read(h36m_data.root, subjects=(1,)).samples
  assert 'transl' not in {s.ann_id: s for s in plain}[102].gt_params
  assert all(s.gt_family is None for s in plain if s.ann_id != 102)


def edit_json(path, change):
  with open(path) as f:
    data = json.load(f)
  change(data)
  write(path, data)


@pytest.mark.parametrize('file, change, message', [
    ('camera', lambda d: d['1'].pop('f'), r'subject1_camera\.json: camera 1: f: missing'),
    ('joint_3d', lambda d: d['2']['1']['0'].pop(),
     r"subject1_joint_3d\.json: annotation 100: joint_3d: has 48 values, expected 51"),
    ('joint_3d', lambda d: d['2']['1'].pop('0'),
     r"subject1_joint_3d\.json: annotation 100: joint_3d: no entry \['2'\]\['1'\]\['0'\]"),
    ('data', lambda d: d['images'][0].pop('frame_idx'),
     r'subject1_data\.json: image 5100: frame_idx: missing'),
    ('data', lambda d: d['annotations'][0].update(bbox=[1, 2, 3]),
     r'subject1_data\.json: annotation 100: bbox: has 3 values, expected 4'),
    ('SMPL_NeuralAnnot', lambda d: d['2']['1']['5'].update(shape=[0.0] * 9),
     r'subject1_SMPL_NeuralAnnot\.json: annotation 102: smpl\.shape: has 9 values'),
])
def test_h36m_malformed_input_names_file_record_field(h36m_data, file, change, message):
  edit_json(os.path.join(h36m_data.annot, f'Human36M_subject1_{file}.json'), change)
  with pytest.raises(AnnotationError, match=message):
    h36m.read(h36m_data.root, subjects=(1,))


# ---- MPI-INF-3DHP ------------------------------------------------------------------------------

def test_mpi_inf_3dhp_layout_images_and_errors(tmp_path):
  rng = np.random.default_rng(3)
  root = str(tmp_path)
  r, t = rotation(rng), rng.normal(scale=800, size=3)
  f, c = np.array([1497.0, 1495.0]), np.array([1024.0, 1020.0])
  truth, images, anns, joints = {}, [], [], {}
  for n, frame in enumerate((0, 3, 6)):
    cam_joints = joints_in_front(rng, 17, depth=5.0)
    truth[n] = cam_joints
    joints.setdefault('1', {}).setdefault('2', {})[str(frame)] = tolist((cam_joints * 1000 - t) @ r)
    images.append({'id': n, 'file_name': f'img_8_{frame:06d}.jpg', 'height': 2048,
                   'width': 2048, 'subject_idx': 1, 'seq_idx': 2, 'frame_idx': frame,
                   'cam_idx': 8})
    anns.append({'id': n, 'image_id': n, 'bbox': [500.0, 400.0, 600.0, 1200.0]})
  write(os.path.join(root, 'MPI-INF-3DHP_1k.json'), {'images': images, 'annotations': anns})
  write(os.path.join(root, 'MPI-INF-3DHP_camera_1k.json'),
        {'1': {'2': {'8': {'R': tolist(r), 't': tolist(t), 'focal': tolist(f),
                           'princpt': tolist(c)}}}})
  write(os.path.join(root, 'MPI-INF-3DHP_joint_3d.json'), joints)
  image = os.path.join(root, 'images_1k', 'S1', 'Seq2', 'imageSequence', 'img_8_000003.jpg')
  os.makedirs(os.path.dirname(image))
  open(image, 'wb').close()

  result = h36m.read_mpi_inf_3dhp(root)
  assert [s.ann_id for s in result.samples] == [0, 1, 2]
  for s in result.samples:
    assert s.joint_set == 'MPI_INF_3DHP_17' and s.dataset == 'mpi_inf_3dhp'
    np.testing.assert_allclose(s.joints_3d, truth[s.ann_id], atol=TOL)
    np.testing.assert_allclose(s.joints_2d, pinhole(truth[s.ann_id], f, c), atol=1e-3)
  checked = h36m.read_mpi_inf_3dhp(root, check_images=True)
  assert [s.image_path for s in checked.samples] == [image]
  assert dict(checked.skipped) == {'missing_image': 2}
  assert h36m.read_mpi_inf_3dhp(root, frame_stride=2).skipped['frame_stride'] == 1

  edit_json(os.path.join(root, 'MPI-INF-3DHP_camera_1k.json'), lambda d: d['1']['2'].pop('8'))
  message = r"camera_1k\.json: annotation 0: camera: no entry \['1'\]\['2'\]\['8'\]"
  with pytest.raises(AnnotationError, match=message):
    h36m.read_mpi_inf_3dhp(root)


# ---- FreiHAND ----------------------------------------------------------------------------------

class FreiFixture:
  """Three annotated poses; pose 2 lies behind the camera."""

  def __init__(self, root, rng, n=3):
    self.root, self.n = root, n
    self.xyz = [joints_in_front(rng, 21, depth=0.6, spread=0.03) for _ in range(n)]
    self.xyz[2][:, 2] *= -1
    self.k = []
    for _ in range(n):
      f, c = rng.uniform(400, 600, size=2), rng.uniform(100, 124, size=2)
      self.k.append(np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]]))
    self.mano = [rng.normal(size=(1, 61)) for _ in range(n)]
    self.verts = [rng.normal(size=(778, 3)) for _ in range(n)]
    for key, values in (('xyz', self.xyz), ('K', self.k), ('mano', self.mano),
                        ('verts', self.verts)):
      write(os.path.join(root, f'training_{key}.json'), [tolist(v) for v in values])


@pytest.fixture
def frei(tmp_path):
  return FreiFixture(str(tmp_path), np.random.default_rng(4))


def test_freihand_image_index_maps_to_annotation_index():
  assert freihand.image_index(1, 2) == 1 + 2 * 32560
  assert freihand.pose_index(1 + 2 * 32560) == 1
  assert freihand.pose_index(130239) == 32559


def test_freihand_samples_versions_and_skips(frei):
  result = freihand.read(frei.root, versions=(0, 'sample'))
  assert [s.ann_id for s in result.samples] == [0, 1, 6, 7]  # image i + 3 * version
  assert dict(result.skipped) == {'behind_camera': 2}
  for s in result.samples:
    pose = freihand.pose_index(s.ann_id, frei.n)
    k = frei.k[pose]
    np.testing.assert_allclose(s.joints_3d, frei.xyz[pose], atol=1e-6)
    uvw = frei.xyz[pose] @ k.T  # FreiHAND's own projectPoints
    np.testing.assert_allclose(s.joints_2d, uvw[:, :2] / uvw[:, 2:], atol=1e-3)
    np.testing.assert_allclose(s.focal, k[[0, 1], [0, 1]], rtol=1e-6)
    np.testing.assert_allclose(s.gt_vertices, frei.verts[pose], atol=1e-6)
    theta = frei.mano[pose][0]
    np.testing.assert_allclose(s.gt_params['global_orient'], theta[:3], rtol=1e-6)
    np.testing.assert_allclose(s.gt_params['hand_pose'], theta[3:48], rtol=1e-6)
    np.testing.assert_allclose(s.gt_params['betas'], theta[48:58], rtol=1e-6)
    assert 'transl' not in s.gt_params
    assert (s.part, s.hand_side, s.joint_set, s.gt_family) == ('hand', 'right', 'HAND_21', 'mano')
    assert s.image_path.endswith(os.path.join('training', 'rgb', f'{s.ann_id:08d}.jpg'))
    # The box is a square around the joints, 20% larger than their extent.
    box, uv = s.bbox, s.joints_2d
    assert box[2] == pytest.approx(box[3])
    assert box[2] == pytest.approx(1.2 * np.ptp(uv, axis=0).max(), rel=1e-5)
    np.testing.assert_allclose(box[:2] + box[2:] / 2, (uv.min(0) + uv.max(0)) / 2, atol=1e-3)
  assert freihand.read(frei.root, vertices=False).samples[0].gt_vertices is None


def test_freihand_check_images_and_errors(frei):
  image = os.path.join(frei.root, 'training', 'rgb', '00000001.jpg')
  os.makedirs(os.path.dirname(image))
  open(image, 'wb').close()
  result = freihand.read(frei.root, check_images=True)
  assert [s.ann_id for s in result.samples] == [1]
  assert dict(result.skipped) == {'missing_image': 2}
  with pytest.raises(ValueError, match='version'):
    freihand.read(frei.root, versions=(4,))

  edit_json(os.path.join(frei.root, 'training_K.json'), lambda d: d[1].pop())
  with pytest.raises(AnnotationError, match=r'training_K\.json: annotation 1: K: has 6 values'):
    freihand.read(frei.root)
  edit_json(os.path.join(frei.root, 'training_mano.json'), lambda d: d.pop())
  with pytest.raises(AnnotationError, match=r'training_mano\.json: file: length: 2 entries'):
    freihand.read(frei.root)


# ---- InterHand2.6M -----------------------------------------------------------------------------

class InterHandFixture:
  """One capture, one camera; each annotation exercises one case (see `cases`)."""

  cases = {  # ann id: (hand_type, joints made invalid, where the hand is moved)
      10: ('interacting', None, None),
      11: ('right', None, None),
      12: ('left', ('left_wrist',), None),
      13: ('right', ('right_index',), None),
      14: ('right', None, 'behind_camera'),
      15: ('right', None, 'outside_image'),
  }

  def __init__(self, root, rng):
    self.root = root
    self.annot = os.path.join(root, 'annotations', 'train')
    r, campos = rotation(rng), rng.normal(scale=1000, size=3)
    f, c = np.array([1250.0, 1245.0]), np.array([160.0, 255.0])
    self.cam = (r, campos, f, c)
    self.truth, self.valid = {}, {}
    images, anns, joints = [], [], {}
    for frame, (ann_id, (hand_type, invalid, moved)) in enumerate(self.cases.items()):
      # Distinct values per joint: joint j sits 2 mm further along x than joint j - 1.
      cam_joints = np.array([-0.04, -0.02, 0.8]) + np.outer(np.arange(42), [0.002, 0.001, 0.001])
      if moved == 'behind_camera':
        cam_joints[:, 2] -= 2.0
      if moved == 'outside_image':
        cam_joints[:, 0] += 1.0
      valid = np.ones(42)
      for name in invalid or ():
        valid[{'left_wrist': [41], 'right_index': [4, 5, 6, 7]}[name]] = 0
      world = cam_joints * 1000 @ r + campos  # inverse of x_cam = R (x - campos)
      joints[str(frame)] = {'world_coord': tolist(world), 'joint_valid': tolist(valid),
                            'hand_type': hand_type, 'hand_type_valid': 1}
      images.append({'id': ann_id + 900, 'file_name': f'Capture0/seq/cam400002/image{frame}.jpg',
                     'width': 334, 'height': 512, 'capture': 0, 'camera': '400002',
                     'frame_idx': frame, 'seq_name': 'seq'})
      anns.append({'id': ann_id, 'image_id': ann_id + 900, 'bbox': [0.0, 0.0, 300.0, 500.0],
                   'joint_valid': tolist(valid[:, None]), 'hand_type': hand_type,
                   'hand_type_valid': 1})
      self.truth[ann_id], self.valid[ann_id] = cam_joints, valid
    cams = {'0': {'campos': {'400002': tolist(campos)}, 'camrot': {'400002': tolist(r)},
                  'focal': {'400002': tolist(f)}, 'princpt': {'400002': tolist(c)}}}
    self.fit = {'pose': tolist(rng.normal(scale=0.3, size=48)),
                'shape': tolist(rng.normal(size=10)), 'trans': tolist(rng.normal(size=3))}
    write(os.path.join(self.annot, 'InterHand2.6M_train_data.json'),
          {'images': images, 'annotations': anns})
    write(os.path.join(self.annot, 'InterHand2.6M_train_camera.json'), cams)
    write(os.path.join(self.annot, 'InterHand2.6M_train_joint_3d.json'), {'0': joints})
    write(os.path.join(self.annot, 'InterHand2.6M_train_MANO_NeuralAnnot.json'),
          {'0': {'0': {'right': self.fit, 'left': None}}})


@pytest.fixture
def ih(tmp_path):
  return InterHandFixture(str(tmp_path), np.random.default_rng(5))


def test_interhand_reorder_is_wrist_then_fingers_base_to_tip():
  order = interhand.TO_HAND_21
  assert order[0] == 20  # wrist last in InterHand
  assert list(order[1:5]) == [3, 2, 1, 0]  # thumb1 (base) .. thumb4 (tip)
  assert list(order[17:21]) == [19, 18, 17, 16]  # pinky1 .. pinky4
  assert sorted(order) == list(range(21))


def test_interhand_hands_joints_and_skips(ih):
  result = interhand.read(ih.root)
  by_id = {s.ann_id: s for s in result.samples}
  assert sorted(by_id) == ['10_left', '10_right', '11_right', '13_right']
  assert dict(result.skipped) == {'no_valid_joints': 1, 'behind_camera': 1, 'zero_size_box': 1}
  _, _, f, c = ih.cam
  for key, s in by_id.items():
    ann_id, side = int(key.split('_')[0]), key.split('_')[1]
    assert (s.parent_id, s.hand_side, s.joint_set, s.part) == (ann_id, side, 'HAND_21', 'hand')
    first = 0 if side == 'right' else 21
    truth = ih.truth[ann_id][first:first + 21]
    # Explicit joints: wrist, thumb base, thumb tip, pinky tip.
    for ours, theirs in ((0, 20), (1, 3), (4, 0), (20, 16)):
      if s.joints_3d_valid[ours]:
        np.testing.assert_allclose(s.joints_3d[ours], truth[theirs], atol=TOL)
    want = truth[interhand.TO_HAND_21]
    valid = s.joints_3d_valid > 0
    np.testing.assert_allclose(s.joints_3d[valid], want[valid], atol=TOL)
    np.testing.assert_allclose(s.joints_2d[valid], pinhole(want, f, c)[valid], atol=1e-3)
    uv = s.joints_2d[valid]
    assert np.all(uv >= s.bbox[:2] - 1e-3) and np.all(uv <= s.bbox[:2] + s.bbox[2:] + 1e-3)
    assert s.image_size == (512, 334)
  # Index finger joints (InterHand 4..7) are HAND_21 5..8 and are invalid in annotation 13.
  assert list(np.flatnonzero(by_id['13_right'].joints_2d_valid == 0)) == [5, 6, 7, 8]
  assert not np.any(by_id['13_right'].joints_3d[5:9])
  # A box from the hand's own joints, not the file's two-hand box.
  assert by_id['10_right'].bbox[2] < 100 and by_id['10_left'].bbox[0] > 100


def test_interhand_mano_fit_in_camera_space(ih):
  r, campos, _, _ = ih.cam
  root = np.array([0.09, 0.005, 0.006])
  result = interhand.read(ih.root, rest_root={'right': lambda b: root, 'left': lambda b: -root})
  by_id = {s.ann_id: s for s in result.samples}
  right = by_id['10_right']
  assert right.gt_family == 'mano' and by_id['10_left'].gt_family is None
  assert by_id['11_right'].gt_family is None  # no fit stored for that frame
  np.testing.assert_allclose(right.gt_params['hand_pose'], ih.fit['pose'][3:], rtol=1e-6)
  np.testing.assert_allclose(mocap.axis_angle_to_matrix(right.gt_params['global_orient']),
                             r @ mocap.axis_angle_to_matrix(ih.fit['pose'][:3]), atol=1e-6)
  t = -r @ campos / 1000
  np.testing.assert_allclose(right.gt_params['transl'],
                             r @ (np.array(ih.fit['trans']) + root) + t - root, atol=1e-6)
  assert 'transl' not in interhand.read(ih.root).samples[0].gt_params


def test_interhand_check_images_counts_each_hand(ih):
  result = interhand.read(ih.root, check_images=True)
  assert result.samples == [] and result.skipped['missing_image'] == 7


@pytest.mark.parametrize('file, change, message', [
    ('data', lambda d: d['annotations'][0].update(hand_type='both'),
     r"train_data\.json: annotation 10: hand_type: 'both' is not one of"),
    ('data', lambda d: d['images'][1].pop('camera'),
     r'train_data\.json: image 911: camera: missing'),
    ('camera', lambda d: d['0']['focal'].pop('400002'),
     r"train_camera\.json: annotation 10: focal: no camera '400002'"),
    ('joint_3d', lambda d: d['0']['1']['world_coord'].pop(),
     r'train_joint_3d\.json: annotation 11: world_coord: has 123 values, expected 126'),
    ('joint_3d', lambda d: d['0'].pop('2'),
     r"train_joint_3d\.json: annotation 12: joint_3d: no entry \['0'\]\['2'\]"),
    ('MANO_NeuralAnnot', lambda d: d['0']['0']['right'].pop('trans'),
     r'MANO_NeuralAnnot\.json: annotation 10 \(right hand, capture 0, frame 0\): trans: missing'),
])
def test_interhand_malformed_input_names_file_record_field(ih, file, change, message):
  edit_json(os.path.join(ih.annot, f'InterHand2.6M_train_{file}.json'), change)
  with pytest.raises(AnnotationError, match=message):
    interhand.read(ih.root)
