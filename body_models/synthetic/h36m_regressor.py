"""A Human3.6M-17 vertex regressor for SMPL-topology models: the counterpart of the
`J_regressor_h36m_correct.npy` that the official SMPL users take from I2L-MeshNet / Pose2Pose.

Human3.6M's joints come from markers, not from SMPL's kinematic tree: its hips sit lower and
wider than SMPL's, its pelvis is their midpoint, 'Torso' is a spine point with no SMPL joint,
'Neck' is the thorax, 'Nose' is a point inside the head in front of the skull base, and
'Head_top' is the crown. Pairing them with SMPL's joints of the same names (what a
name-matched mapping does) therefore misses each by centimetres and leaves the head top
unsupervised. A vertex regressor reads each one off the mesh instead, so it moves with the
skinned surface as the official one does.

`h36m_regressor` builds one from any SMPL-topology model's own rest geometry: each of the 17
points is placed relative to the model's joints (`TARGETS`, offsets in metres in the rest
frame: y up, facing +z, the model's left = +x), then written as a convex combination of the
vertices around it (`rig.joint_regressor`), exact on the template. `offset_scale` and `jitter`
make a slightly different definition of the same joints: real markers never sit where any
regressor puts a joint, so a synthetic set's GT can come from one variant while the annotator
is given another.
"""

import numpy as np

from body_models import skeletons
from body_models.synthetic import rig

H36M_NAMES = ('pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee',
              'left_ankle', 'torso', 'neck', 'nose', 'head_top', 'left_shoulder', 'left_elbow',
              'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist')

# name: (anchor joints whose mean is the base point, offset (x, y, z) in metres, joint whose
# skinning neighbourhood the vertices are taken from). x offsets are for the model's left
# side and are mirrored for the right. 'pelvis' and 'torso' are filled in from other targets.
TARGETS = {
    'left_hip': (('left_hip',), (0.015, -0.035, 0.0), 'left_hip'),
    'left_knee': (('left_knee',), (0.0, 0.0, 0.01), 'left_knee'),
    'left_ankle': (('left_ankle',), (0.0, -0.01, 0.0), 'left_ankle'),
    'neck': (('neck',), (0.0, -0.03, 0.0), 'spine3'),
    'nose': (('head',), (0.0, 0.03, 0.06), 'head'),
    'left_shoulder': (('left_shoulder',), (0.0, 0.01, 0.0), 'left_shoulder'),
    'left_elbow': (('left_elbow',), (0.0, 0.0, -0.005), 'left_elbow'),
    'left_wrist': (('left_wrist',), (0.0, 0.0, 0.0), 'left_wrist'),
}


def _mirror(name):
  return 'right' + name[4:] if name.startswith('left') else name


def _target_points(joints, names, verts, offset_scale, jitter, rng):
  """{h36m name: ((3,) rest-pose point, skinning joint name)}."""
  pos = {n: joints[i] for i, n in enumerate(names)}
  out = {}
  for name, (anchors, offset, owner) in TARGETS.items():
    for side, sign in (('left', 1.0), ('right', -1.0)):
      if not name.startswith('left') and side == 'right':
        continue
      key = name if side == 'left' else _mirror(name)
      base = np.mean([pos[a if side == 'left' else _mirror(a)] for a in anchors], axis=0)
      off = np.array(offset) * offset_scale * np.array([sign, 1.0, 1.0])
      if jitter:
        off = off + rng.normal(0.0, jitter, 3)
      out[key] = (base + off, owner if side == 'left' else _mirror(owner))
  out['pelvis'] = ((out['left_hip'][0] + out['right_hip'][0]) / 2.0, 'pelvis')
  out['torso'] = ((out['pelvis'][0] + out['neck'][0]) / 2.0, 'spine2')
  # The crown: the head's highest vertices near its axis, a little inside the surface.
  head = pos['head']
  near = np.linalg.norm(verts[:, [0, 2]] - head[[0, 2]], axis=1) < 0.05
  crown = verts[near & (verts[:, 1] > head[1]), 1].max()
  top = np.array([head[0], crown - 0.02 * offset_scale - 0.005, head[2]])
  if jitter:
    top = top + rng.normal(0.0, jitter, 3)
  out['head_top'] = (top, 'head')
  return out


def h36m_regressor(v_template, joint_template, weights, parents, family='smpl', *,
                   offset_scale=1.0, jitter=0.0, seed=0):
  """(17, V) Human3.6M regressor in the joint order of Human3.6M's annotation files.

  Args:
    v_template: (V, 3) rest vertices; joint_template: (J, 3) rest joints; weights: (V, J)
      skinning weights; parents: (J,) kinematic parents (-1 for the root). Any model with
      SMPL's or SMPL-X's body joints (the stand-ins or the official files).
    family: 'smpl' or 'smplx' (for the joint names).
    offset_scale: scales every marker offset of `TARGETS` (1: this module's definition).
    jitter: standard deviation (metres) of a random extra offset per point, seeded by `seed`.
  Returns:
    (17, V) float64, rows non-negative and summing to 1, exact on the template: row k
    applied to `v_template` gives the k-th target point.
  """
  verts = np.asarray(v_template, np.float64)
  joints = np.asarray(joint_template, np.float64)
  weights = np.asarray(weights, np.float64)
  names = list(skeletons.output_joint_names(family))[:len(parents)]
  rng = np.random.default_rng(seed)
  targets = _target_points(joints, names, verts, offset_scale, jitter, rng)
  points = np.stack([targets[n][0] for n in H36M_NAMES])
  owners = [names.index(targets[n][1]) for n in H36M_NAMES]
  # rig.joint_regressor looks for vertices that move with a joint (and its parent): give it
  # each target's owner column and, beside it, the owner's parent's.
  cols = owners + [max(int(parents[o]), 0) for o in owners]
  own_parents = [len(owners) + k for k in range(len(owners))]
  return rig.joint_regressor(verts, weights[:, cols], points, own_parents)


def for_model(model, **kw):
  """`h36m_regressor` of a loaded `body_models.BodyModel` (SMPL or SMPL-X)."""
  return h36m_regressor(np.asarray(model.v_template), np.asarray(model.joint_template),
                        np.asarray(model.weights), model.parents, model.family, **kw)


__all__ = ['H36M_NAMES', 'TARGETS', 'h36m_regressor', 'for_model']
