"""Write synthetic datasets in the official COCO, Human3.6M, FreiHAND and COCO-WholeBody
(face) layouts, with GT for scoring.

    make_dataset('data/synth', 'data/synth/body_models', num_images=2000)

writes (each kind has `num_images` images; all ids are ints starting at 1):

  <out>/synthetic_meta.json                    seed, size, counts, joint sets
  <out>/coco/annotations/person_keypoints_train.json   COCO person keypoints
  <out>/coco/images/train/000000000001.jpg     (file_name in the json: '000000000001.jpg')
  <out>/coco/gt_smpl.json                      {ann id: GT, see below}
  <out>/h36m/annotations/Human36M_subject{S}_data.json     COCO-style images + annotations
  <out>/h36m/annotations/Human36M_subject{S}_camera.json   {cam: {R, t (mm), f, c}}
  <out>/h36m/annotations/Human36M_subject{S}_joint_3d.json {action: {subaction: {frame:
                                                            (17, 3) world mm, H36M_17}}}
  <out>/h36m/annotations/Human36M_subject{S}_smpl_param.json  world-space SMPL per frame
  <out>/h36m/images/s_01_act_02_subact_01_ca_01/s_01_act_02_subact_01_ca_01_000001.jpg
  <out>/h36m/gt_smpl.json
  <out>/h36m/gt_J_regressor_h36m.npy              (17, V): how the GT's joints were read off
                                                  the GT meshes (not given to the annotator)
  <out>/{coco,h36m}/gt_vertices.npz            only with save_vertices: {ann id: (V, 3)}
  <out>/freihand/...                           right MANO hands, FreiHAND training layout
                                               and gt_mano.json (see `hands`)
  <out>/face/...                               FLAME heads, COCO-WholeBody face annotations
                                               and gt_flame.json (see `faces`)
  <out>/wholebody/...                          SMPL-X people, COCO-WholeBody annotations
                                               and gt_smplx.json (see `wholebody`)

GT entries use the released NeuralAnnot layout, in *camera* space of the annotation's
image: {"smpl_param": {"pose": 72, "shape": 10, "trans": 3}, "cam_param": {"focal": 2,
"princpt": 2}}, neutral SMPL, `body_models.load(dir, 'smpl')(global_orient=pose[:3],
body_pose=pose[3:], betas=shape, transl=trans)` reproduces the rendered mesh.
"""

import math
import os
import time

import numpy as np

import body_models
from body_models.synthetic import h36m_regressor
from neuralannot_jax.data.synthetic import common
from neuralannot_jax.data.synthetic import faces
from neuralannot_jax.data.synthetic import hands
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render as render_mod
from neuralannot_jax.data.synthetic import scenes
from neuralannot_jax.data.synthetic import wholebody

KINDS = ('coco', 'h36m', 'freihand', 'face', 'wholebody')
DEFAULT_KINDS = ('coco', 'h36m')
# The body-model family each kind renders.
FAMILIES = {'coco': 'smpl', 'h36m': 'smpl', 'freihand': 'mano', 'face': 'flame',
            'wholebody': 'smplx'}
H36M_SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
H36M_ACTIONS = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Posing',
                'Purchases', 'Sitting', 'SittingDown', 'Smoking', 'Photo', 'Waiting',
                'Walking', 'WalkDog', 'WalkTogether')          # action_idx 2..16
_ACTION_ACTIVITY = {'Sitting': 'sit', 'SittingDown': 'sit', 'Walking': 'walk',
                    'WalkDog': 'walk', 'WalkTogether': 'walk'}
H36M_CAMERAS = 4
# The (17, V) regressor the GT joints were made with (`scenes.GT_REGRESSOR`), for tests and
# for scoring against the GT's own joint definition; the annotator is not given it.
H36M_GT_REGRESSOR = 'gt_J_regressor_h36m.npy'
# Frame numbers are multiples of 64 so that readers sub-sampling every 5th (train) or
# 64th (test) frame, as the common Human3.6M loaders do, keep every synthetic frame.
H36M_FRAME_STEP = 64
_KIND_SEED = {'coco': 1, 'h36m': 2}
_MIN_VISIBLE_PIXELS = 20


