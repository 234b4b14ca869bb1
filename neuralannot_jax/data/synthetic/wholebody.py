"""The whole-body set: SMPL-X people (posed body, fingers, jaw, expression) in the
COCO-WholeBody layout, one person per image, with GT SMPL-X parameters.

    write_wholebody('data/synth/wholebody', 'data/synth/body_models', opts, 1000, seed=0)

writes (ids are ints from 1; image id = annotation id):

  annotations/coco_wholebody_train.json   COCO-WholeBody, as the official files: per person
      keypoints (17 x [x, y, v], COCO order) + num_keypoints, foot_kpts (6) + foot_valid,
      lefthand_kpts / righthand_kpts (21 each, wrist then thumb..pinky from the knuckle out)
      + lefthand_box / righthand_box (xywh) + lefthand_valid / righthand_valid, face_kpts
      (68, iBUG order) + face_box + face_valid; bbox and area of the visible person,
      segmentation. A part that is not valid has all-zero keypoints and box.
  images/train/000000000001.jpg
  gt_smplx.json   {ann id: {"smplx_param": {root_pose, body_pose (63), lhand_pose,
      rhand_pose (45 each, axis-angle relative to the hand mean: flat_hand_mean=False),
      jaw_pose, shape (10), expr (10), trans}, "cam_param": {focal, princpt}}}, camera
      space, NeuralAnnot's released layout: `body_models.load(dir, 'smplx',
      use_face_contour=True)` with these parameters reproduces the rendered mesh, and its
      joints mapped by `joint_sets.model_joint_mapping('smplx', 'COCO_WHOLEBODY_133',
      num_landmarks=68)` project onto the 133 keypoints.
  gt_vertices.npz   only with save_vertices: {ann id: (10475, 3)}

Keypoints are the exact projections (rounded to 0.01 px); v = 2 visible, 1 in the image but
behind a nearer surface by more than the part's tolerance (`TOLERANCE_M`), 0 outside the
image (x = y = 0). A hand is valid when at least `MIN_HAND_LABELLED` of its keypoints are
in the image, `MIN_HAND_VISIBLE` of them visible and its box at least `MIN_PART_BOX_PX`
wide or tall; the face likewise with `MIN_FACE_*`.

People mostly face the camera (the face and hands are what this set is for); about half
the images frame the upper body only (the legs run out of the image, as in many COCO
photos), which makes hands and faces large enough to annotate: at 288 px the longer side
of a hand box is 19 / 33 / 48 px (10th / 50th / 90th percentile), of a face box 21 / 36 / 54.
"""

import os

import numpy as np

import body_models
from body_models import skeletons
from neuralannot_jax import export
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.coco import WHOLEBODY_PIECES
from neuralannot_jax.data.synthetic import common
from neuralannot_jax.data.synthetic import faces
from neuralannot_jax.data.synthetic import hands
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render as render_mod
from neuralannot_jax.data.synthetic import scenes

KIND_SEED = 5
ANNOTATION_FILE = 'coco_wholebody_train.json'
GT_FILE = 'gt_smplx.json'
# How far behind the depth map's surface a keypoint may lie and still be visible, metres:
# body joints as the COCO set (by name), feet and face landmarks are on the skin, hand
# joints sit inside fingers about a centimetre thick.
TOLERANCE_M = {'foot_kpts': scenes.SURFACE_TOLERANCE_M, 'face_kpts': faces.SURFACE_TOLERANCE_M,
               'lefthand_kpts': 0.03, 'righthand_kpts': 0.03}
MIN_HAND_LABELLED, MIN_HAND_VISIBLE = 10, 5
MIN_FACE_LABELLED, MIN_FACE_VISIBLE = 30, 17
MIN_PART_BOX_PX = 8.0
UPPER_BODY_PROB = 0.7
_MIN_VISIBLE_PIXELS = 20
# Joints whose skin frames an upper-body view (everything above the hips).
_LOWER_BODY = ('pelvis', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
               'right_ankle', 'left_foot', 'right_foot')
