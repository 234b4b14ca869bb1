"""The FreiHAND-layout hand set: right MANO hands in random plausible poses.

    write_freihand('data/synth/freihand', 'data/synth/body_models', opts, 1000, seed=0)

writes what `neuralannot_jax.data.freihand.read` reads (N = number of images):

  training_xyz.json    (N, 21, 3) camera-space joints, metres, HAND_21 order (MANO's 16
                       joints and 5 fingertip vertices, `joint_sets.model_joint_mapping`)
  training_K.json      (N, 3, 3) intrinsics
  training_mano.json   (N, 1, 61): global_orient (3) | hand_pose (45, axis-angle, relative to
                       the mean hand pose: flat_hand_mean=False) | betas (10) | the image
                       position (2) of keypoint 9 (middle1) | scale (1) = mean focal / its
                       depth. As in FreiHAND the last three are no translation: back-projecting
                       the position with the scale gives keypoint 9 in camera space, and the
                       mesh is shifted to put its keypoint 9 there.
  training_verts.json  (N, 778, 3) camera-space vertices
  training/rgb/%08d.jpg  the images, index 0..N-1 (FreiHAND's colour version 0 only);
                       `freihand.read` records every image as 224 x 224 (FreiHAND's size)
                       whatever its real size, so write size=224 for a faithful copy
  gt_mano.json         {index: {"mano_param": {global_orient, hand_pose, betas, transl},
                       "cam_param": {focal, princpt}}}: `body_models.load(dir, 'mano',
                       is_right_hand=True)(**mano_param)` reproduces the mesh in camera space.

Colours: as on real hands the palm side is lighter and pinker than the back and the
fingertips carry nails on the back (`hand_colors`). With one skin colour all over, an
obliquely seen hand's palm and back differ only in shading, and a network cannot tell which
way the palm faces from the image (the 2D joints leave it open too).

Poses: one "grasp" amount drives every finger's flexion together (the way the first
principal components of real hand poses do), each finger and joint varies around it, the
fingers spread or close together, and every angle is clipped to `FINGER_LIMITS` /
`THUMB_LIMITS`. Flexion and spread axes come from the model's rest geometry (bone
directions and the palm normal), so the sampler works for the stand-in and official MANO.
"""

import os

import numpy as np

import body_models
from body_models import skeletons
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data.synthetic import common
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render as render_mod
from neuralannot_jax.data.synthetic import scenes

KIND_SEED = 3
ROOT_KEYPOINT = 9   # HAND_21's middle1, FreiHAND's root for the uv / scale placement
_MIN_VISIBLE_PIXELS = 20

# Degrees per joint level (1 = base, 2, 3 = distal): (flexion, abduction, twist) ranges.
# Positive flexion curls toward the palm; positive abduction moves toward the thumb side.
FINGER_LIMITS = (((-20, 90), (-20, 20), (-8, 8)),      # MCP: flexes and spreads
                 ((-5, 105), (-3, 3), (-4, 4)),        # PIP: a hinge
                 ((-5, 80), (-3, 3), (-4, 4)))         # DIP: a hinge
THUMB_LIMITS = (((-15, 45), (-20, 35), (-25, 25)),     # CMC: a saddle that also turns
                ((-10, 60), (-5, 5), (-5, 5)),         # MCP
                ((-15, 80), (-3, 3), (-4, 4)))         # IP
# How far each finger's base fans out when the hand spreads (index toward the thumb).
_SPREAD = {'index': 1.0, 'middle': 0.2, 'ring': -0.6, 'pinky': -1.2, 'thumb': 0.0}


def limits(name):
  """((lo, hi) flexion, abduction, twist) in degrees of a MANO finger joint, e.g. 'ring2'."""
  table = THUMB_LIMITS if name.startswith('thumb') else FINGER_LIMITS
  return table[int(name[-1]) - 1]


def palm_normal(rest_joints):
  """(3,) unit normal out of a right hand's palm, from its rest joints (16, 3)."""
  names = skeletons.MANO_JOINTS
  at = lambda n: np.asarray(rest_joints, np.float64)[names.index(n)]
  palm = np.cross(at('index1') - at('wrist'), at('pinky1') - at('wrist'))
  return palm / np.linalg.norm(palm)


def joint_axes(rest_joints, tip_vertices):
  """Flexion, abduction and twist axes of MANO's 15 finger joints at rest.

  Args:
    rest_joints: (16, 3) MANO joints at zero pose (wrist, then MANO's finger order).
    tip_vertices: (5, 3) thumb, index, middle, ring, pinky tips (MANO_TIP_VERTICES).
  Returns:
    (15, 3, 3): per joint the unit axes (flexion, abduction, bone direction). At rest
    each joint's local frame is the model frame, so these are also local axes.
  """
  names = skeletons.MANO_JOINTS
  j = np.asarray(rest_joints, np.float64)
  at = lambda n: j[names.index(n)]
  palm = palm_normal(j)
  tips = dict(zip(('thumb', 'index', 'middle', 'ring', 'pinky'), np.asarray(tip_vertices)))
  out = []
  for name in names[1:]:
    finger, level = name[:-1], int(name[-1])
    child = tips[finger] if level == 3 else at(f'{finger}{level + 1}')
    bone = child - at(name)
    bone /= np.linalg.norm(bone)
    flex = np.cross(bone, palm)              # turns the bone toward the palm side
    flex /= np.linalg.norm(flex)
    out.append(np.stack([flex, np.cross(bone, flex), bone]))
  return np.stack(out)