# ---- files (shared with the hand and face sets: see `common`) ---------------------------

write_atomic = common.write_atomic
write_json = common.write_json
write_jpeg = common.write_jpeg
write_npz = common.write_npz
_r = common.rounded


def gt_entry(global_orient, body_pose, betas, transl, focal, princpt):
  """A NeuralAnnot-layout GT record; global_orient (3, 3) matrix, the rest axis-angle."""
  pose = np.concatenate([poses.matrix_to_axis_angle(global_orient), np.ravel(body_pose)])
  return {'smpl_param': {'pose': _r(pose, 6), 'shape': _r(betas, 6), 'trans': _r(transl, 6)},
          'cam_param': {'focal': _r(focal, 4), 'princpt': _r(princpt, 4)}}


# ---- the body model, batched --------------------------------------------------------------

class _Poser(common.BatchedForward):
  """SMPL bodies from rotation matrices, in fixed-size batches (see `BatchedForward`)."""

  def __call__(self, orient, body_pose, betas):
    """(N, 3, 3), (N, 23, 3), (N, 10) -> vertices (N, V, 3), joints (N, K, 3), float64."""
    return super().__call__(global_orient=poses.matrix_to_axis_angle(orient),
                            body_pose=body_pose, betas=betas)


_batches = common.batches


# ---- COCO ------------------------------------------------------------------------------------

def _coco_person(rng, verts0, joints0, ctx):
  """Place, render and annotate one person; returns the image and its records."""
  size = (ctx['size'], ctx['size'])
  colors = scenes.part_colors(rng, ctx['weights'], ctx['kinematic_names'],
                              ctx['rest_vertices'])
  for _ in range(8):                        # redraw the view if the person is not in it
    focal, princpt, transl = scenes.place_in_view(rng, verts0, size)
    image, mask, depth = render_mod.render(verts0 + transl, ctx['faces'], focal, princpt,
                                           scenes.background(rng, size), colors=colors,
                                           cull_backfaces=True)
    image, depth, occ = scenes.add_occluders(rng, image, depth, scenes.mask_bbox(mask))
    visible = mask & ~occ
    if visible.sum() >= _MIN_VISIBLE_PIXELS:
      break
  joints = scenes.coco_joints(joints0 + transl, ctx['joint_names'])
  kps = scenes.coco_keypoints(rng, joints, focal, princpt, depth)
  ann = {'segmentation': scenes.mask_polygons(visible), 'num_keypoints': int((kps[:, 2] > 0).sum()),
         'area': float(visible.sum()), 'iscrowd': 0,
         'keypoints': np.column_stack([np.round(kps[:, :2], 2), kps[:, 2]]).ravel().tolist(),
         'bbox': scenes.mask_bbox(visible).tolist(), 'category_id': 1}
  return image, ann, focal, princpt, transl


def write_coco(out_dir, poser, ctx, num_images, seed, progress):
  """The in-the-wild set: one person per image, COCO person-keypoints json."""
  images, anns, gt, verts_out = [], [], {}, {}
  size = ctx['size']
  for batch in _batches(num_images, poser.batch_size):
    rngs = [np.random.default_rng([seed, _KIND_SEED['coco'], i]) for i in batch]
    body = [poses.sample_body_pose(r) for r in rngs]
    betas = [poses.sample_betas(r) for r in rngs]
    orient = [scenes.coco_view_rotation(r) @ poses.sample_global_orient(r) for r in rngs]
    verts0, joints0 = poser(np.stack(orient), np.stack(body), np.stack(betas))
    for k, i in enumerate(batch):
      image, ann, focal, princpt, transl = _coco_person(rngs[k], verts0[k], joints0[k], ctx)
      image_id = i + 1
      file_name = f'{image_id:012d}.jpg'
      write_jpeg(os.path.join(out_dir, 'images', 'train', file_name), image, ctx['quality'])
      images.append({'id': image_id, 'file_name': file_name, 'width': size, 'height': size,
                     'license': 0})
      anns.append({**ann, 'id': image_id, 'image_id': image_id})
      gt[str(image_id)] = gt_entry(orient[k], body[k], betas[k], transl, focal, princpt)
      if ctx['save_vertices']:
        verts_out[str(image_id)] = (verts0[k] + transl).astype(np.float32)
      progress.update(1)
  category = {'supercategory': 'person', 'id': 1, 'name': 'person',
              'keypoints': list(scenes.COCO_17),
              'skeleton': [list(p) for p in scenes.COCO_SKELETON]}
  write_json(os.path.join(out_dir, 'annotations', 'person_keypoints_train.json'),
             {'info': {'description': 'NeuralAnnot-JAX synthetic COCO-style set',
                       'version': '1.0', 'year': 2026},
              'licenses': [{'id': 0, 'name': 'generated', 'url': ''}],
              'images': images, 'annotations': anns, 'categories': [category]})
  _write_gt(out_dir, gt, verts_out)
  return len(images)