# (part keypoints key, its box key, valid flag, min labelled, min visible).
_PARTS = (('lefthand_kpts', 'lefthand_box', 'lefthand_valid', MIN_HAND_LABELLED,
           MIN_HAND_VISIBLE),
          ('righthand_kpts', 'righthand_box', 'righthand_valid', MIN_HAND_LABELLED,
           MIN_HAND_VISIBLE),
          ('face_kpts', 'face_box', 'face_valid', MIN_FACE_LABELLED, MIN_FACE_VISIBLE))
_SIDE_HAND = {'left': 'left_hand_pose', 'right': 'right_hand_pose'}


def sample_orient(rng):
  """(3, 3) body orientation in camera space (OpenCV axes) for a person mostly facing us.

  yaw ~ N(0, 35 deg) clipped to 90 (15% of people turned any way, often showing their
  back), small tilts, and the camera's elevation (`scenes.coco_view_rotation`).
  """
  if rng.uniform() < 0.15:
    yaw = rng.uniform(-np.pi, np.pi)
  else:
    yaw = np.radians(np.clip(rng.normal(0.0, 35.0), -90.0, 90.0))
  pitch, roll = np.radians(np.clip(rng.normal(0.0, 6.0, 2), -15.0, 15.0))
  return (scenes.coco_view_rotation(rng) @ poses.axis_rotation('x', pitch)
          @ poses.axis_rotation('z', roll) @ poses.axis_rotation('y', yaw))


def finger_axes(model):
  """(15, 3, 3) flexion / abduction / bone axes of SMPL-X's right-hand finger joints.

  From the flat rest hand (every final rotation the identity, hand mean included), in
  MANO's joint order, which SMPL-X's right_hand_pose follows (`hands.joint_axes`).
  """
  out = body_models.forward_rotmats(model, np.tile(np.eye(3, dtype=np.float32),
                                                   (model.num_joints, 1, 1)))
  mapping = joint_sets.model_joint_mapping('smplx', 'HAND_21',
                                           num_landmarks=model.num_landmarks, side='right')
  rest = np.asarray(mapping.apply(out.joints, out.vertices), np.float64)   # (21, 3)
  names = joint_sets.get('HAND_21').names
  # HAND_21 runs finger by finger from the knuckle out; MANO orders fingers index, middle,
  # pinky, ring, thumb and has the tips apart.
  order = ['wrist'] + list(skeletons.MANO_JOINTS[1:])
  rest_joints = rest[[names.index(n) for n in order]]
  tips = rest[[names.index(f'{f}4') for f in ('thumb', 'index', 'middle', 'ring', 'pinky')]]
  return hands.joint_axes(rest_joints, tips)


def sample_hand_poses(rng, axes, pose_mean):
  """{'left_hand_pose', 'right_hand_pose'}: (45,) each, relative to the hand means.

  Both hands from the FreiHAND sampler (`hands.sample_hand_angles`) about the right
  hand's axes; the left one mirrored ((x, y, z) -> (x, -y, -z)), as SMPL-X's left hand is
  the mirror of its right.

  Args:
    axes: (15, 3, 3) `finger_axes`; pose_mean: (55, 3) the model's pose mean.
  """
  out = {}
  for side in ('left', 'right'):
    # right_hand_pose / left_hand_pose start at that side's index1 (SMPL-X 40 / 25).
    first = skeletons.SMPLX_JOINTS.index(f'{side}_index1')
    absolute = poses.matrix_to_axis_angle(
        hands.finger_rotations(hands.sample_hand_angles(rng), axes))
    if side == 'left':
      absolute = absolute * np.array([1.0, -1.0, -1.0])
    mean = np.asarray(pose_mean, np.float64)[first:first + 15]
    out[_SIDE_HAND[side]] = (absolute - mean).reshape(45)
  return out


