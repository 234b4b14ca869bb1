"""camera.py, decode.py and losses.py: the annotator's geometry, head decoding and objective."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import body_models
from body_models import rotations
from body_models import synthetic
from body_models import vposer
from neuralannot_jax.data import crop as crop_lib
from neuralannot_jax.data import joint_sets
from neuralannot_jax.method import camera
from neuralannot_jax.method import decode as decode_lib
from neuralannot_jax.method import losses


# Jitted once per shape: eager dispatch of the many small rotation ops is what is slow on CPU.
_decode = jax.jit(decode_lib.decode, static_argnums=0)
_decode_rotmats = jax.jit(decode_lib.decode_rotmats, static_argnums=0)
_forward = jax.jit(body_models.forward)
_forward_rotmats = jax.jit(body_models.forward_rotmats)


@pytest.fixture(scope='module')
def smpl(tmp_path_factory):
  root = tmp_path_factory.mktemp('smpl')
  synthetic.write_model('smpl', root)
  return body_models.load(root, 'smpl')


@pytest.fixture(scope='module')
def mano_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('mano')
  synthetic.write_model('mano', root)
  return root


@pytest.fixture(scope='module')
def vposer_params():
  return vposer.init_params(jax.random.key(0))   # outside jit, as its docstring asks


def _random_aa(rng, shape, scale=0.8):
  return rng.uniform(-scale, scale, shape).astype(np.float32)


# ----------------------------------------------------------------------------- camera


def test_camera_translation_is_log_depth_around_the_authors_k():
  cam = np.array([[0.1, -0.2, 0.0], [0.0, 0.3, 1.5], [-1.0, 0.0, -2.0]], np.float32)
  got = np.asarray(camera.camera_translation(cam, 256, (5000, 5000), 2.5))
  k = math.sqrt(5000 * 5000 * 2.5 * 2.5 / (256 * 256))     # = 48.828125, the authors' k
  r = camera.DEPTH_LOG_RANGE
  for row, c in zip(got, cam):
    np.testing.assert_allclose(row[:2], c[:2])
    np.testing.assert_allclose(row[2], k * math.exp(r * math.tanh(c[2] / r)), rtol=1e-6)
  # A non-square input (the authors' 256x192 body crop) and a hand's 0.4 m.
  got = camera.camera_translation(cam, (256, 192), (5000, 4000), 0.4)
  k = math.sqrt(5000 * 4000 * 0.4 * 0.4 / (256 * 192))
  np.testing.assert_allclose(got[:, 2], k * np.exp(r * np.tanh(cam[:, 2] / r)), rtol=1e-6)
  # depth_logit inverts it.
  np.testing.assert_allclose(
      camera.camera_translation(np.array([[0, 0, camera.depth_logit(30.0, 256)]]), 256)[0, 2],
      30.0, rtol=1e-5)
  assert camera.default_camera_3d_size('mano') == 0.4
  assert camera.default_camera_3d_size('smplx') == 2.5


@pytest.mark.parametrize('part,family', [('body', 'smpl'), ('hand', 'mano')])
def test_every_box_size_is_reachable_with_a_healthy_depth_gradient(part, family):
  """Issue 16, item 4. A subject of typical extent spanning from 1/4 of the square crop to
  twice it (scale augmentation shrinks boxes, bent people have boxes smaller than their
  3D extent) needs depth f * extent / span; each must come from a moderate logit with
  d log(t_z) / dc >= 0.5. The authors' k * sigmoid(c) cannot reach spans below the crop's
  camera_3d_size / extent fraction, nor give such a gradient near its saturation."""
  size, f, extent = 256, 5000.0, camera.TYPICAL_EXTENT[part]
  size_3d = camera.default_camera_3d_size(family)
  spans = np.array([0.25, 0.5, 0.8, 1.0, 1.5, 2.0]) * size
  depths = f * extent / spans
  logits = np.asarray(camera.depth_logit(depths, size, (f, f), size_3d), np.float32)
  assert np.all(np.isfinite(logits)) and np.all(np.abs(logits) < 3.0), logits

  def log_depth(c):
    cam = jnp.stack([jnp.zeros_like(c), jnp.zeros_like(c), c], -1)
    return jnp.log(camera.camera_translation(cam, size, (f, f), size_3d)[..., 2])

  np.testing.assert_allclose(np.exp(log_depth(jnp.asarray(logits))), depths, rtol=1e-4)
  slopes = jax.vmap(jax.grad(log_depth))(jnp.asarray(logits))
  assert np.all(slopes >= 0.5), slopes
  # The typical subject itself (0.8 of the crop) starts at the head's neutral depth.
  typical = camera.typical_depth_logit(family)
  np.testing.assert_allclose(typical, logits[2], rtol=1e-4)


def test_neutral_head_output_is_an_upright_body_facing_the_camera(smpl):
  """Issue 16, item 3: the head's initial bias decodes to a plausible mean subject: head
  above the pelvis in the image (OpenCV y down), the nose nearer the camera than the
  back of the head, and the body spanning about 1/1.25 of the crop, as annotation boxes
  make it."""
  spec = decode_lib.HeadSpec('smpl', 'mocap', crop_size=256)
  params = _decode(spec, spec.split(jnp.asarray(spec.neutral())[None]))
  out = _forward(smpl, **params)
  names = list(smpl.joint_names)
  joints = np.asarray(out.joints[0])
  pelvis, head = joints[names.index('pelvis')], joints[names.index('head')]
  focal, princpt = camera.crop_camera(256)
  pix = np.asarray(camera.project(out.vertices, focal, princpt))[0]
  assert head[1] < pelvis[1] - 0.3              # upright: the head is higher (smaller y)
  nose = np.asarray(out.vertices[0, int(np.argmin(out.vertices[0, :, 2]))])
  assert nose[2] < head[2]                       # the front of the body faces the camera
  assert abs(nose[0] - head[0]) < 0.15           # ... and it is the face, not a hand
  span = pix[:, 1].max() - pix[:, 1].min()
  assert 0.6 * 256 < span < 1.0 * 256, span


def test_project_by_hand_and_crop_camera():
  focal, princpt = camera.crop_camera(256)
  np.testing.assert_allclose(focal, [5000, 5000])
  np.testing.assert_allclose(princpt, [127.5, 127.5])
  pts = np.array([[[0.1, -0.2, 40.0], [0.0, 0.0, 20.0]]], np.float32)
  got = camera.project(pts, focal, princpt)
  np.testing.assert_allclose(got[0, 0], [0.1 / 40 * 5000 + 127.5, -0.2 / 40 * 5000 + 127.5],
                             rtol=1e-6)
  np.testing.assert_allclose(got[0, 1], [127.5, 127.5])
  # Per-sample cameras (B, 2).
  got = camera.project(np.concatenate([pts, pts]), np.array([[5000, 5000], [100, 200]]),
                       np.array([[127.5, 127.5], [0, 0]]))
  np.testing.assert_allclose(got[1, 0], [0.1 / 40 * 100, -0.2 / 40 * 200], rtol=1e-6)


def test_crop_projection_maps_back_to_the_original_camera():
  """Project with the crop camera, map the pixels with the inverse affine == project with
  the original-image camera, for random boxes (scale + translation crops)."""
  rng = np.random.default_rng(0)
  b, k, size = 6, 9, 256
  centers = rng.uniform(100, 1500, (b, 2))
  sides = rng.uniform(40, 900, b)
  inverse = np.stack([crop_lib.crop_transform(c, s, size, inverse=True)
                      for c, s in zip(centers, sides)])
  points = rng.normal(0, 0.5, (b, k, 3)) + np.array([0.2, -0.1, 30.0])
  focal, princpt = camera.crop_camera(size)
  crop_px = np.asarray(camera.project(points, focal, princpt))
  back = crop_lib.transform_points(crop_px, inverse)
  f_o, c_o = camera.to_original_camera(focal, princpt, inverse)
  np.testing.assert_allclose(f_o, 5000 * sides[:, None] / size * np.ones(2), rtol=1e-5)
  direct = camera.project(points, f_o, c_o)
  np.testing.assert_allclose(direct, back, atol=2e-3)


def test_flipped_rotated_crop_maps_back_after_undoing_the_3d_transform():
  rng = np.random.default_rng(1)
  size = 256
  focal, princpt = camera.crop_camera(size)
  for rotation, flip in ((30.0, False), (0.0, True), (-45.0, True)):
    center, side = rng.uniform(200, 800, 2), rng.uniform(100, 500)
    inverse = crop_lib.crop_transform(center, side, size, rotation, flip, inverse=True)
    original = rng.normal(0, 0.4, (1, 7, 3)) + np.array([0.0, 0.0, 25.0])
    # The crop frame as data/crop.py builds it: rotate about z, then mirror x.
    mirror = np.diag([-1.0 if flip else 1.0, 1.0, 1.0])
    in_crop = original @ (mirror @ crop_lib.rotation_3d(rotation)).T
    crop_px = np.asarray(camera.project(in_crop, focal, princpt))
    back = crop_lib.transform_points(crop_px, inverse[None])
    f_o, c_o = camera.to_original_camera(focal, princpt, inverse[None])
    undone = crop_lib.crop_to_camera_3d(in_crop, rotation, flip)
    np.testing.assert_allclose(undone, original, atol=1e-5)
    np.testing.assert_allclose(camera.project(undone, f_o, c_o), back, atol=2e-3)


def test_project_is_finite_at_and_behind_the_camera():
  pts = jnp.array([[[0.1, 0.2, 0.0], [0.1, -0.2, -1.0], [0.3, 0.1, 1e-7]]])
  f, c = camera.crop_camera(256)
  grad = jax.grad(lambda p: jnp.sum(camera.project(p, f, c)))(pts)
  assert np.all(np.isfinite(camera.project(pts, f, c)))
  assert np.all(np.isfinite(grad))


# ----------------------------------------------------------------------------- decode


def test_head_spec_layouts():
  spec = decode_lib.HeadSpec('smplx', 'mocap')
  names = [s.name for s in spec.slots]
  assert names == ['global_orient', 'body_pose', 'jaw_pose', 'left_hand_pose',
                   'right_hand_pose', 'betas', 'expression', 'camera']
  assert spec.size == 6 * (1 + 21 + 1 + 15 + 15) + 10 + 10 + 3
  wild = decode_lib.HeadSpec('smplx', 'wild', num_hand_comps=12)
  assert wild.size == 6 + 32 + 6 + 12 + 12 + 10 + 10 + 3
  assert decode_lib.HeadSpec('smpl', 'wild').size == 6 + 32 + 10 + 3
  assert decode_lib.HeadSpec('mano', 'wild').size == 6 + 6 + 10 + 3
  # FLAME: global and jaw rotations, as the released files (no neck, no eyes).
  flame = decode_lib.HeadSpec('flame', 'wild')
  assert [s.name for s in flame.slots] == ['global_orient', 'jaw_pose', 'betas', 'expression',
                                           'camera']
  assert flame.size == 6 * 2 + 10 + 10 + 3
  assert decode_lib.HeadSpec('mano', 'wild').depth_size == 0.4
  hash(wild)   # static under jit
  parts = spec.split(jnp.zeros((4, spec.size)))
  assert parts['body_pose'].shape == (4, 21, 6)
  assert parts['camera'].shape == (4, 3)
  with pytest.raises(ValueError, match='predicts'):
    spec.split(jnp.zeros((4, spec.size + 1)))
  with pytest.raises(ValueError, match='mode'):
    decode_lib.HeadSpec('smpl', 'other')


def test_6d_decode_recovers_known_rotations():
  rng = np.random.default_rng(2)
  spec = decode_lib.HeadSpec('smpl', 'mocap')
  aa = _random_aa(rng, (3, 24, 3), 2.0)
  r6 = rotations.axis_angle_to_rot6d(jnp.asarray(aa))
  raw = {'global_orient': r6[:, :1], 'body_pose': r6[:, 1:],
         'betas': jnp.zeros((3, 10)), 'camera': jnp.zeros((3, 3))}
  params = _decode(spec, raw)
  np.testing.assert_allclose(params['global_orient'], aa[:, 0], atol=1e-5)
  np.testing.assert_allclose(params['body_pose'], aa[:, 1:].reshape(3, 69), atol=1e-5)
  assert params['transl'].shape == (3, 3)
  # A flat head vector with the neutral bias decodes to the rest pose, turned to face the
  # camera (a half turn about x), at the typical depth.
  neutral = _decode(spec, spec.split(jnp.tile(jnp.asarray(spec.neutral()), (3, 1))))
  np.testing.assert_allclose(neutral['body_pose'], 0, atol=1e-6)
  np.testing.assert_allclose(np.abs(neutral['global_orient']), [[np.pi, 0, 0]] * 3, atol=1e-5)
  np.testing.assert_allclose(
      neutral['transl'][:, 2], 5000 * camera.TYPICAL_EXTENT['body'] * 1.25 / 256, rtol=1e-5)


def test_mocap_decode_and_forward_reproduce_a_pose(smpl):
  rng = np.random.default_rng(3)
  spec = decode_lib.HeadSpec('smpl', 'mocap')
  aa = _random_aa(rng, (2, 24, 3))
  betas = rng.normal(0, 1, (2, 10)).astype(np.float32)
  r6 = np.asarray(rotations.axis_angle_to_rot6d(jnp.asarray(aa))).reshape(2, -1)
  cam = np.array([[0.1, 0.2, 0.5], [0.0, -0.1, -0.3]], np.float32)
  raw = jnp.asarray(np.concatenate([r6, betas, cam], 1))
  params = _decode(spec, spec.split(raw))
  out = _forward(smpl, **params)
  transl = camera.camera_translation(cam, 256)
  want = _forward(smpl, global_orient=aa[:, 0], body_pose=aa[:, 1:].reshape(2, -1),
                  betas=betas, transl=transl)
  np.testing.assert_allclose(out.vertices, want.vertices, atol=1e-4)
  # The rotation-matrix path gives the same mesh.
  rot = _decode_rotmats(spec, spec.split(raw))
  assert rot['rotmats'].shape == (2, 24, 3, 3)
  np.testing.assert_allclose(_forward_rotmats(smpl, **rot).vertices,
                             want.vertices, atol=1e-4)


def test_vposer_path_gives_smpl_body_pose_with_zero_hands(vposer_params):
  rng = np.random.default_rng(4)
  spec = decode_lib.HeadSpec('smpl', 'wild')
  raw = spec.split(jnp.asarray(rng.normal(0, 1, (3, spec.size)).astype(np.float32)))
  params = _decode(spec, raw, vposer_params=vposer_params)
  assert params['body_pose'].shape == (3, 69)
  want = vposer.decode(vposer_params, raw['body_pose'])
  assert want.shape == (3, 63)
  np.testing.assert_allclose(params['body_pose'][:, :63], want, atol=1e-6)
  np.testing.assert_array_equal(params['body_pose'][:, 63:], 0)
  rot = _decode_rotmats(spec, raw, vposer_params=vposer_params)
  np.testing.assert_allclose(rot['rotmats'][:, 22:], np.broadcast_to(np.eye(3), (3, 2, 3, 3)))
  np.testing.assert_allclose(rot['rotmats'][:, 1:22],
                             rotations.axis_angle_to_matrix(want.reshape(3, 21, 3)), atol=1e-5)
  with pytest.raises(ValueError, match='vposer_params'):
    _decode(spec, raw)


def test_pca_path_equals_components_matmul(mano_dir):
  rng = np.random.default_rng(5)
  spec = decode_lib.HeadSpec('mano', 'wild', num_hand_comps=6)
  raw = spec.split(jnp.asarray(rng.normal(0, 1, (2, spec.size)).astype(np.float32)))
  pca_model = body_models.load(mano_dir, 'mano', use_pca=True, num_pca_comps=6)
  comps = pca_model.hand_components['hand_pose']
  params = _decode(spec, raw, hand_components=comps)
  np.testing.assert_allclose(params['hand_pose'], raw['hand_pose'] @ comps, atol=1e-6)
  wrong = decode_lib.HeadSpec('mano', 'wild', num_hand_comps=4)
  with pytest.raises(ValueError, match='num_pca_comps=4'):
    _decode(wrong, wrong.split(jnp.zeros((2, wrong.size))), hand_components=comps)
  # No matrix: the coefficients pass through, for a model loaded with use_pca=True.
  coeffs = _decode(spec, raw)
  np.testing.assert_array_equal(coeffs['hand_pose'], raw['hand_pose'])
  # The matrix path, with the mean hand, agrees with forward.
  rot = _decode_rotmats(spec, raw, hand_components=pca_model.hand_components,
                                  pose_mean=pca_model.pose_mean)
  np.testing.assert_allclose(_forward_rotmats(pca_model, **rot).vertices,
                             _forward(pca_model, **coeffs).vertices, atol=1e-5)


def test_mocap_decode_with_a_mean_hand_matches_the_matrix_path(mano_dir):
  rng = np.random.default_rng(6)
  model = body_models.load(mano_dir, 'mano')       # flat_hand_mean=False: a mean hand
  assert np.abs(model.pose_mean).max() > 0
  spec = decode_lib.HeadSpec('mano', 'mocap')
  raw = spec.split(jnp.asarray(rng.normal(0, 1, (2, spec.size)).astype(np.float32)))
  params = _decode(spec, raw, pose_mean=model.pose_mean)
  rot = _decode_rotmats(spec, raw, pose_mean=model.pose_mean)
  np.testing.assert_allclose(_forward(model, **params).vertices,
                             _forward_rotmats(model, **rot).vertices, atol=1e-5)


# ----------------------------------------------------------------------------- losses


def test_joint_l1_ignores_invalid_joints():
  pred = np.array([[[0.0, 0.0], [1.0, 2.0], [100.0, 100.0]]])
  target = np.array([[[1.0, -1.0], [1.0, 0.0], [0.0, 0.0]]])
  valid = np.array([[1.0, 1.0, 0.0]])
  # |0-1| + |0+1| + |1-1| + |2-0| over 4 valid entries.
  np.testing.assert_allclose(losses.joint_l1(pred, target, valid), 4.0 / 4)
  np.testing.assert_allclose(losses.joint_l1(pred, target, np.zeros((1, 3))), 0.0)
  grad = jax.grad(lambda p: losses.joint_l1(p, target, np.zeros((1, 3))))(jnp.asarray(pred))
  assert np.all(np.isfinite(grad)) and not np.any(grad)


def test_root_relative_and_param_l2():
  j = jnp.arange(12.0).reshape(1, 4, 3)
  np.testing.assert_allclose(losses.root_relative(j, 1)[0, 1], 0)
  np.testing.assert_allclose(losses.root_relative(j, (0, 2))[0, 0], [-3, -3, -3])
  total, terms = losses.param_l2({'betas': jnp.ones((2, 10)) * 2, 'other': jnp.ones(3)},
                                 {'betas': 0.5, 'expression': 1.0})
  np.testing.assert_allclose(total, 0.5 * 4)
  assert set(terms) == {'betas'}


def _batch(joints_2d, joints_3d, valid, size=256):
  b, k = valid.shape
  return {'image': np.zeros((b, size, size, 3), np.float32), 'joints_2d': joints_2d,
          'valid': valid, 'joints_3d': joints_3d, 'valid3d': valid,
          'has_3d': np.ones(b, bool), 'mask': np.ones(b, bool)}


def test_mocap_loss_by_hand():
  rng = np.random.default_rng(7)
  gt = rng.normal(0, 0.3, (2, 5, 3)).astype(np.float32)
  pred = gt + 0.5                                    # a pure translation: no 3D loss
  valid = np.ones((2, 5), np.float32)
  batch = _batch(np.zeros((2, 5, 2), np.float32), gt, valid)
  total, terms = losses.neuralannot_loss(pred, batch, None, 'mocap', {'joints_3d': 1.0})
  np.testing.assert_allclose(total, 0, atol=1e-6)
  pred = gt.copy()
  pred[0, 3] += np.array([0.1, 0.0, -0.2], np.float32)
  valid[1, 2] = 0
  batch = _batch(np.zeros((2, 5, 2), np.float32), gt, valid)
  total, terms = losses.neuralannot_loss(pred, batch, None, 'mocap', {'joints_3d': 2.0})
  np.testing.assert_allclose(terms['joints_3d'], 2.0 * 0.3 / (9 * 3), rtol=1e-5)
  # A missing root no longer drops its sample: the sample is anchored on the mean of its
  # labelled joints (1-4). Joint 3 off by d moves that mean by d / 4: |3d/4| + 3 |d/4| over
  # the 8 labelled joints x 3 coordinates; a translation of the prediction changes nothing.
  valid[0, 0] = 0
  batch = _batch(np.zeros((2, 5, 2), np.float32), gt, valid)
  total, _ = losses.neuralannot_loss(pred, batch, None, 'mocap', {'joints_3d': 1.0})
  np.testing.assert_allclose(total, (0.75 * 0.3 + 3 * 0.25 * 0.3) / 24, rtol=1e-5)
  moved, _ = losses.neuralannot_loss(pred + np.float32(0.7), batch, None, 'mocap',
                                     {'joints_3d': 1.0})
  np.testing.assert_allclose(moved, total, rtol=1e-5)


def test_the_anchor_is_the_root_or_the_labelled_joints_mean():
  rng = np.random.default_rng(3)
  joints = rng.normal(size=(2, 5, 3))
  valid = np.ones((2, 5))
  valid[1, [0, 4]] = 0                    # sample 1: root and one more joint missing
  rel = np.asarray(losses.anchor_relative(joints, valid, 0))
  np.testing.assert_allclose(rel[0], joints[0] - joints[0, 0], atol=1e-6)
  np.testing.assert_allclose(rel[1], joints[1] - joints[1, 1:4].mean(0), atol=1e-6)
  # Two-joint roots (the hips' mean) count only when both are labelled.
  rel = np.asarray(losses.anchor_relative(joints, valid, (0, 2)))
  np.testing.assert_allclose(rel[0], joints[0] - joints[0, [0, 2]].mean(0), atol=1e-6)
  np.testing.assert_allclose(rel[1], joints[1] - joints[1, 1:4].mean(0), atol=1e-6)


def test_losses_have_finite_gradients_near_zero_depth():
  joints = jnp.array([[[0.1, 0.2, -0.3], [0.0, 0.1, 0.0], [0.2, 0.2, 1e-6]]])
  batch = _batch(np.full((1, 3, 2), 100.0, np.float32), np.zeros((1, 3, 3), np.float32),
                 np.ones((1, 3), np.float32))
  cam = jnp.zeros((1, 3))

  def loss(joints, cam, mode):
    return losses.neuralannot_loss(joints, batch, cam, mode, params={'betas': cam})[0]

  for mode in ('wild', 'mocap'):
    g_joints, g_cam = jax.grad(loss, argnums=(0, 1))(joints, cam, mode)
    assert np.all(np.isfinite(g_joints)) and np.all(np.isfinite(g_cam))
  # Through the camera head: the depth logit gets a finite gradient too.
  g = jax.grad(lambda c: loss(joints, camera.camera_translation(c, 256) - jnp.array(
      [0.0, 0.0, camera.depth_scale(256) * 0.5]), 'wild'))(cam)
  assert np.all(np.isfinite(g))


def test_wild_loss_is_zero_at_the_generating_parameters(smpl, vposer_params):
  """Stand-in SMPL: GT 2D joints made from a head output give a zero 2D loss for it."""
  rng = np.random.default_rng(8)
  spec = decode_lib.HeadSpec('smpl', 'wild')
  raw_vec = rng.normal(0, 0.5, (3, spec.size)).astype(np.float32)
  raw_vec[:, -3:] = [[0.05, -0.1, 0.3], [0.0, 0.2, 0.0], [-0.1, 0.0, -0.4]]
  mapping = joint_sets.model_joint_mapping('smpl', 'COCO_17')
  raw = spec.split(jnp.asarray(raw_vec))
  params = _decode(spec, raw, vposer_params=vposer_params)
  out = _forward(smpl, **params)                 # with transl: camera-space joints
  cam_joints = mapping.apply(out.joints, out.vertices)
  focal, princpt = camera.crop_camera(256)
  gt_2d = np.asarray(camera.project(cam_joints, focal, princpt))
  transl = params['transl']
  joints = cam_joints - transl[:, None]          # what training feeds: model joints, no transl
  valid = np.broadcast_to(mapping.valid, (3, 17)).copy()
  valid[1, 4] = 0
  batch = _batch(gt_2d, np.zeros((3, 17, 3), np.float32), valid)
  total, terms = losses.neuralannot_loss(joints, batch, transl, 'wild', params=raw,
                                         joint_valid=mapping.valid)
  np.testing.assert_allclose(terms['joints_2d'], 0, atol=1e-4)
  assert {'l2_body_pose', 'l2_betas'} <= set(terms)
  np.testing.assert_allclose(total, terms['l2_body_pose'] + terms['l2_betas']
                             + terms['joints_2d'], rtol=1e-6)
  # Joints that already carry the translation: cam_trans=None.
  _, terms = losses.neuralannot_loss(cam_joints, batch, None, 'wild',
                                     joint_valid=mapping.valid)
  np.testing.assert_allclose(terms['joints_2d'], 0, atol=1e-4)
  # Moving the camera moves the projection: the loss sees it.
  moved, _ = losses.neuralannot_loss(joints, batch, transl + jnp.array([0.05, 0, 0]), 'wild',
                                     {'joints_2d': 1.0})
  assert moved > 1.0


def test_2d_term_reads_the_same_at_any_crop_size():
  """Issue 16, item 6: a body off its GT 2D joints by the same share of the crop costs the
  same at 64 px as at 256 px (in pixels of a 256 px crop). In crop pixels a 64 px crop's
  2D term weighed 1/4 against the priors, and the in-the-wild poses collapsed to the mean."""
  rng = np.random.default_rng(9)
  joints = rng.normal(0, 0.3, (2, 17, 3)).astype(np.float32)
  transl = np.array([[0.0, 0.0, 40.0]] * 2, np.float32)
  valid = np.ones((2, 17), np.float32)
  costs = {}
  for size in (64, 256):
    focal, princpt = camera.crop_camera(size)
    proj = np.asarray(camera.project(joints + transl[:, None], focal, princpt))
    shift = np.array([0.02 * size, 0.0], np.float32)       # 2% of the crop, along x
    batch = _batch(proj + shift, np.zeros((2, 17, 3), np.float32), valid, size=size)
    _, terms = losses.neuralannot_loss(joints, batch, transl, 'wild', {'joints_2d': 1.0})
    costs[size] = float(terms['joints_2d'])
  # Mean |error| per coordinate: 0.02 * 256 px along x, 0 along y.
  np.testing.assert_allclose(costs[256], 0.02 * 256 / 2, rtol=1e-3)
  np.testing.assert_allclose(costs[64], costs[256], rtol=1e-3)


def test_mocap_2d_term_places_the_camera_only():
  """In MoCap mode the 2D term trains the camera: no gradient into the body joints, which
  the 3D term settles (with it, the pose bent towards the projection: demo 22.7 -> 28.3 mm)."""
  rng = np.random.default_rng(10)
  joints = jnp.asarray(rng.normal(0, 0.3, (2, 17, 3)), jnp.float32)
  valid = np.ones((2, 17), np.float32)
  batch = _batch(rng.uniform(0, 64, (2, 17, 2)).astype(np.float32),
                 np.zeros((2, 17, 3), np.float32), valid, size=64)
  cost = lambda j, t, mode: losses.neuralannot_loss(j, batch, t, mode, {'joints_2d': 1.0})[0]
  transl = jnp.array([[0.0, 0.0, 40.0]] * 2)
  g_joints, g_transl = jax.grad(cost, argnums=(0, 1))(joints, transl, 'mocap')
  assert np.all(np.asarray(g_joints) == 0)
  assert np.abs(np.asarray(g_transl)).max() > 1e-3
  g_wild = jax.grad(cost)(joints, transl, 'wild')           # in the wild the body fits 2D
  assert np.abs(np.asarray(g_wild)).max() > 1e-3


def test_rotation_l2_is_two_minus_two_cos_of_the_angle():
  rng = np.random.default_rng(11)
  aa = _random_aa(rng, (2, 5, 3), 2.5)
  got = losses.rotation_l2(rotations.axis_angle_to_matrix(jnp.asarray(aa)))
  np.testing.assert_allclose(got, np.mean(2 - 2 * np.cos(np.linalg.norm(aa, axis=-1))),
                             rtol=1e-5)
  ref = rotations.axis_angle_to_matrix(jnp.asarray(aa[0]))    # towards a reference: 0 there
  np.testing.assert_allclose(
      losses.rotation_l2(rotations.axis_angle_to_matrix(jnp.asarray(aa[:1])), ref), 0,
      atol=1e-6)


def test_mocap_loss_settles_a_twist_the_joints_leave_free(smpl):
  """Issue 16, item 1: turning SMPL's wrist about itself moves none of Human3.6M's 17
  joints, so the 3D term alone leaves it free (the twisted meshes). The MoCap loss with
  its default weights must rise with the turn and pull it back."""
  mapping = joint_sets.model_joint_mapping('smpl', 'H36M_17')
  rng = np.random.default_rng(12)
  base = _random_aa(rng, (1, 24, 3), 0.4)
  wrist = list(smpl.joint_names).index('left_wrist')

  @jax.jit
  def loss(angle, gt):
    aa = jnp.asarray(base).at[0, wrist].set(jnp.stack([angle, 0.0, 0.0]))
    rotmats = rotations.axis_angle_to_matrix(aa)
    out = body_models.forward_rotmats(smpl, rotmats=rotmats)
    joints = mapping.apply(out.joints, out.vertices)
    batch = _batch(np.zeros((1, 17, 2), np.float32), gt, np.ones((1, 17), np.float32))
    total, terms = losses.neuralannot_loss(joints, batch, jnp.array([[0.0, 0.0, 40.0]]),
                                           'mocap', params={}, rotmats=rotmats[:, 1:],
                                           joint_valid=mapping.valid)
    return total, (terms, joints)

  _, (_, gt) = loss(jnp.float32(0.0), np.zeros((1, 17, 3), np.float32))
  gt = np.asarray(gt)
  (total0, (terms0, _)), (total1, (terms1, _)) = (loss(jnp.float32(a), gt) for a in (0.0, 0.8))
  np.testing.assert_allclose(terms1['joints_3d'], terms0['joints_3d'], atol=1e-5)  # free
  assert total1 > total0 + 1e-4
  grad = jax.grad(lambda a: loss(a, gt)[0])(jnp.float32(0.8))
  assert grad > 0                                  # gradient descent turns it back


def test_hinge_swing_closed_forms():
  """0 for bending the right way and for a twist about the bone; sin^2 of the angle for a
  swing out of the bending plane and for bending backwards."""
  idx, axes = losses.hinge_joints('smpl')
  names = [body_models.skeletons.KINEMATIC_JOINTS['smpl'][i] for i in idx]
  assert sorted(names) == ['left_elbow', 'left_knee', 'right_elbow', 'right_knee']
  assert len(losses.hinge_joints('mano')[0]) == 0
  hinge, bone, bend = axes[:, 0], axes[:, 1], axes[:, 2]
  angle = 0.7
  about = lambda a: rotations.axis_angle_to_matrix(jnp.asarray(a * angle, jnp.float32))[None]
  # The right way about the hinge: the bone moves towards `bend`.
  sign = np.sign(np.einsum('hi,hi->h', np.cross(hinge, bone), bend))[:, None]
  np.testing.assert_allclose(losses.hinge_swing(about(sign * hinge), axes), 0, atol=1e-7)
  np.testing.assert_allclose(losses.hinge_swing(about(bone), axes), 0, atol=1e-7)
  np.testing.assert_allclose(losses.hinge_swing(about(bend), axes), np.sin(angle) ** 2,
                             rtol=1e-5)                          # out of the bending plane
  np.testing.assert_allclose(losses.hinge_swing(about(-sign * hinge), axes),
                             np.sin(angle) ** 2, rtol=1e-5)      # overextended
  # The sampler's limits agree: a left elbow flexes about -y, a knee about +x.
  assert sign[names.index('left_elbow'), 0] < 0 and sign[names.index('left_knee'), 0] > 0


def test_sideways_elbow_costs_more_than_a_bent_one_in_the_mocap_loss(smpl):
  """Issue 16, item 1 (plausibility): an elbow bent sideways, its wrist where a shoulder
  turn would put it too, is not pinned down by Human3.6M's joints; the MoCap loss's hinge
  term prefers the anatomical bend of the same angle."""
  elbow = list(smpl.joint_names).index('left_elbow')
  rot = lambda aa: rotations.axis_angle_to_matrix(
      jnp.zeros((1, 23, 3)).at[0, elbow - 1].set(jnp.asarray(aa, jnp.float32)))
  batch = _batch(np.zeros((1, 17, 2), np.float32), np.zeros((1, 17, 3), np.float32),
                 np.zeros((1, 17), np.float32))
  idx, axes = losses.hinge_joints('smpl')
  hinges = (idx - 1, axes)
  cost = lambda aa: losses.neuralannot_loss(jnp.zeros((1, 17, 3)), batch, None, 'mocap',
                                            rotmats=rot(aa), hinges=hinges)[1]['hinge']
  np.testing.assert_allclose(cost([0.0, -1.2, 0.0]), 0, atol=1e-7)   # flexion about y
  # The same angle about z: the default weight times sin^2, over the four hinges.
  np.testing.assert_allclose(cost([0.0, 0.0, 1.2]),
                             losses.DEFAULT_WEIGHTS['mocap']['hinge'] * np.sin(1.2) ** 2 / 4,
                             rtol=1e-5)


def test_the_rotation_prior_raises_an_arm_at_the_shoulder_not_the_collar(smpl):
  """Issue 16 (demo: every implausible mesh was a collar past its limits): a raised arm can
  be shared between the collar and the shoulder below it, and no body joint set marks the
  collar apart. The prior sum_j w_j 2 (1 - cos angle_j) over a split c + s = A is smallest
  where w_c sin c = w_s sin(A - c): tan c = w_s sin A / (w_c + w_s cos A). Even weights
  give half each (45 deg of a 90 deg raise: a shrug far past the collar's 10 deg limit);
  the collars' weight keeps them within it."""
  names = list(smpl.joint_names)[1:24]                      # the rotations below the root
  collar, shoulder = names.index('left_collar'), names.index('left_shoulder')
  raise_ = np.radians(90.0)
  grid = np.radians(np.arange(0.0, 90.5, 0.5))
  aa = np.zeros((len(grid), 23, 3), np.float32)
  aa[:, collar, 2], aa[:, shoulder, 2] = grid, raise_ - grid   # both about z: raising
  rotmats = rotations.axis_angle_to_matrix(jnp.asarray(aa))
  batch = _batch(np.zeros((1, 17, 2), np.float32), np.zeros((1, 17, 3), np.float32),
                 np.zeros((1, 17), np.float32))

  def preferred_collar_deg(pose_weights):
    cost = jax.jit(lambda r: losses.neuralannot_loss(
        jnp.zeros((1, 17, 3)), batch, None, 'mocap', rotmats=r[None],
        pose_weights=pose_weights)[1]['pose_rot'])
    per_split = [cost(r) for r in rotmats]
    return np.degrees(grid[int(np.argmin(per_split))])

  weights = losses.pose_rot_joint_weights(names)
  w_c, w_s = weights[collar], weights[shoulder]
  closed_form = np.degrees(np.arctan2(w_s * np.sin(raise_), w_c + w_s * np.cos(raise_)))
  assert abs(preferred_collar_deg(weights) - closed_form) <= 0.5   # the grid's step
  assert preferred_collar_deg(weights) < 10.0               # the sampler's collar limit
  assert abs(preferred_collar_deg(None) - 45.0) <= 1.0


def test_the_hand_rotation_prior_leaves_a_finger_bend_that_noisy_joints_show(mano_dir):
  """Issue 16 (hand from 3D): a finger joint moves the joints after it on a lever of a few
  centimetres. Against GT joints with 5 mm of noise (the comparison's), the L1 3D term pulls
  a finger only by what stands out of the noise, and the bodies' weight on the rotation L2
  straightens a bend that the joints show; MANO's default weights leave it near the truth."""
  mano = body_models.load(mano_dir, 'mano')
  mapping = joint_sets.model_joint_mapping('mano', 'HAND_21')
  truth = 0.6
  fingers = [1, 4, 7, 10, 13]                  # the first joint of each finger

  def joints(angle, n):                        # every finger bent by `angle` about z
    aa = jnp.zeros((n, 16, 3)).at[:, fingers, 2].set(angle)
    r = rotations.axis_angle_to_matrix(aa)
    out = body_models.forward_rotmats(mano, rotmats=r, betas=jnp.zeros((n, 10)))
    return mapping.apply(out.joints, out.vertices), r

  n = 64
  gt = np.asarray(joints(truth, 1)[0])
  noisy = gt + np.random.default_rng(0).normal(0.0, 0.005, (n, 21, 3)).astype(np.float32)
  batch = _batch(np.zeros((n, 21, 2), np.float32), noisy, np.ones((n, 21), np.float32))
  grid = np.linspace(0.0, 0.8, 41)

  def best(weights):
    weights = {k: v for k, v in weights.items() if k in ('joints_3d', 'pose_rot')}
    totals = []
    for angle in grid:
      predicted, r = joints(angle, n)
      totals.append(losses.neuralannot_loss(predicted, batch, None, 'mocap', weights,
                                            rotmats=r[:, 1:], root_index=0)[0])
    return grid[int(np.argmin(totals))]

  # Grid steps of 0.02 rad: MANO's weights find the bend; the bodies' pull it 0.06 straighter.
  assert abs(best(losses.default_weights('mocap', 'mano')) - truth) <= 0.02 + 1e-6
  assert best(losses.DEFAULT_WEIGHTS['mocap']) <= truth - 0.04
  assert losses.default_weights('mocap', 'smpl') == losses.DEFAULT_WEIGHTS['mocap']
