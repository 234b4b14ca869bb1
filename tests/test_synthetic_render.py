"""Tests of neuralannot_jax/data/synthetic's rasteriser and body pose sampler."""

import time

import numpy as np
import pytest

import body_models
from body_models.synthetic import files as model_files
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render


@pytest.fixture(scope='module')
def smpl(tmp_path_factory):
  """The stand-in SMPL (only it: the whole set is not needed here)."""
  out = tmp_path_factory.mktemp('smpl_model')
  model_files.write_model('smpl', str(out))
  return body_models.load(str(out), 'smpl')


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


def test_people_look_different_from_the_front_and_the_back(smpl):
  """Issue 16, item 6: with front and back alike (no hair, no face) an image does not show
  which way a person faces, and the image-only (in-the-wild) annotator learnt a sideways
  compromise. The front and the back half of the head must differ in colour for most
  people (hair), and did not before."""
  from neuralannot_jax.data.synthetic import scenes
  rest = np.asarray(smpl.v_template, np.float64)
  weights = np.asarray(smpl.weights)
  names = list(smpl.joint_names[:smpl.num_joints])
  head = weights.argmax(axis=1) == names.index('head')
  centre = rest[head, 2].mean()
  front, back = head & (rest[:, 2] > centre + 0.03), head & (rest[:, 2] < centre - 0.03)

  def contrast(with_rest):
    out = []
    for seed in range(20):
      colors = scenes.part_colors(np.random.default_rng(seed), weights, names,
                                  rest if with_rest else None)
      out.append(np.abs(colors[front].mean(0) - colors[back].mean(0)).max())
    return np.asarray(out)

  assert np.all(contrast(False) < 10)              # one skin colour plus 5-level noise
  assert np.mean(contrast(True) > 30) >= 0.75, contrast(True)


def test_a_hand_shows_which_way_its_palm_faces(tmp_path):
  """Issue 16, hands from 2D: rendered in one skin colour, a hand seen from the palm and
  from the back differ only in shading, and a quarter of the network's hands came out
  turned the wrong way (a network trained on the GT rotations themselves too). Real palms
  are lighter and pinker than the backs, and nails sit on the back: the two views of the
  same flat hand, under the same light, must differ in colour for every skin tone."""
  from body_models import skeletons
  from neuralannot_jax.data.synthetic import hands
  from neuralannot_jax.data.synthetic import scenes
  model_files.write_model('mano', str(tmp_path))
  mano = body_models.load(str(tmp_path), 'mano', is_right_hand=True)
  rest, faces = np.asarray(mano.v_template, np.float64), np.asarray(mano.faces)
  normal = hands.palm_normal(np.asarray(mano.joint_template))
  palm, nail = hands.skin_pattern(rest, faces, normal, skeletons.MANO_TIP_VERTICES)
  focal, princpt = np.array([300.0, 300.0]), np.array([48.0, 48.0])

  def mean_colour(albedo, toward_camera):
    """The hand's mean pixel colour, `toward_camera` (3,) turned to face the camera."""
    z = -toward_camera                      # the camera looks along +z
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    rotation = np.stack([x, np.cross(z, x), z])
    verts = (rest - rest.mean(0)) @ rotation.T + [0.0, 0.0, 0.5]
    image, mask, _ = render.render(verts, faces, focal, princpt, size=(96, 96),
                                   colors=albedo)
    return image[mask].astype(np.float64).mean(0)

  for skin in scenes._SKIN:  # pylint: disable=protected-access
    def palm_minus_back(albedo):
      return mean_colour(albedo, normal) - mean_colour(albedo, -normal)
    plain = palm_minus_back(np.tile(skin, (len(rest), 1)))
    marked = palm_minus_back(hands.hand_colors(skin, palm, nail))
    # One colour: the two views differ by shading alone (measured 1.3-4.1 levels).
    assert np.linalg.norm(plain) < 5, (skin, plain)
    # Marked: the palm view differs well beyond that (measured 9.3 levels for the lightest
    # tone, whose palm is mostly pinker, to 97 for the darkest, whose palm is much lighter),
    # and pinker: red gains more than green.
    change = marked - plain
    assert np.linalg.norm(change) > 7, (skin, change)
    assert change[2] > change[1], (skin, change)