def sample_params(rng, ctx):
  """Random SMPL-X parameters in camera space (no translation yet), rounded as stored.

  Returns {smplx name: (D,) float64}: global_orient, body_pose (63), left_hand_pose,
  right_hand_pose (45), jaw_pose (3), expression (10), betas (10).
  """
  params = {'global_orient': poses.matrix_to_axis_angle(sample_orient(rng)),
            'body_pose': poses.sample_body_pose(rng, 'smplx').reshape(63),
            **sample_hand_poses(rng, ctx['axes'], ctx['pose_mean']),
            # x > 0 opens the mouth, up to 25 degrees; a little sideways play.
            'jaw_pose': np.radians([abs(np.clip(rng.normal(0, 10), -25, 25)),
                                    *np.clip(rng.normal(0, 1.5, 2), -3, 3)]),
            'expression': np.clip(rng.standard_normal(10), -2.0, 2.0),
            'betas': poses.sample_betas(rng, 10)}
  return {k: np.round(v, 6) for k, v in params.items()}


def gt_entry(params, transl, focal, princpt):
  """The released-layout GT record of one person (float32-exact numbers)."""
  # The GT has its hands and face (a merge's flags would say so too).
  return export.to_released_entry('smplx', {**params, 'transl': transl}, focal, princpt,
                                  parts_valid=True)


def keypoint_visibility(points, tolerance, focal, princpt, depth):
  """(K, 3) camera-space points, (K,) tolerances (m) -> (K,) int v (0 / 1 / 2)."""
  return faces.landmark_visibility(points, focal, princpt, depth, tolerance=tolerance)


def annotation(ann_id, kps, focal, princpt, depth, visible, size):
  """The COCO-WholeBody record of one person.

  Args:
    kps: (133, 3) camera-space points in COCO_WHOLEBODY_133 order.
    focal, princpt: (2,); depth: (H, W) the rendered depth with occluders.
    visible: (H, W) bool, the person's unoccluded pixels.
    size: (H, W).
  """
  uv = render_mod.project(kps, focal, princpt)
  ann = {'id': ann_id, 'image_id': ann_id, 'category_id': 1, 'iscrowd': 0,
         'bbox': scenes.mask_bbox(visible).tolist(), 'area': float(visible.sum()),
         'segmentation': scenes.mask_polygons(visible)}
  start = 0
  for key, count in WHOLEBODY_PIECES:
    rows = slice(start, start + count)
    start += count
    if key == 'keypoints':
      vis = scenes.visibility(kps[rows], scenes.COCO_17, focal, princpt, depth)
    else:
      vis = keypoint_visibility(kps[rows], np.full(count, TOLERANCE_M[key]), focal, princpt,
                                depth)
    xy = np.where(vis[:, None] > 0, np.round(uv[rows], 2), 0.0)
    ann[key] = np.column_stack([xy, vis]).ravel().tolist()
  body = np.asarray(ann['keypoints']).reshape(-1, 3)
  ann['num_keypoints'] = int((body[:, 2] > 0).sum())
  ann['foot_valid'] = bool((np.asarray(ann['foot_kpts']).reshape(-1, 3)[:, 2] > 0).any())
  for kpts_key, box_key, flag_key, min_labelled, min_visible in _PARTS:
    part = np.asarray(ann[kpts_key]).reshape(-1, 3)
    labelled = part[:, 2] > 0
    valid = labelled.sum() >= min_labelled and (part[:, 2] == 2).sum() >= min_visible
    box = faces.face_box(part[:, :2], labelled, size) if labelled.any() else np.zeros(4)
    valid = bool(valid and max(box[2], box[3]) >= MIN_PART_BOX_PX)
    ann[flag_key] = valid
    ann[box_key] = common.rounded(box, 2) if valid else [0.0] * 4
    if not valid:
      ann[kpts_key] = [0.0] * part.size
  return ann


def _framing_vertices(rng, verts0, ctx):
  """The vertices the camera frames: the whole body, or (UPPER_BODY_PROB) the upper body."""
  if rng.uniform() < UPPER_BODY_PROB:
    return verts0[ctx['upper']]
  return verts0