def _write_gt(out_dir, gt, verts):
  write_json(os.path.join(out_dir, 'gt_smpl.json'), gt)
  if verts:
    write_npz(os.path.join(out_dir, 'gt_vertices.npz'), verts)


# ---- Human3.6M --------------------------------------------------------------------------

def h36m_frame_key(k, num_subjects):
  """Frame number k of the set -> (subject, action_idx, subaction_idx, frame_idx).

  Frames go round-robin over the subjects, then over the 30 (action, subaction) pairs.
  """
  subject = H36M_SUBJECTS[k % num_subjects]
  j = k // num_subjects
  group = j % (2 * len(H36M_ACTIONS))
  return subject, 2 + group // 2, 1 + group % 2, H36M_FRAME_STEP * (j // (2 * len(H36M_ACTIONS)))


def h36m_image_name(subject, action, subaction, cam, frame_idx):
  """The official image path: folder per sequence and camera, 1-based frame number."""
  seq = f's_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{cam:02d}'
  return f'{seq}/{seq}_{frame_idx + 1:06d}.jpg'


def _h36m_subject(seed, subject, ctx):
  """Fixed per subject: its shape, clothing, camera rig and one static background per camera."""
  rng = np.random.default_rng([seed, _KIND_SEED['h36m'], 1, subject])
  size = (ctx['size'], ctx['size'])
  cams = scenes.h36m_rig(rng, size, H36M_CAMERAS)
  return {'betas': poses.sample_betas(rng), 'colors': scenes.part_colors(
      rng, ctx['weights'], ctx['kinematic_names'], ctx['rest_vertices']), 'cams': cams,
          'backgrounds': [scenes.background(rng, size) for _ in cams]}


