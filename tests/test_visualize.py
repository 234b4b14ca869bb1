"""Tests of neuralannot_jax/report/overlays.py: overlays cover what geometry says they should."""

import numpy as np
import pytest

import body_models
from body_models import synthetic
from neuralannot_jax import export
from neuralannot_jax.data.synthetic import render
from neuralannot_jax.report import overlays as visualize

WHITE = (255, 255, 255)


def _quad(x0, x1, y0, y1, z):
  """A camera-space rectangle [x0, x1] x [y0, y1] at depth z facing the camera: (4, 3), (2, 3)."""
  v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)
  return v, np.array([[0, 1, 2], [0, 2, 3]])


def _box(centre, size):
  """An axis-aligned closed box: (8, 3) vertices, (12, 3) faces."""
  c, h = np.asarray(centre, np.float64), np.asarray(size, np.float64) / 2
  corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
  faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                    [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
  return c + corners * h, faces


def _pixel_rect(u0, u1, v0, v1, size):
  """(H, W) bool: pixels whose centre (integer coordinates) is inside [u0, u1] x [v0, v1]."""
  h, w = size
  vv, uu = np.mgrid[0:h, 0:w]
  return (uu >= u0) & (uu <= u1) & (vv >= v0) & (vv <= v1)


def _mask(image, background=0):
  return np.any(image != background, axis=-1)


def test_plane_covers_its_projected_rectangle():
  focal, princpt, size = np.array([80.0, 90.0]), np.array([30.2, 24.7]), (50, 64)
  # A 0.6 x 0.4 m rectangle 3 m away, off centre; where its corners project, by hand.
  x0, x1, y0, y1, z = -0.5, 0.1, -0.3, 0.1, 3.0
  vertices, faces = _quad(x0, x1, y0, y1, z)
  u0, u1 = focal[0] * x0 / z + princpt[0], focal[0] * x1 / z + princpt[0]
  v0, v1 = focal[1] * y0 / z + princpt[1], focal[1] * y1 / z + princpt[1]
  out = visualize.overlay(np.zeros(size + (3,), np.uint8), vertices, faces, focal, princpt,
                          color=WHITE, alpha=1.0)
  drawn = _mask(out)
  inner = _pixel_rect(u0 + 1, u1 - 1, v0 + 1, v1 - 1, size)
  outer = _pixel_rect(u0 - 1, u1 + 1, v0 - 1, v1 + 1, size)
  assert inner.sum() > 100
  assert np.all(drawn[inner]), 'pixels well inside the projection are not covered'
  assert not np.any(drawn[~outer]), 'pixels well outside the projection are covered'
  # No edge passes near a pixel centre here, so the covered set is exactly the pixels
  # whose centre lies inside the projected rectangle.
  np.testing.assert_array_equal(drawn, _pixel_rect(u0, u1, v0, v1, size))


def test_cube_in_front_of_a_plane_hides_it_whatever_the_order():
  focal, princpt, size = np.array([100.0, 100.0]), np.array([31.5, 31.5]), (64, 64)
  plane_v, plane_f = _quad(-2.0, 2.0, -2.0, 2.0, 5.0)            # fills the image
  cube_v, cube_f = _box((0.0, 0.0, 2.2), (0.4, 0.4, 0.4))         # front face at z = 2
  green, red = (0, 255, 0), (0, 0, 255)
  # The cube's silhouette is its front face: +-0.2 m at 2 m -> +-10 px about the centre.
  inner = _pixel_rect(21.5 + 1, 41.5 - 1, 21.5 + 1, 41.5 - 1, size)
  outer = _pixel_rect(21.5 - 1, 41.5 + 1, 21.5 - 1, 41.5 + 1, size)
  for cube_first in (True, False):
    parts = [(cube_v, cube_f, green), (plane_v, plane_f, red)]
    if not cube_first:
      parts = parts[::-1]
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    vertices = np.concatenate([p[0] for p in parts])
    faces = np.concatenate([p[1] + o for p, o in zip(parts, offsets)])
    face_colors = np.concatenate([np.tile(p[2], (len(p[1]), 1)) for p in parts])
    out = visualize.overlay(np.zeros(size + (3,), np.uint8), vertices, faces, focal, princpt,
                            face_colors=face_colors, alpha=1.0).astype(int)
    is_green = out[..., 1] > out[..., 2]
    assert np.all(is_green[inner]), f'plane drawn over the cube (cube first: {cube_first})'
    assert not np.any(is_green[~outer]), 'cube drawn outside its silhouette'
    assert np.all(out[~outer][:, 2] > 0), 'the plane is missing around the cube'


def test_alpha_blend_changes_only_covered_pixels():
  rng = np.random.default_rng(0)
  focal, princpt, size = np.array([60.0, 60.0]), np.array([20.0, 16.0]), (40, 48)
  image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
  vertices, faces = _box((0.05, 0.0, 2.0), (0.6, 0.5, 0.5))
  before = image.copy()
  blended = visualize.overlay(image, vertices, faces, focal, princpt, alpha=0.5)
  opaque = visualize.overlay(image, vertices, faces, focal, princpt, alpha=1.0)
  np.testing.assert_array_equal(image, before)            # the input is not modified
  covered = render.rasterize(vertices, faces, focal, princpt, size).mask
  assert 50 < covered.sum() < covered.size
  np.testing.assert_array_equal(blended[~covered], image[~covered])
  np.testing.assert_array_equal(opaque[~covered], image[~covered])
  expected = 0.5 * opaque[covered].astype(float) + 0.5 * image[covered].astype(float)
  assert np.max(np.abs(blended[covered] - expected)) <= 1.0


def test_side_view_of_a_box_long_in_depth_is_wide():
  # 2 m deep, 0.2 m wide and high: from the camera a small square, from the side a bar.
  vertices, faces = _box((0.3, -0.1, 6.0), (0.2, 0.2, 2.0))
  side = visualize.side_view(vertices, faces, (120, 160), background=(0, 0, 0))
  drawn = _mask(side)
  rows, cols = np.nonzero(drawn)
  height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
  assert width > 4 * height, (width, height)
  # Framed: inside the image, spanning most of its width, centred.
  assert not drawn[0].any() and not drawn[-1].any()
  assert not drawn[:, 0].any() and not drawn[:, -1].any()
  assert width > 0.6 * 160
  assert abs((cols.min() + cols.max()) / 2 - 79.5) < 3
  front = visualize.overlay(np.zeros((120, 160, 3), np.uint8), vertices, faces,
                            (100.0, 100.0), (79.5, 59.5), alpha=1.0)
  rows, cols = np.nonzero(_mask(front))
  assert np.ptp(cols) < 1.5 * (np.ptp(rows) + 1)


def test_side_view_camera_turns_depth_into_width():
  vertices = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
  turned, focal, princpt = visualize.side_view_camera(vertices, 100)
  uv = render.project(turned, focal, princpt)
  # The far point lands right of the near one, both on the centre row.
  assert uv[1, 0] > uv[0, 0] + 50
  np.testing.assert_allclose(uv[:, 1], 49.5)


def test_draw_joints_marks_gt_and_projections_in_their_colours():
  image = np.zeros((60, 60, 3), np.uint8)
  gt = np.array([[10.0, 10.0], [40.0, 40.0], [50.0, 10.0]])
  pred = np.array([[20.0, 10.0], [40.0, 50.0], [10.0, 50.0]])
  out = visualize.draw_joints(image, gt, [1, 1, 0], pred, projected_valid=[1, 0, 1],
                              radius=3)
  assert not out is image and not image.any()
  np.testing.assert_array_equal(out[10, 10], visualize.GT_COLOR)
  np.testing.assert_array_equal(out[40, 40], visualize.GT_COLOR)
  assert not out[10, 50].any()                     # GT joint 2 is not annotated
  assert not out[50, 40].any()                     # the model lacks joint 1
  assert tuple(out[10, 23]) == visualize.PRED_COLOR or tuple(out[13, 20]) == visualize.PRED_COLOR
  assert out[50, 13].any() or out[47, 10].any()    # joint 2's projection alone is drawn
  assert out[10, 15].any()                         # the line of the pair with both
  with pytest.raises(ValueError, match='same joint set'):
    visualize.draw_joints(image, gt, None, pred[:2])


# ---------------------------------------------------------------------------- entries


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  out = tmp_path_factory.mktemp('visualize_models')
  for family in ('smpl', 'mano', 'flame'):
    synthetic.write_model(family, str(out))
  return str(out)


def _entry(family, params, focal=(300.0, 300.0), princpt=(64.0, 48.0)):
  return export.to_released_entry(family, params, np.array(focal), np.array(princpt))


def test_panel_smpl_is_overlay_beside_side_view(models):
  model = body_models.load(models, 'smpl')
  # The stand-ins are y up: turn by pi about x to stand in OpenCV's y-down camera space.
  params = {'global_orient': np.array([np.pi, 0, 0], np.float32),
            'transl': np.array([0.0, 0.1, 6.0], np.float32)}
  entry = _entry('smpl', params)
  image = np.full((96, 128, 3), 30, np.uint8)
  joints = np.full((17, 2), 40.0)
  out = visualize.panel(image, entry, 'smpl', model, gt=(joints, np.ones(17), 'COCO_17'),
                        min_height=192, caption='id 1')
  assert out.shape == (192, 2 * 256, 3)
  left, right = out[:, :256], out[:, 256:]
  assert (np.any(left != 30, axis=-1)).mean() > 0.02          # the mesh is drawn
  assert (np.any(right != visualize.SIDE_BACKGROUND, axis=-1)).mean() > 0.02
  # Scaling up keeps the camera: the mesh sits where the original camera puts it.
  small = visualize.panel(image, entry, 'smpl', {None: model}, min_height=0)
  assert small.shape == (96, 256, 3)
  small_mask = np.any(small[:, :128] != 30, axis=-1)
  rows = np.nonzero(small_mask)[0]
  big_rows = np.nonzero(np.any(left[30:] != 30, axis=-1))[0] + 30   # below the caption
  assert abs((rows.mean() + 0.5) * 2 - (big_rows.mean() + 0.5)) < 4


def test_left_hand_mirrored_from_the_right_model_matches_the_left_model(models):
  rng = np.random.default_rng(1)
  params = {'global_orient': rng.normal(0, 0.3, 3).astype(np.float32),
            'hand_pose': rng.normal(0, 0.2, 45).astype(np.float32),
            'betas': rng.normal(0, 0.5, 10).astype(np.float32),
            'transl': np.array([0.05, 0.0, 0.5], np.float32)}
  entry = export.hand_entry(right=_entry('mano', params), left=_entry('mano', params))
  both = visualize.as_models(models, 'mano')
  assert set(both) == {'right', 'left'}
  with_left = visualize.entry_meshes(entry, 'mano', both)
  mirrored = visualize.entry_meshes(entry, 'mano', both['right'])
  assert [m.side for m in with_left] == ['right', 'left']
  np.testing.assert_allclose(mirrored[1].vertices, with_left[1].vertices, atol=1e-4)
  # A left hand is not the right one.
  assert np.abs(with_left[0].vertices - with_left[1].vertices).max() > 0.01
  out = visualize.panel(None, entry, 'mano', both, min_height=0)
  assert out.shape[0] == 97 and out.shape[1] == 2 * 129


def test_panel_flame_and_missing_camera(models):
  params = {'global_orient': np.array([np.pi, 0, 0], np.float32),
            'transl': np.array([0.0, 0.0, 0.8], np.float32)}
  entry = _entry('flame', params)
  out = visualize.panel(np.zeros((96, 128, 3), np.uint8), entry, 'flame', models,
                        gt=(np.full((68, 2), 60.0), np.ones(68), 'FACE_68'), min_height=0)
  assert np.any(out[:, :128] != 0, axis=-1).mean() > 0.05
  with pytest.raises(ValueError, match='cam_param'):
    visualize.panel(None, entry['flame_param'], 'flame', models)