def _person(rng, verts0, kps0, ctx):
  """Place, render and annotate one person: image, record fields, focal, princpt, transl."""
  size = (ctx['size'], ctx['size'])
  colors = scenes.part_colors(rng, ctx['weights'], ctx['kinematic_names'],
                              ctx['rest_vertices'])
  framed = _framing_vertices(rng, verts0, ctx)
  for _ in range(8):                   # redraw the view if too little of the person shows
    focal, princpt, transl = scenes.place_in_view(rng, framed, size, distance=(2.0, 5.0),
                                                  truncate_prob=0.1, jitter=0.05)
    focal, transl = np.round(focal, 4), np.round(transl, 6)   # as stored
    image, mask, depth = render_mod.render(verts0 + transl, ctx['faces'], focal, princpt,
                                           scenes.background(rng, size), colors=colors,
                                           cull_backfaces=True)
    image, depth, occ = scenes.add_occluders(rng, image, depth, scenes.mask_bbox(mask))
    visible = mask & ~occ
    if visible.sum() >= _MIN_VISIBLE_PIXELS:
      break
  return image, (kps0 + transl, depth, visible), focal, princpt, transl


def _context(body_model_dir, opts):
  model = body_models.load(body_model_dir, 'smplx', use_face_contour=True)
  mapping = joint_sets.model_joint_mapping('smplx', 'COCO_WHOLEBODY_133',
                                           num_landmarks=model.num_landmarks)
  if not mapping.valid.all():
    missing = [n for n, v in zip(mapping.names, mapping.valid) if not v]
    raise ValueError(f'{body_model_dir}: the SMPL-X model gives no {missing[:5]} keypoints '
                     '(it needs the 68 face landmarks with the dynamic contour)')
  names = model.joint_names[:model.num_joints]
  weights = np.asarray(model.weights)
  lower = [names.index(n) for n in _LOWER_BODY]
  upper = ~np.isin(weights.argmax(axis=1), lower)
  return {'forward': common.BatchedForward(model, opts['batch_size']), 'mapping': mapping,
          'faces': np.asarray(model.faces), 'weights': weights, 'kinematic_names': names,
          'rest_vertices': np.asarray(model.v_template),
          'upper': upper, 'axes': finger_axes(model),
          'pose_mean': np.asarray(model.pose_mean, np.float64), **opts}


def write_wholebody(out_dir, body_model_dir, opts, num_images, seed, progress):
  """Write the set (layout in the module docstring); returns the number of images.

  opts: size (image side, px), quality (JPEG), batch_size, save_vertices.
  """
  ctx = _context(body_model_dir, opts)
  size = ctx['size']
  images, anns, gt, verts_out = [], [], {}, {}
  for batch in common.batches(num_images, ctx['batch_size']):
    rngs = [np.random.default_rng([seed, KIND_SEED, i]) for i in batch]
    params = [sample_params(r, ctx) for r in rngs]
    verts0, joints0 = ctx['forward'](**{k: np.stack([p[k] for p in params]) for k in params[0]})
    kps0 = ctx['mapping'].apply(joints0, verts0)
    for k, i in enumerate(batch):
      image, (kps, depth, visible), focal, princpt, transl = _person(
          rngs[k], verts0[k], kps0[k], ctx)
      ann_id = i + 1
      file_name = f'{ann_id:012d}.jpg'
      common.write_jpeg(os.path.join(out_dir, 'images', 'train', file_name), image,
                        ctx['quality'])
      images.append({'id': ann_id, 'file_name': file_name, 'width': size, 'height': size,
                     'license': 0})
      anns.append(annotation(ann_id, kps, focal, princpt, depth, visible, (size, size)))
      gt[str(ann_id)] = gt_entry(params[k], transl, focal, princpt)
      if ctx['save_vertices']:
        verts_out[str(ann_id)] = (verts0[k] + transl).astype(np.float32)
      progress.update(1)
  category = {'supercategory': 'person', 'id': 1, 'name': 'person',
              'keypoints': list(scenes.COCO_17),
              'skeleton': [list(p) for p in scenes.COCO_SKELETON]}
  common.write_json(os.path.join(out_dir, 'annotations', ANNOTATION_FILE), {
      'info': {'description': 'NeuralAnnot-JAX synthetic COCO-WholeBody-style set',
               'version': '1.0', 'year': 2026},
      'licenses': [{'id': 0, 'name': 'generated', 'url': ''}],
      'images': images, 'annotations': anns, 'categories': [category]})
  common.write_json(os.path.join(out_dir, GT_FILE), gt)
  if verts_out:
    common.write_npz(os.path.join(out_dir, 'gt_vertices.npz'), verts_out)
  return num_images