def write_h36m(out_dir, poser, ctx, num_images, seed, progress):
  """The MoCap set: subjects seen by 4 calibrated cameras, Human3.6M json layout."""
  num_frames = math.ceil(num_images / H36M_CAMERAS)
  num_subjects = min(len(H36M_SUBJECTS), max(num_frames, 1))
  subjects = {s: _h36m_subject(seed, s, ctx) for s in H36M_SUBJECTS[:num_subjects]}
  data = {s: {'images': [], 'annotations': []} for s in subjects}
  joints3d = {s: {} for s in subjects}
  smpl_world = {s: {} for s in subjects}
  gt, verts_out, count = {}, {}, 0
  for batch in _batches(num_frames, poser.batch_size):
    keys = [h36m_frame_key(k, num_subjects) for k in batch]
    rngs = [np.random.default_rng([seed, _KIND_SEED['h36m'], 0, k]) for k in batch]
    body = [poses.sample_body_pose(r, activity=_ACTION_ACTIVITY.get(H36M_ACTIONS[a - 2]))
            for r, (_, a, _, _) in zip(rngs, keys)]
    orient = [scenes.model_to_world(poses.sample_global_orient(r, upright_prob=0.97))
              for r in rngs]
    betas = np.stack([subjects[s]['betas'] for s, _, _, _ in keys])
    verts0, joints0 = poser(np.stack(orient), np.stack(body), betas)
    for k, (subject, action, sub, frame) in enumerate(keys):
      sj, rng = subjects[subject], rngs[k]
      # Stand on the floor (z = 0) somewhere near the middle of the capture volume.
      transl = np.array([*rng.uniform(-0.4, 0.4, 2), -verts0[k][:, 2].min()])
      world_joints = scenes.h36m_joints(verts0[k] + transl, ctx['h36m_regressor'])
      key3 = (str(action), str(sub), str(frame))
      joints3d[subject].setdefault(key3[0], {}).setdefault(key3[1], {})[key3[2]] = _r(
          world_joints * 1000.0, 2)
      pose72 = np.concatenate([poses.matrix_to_axis_angle(orient[k]), body[k].ravel()])
      smpl_world[subject].setdefault(key3[0], {}).setdefault(key3[1], {})[key3[2]] = {
          'pose': _r(pose72, 6), 'shape': _r(betas[k], 6), 'trans': _r(transl, 6)}
      for c, cam in enumerate(sj['cams']):
        if count == num_images:
          break
        count += 1
        rot, t_m = cam['R'], cam['t'] / 1000.0
        verts = (verts0[k] + transl) @ rot.T + t_m
        image, mask, _ = render_mod.render(verts, ctx['faces'], cam['f'], cam['c'],
                                           sj['backgrounds'][c], colors=sj['colors'],
                                           cull_backfaces=True)
        cam_joints = world_joints @ rot.T + t_m
        in_view = scenes.in_image(render_mod.project(cam_joints, cam['f'], cam['c']), mask.shape)
        file_name = h36m_image_name(subject, action, sub, c + 1, frame)
        write_jpeg(os.path.join(out_dir, 'images', file_name), image, ctx['quality'])
        data[subject]['images'].append({
            'id': count, 'file_name': file_name, 'width': ctx['size'], 'height': ctx['size'],
            'subject': subject, 'action_name': H36M_ACTIONS[action - 2], 'action_idx': action,
            'subaction_idx': sub, 'cam_idx': c + 1, 'frame_idx': frame})
        data[subject]['annotations'].append({
            'id': count, 'image_id': count, 'category_id': 1, 'iscrowd': 0,
            'keypoints_vis': [bool(v) for v in in_view],
            'bbox': scenes.mask_bbox(mask).tolist(), 'area': float(mask.sum())})
        cam_orient, cam_transl = scenes.camera_params(orient[k], transl, joints0[k][0], rot, t_m)
        gt[str(count)] = gt_entry(cam_orient, body[k], betas[k], cam_transl, cam['f'], cam['c'])
        if ctx['save_vertices']:
          verts_out[str(count)] = verts.astype(np.float32)
        progress.update(1)
  ann_dir = os.path.join(out_dir, 'annotations')
  for s, sj in subjects.items():
    prefix = os.path.join(ann_dir, f'Human36M_subject{s}')
    write_json(prefix + '_data.json', data[s])
    write_json(prefix + '_camera.json', {
        str(c + 1): {'R': _r(cam['R'], 8), 't': _r(cam['t'], 4), 'f': _r(cam['f'], 4),
                     'c': _r(cam['c'], 4)} for c, cam in enumerate(sj['cams'])})
    write_json(prefix + '_joint_3d.json', joints3d[s])
    write_json(prefix + '_smpl_param.json', smpl_world[s])
  _write_gt(out_dir, gt, verts_out)
  common.write_npy(os.path.join(out_dir, H36M_GT_REGRESSOR), ctx['h36m_regressor'])
  return count


# ---- the library entry --------------------------------------------------------------------

class _NoProgress:
  def update(self, n):
    pass

  def close(self):
    pass


def _smpl_context(body_model_dir, size, jpeg_quality, save_vertices, batch_size, seed):
  """The SMPL model, its batched forward pass and what the body writers need of it."""
  model = body_models.load(body_model_dir, 'smpl')
  names = model.joint_names
  ctx = {'size': int(size), 'faces': np.asarray(model.faces), 'joint_names': names,
         'kinematic_names': names[:model.num_joints], 'weights': np.asarray(model.weights),
         'rest_vertices': np.asarray(model.v_template),
         'quality': jpeg_quality, 'save_vertices': save_vertices,
         'h36m_regressor': h36m_regressor.for_model(model, seed=seed, **scenes.GT_REGRESSOR)}
  return _Poser(model, batch_size), ctx