# BGR. Palm skin has less melanin than the back of the hand and shows the blood beneath:
# the palm colour is the skin colour moved this far toward a light pink; nails are paler.
_PALM_TONE, _PALM_MIX = np.array([175.0, 180.0, 240.0]), 0.5
_NAIL_TONE, _NAIL_MIX = np.array([205.0, 210.0, 240.0]), 0.6
NAIL_LENGTH = 0.012   # metres from the fingertip vertex that the nail covers


def skin_pattern(rest_vertices, faces, normal, tip_vertices):
  """Where the palm side and the nails are on the rest hand.

  Args:
    rest_vertices: (V, 3) the flat rest mesh.
    faces: (F, 3) its triangles (outward normals).
    normal: (3,) unit normal out of the palm at rest (`palm_normal`).
    tip_vertices: (5,) indices of the fingertip vertices.
  Returns:
    (palm (V,), nail (V,)) weights in [0, 1]: 1 on the palm side, 0 on the back, a ramp
    across the sides of the hand and fingers; 1 on the nails.
  """
  v = np.asarray(rest_vertices, np.float64)
  facing = render_mod.vertex_normals(v, faces) @ np.asarray(normal, np.float64)
  palm = np.clip((facing + 0.3) / 0.6, 0.0, 1.0)
  near_tip = np.zeros(len(v), bool)
  for tip in tip_vertices:
    near_tip |= np.linalg.norm(v - v[tip], axis=1) < NAIL_LENGTH
  nail = (near_tip & (facing < -0.4)).astype(np.float64)
  return palm, nail


def hand_colors(skin, palm, nail):
  """(V, 3) BGR per-vertex colours: `skin` (3,) on the back, lighter on the palm side
  (`palm` (V,) weights), nails where `nail` (V,) is 1."""
  skin = np.asarray(skin, np.float64)
  palm_color = skin + _PALM_MIX * (_PALM_TONE - skin)
  nail_color = skin + _NAIL_MIX * (_NAIL_TONE - skin)
  colors = skin + palm[:, None] * (palm_color - skin)
  return colors + nail[:, None] * (nail_color - colors)


def sample_hand_angles(rng):
  """(15, 3) degrees (flexion, abduction, twist) of MANO's finger joints, within limits.

  One grasp amount (mostly small: Beta(1.3, 2.8), mean 0.32) sets every finger's curl;
  fingers and joints vary around it; spread is shared and closes as the fingers curl.
  """
  grasp = rng.beta(1.3, 2.8)
  spread = np.clip(rng.normal(0.0, 0.5), -1.0, 1.0)
  curl = {f: np.clip(grasp + rng.normal(0.0, 0.25 if f == 'thumb' else 0.15), 0.0, 1.0)
          for f in ('index', 'middle', 'pinky', 'ring', 'thumb')}
  noise = rng.normal(0.0, 1.0, (15, 3))
  out = []
  for name, z in zip(skeletons.MANO_JOINTS[1:], noise):
    finger, level = name[:-1], int(name[-1])
    (f_lo, f_hi), (a_lo, a_hi), (t_lo, t_hi) = limits(name)
    thumb_base = name == 'thumb1'          # the loose saddle joint varies most
    flex = curl[finger] * f_hi + 6.0 * z[0]
    abd = (12.0 if thumb_base else 2.0) * z[1]
    if level == 1:
      abd += 15.0 * spread * _SPREAD[finger] * (1.0 - 0.6 * curl[finger])
    if thumb_base:                         # it swings out and across as the hand closes
      abd += 15.0 * curl[finger]
    twist = (8.0 if thumb_base else 2.0) * z[2]
    out.append([np.clip(flex, f_lo, f_hi), np.clip(abd, a_lo, a_hi),
                np.clip(twist, t_lo, t_hi)])
  return np.array(out)


def finger_rotations(angles, axes):
  """(15, 3) degrees and (15, 3, 3) `joint_axes` -> (15, 3, 3) local rotations.

  R = R_abduction @ R_flexion @ R_twist, each about its rest axis.
  """
  rad = np.radians(np.asarray(angles, np.float64))[..., None] * axes   # (15, 3, 3) axis-angles
  rot = lambda k: poses.axis_angle_to_matrix(rad[:, k])
  return rot(1) @ rot(0) @ rot(2)


