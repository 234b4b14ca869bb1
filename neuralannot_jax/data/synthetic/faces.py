"""The face set: FLAME heads in the COCO-WholeBody layout, one face per image.

    write_face('data/synth/face', 'data/synth/body_models', opts, 1000, seed=0)

writes (ids are ints from 1; image id = annotation id):

  annotations/coco_wholebody_train.json   COCO-WholeBody: per annotation face_kpts (68 x
      [x, y, v], iBUG order), face_box, face_valid true; body keypoints, feet and hands all
      zero and not valid (num_keypoints 0); bbox = face_box; area = visible head pixels in
      the box; segmentation = the visible head and neck.
  images/train/000000000001.jpg
  gt_flame.json   {ann id: {"flame_param": {global_orient, neck_pose, jaw_pose, expression
      (10), betas (10), transl}, "cam_param": {focal, princpt}}}, camera space:
      `body_models.load(dir, 'flame', use_face_contour=True)(**flame_param)` reproduces the
      head, and its landmarks mapped by `joint_sets.model_joint_mapping('flame', 'FACE_68',
      num_landmarks=68)` project onto face_kpts.
  gt_vertices.npz   only with save_vertices: {ann id: (5023, 3)}

Landmark visibility (v): 2 visible, 1 in the image but behind a nearer surface (the head
itself when turned, or an occluder) by more than `SURFACE_TOLERANCE_M`, 0 outside the image
(x = y = 0). No annotation noise: the keypoints are the exact projections (0.01 px).

The jaw-line landmarks (iBUG 1..17) follow the model's dynamic contour, which (as in the
smplx library) picks its row from the yaw of the global rotation. With OpenCV camera-space
parameters that rotation includes the 180 degree turn about x, which flips the sign of the
yaw it reads: a turned head gets the contour meant for the opposite turn, so more of its
far-side contour points are hidden (v = 1) than on a real annotated face. The parameters
and the keypoints still agree exactly; this is how the model defines them.
"""

import os

import numpy as np

import body_models
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.synthetic import common
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render as render_mod
from neuralannot_jax.data.synthetic import scenes

KIND_SEED = 4
ANNOTATION_FILE = 'coco_wholebody_train.json'
# Pixels snap landmarks to the surface at most ~0.7 px away; on a head seen at an angle that
# is up to about a centimetre of depth, well under the head's own thickness.
SURFACE_TOLERANCE_M = 0.015
_MIN_VISIBLE_PIXELS = 20
_MIN_LABELLED = 20
_BOX_MARGIN = 0.08          # face box: landmark box grown by this fraction of its side


def sample_face_params(rng):
  """Random FLAME parameters in camera space (OpenCV axes), rounded as they are stored.

  The head faces the camera (the 180 degree turn about x puts FLAME's y-up, +z-facing
  head upright in a y-down camera), turned by yaw ~N(0, 25) clipped to 60 degrees, pitch
  and roll smaller; the neck adds a little more, the jaw opens up to 25 degrees.
  Returns {name: (D,) float64}: global_orient, neck_pose, jaw_pose (3), expression, betas (10).
  """
  deg = lambda sd, lim, size=None: np.radians(np.clip(rng.normal(0.0, sd, size), -lim, lim))
  yaw, pitch, roll = deg(25, 60), deg(10, 30), deg(8, 20)
  orient = (poses.axis_rotation('x', np.pi) @ poses.axis_rotation('y', yaw)
            @ poses.axis_rotation('x', pitch) @ poses.axis_rotation('z', roll))
  neck = poses.euler_to_matrix(deg(np.array([8, 10, 4]), np.array([20, 25, 10])), 'xzy')
  jaw = np.array([abs(deg(10, 25)), *deg(1.5, 3, 2)])      # x > 0 opens the mouth
  params = {'global_orient': poses.matrix_to_axis_angle(orient),
            'neck_pose': poses.matrix_to_axis_angle(neck), 'jaw_pose': jaw,
            'expression': np.clip(rng.standard_normal(10), -2.0, 2.0),
            'betas': poses.sample_betas(rng, 10)}
  return {k: np.round(v, 6) for k, v in params.items()}