def _meta(seed, size, counts):
  """synthetic_meta.json: what was generated, with which families and joint sets."""
  meta = {'seed': seed, 'size': size, 'counts': counts,
          'families': {k: FAMILIES[k] for k in counts}}
  if {'coco', 'h36m'} & set(counts):
    meta.update({'family': 'smpl', 'gender': 'neutral', 'coco_joints': list(scenes.COCO_17),
                 'h36m_joints': list(scenes.H36M_17),
                 'h36m_gt_regressor': {'file': 'h36m/' + H36M_GT_REGRESSOR,
                                       **scenes.GT_REGRESSOR, 'seed': seed}})
  if 'freihand' in counts:
    meta['freihand_joint_set'] = 'HAND_21'
  if 'face' in counts:
    meta['face_joint_set'] = 'FACE_68'
  if 'wholebody' in counts:
    meta['wholebody_joint_set'] = 'COCO_WHOLEBODY_133'
  return meta


def make_dataset(out_dir, body_model_dir, num_images=1000, size=128, seed=0,
                 kinds=DEFAULT_KINDS, save_vertices=False, jpeg_quality=90, batch_size=16,
                 progress=True):
  """Generate the synthetic datasets.

  Args:
    out_dir: output folder (created); see the module docstring for the layout.
    body_model_dir: model root holding the families the kinds need (`FAMILIES`):
      `smpl/SMPL_NEUTRAL.pkl`, `mano/MANO_RIGHT.pkl`, `flame/FLAME_NEUTRAL.pkl` (or
      generic_model.pkl) with its landmark embeddings, `smplx/SMPLX_NEUTRAL.npz`; the
      stand-ins from `body_models.synthetic.write_model`, or the official files.
    num_images: images per kind (Human3.6M: 4 views per frame; the last frame may have
      fewer views so that the count is exact).
    size: image side in pixels (square images).
    seed: everything (images, json bytes) is a function of the seed and the arguments.
    kinds: any of `KINDS`: 'coco', 'h36m', 'freihand', 'face', 'wholebody'.
    save_vertices: also write camera-space GT vertices (large: 83 KB per person).
    batch_size: samples per forward pass; for speed only (the tests check that it
      changes no output byte on CPU).
  Returns:
    A summary dict: images per kind, seconds, images_per_s, seconds_by_kind.
  """
  unknown = set(kinds) - set(KINDS)
  if unknown:
    raise ValueError(f'unknown dataset kinds {sorted(unknown)}; expected some of {KINDS}')
  start = time.perf_counter()
  if {'coco', 'h36m'} & set(kinds):
    poser, ctx = _smpl_context(body_model_dir, size, jpeg_quality, save_vertices, batch_size,
                               seed)
  opts = {'size': int(size), 'quality': jpeg_quality, 'save_vertices': save_vertices,
          'batch_size': batch_size}
  body_writers = {'coco': write_coco, 'h36m': write_h36m}
  part_writers = {'freihand': hands.write_freihand, 'face': faces.write_face,
                  'wholebody': wholebody.write_wholebody}
  bar = _NoProgress()
  if progress:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    bar = tqdm(total=num_images * len(kinds), unit='img', desc='synthetic')
  counts, seconds_by_kind = {}, {}
  try:
    for kind in kinds:
      kind_start = time.perf_counter()
      folder = os.path.join(out_dir, kind)
      if kind in body_writers:
        counts[kind] = body_writers[kind](folder, poser, ctx, num_images, seed, bar)
      else:
        counts[kind] = part_writers[kind](folder, body_model_dir, opts, num_images, seed, bar)
      seconds_by_kind[kind] = time.perf_counter() - kind_start
  finally:
    bar.close()
  write_json(os.path.join(out_dir, 'synthetic_meta.json'), _meta(seed, size, counts))
  seconds = time.perf_counter() - start
  total = sum(counts.values())
  summary = {**counts, 'seconds': seconds, 'images_per_s': total / max(seconds, 1e-9),
             'seconds_by_kind': seconds_by_kind}
  if progress:
    parts = ', '.join(f'{k} {v}' for k, v in counts.items())
    print(f'wrote {total} images ({parts}) of {size}px to {out_dir} in {seconds:.1f} s '
          f'({summary["images_per_s"]:.1f} images/s)')
  return summary
