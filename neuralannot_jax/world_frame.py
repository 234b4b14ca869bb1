"""World-frame pseudo-GTs of MoCap sets: one body per frame from its cameras' annotations.

Human3.6M and MPI-INF-3DHP see each frame from several calibrated cameras; the NeuralAnnot
release stores one world-frame body per frame. Each camera's annotation is moved into the
world (`export.camera_to_world`) and the views are merged (`merge_frame`):

  1. the medoid view: the one whose joints lie nearest, on average, to the other views';
  2. the consensus: the views within `CONSENSUS_M` of the medoid, merged by averaging
     (`merge_views`: rotations on SO(3), shape averaged, root on the mean root);
  3. the average is kept only when it lies no farther from the views than the medoid
     does (up to `TOLERANCE_M`); else the medoid itself is the frame's body.

Averaging each joint's local rotation over views that disagree (a weakly trained network's
views had global orientations 90 degrees apart) gives a body unlike any of them: it stood
160-330 mm from every view while the views stood ~100 mm from each other. Step 3 makes
the released body never less consistent with the views than the best single view.
"""

import collections
import dataclasses
import os

import jax
import numpy as np

import body_models
from body_models import rotations
from neuralannot_jax import export
from neuralannot_jax.data import mocap

# Views whose joints lie within this mean distance (metres) of the medoid's are averaged.
CONSENSUS_M = 0.05
# The average may lie this much (metres, mean joint distance to the views) farther than the
# medoid: averaging agreeing views removes their noise, which the distance cannot credit.
TOLERANCE_M = 0.001
_CHUNK = 64
# Compiled once per shape: `merge_views` runs per frame, and op by op each call cost
# milliseconds.
_to_matrix = jax.jit(rotations.axis_angle_to_matrix)
_to_axis_angle = jax.jit(rotations.matrix_to_axis_angle)


def merge_views(views, rest_root):
  """The average body of several world-frame views of one frame.

  Rotations are averaged as matrices and projected back onto SO(3) (SVD), shape and
  expression averaged; the translation is set so that the root joint lands on the mean of
  the views' root joints (the root sits at transl + rest_root(betas), so averaging transl
  alone would be off when the betas differ).

  Args:
    views: list of {smplx name: 1-D array} world-frame parameters (`export.camera_to_world`).
    rest_root: betas -> (3,) rest-pose root joint, metres (`data.mocap.rest_root_of`).
  Returns:
    {smplx name: 1-D float32 array}.
  """
  if len(views) == 1:
    return dict(views[0])
  merged = {}
  for name in views[0]:
    stack = np.stack([np.asarray(v[name], np.float64) for v in views])
    if name in export.ROTATION_PARAMS:
      mats = np.asarray(_to_matrix(stack.reshape(len(views), -1, 3).astype(np.float32)),
                        np.float64)
      u, _, vt = np.linalg.svd(mats.mean(0))
      fix = np.ones((u.shape[0], 3))
      fix[:, 2] = np.sign(np.linalg.det(u @ vt))
      rot = (u * fix[:, None, :]) @ vt
      merged[name] = np.asarray(_to_axis_angle(rot.astype(np.float32))).reshape(-1)
    else:
      merged[name] = stack.mean(0)
  if 'transl' in merged:
    roots = [np.asarray(v['transl'], np.float64) + rest_root(v['betas']) for v in views]
    merged['transl'] = np.mean(roots, 0) - rest_root(merged['betas'])
  return {k: np.asarray(v, np.float32) for k, v in merged.items()}


# Module level, so that every call with the same shapes reuses one compilation.
_forward = jax.jit(body_models.forward)


def joints_function(model):
  """params list -> (N, J, 3) kinematic joints of `model`, in jitted chunks."""
  forward = _forward

  def joints_of(params_list):
    out = []
    for start in range(0, len(params_list), _CHUNK):
      chunk = params_list[start:start + _CHUNK]
      pad = chunk + [chunk[-1]] * (_CHUNK - len(chunk))   # one compiled shape
      stacked = {k: np.stack([np.asarray(p[k], np.float32) for p in pad]) for k in chunk[0]}
      joints = np.asarray(forward(model, **stacked).joints)[:len(chunk), :model.num_joints]
      out.append(joints)
    return np.concatenate(out) if out else np.zeros((0, model.num_joints, 3))

  return joints_of


def _spread(a, b):
  """Mean joint distance between (..., J, 3) arrays."""
  return np.mean(np.linalg.norm(a - b, axis=-1), axis=-1)


def consensus_average(views, joints, rest_root):
  """Steps 1-2 of the module docstring for one frame of several views.

  Args:
    views: list of V >= 2 world-frame parameter dicts; joints: (V, J, 3) their joints.
  Returns:
    (the consensus views' average, medoid index, the medoid's mean distance to the views).
  """
  pair = _spread(joints[:, None], joints[None])                 # (V, V)
  medoid = int(np.argmin(pair.sum(1)))
  consensus = [v for i, v in enumerate(views) if pair[medoid, i] <= CONSENSUS_M]
  return merge_views(consensus, rest_root), medoid, float(pair[medoid].mean())


def choose(views, joints, average, average_joints, medoid, medoid_cost):
  """Step 3: the average, unless it lies farther from the views than the medoid does.

  Returns:
    ({smplx name: array}, 'average' or 'medoid').
  """
  if _spread(average_joints[None], joints).mean() <= medoid_cost + TOLERANCE_M:
    return average, 'average'
  return dict(views[medoid]), 'medoid'