def face_colors(rng, vertices, landmarks, eye_weight):
  """(V, 3) BGR colours of a head: skin, darker brows, redder lips, dark eyes, often hair.

  Args:
    vertices: (V, 3) the head at rest (model frame: y up, facing +z).
    landmarks: (68, 3) its iBUG landmarks at rest.
    eye_weight: (V,) skinning weight of the eye joints (eyeballs are ~1).
  """
  v = np.asarray(vertices, np.float64)
  lmk = np.asarray(landmarks, np.float64)
  skin = scenes.skin_tone(rng)
  colors = skin + rng.normal(0.0, 4.0, v.shape)

  def near(idx, radius):
    d = np.linalg.norm(v[:, None] - lmk[None, idx], axis=-1)
    return d.min(axis=1) < radius

  colors[near(range(17, 27), 0.006)] *= 0.5                       # brows
  colors[near(range(48, 60), 0.006)] *= np.array([0.7, 0.7, 1.1])  # lips (BGR: redder)
  if rng.uniform() < 0.85:
    # Above the brows, and behind the ears above the nose tip.
    brow_top, nose_y = lmk[17:27, 1].max(), lmk[30, 1]
    ears_z = 0.5 * (lmk[0, 2] + lmk[16, 2])
    hair = (v[:, 1] > brow_top + 0.015) | ((v[:, 2] < ears_z - 0.01) & (v[:, 1] > nose_y))
    colors[hair] = rng.uniform(10, 160) * rng.uniform(0.6, 1.0, 3) + rng.normal(0, 6, (
        hair.sum(), 3))
  colors[np.asarray(eye_weight) > 0.5] = rng.uniform(20, 90, 3)
  return np.clip(colors, 0, 255)


def landmark_visibility(points, focal, princpt, depth, tolerance=SURFACE_TOLERANCE_M):
  """(L, 3) camera-space surface points -> (L,) int: 2 visible, 1 in the image but behind
  a nearer surface of depth (H, W), 0 outside the image or behind the camera."""
  points = np.asarray(points, np.float64)
  uv = render_mod.project(points, focal, princpt)
  inside = scenes.in_image(uv, depth.shape) & (points[:, 2] > 0)
  px = np.clip(np.round(uv).astype(np.int64), 0, [depth.shape[1] - 1, depth.shape[0] - 1])
  hidden = depth[px[:, 1], px[:, 0]] < points[:, 2] - tolerance
  return np.where(inside, np.where(hidden, 1, 2), 0)


def face_box(uv, labelled, size):
  """(4,) xywh around the labelled landmarks (uv (L, 2), labelled (L,) bool), grown by
  `_BOX_MARGIN`, clipped to the image (h, w) but never so as to cut off a landmark."""
  pts = uv[labelled]
  lo, hi = pts.min(axis=0), pts.max(axis=0)
  margin = max(_BOX_MARGIN * float(np.max(hi - lo)), 1.0)
  lo = np.minimum(np.maximum(lo - margin, 0.0), pts.min(axis=0))
  hi = np.maximum(np.minimum(hi + margin, [size[1], size[0]]), pts.max(axis=0))
  return np.concatenate([lo, hi - lo])


def wholebody_annotation(ann_id, kps, box, area, segmentation):
  """A COCO-WholeBody record with only the face labelled; kps (68, 3) x, y, v."""
  zeros = lambda n: [0.0] * n
  return {'id': ann_id, 'image_id': ann_id, 'category_id': 1, 'iscrowd': 0,
          'bbox': common.rounded(box, 2), 'area': float(area), 'segmentation': segmentation,
          'keypoints': zeros(51), 'num_keypoints': 0, 'foot_kpts': zeros(18),
          'foot_valid': False, 'face_kpts': kps.ravel().tolist(),
          'face_box': common.rounded(box, 2), 'face_valid': True,
          'lefthand_kpts': zeros(63), 'lefthand_box': zeros(4), 'lefthand_valid': False,
          'righthand_kpts': zeros(63), 'righthand_box': zeros(4), 'righthand_valid': False}


def _context(body_model_dir, opts):
  model = body_models.load(body_model_dir, 'flame', use_face_contour=True)
  mapping = joint_sets.model_joint_mapping('flame', 'FACE_68',
                                           num_landmarks=model.num_landmarks)
  forward = common.BatchedForward(model, opts['batch_size'])
  # The rest head through the same jitted pass the samples use (an eager call of the
  # model costs seconds of op-by-op dispatch).
  zeros = {k: np.zeros((1, v.size)) for k, v in sample_face_params(
      np.random.default_rng(0)).items()}
  rest_vertices, rest_joints = forward(**zeros)
  eyes = [model.joint_names.index(n) for n in ('left_eye', 'right_eye')]
  return {'forward': forward, 'mapping': mapping, 'faces': np.asarray(model.faces),
          'rest_vertices': rest_vertices[0], 'rest_landmarks': mapping.apply(rest_joints[0]),
          'eye_weight': np.asarray(model.weights)[:, eyes].sum(axis=1), **opts}