def random_rotation(rng):
  """(3, 3) rotation uniform over SO(3) (a normalised Gaussian quaternion)."""
  w, x, y, z = rng.standard_normal(4)
  n = np.sqrt(w * w + x * x + y * y + z * z)
  w, x, y, z = w / n, x / n, y / n, z / n
  return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                   [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                   [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def root_placement(xyz, focal, princpt):
  """FreiHAND's last three MANO numbers for camera-space joints (21, 3): keypoint 9's
  pixel position (2,) and scale = mean focal / its depth (1,)."""
  root = np.asarray(xyz, np.float64)[ROOT_KEYPOINT]
  uv = render_mod.project(root, focal, princpt)
  return uv, np.array([0.5 * (focal[0] + focal[1]) / root[2]])


def _context(body_model_dir, opts):
  model = body_models.load(body_model_dir, 'mano', is_right_hand=True)
  # The flat template (zero pose before the mean is added, zero shape) sets the axes.
  rest = np.asarray(model.v_template, np.float64)
  rest_joints = np.asarray(model.joint_template, np.float64)
  tips = rest[list(skeletons.MANO_TIP_VERTICES)]
  palm, nail = skin_pattern(rest, np.asarray(model.faces), palm_normal(rest_joints),
                            skeletons.MANO_TIP_VERTICES)
  return {'model': model, 'forward': common.BatchedForward(model, opts['batch_size']),
          'axes': joint_axes(rest_joints, tips), 'palm': palm, 'nail': nail,
          'mean': np.asarray(model.pose_mean, np.float64)[1:],
          'mapping': joint_sets.model_joint_mapping('mano', 'HAND_21'),
          'faces': np.asarray(model.faces), **opts}


def _sample_params(rng, ctx):
  """Rounded as they will be stored, so that the stored numbers reproduce the mesh."""
  absolute = poses.matrix_to_axis_angle(finger_rotations(sample_hand_angles(rng), ctx['axes']))
  return {'global_orient': np.round(poses.matrix_to_axis_angle(random_rotation(rng)), 6),
          'hand_pose': np.round((absolute - ctx['mean']).reshape(45), 6),
          'betas': np.round(poses.sample_betas(rng, 10, clip=2.0), 6)}


def _place_and_render(rng, verts0, ctx):
  """Camera 0.3-0.7 m from the hand, background, occluders; returns the view and image."""
  size = (ctx['size'], ctx['size'])
  # The same random draws as one skin colour all over: only the colours change.
  colors = (hand_colors(scenes.skin_tone(rng), ctx['palm'], ctx['nail'])
            + rng.normal(0.0, 4.0, (len(verts0), 3)))
  for _ in range(8):                        # redraw the view if the hand is not in it
    focal, princpt, transl = scenes.place_in_view(
        rng, verts0, size, distance=(0.3, 0.7), truncate_prob=0.05, jitter=0.05,
        min_extent=0.08)
    focal, transl = np.round(focal, 4), np.round(transl, 6)   # as stored
    # No back-face culling: the official MANO mesh is open at the wrist.
    image, mask, depth = render_mod.render(verts0 + transl, ctx['faces'], focal, princpt,
                                           scenes.background(rng, size), colors=colors)
    image, depth, occ = scenes.add_occluders(rng, image, depth, scenes.mask_bbox(mask))
    if (mask & ~occ).sum() >= _MIN_VISIBLE_PIXELS:
      break
  return focal, princpt, transl, image


def write_freihand(out_dir, body_model_dir, opts, num_images, seed, progress):
  """Write the set (layout in the module docstring); returns the number of images.

  opts: size (image side, px), quality (JPEG), batch_size (forward pass).
  """
  ctx = _context(body_model_dir, opts)
  lists = {'xyz': [], 'K': [], 'mano': [], 'verts': []}
  gt = {}
  for batch in common.batches(num_images, ctx['batch_size']):
    rngs = [np.random.default_rng([seed, KIND_SEED, i]) for i in batch]
    params = [_sample_params(r, ctx) for r in rngs]
    verts0, joints0 = ctx['forward'](**{k: np.stack([p[k] for p in params]) for k in params[0]})
    xyz0 = ctx['mapping'].apply(joints0, verts0)
    for k, i in enumerate(batch):
      focal, princpt, transl, image = _place_and_render(rngs[k], verts0[k], ctx)
      common.write_jpeg(os.path.join(out_dir, 'training', 'rgb', f'{i:08d}.jpg'), image,
                        ctx['quality'])
      xyz = xyz0[k] + transl
      uv, scale = root_placement(xyz, focal, princpt)
      p = params[k]
      lists['xyz'].append(common.rounded(xyz, 7))
      lists['K'].append(common.rounded([[focal[0], 0, princpt[0]], [0, focal[1], princpt[1]],
                                        [0, 0, 1]], 4))
      lists['mano'].append([common.rounded(np.concatenate(
          [p['global_orient'], p['hand_pose'], p['betas'], uv, scale]), 6)])
      lists['verts'].append(common.rounded(verts0[k] + transl, 7))
      gt[str(i)] = {'mano_param': {**{n: common.rounded(v, 6) for n, v in p.items()},
                                   'transl': common.rounded(transl, 6)},
                    'cam_param': {'focal': common.rounded(focal, 4),
                                  'princpt': common.rounded(princpt, 4)}}
      progress.update(1)
  for key, values in lists.items():
    common.write_json(os.path.join(out_dir, f'training_{key}.json'), values)
  common.write_json(os.path.join(out_dir, 'gt_mano.json'), gt)
  return num_images