def merge_frame(views, joints, rest_root, joints_of):
  """One frame's world-frame body (see the module docstring).

  Args:
    views: list of V world-frame parameter dicts; joints: (V, J, 3) their joints.
    rest_root: as for `merge_views`; joints_of: params list -> (N, J, 3).
  Returns:
    ({smplx name: array}, how: 'single', 'average' or 'medoid').
  """
  if len(views) == 1:
    return dict(views[0]), 'single'
  average, medoid, cost = consensus_average(views, joints, rest_root)
  return choose(views, joints, average, joints_of([average])[0], medoid, cost)


def _framed(annotations, extras):
  """(ann_id, annotation, extra) of the annotations that go into a frame: those made with
  the dataset's camera, whose reader gave the frame and the camera's extrinsics."""
  for ann_id, ann in annotations.items():
    extra = extras.get(ann_id)
    if extra is not None and ann.camera == 'dataset':
      yield ann_id, ann, extra


def world_params(annotations, extras, model):
  """MoCap annotations -> {frame key: world-frame parameters}, one per frame.

  Args:
    annotations: {ann_id: annotate.Annotation}; only those made with the dataset's camera
      are used.
    extras: {ann_id: reader extras with 'frame_key', 'R' (3x3), 't_mm' (3)} (the Human3.6M
      and MPI-INF-3DHP readers give them).
    model: the `body_models.BodyModel` the parameters are for.
  Returns:
    ({frame key tuple: {smplx name: array}}, number of annotations left out,
    {'single' | 'average' | 'medoid': frames merged that way}).
  """
  rest_root = mocap.rest_root_of(model)
  views = collections.defaultdict(list)
  framed = list(_framed(annotations, extras))
  left_out = len(annotations) - len(framed)
  for _, ann, extra in framed:
    params = dict(ann.params)
    world = export.camera_to_world(params, extra['R'], extra['t_mm'],
                                   rest_root(params['betas']))
    views[tuple(extra['frame_key'])].append(world)
  joints_of = joints_function(model)
  flat = [v for group in views.values() for v in group]
  all_joints = joints_of(flat)
  frames, counts, start, pending = {}, collections.Counter(), 0, []
  for key, group in views.items():
    joints = all_joints[start:start + len(group)]
    start += len(group)
    if len(group) == 1:
      frames[key] = dict(group[0])
      counts['single'] += 1
    else:
      pending.append((key, group, joints) + consensus_average(group, joints, rest_root))
  # The candidate averages' joints in one batched pass, not one forward pass per frame.
  average_joints = joints_of([p[3] for p in pending])
  for (key, group, joints, average, medoid, cost), candidate in zip(pending, average_joints):
    frames[key], how = choose(group, joints, average, candidate, medoid, cost)
    counts[how] += 1
  return frames, left_out, dict(counts)


def nest(flat):
  """{(k1, ..., kn): value} -> {k1: {...: {kn: value}}}, keys as strings (the json's)."""
  out = {}
  for key, value in flat.items():
    node = out
    for k in key[:-1]:
      node = node.setdefault(str(k), {})
    node[str(key[-1])] = value
  return out


def in_cameras(frames, annotations, extras, model):
  """The world-frame bodies moved back into each view's camera, as the releases' readers do
  (`export.world_to_camera`): what a user of the world-frame files gets for each image.

  Args:
    frames: {frame key tuple: world-frame params} (`world_params`).
    annotations, extras: as for `world_params`.
  Returns:
    {ann_id: the annotation with the frame's body in its camera and no quality} for every
    annotation that went into a frame.
  """
  rest_root = mocap.rest_root_of(model)
  out = {}
  for ann_id, ann, extra in _framed(annotations, extras):
    world = frames[tuple(extra['frame_key'])]
    params = export.world_to_camera(world, extra['R'], extra['t_mm'], rest_root(world['betas']))
    out[ann_id] = dataclasses.replace(ann, params={**dict(world), **params}, quality=None)
  return out


def write_frames(frames, family, dataset, out_dir):
  """Write world-frame pseudo-GTs ({frame key tuple: params}) as the MoCap releases lay them
  out: dataset 'h36m': Human36M_subject{S}_{FAMILY}_NeuralAnnot.json per subject,
  [action][subaction][frame]; 'mpi_inf_3dhp': MPI-INF-3DHP_{FAMILY}_NeuralAnnot.json,
  [subject][seq][frame]. Returns the paths written."""
  released = {k: export.to_released_params(family, v) for k, v in frames.items()}
  nested = nest(released)
  if dataset == 'h36m':
    return export.write_h36m_style(out_dir, nested, family)
  if dataset == 'mpi_inf_3dhp':
    path = os.path.join(out_dir, f'MPI-INF-3DHP_{family.upper()}_NeuralAnnot.json')
    return [export.write_mocap_style(path, nested, 3, family)]
  raise ValueError(f'write_mocap: no MoCap release layout for {dataset!r}')


def write_mocap(annotations, extras, model, family, dataset, out_dir):
  """`world_params` then `write_frames`.

  Returns:
    (paths written, number of annotations left out, {how: frames} of `world_params`,
    the frames {frame key tuple: world-frame params}).
  """
  frames, left_out, counts = world_params(annotations, extras, model)
  return write_frames(frames, family, dataset, out_dir), left_out, counts, frames


__all__ = ['CONSENSUS_M', 'TOLERANCE_M', 'merge_views', 'joints_function', 'consensus_average',
           'choose', 'merge_frame', 'world_params', 'in_cameras', 'nest', 'write_frames',
           'write_mocap']