def _face(rng, verts0, lmk0, ctx):
  """Place, render and annotate one head: image, keypoints (68, 3), box, area, polygons,
  focal, princpt, transl."""
  size = (ctx['size'], ctx['size'])
  colors = face_colors(rng, ctx['rest_vertices'], ctx['rest_landmarks'], ctx['eye_weight'])
  for _ in range(8):                   # redraw the view if too little of the face shows
    focal, princpt, transl = scenes.place_in_view(
        rng, verts0, size, distance=(0.4, 1.0), truncate_prob=0.05, jitter=0.06,
        min_extent=0.15)
    focal, transl = np.round(focal, 4), np.round(transl, 6)   # as stored
    # No back-face culling: the official FLAME mesh is open at the neck and eyes.
    image, mask, depth = render_mod.render(verts0 + transl, ctx['faces'], focal, princpt,
                                           scenes.background(rng, size), colors=colors)
    image, depth, occ = scenes.add_occluders(rng, image, depth, scenes.mask_bbox(mask))
    visible = mask & ~occ
    lmk = lmk0 + transl
    vis = landmark_visibility(lmk, focal, princpt, depth)
    if visible.sum() >= _MIN_VISIBLE_PIXELS and (vis > 0).sum() >= _MIN_LABELLED:
      break
  uv = np.round(render_mod.project(lmk, focal, princpt), 2)
  kps = np.column_stack([np.where(vis[:, None] > 0, uv, 0.0), vis])
  box = face_box(uv, vis > 0, size)
  x0, y0 = np.floor(box[:2]).astype(int).clip(0)
  x1, y1 = np.ceil(box[:2] + box[2:]).astype(int)
  area = visible[y0:y1, x0:x1].sum()
  return image, kps, box, area, scenes.mask_polygons(visible), focal, princpt, transl


def write_face(out_dir, body_model_dir, opts, num_images, seed, progress):
  """Write the set (layout in the module docstring); returns the number of images.

  opts: size (image side, px), quality (JPEG), batch_size, save_vertices.
  """
  ctx = _context(body_model_dir, opts)
  size = ctx['size']
  images, anns, gt, verts_out = [], [], {}, {}
  for batch in common.batches(num_images, ctx['batch_size']):
    rngs = [np.random.default_rng([seed, KIND_SEED, i]) for i in batch]
    params = [sample_face_params(r) for r in rngs]
    verts0, joints0 = ctx['forward'](**{k: np.stack([p[k] for p in params]) for k in params[0]})
    lmk0 = ctx['mapping'].apply(joints0)
    for k, i in enumerate(batch):
      image, kps, box, area, polygons, focal, princpt, transl = _face(
          rngs[k], verts0[k], lmk0[k], ctx)
      ann_id = i + 1
      file_name = f'{ann_id:012d}.jpg'
      common.write_jpeg(os.path.join(out_dir, 'images', 'train', file_name), image,
                        ctx['quality'])
      images.append({'id': ann_id, 'file_name': file_name, 'width': size, 'height': size,
                     'license': 0})
      anns.append(wholebody_annotation(ann_id, kps, box, area, polygons))
      gt[str(ann_id)] = {
          'flame_param': {**{n: common.rounded(v, 6) for n, v in params[k].items()},
                          'transl': common.rounded(transl, 6)},
          'cam_param': {'focal': common.rounded(focal, 4), 'princpt': common.rounded(princpt, 4)}}
      if ctx['save_vertices']:
        verts_out[str(ann_id)] = (verts0[k] + transl).astype(np.float32)
      progress.update(1)
  category = {'supercategory': 'person', 'id': 1, 'name': 'person',
              'keypoints': list(scenes.COCO_17),
              'skeleton': [list(p) for p in scenes.COCO_SKELETON]}
  common.write_json(os.path.join(out_dir, 'annotations', ANNOTATION_FILE), {
      'info': {'description': 'NeuralAnnot-JAX synthetic COCO-WholeBody-style face set',
               'version': '1.0', 'year': 2026},
      'licenses': [{'id': 0, 'name': 'generated', 'url': ''}],
      'images': images, 'annotations': anns, 'categories': [category]})
  common.write_json(os.path.join(out_dir, 'gt_flame.json'), gt)
  if verts_out:
    common.write_npz(os.path.join(out_dir, 'gt_vertices.npz'), verts_out)
  return num_images
