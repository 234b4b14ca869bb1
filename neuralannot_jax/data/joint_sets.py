"""Named joint sets of the datasets, and the maps between them and the body models.

A joint set is data: an ordered tuple of joint names in the **native order of the dataset's
files**, with its left/right mirror pairs, root and drawing bones. Readers store a set's name in
`Sample.joint_set`; everything downstream looks the set up with `get(name)`.

Naming scheme (one for every set, so that sets and body models are matched by name):
  - snake_case, sides as prefixes: 'left_shoulder', 'right_big_toe', 'pelvis', 'head_top'.
  - A single hand (HAND_21, MANO_21) has no side: 'wrist', then '{finger}{k}' with fingers
    thumb, index, middle, ring, pinky and k = 1..4 from the palm out, 4 being the tip
    ('thumb1' is the thumb's carpometacarpal joint, 'index1' the knuckle).
  - The same joints inside a two-handed set get the side prefix: 'left_thumb4', and the hand's
    root is 'left_hand_wrist' (the body set's 'left_wrist' is a separate keypoint in
    COCO-WholeBody). `hand_joint_name` does this.
  - Face points are named by their 1-based iBUG-68 number: 'ibug_01' .. 'ibug_68'
    (01..17 jaw line, 18..27 brows, 28..36 nose, 37..48 eyes, 49..68 mouth).
  - Body-model joints keep `body_models.skeletons` names, except that a model's fingertips
    ('left_thumb_tip') are 'left_thumb4' here and its landmarks ('face_NN', 'face_contour_NN')
    are renamed to their iBUG numbers (`_model_points`).

Joints of the same name need not be the very same anatomical point (H36M's 'nose' is its
'Neck/Nose' point, not the tip of the nose; COCO's hips sit outside SMPL's). Where they are not
(`REGRESSOR_RULES`: Human3.6M, MPI-INF-3DHP, the COCO hips), a real dataset's joints come from
the vertex regressor the authors use (`check_regressor` names it); matching by name is left to
the synthetic sets, whose joints are the model's own, and to the joints the authors match so.
"""

import dataclasses
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

import body_models
from body_models import skeletons

SIDES = ('left', 'right')


@dataclasses.dataclass(frozen=True)
class JointSet:
  """An ordered, named set of joints.

  Attributes:
    name: registry name, e.g. 'COCO_17'.
    names: (K,) joint names in the dataset's file order.
    flip_pairs: (i, j) index pairs swapped by a horizontal mirror, each pair once, i < j.
    root: index of the root joint (for root-relative 3D), or None.
    skeleton: (i, j) index pairs of the bones to draw.
  """
  name: str
  names: tuple
  flip_pairs: tuple
  root: Optional[int]
  skeleton: tuple

  @property
  def num_joints(self):
    return len(self.names)

  def index(self, joint_name):
    return self.names.index(joint_name)


def _side_pairs(set_name, names):
  """(i, j) for each 'left_X' at i and its 'right_X' at j; every side needs its mirror."""
  index = {n: i for i, n in enumerate(names)}
  pairs = []
  for i, n in enumerate(names):
    for side, other in (('left_', 'right_'), ('right_', 'left_')):
      if n.startswith(side) and other + n[len(side):] not in index:
        raise ValueError(f'{set_name}: {n!r} has no mirror joint {other + n[len(side):]!r}')
    if n.startswith('left_'):
      pairs.append(tuple(sorted((i, index['right_' + n[5:]]))))
  return pairs


def _make(name, names, *, root=None, bones=(), mirror=()):
  """A JointSet from names; bones, root and extra mirror pairs are given by joint name."""
  names = tuple(names)
  if len(set(names)) != len(names):
    raise ValueError(f'{name}: joint names are not unique')
  index = {n: i for i, n in enumerate(names)}
  pairs = _side_pairs(name, names)
  pairs += [tuple(sorted((index[a], index[b]))) for a, b in mirror if a in index]
  return JointSet(
      name=name, names=names, flip_pairs=tuple(sorted(pairs)),
      root=None if root is None else index[root],
      skeleton=tuple((index[a], index[b]) for a, b in bones))


def _lr(*bones):
  """Name bones written once with '{s}' for the side, expanded to both sides."""
  return tuple((a.format(s=s), b.format(s=s)) for s in SIDES for a, b in bones)


# ---- hands -------------------------------------------------------------------------------

HAND_FINGERS = ('thumb', 'index', 'middle', 'ring', 'pinky')
_HAND_NAMES = ('wrist',) + tuple(f'{f}{k}' for f in HAND_FINGERS for k in (1, 2, 3, 4))
_HAND_BONES = tuple(('wrist' if k == 1 else f'{f}{k - 1}', f'{f}{k}')
                    for f in HAND_FINGERS for k in (1, 2, 3, 4))


def hand_joint_name(side, name):
  """The name of single-hand joint `name` ('wrist', 'thumb4') inside a two-handed set."""
  return f'{side}_hand_wrist' if name == 'wrist' else f'{side}_{name}'


# ---- face --------------------------------------------------------------------------------

_FACE_NAMES = tuple(f'ibug_{i:02d}' for i in range(1, 69))


def _ibug(i):
  return f'ibug_{i:02d}'


# iBUG-68 points that a horizontal mirror swaps (1-based); points on the midline
# (9 chin, 28..31 nose bridge, 34, 52, 58, 63, 67) map to themselves.
_IBUG_MIRROR = (
    (1, 17), (2, 16), (3, 15), (4, 14), (5, 13), (6, 12), (7, 11), (8, 10),    # jaw line
    (18, 27), (19, 26), (20, 25), (21, 24), (22, 23),                          # brows
    (32, 36), (33, 35),                                                        # nostrils
    (37, 46), (38, 45), (39, 44), (40, 43), (41, 48), (42, 47),                # eyes
    (49, 55), (50, 54), (51, 53), (56, 60), (57, 59),                          # outer lips
    (61, 65), (62, 64), (66, 68),                                              # inner lips
)
_FACE_MIRROR = tuple((_ibug(a), _ibug(b)) for a, b in _IBUG_MIRROR)


def _chain(first, last, closed=False):
  bones = [(_ibug(i), _ibug(i + 1)) for i in range(first, last)]
  return bones + ([(_ibug(last), _ibug(first))] if closed else [])


_FACE_BONES = tuple(
    _chain(1, 17) + _chain(18, 22) + _chain(23, 27) + _chain(28, 31) + _chain(32, 36) +
    _chain(37, 42, True) + _chain(43, 48, True) + _chain(49, 60, True) + _chain(61, 68, True))

# ---- the sets ----------------------------------------------------------------------------

# COCO person keypoints ("keypoints" of person_keypoints_*.json; COCO-WholeBody's body part).
_COCO_BODY = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
_COCO_BONES = _lr(('{s}_ankle', '{s}_knee'), ('{s}_knee', '{s}_hip'),
                  ('{s}_shoulder', '{s}_hip'), ('{s}_shoulder', '{s}_elbow'),
                  ('{s}_elbow', '{s}_wrist'), ('nose', '{s}_eye'), ('{s}_eye', '{s}_ear'),
                  ('{s}_ear', '{s}_shoulder')) + (
                      ('left_hip', 'right_hip'), ('left_shoulder', 'right_shoulder'),
                      ('left_eye', 'right_eye'))
COCO_17 = _make('COCO_17', _COCO_BODY, bones=_COCO_BONES)

# COCO-WholeBody: "keypoints" (17), "foot_kpts" (6), "face_kpts" (68), "lefthand_kpts" (21),
# "righthand_kpts" (21), concatenated in that order (the order of the 133-point results).
_FEET = ('left_big_toe', 'left_small_toe', 'left_heel',
         'right_big_toe', 'right_small_toe', 'right_heel')
COCO_WHOLEBODY_133 = _make(
    'COCO_WHOLEBODY_133',
    _COCO_BODY + _FEET + _FACE_NAMES +
    tuple(hand_joint_name(s, n) for s in SIDES for n in _HAND_NAMES),
    bones=(_COCO_BONES + _lr(('{s}_ankle', '{s}_big_toe'), ('{s}_ankle', '{s}_small_toe'),
                             ('{s}_ankle', '{s}_heel')) + _FACE_BONES +
           tuple((hand_joint_name(s, a), hand_joint_name(s, b))
                 for s in SIDES for a, b in _HAND_BONES)),
    mirror=_FACE_MIRROR)

# One hand in the OpenPose order of COCO-WholeBody's hand_kpts and FreiHAND's *_xyz.json.
HAND_21 = _make('HAND_21', _HAND_NAMES, root='wrist', bones=_HAND_BONES)

# iBUG 300-W 68 points (COCO-WholeBody's face_kpts use this order).
FACE_68 = _make('FACE_68', _FACE_NAMES, bones=_FACE_BONES, mirror=_FACE_MIRROR)

# Human3.6M's 17 joints as in the json layout (Human36M_subject*_joint_3d.json). Index 7
# ('Torso') is the spine, 8 ('Neck') the thorax, 9 the original 'Neck/Nose' point (not the
# nose tip), 10 the top of the head.
H36M_17 = _make(
    'H36M_17',
    ('pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee',
     'left_ankle', 'torso', 'neck', 'nose', 'head_top', 'left_shoulder', 'left_elbow',
     'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist'),
    root='pelvis',
    bones=(('pelvis', 'torso'), ('torso', 'neck'), ('neck', 'nose'), ('nose', 'head_top')) +
    _lr(('neck', '{s}_shoulder'), ('{s}_shoulder', '{s}_elbow'), ('{s}_elbow', '{s}_wrist'),
        ('pelvis', '{s}_hip'), ('{s}_hip', '{s}_knee'), ('{s}_knee', '{s}_ankle')))

# MPI-INF-3DHP's 17 joints as in the json layout (MPI-INF-3DHP_joint_3d.json); 'torso' is
# the spine point between pelvis and neck.
MPI_INF_3DHP_17 = _make(
    'MPI_INF_3DHP_17',
    ('head_top', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
     'left_elbow', 'left_wrist', 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
     'left_knee', 'left_ankle', 'pelvis', 'torso', 'head'),
    root='pelvis',
    bones=(('head_top', 'head'), ('head', 'neck'), ('neck', 'torso'), ('torso', 'pelvis')) +
    _lr(('neck', '{s}_shoulder'), ('{s}_shoulder', '{s}_elbow'), ('{s}_elbow', '{s}_wrist'),
        ('pelvis', '{s}_hip'), ('{s}_hip', '{s}_knee'), ('{s}_knee', '{s}_ankle')))

# SMPL's 24 kinematic joints (3DPW's GT joints).
SMPL_24 = _make(
    'SMPL_24', skeletons.SMPL_JOINTS, root='pelvis',
    bones=tuple((skeletons.SMPL_JOINTS[p], j)
                for j, p in zip(skeletons.SMPL_JOINTS, skeletons.SMPL_PARENTS) if p >= 0))

# MANO's 16 kinematic joints (index, middle, pinky, ring, thumb) + the 5 fingertip
# vertices in skeletons.MANO_TIP_VERTICES order.
_MANO_TIPS = tuple(f'{f}4' for f in HAND_FINGERS)
MANO_21 = _make(
    'MANO_21', skeletons.MANO_JOINTS + _MANO_TIPS, root='wrist',
    bones=tuple((skeletons.MANO_JOINTS[p], j)
                for j, p in zip(skeletons.MANO_JOINTS, skeletons.MANO_PARENTS) if p >= 0) +
    tuple((f'{f}3', f'{f}4') for f in HAND_FINGERS))

# OpenPose's 18-joint COCO body output (the openpose_result of 3DPW's '_latest' files).
OPENPOSE_18 = _make(
    'OPENPOSE_18',
    ('nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
     'left_elbow', 'left_wrist', 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
     'left_knee', 'left_ankle', 'right_eye', 'left_eye', 'right_ear', 'left_ear'),
    bones=(('nose', 'neck'),) + _lr(
        ('neck', '{s}_shoulder'), ('{s}_shoulder', '{s}_elbow'), ('{s}_elbow', '{s}_wrist'),
        ('neck', '{s}_hip'), ('{s}_hip', '{s}_knee'), ('{s}_knee', '{s}_ankle'),
        ('nose', '{s}_eye'), ('{s}_eye', '{s}_ear')))

JOINT_SETS = {s.name: s for s in (COCO_17, COCO_WHOLEBODY_133, HAND_21, FACE_68, H36M_17,
                                  MPI_INF_3DHP_17, SMPL_24, MANO_21, OPENPOSE_18)}
# Sets of one hand with side-less names; in a two-handed context they need a side.
SINGLE_HAND_SETS = ('HAND_21', 'MANO_21')

# InterHand2.6M stores 42 joints per frame: the right hand at 0..20, the left at 21..41,
# each hand tips-first (thumb4, thumb3, thumb2, thumb1, index4, ..., pinky1) with the wrist
# last. `hand_21 = interhand_hand[..., INTERHAND_TO_HAND_21, :]` reorders one hand.
INTERHAND_HAND_OFFSET = {'right': 0, 'left': 21}
INTERHAND_HAND_NAMES = tuple(f'{f}{k}' for f in HAND_FINGERS for k in (4, 3, 2, 1)) + ('wrist',)
INTERHAND_TO_HAND_21 = (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                        19, 18, 17, 16)


def get(name):
  """The JointSet registered as `name`; KeyError listing the known names otherwise."""
  try:
    return JOINT_SETS[name]
  except KeyError:
    raise KeyError(f'unknown joint set {name!r}; known sets: {", ".join(JOINT_SETS)}') from None


def _as_set(joint_set):
  return joint_set if isinstance(joint_set, JointSet) else get(joint_set)


def _qualified_names(joint_set, side):
  """The set's names, with the side prefix when it is a single hand (side required)."""
  if side not in SIDES:
    raise ValueError(f'{joint_set.name} is a single hand: give side= one of {SIDES}, '
                     f'not {side!r}')
  return tuple(hand_joint_name(side, n) for n in joint_set.names)


def _xp(*arrays):
  """jax.numpy if any argument is a JAX array (or tracer), else numpy."""
  return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _check_joint_count(values, joint_set, what):
  if values.ndim < 2 or values.shape[-2] != joint_set.num_joints:
    raise ValueError(f'{what} has shape {values.shape}; expected (..., '
                     f'{joint_set.num_joints}, D) for joint set {joint_set.name}')


# ---- between dataset joint sets ---------------------------------------------------------------

def remap(values, valid, src_set, dst_set, *, side=None):
  """Convert joints between two joint sets by name; joints `src_set` lacks get valid 0.

  Args:
    values: (..., K, D) in `src_set` order (numpy or JAX).
    valid: (..., K) flags, or None for all valid.
    src_set, dst_set: JointSet or registry name.
    side: 'left' or 'right' when exactly one of the two sets is a single hand (HAND_21,
      MANO_21) and the other has both hands (COCO_WHOLEBODY_133).
  Returns:
    values (..., T, D) in `dst_set` order (0 where missing) and valid (..., T).
  """
  src, dst = _as_set(src_set), _as_set(dst_set)
  _check_joint_count(values, src, 'values')
  src_names, dst_names = src.names, dst.names
  if (src.name in SINGLE_HAND_SETS) != (dst.name in SINGLE_HAND_SETS):
    if src.name in SINGLE_HAND_SETS:
      src_names = _qualified_names(src, side)
    else:
      dst_names = _qualified_names(dst, side)
  xp = _xp(values, valid)
  k = src.num_joints
  index = {n: i for i, n in enumerate(src_names)}
  # Missing joints read a zero row appended after the K real ones.
  gather = np.array([index.get(n, k) for n in dst_names], np.int32)
  if valid is None:
    valid = xp.ones(values.shape[:-1], values.dtype)
  values = xp.concatenate([values, xp.zeros_like(values[..., :1, :])], axis=-2)
  valid = xp.concatenate([valid, xp.zeros_like(valid[..., :1])], axis=-1)
  return values[..., gather, :], valid[..., gather]


def flip(joints, valid, joint_set, image_width=None):
  """Mirror joints left-right: swap the set's flip pairs and negate x.

  Args:
    joints: (..., K, D) in `joint_set` order; x is the first coordinate.
    valid: (..., K) flags (swapped with their joints), or None.
    joint_set: JointSet or registry name.
    image_width: for pixel coordinates, x -> image_width - 1 - x (the mirror of the image
      about its centre); None for camera-space 3D, x -> -x.
  Returns:
    joints (..., K, D) and valid (..., K) (None if valid was None).
  """
  jset = _as_set(joint_set)
  _check_joint_count(joints, jset, 'joints')
  perm = np.arange(jset.num_joints)
  for i, j in jset.flip_pairs:
    perm[i], perm[j] = j, i
  xp = _xp(joints, valid)
  joints = joints[..., perm, :]
  x = -joints[..., :1] if image_width is None else image_width - 1 - joints[..., :1]
  joints = xp.concatenate([x, joints[..., 1:]], axis=-1)
  return joints, (None if valid is None else valid[..., perm])


# ---- from body-model outputs ----------------------------------------------------------------

def _canonical(model_name):
  """A body-model output name in this module's naming scheme."""
  if model_name.startswith('face_contour_'):   # contour NN = iBUG NN+1 (jaw line)
    return _ibug(int(model_name[len('face_contour_'):]) + 1)
  if model_name.startswith('face_'):           # static NN = iBUG NN+18
    return _ibug(int(model_name[len('face_'):]) + 1 + skeletons.NUM_CONTOUR_LANDMARKS)
  if model_name.endswith('_tip'):
    return model_name[:-len('_tip')] + '4'
  return model_name


def _model_points(family, num_landmarks):
  """{name: ('joint', k) | ('vertex', v)}: the named points a model's output provides."""
  points = {_canonical(n): ('joint', k)
            for k, n in enumerate(skeletons.output_joint_names(family, num_landmarks))}
  for side in SIDES:
    if f'{side}_wrist' in points:   # a hand's root is the body's wrist joint
      points[hand_joint_name(side, 'wrist')] = points[f'{side}_wrist']
  if family == 'mano':   # MANO's output has no fingertips: take them from the mesh
    for finger, vertex in zip(HAND_FINGERS, skeletons.MANO_TIP_VERTICES):
      points[f'{finger}4'] = ('vertex', vertex)
  return points


@dataclasses.dataclass(frozen=True, eq=False)
class JointMapping:
  """How to get a joint set's joints from a body model's output.

  Attributes:
    joint_set: name of the target set (T joints).
    family: the body-model family.
    sources: (T,) per target joint, ('joint', k) = `Output.joints[..., k, :]`,
      ('vertex', v) = `Output.vertices[..., v, :]`, ('regressor', r) = row r of
      `regressor` applied to the vertices, or None (not available: valid 0, value 0).
    regressor: (R, V) rows of a vertex regressor, or None.
    num_model_joints: K, the length of `Output.joints` the indices refer to.
  """
  joint_set: str
  family: str
  sources: tuple
  regressor: Optional[np.ndarray]
  num_model_joints: int

  @property
  def valid(self):
    """(T,) float32: 1 where the model provides the joint."""
    return np.array([s is not None for s in self.sources], np.float32)

  @property
  def names(self):
    return get(self.joint_set).names

  def vertex_support(self):
    """(M,) int sorted ids of the mesh vertices `apply` reads (vertex sources and the
    regressor's non-zero columns); empty when it reads joints only."""
    ids = [s[1] for s in self.sources if s is not None and s[0] == 'vertex']
    if self.regressor is not None:
      ids += list(np.flatnonzero(np.any(np.asarray(self.regressor) != 0, axis=0)))
    return np.unique(np.asarray(ids, np.int64))

  def on_vertices(self, ids):
    """This mapping for the output of `body_models.restrict(model, ids)`: vertex sources
    and regressor columns re-indexed to the sorted `ids`, which must hold `vertex_support`."""
    ids = np.asarray(ids)
    missing = np.setdiff1d(self.vertex_support(), ids)
    if missing.size:
      raise ValueError(f'on_vertices: the {self.joint_set} mapping reads vertices '
                       f'{missing[:5].tolist()}... that the subset lacks')
    where = lambda v: int(np.searchsorted(ids, v))
    sources = tuple(('vertex', where(s[1])) if s is not None and s[0] == 'vertex' else s
                    for s in self.sources)
    regressor = None if self.regressor is None else np.asarray(self.regressor)[:, ids]
    return dataclasses.replace(self, sources=sources, regressor=regressor)

  def apply(self, joints, vertices=None):
    """Target joints from a model's output.

    Args:
      joints: (..., K, D) `Output.joints`.
      vertices: (..., V, D) `Output.vertices`; needed when a source is a vertex or the
        regressor.
    Returns:
      (..., T, D); rows where `valid` is 0 are zero. numpy in, numpy out; JAX otherwise
      (jit-safe: all indices are static).
    """
    if joints.shape[-2] != self.num_model_joints:
      raise ValueError(f'joints has shape {joints.shape}; the {self.family} mapping to '
                       f'{self.joint_set} expects (..., {self.num_model_joints}, D): pass '
                       f'num_landmarks= matching the model (model.num_landmarks)')
    vertex_ids = [s[1] for s in self.sources if s is not None and s[0] == 'vertex']
    if (vertex_ids or self.regressor is not None) and vertices is None:
      raise ValueError(f'the {self.family} mapping to {self.joint_set} reads mesh vertices; '
                       'pass vertices=')
    xp = _xp(joints, vertices)
    # Stack every candidate row, then pick one row per target joint with static indices.
    parts, offset = [joints], {'joint': 0}
    count = joints.shape[-2]
    if vertex_ids:
      parts.append(vertices[..., np.array(vertex_ids), :].astype(joints.dtype))
      offset['vertex'], count = count, count + len(vertex_ids)
    if self.regressor is not None:
      if vertices.shape[-2] != self.regressor.shape[1]:
        raise ValueError(f'vertices has shape {vertices.shape}; the regressor is '
                         f'{self.regressor.shape}')
      regressor = self.regressor.astype(vertices.dtype)
      if xp is jnp:   # full float32: TPUs would otherwise multiply in bfloat16
        regressed = jnp.matmul(regressor, vertices, precision=jax.lax.Precision.HIGHEST)
      else:
        regressed = np.matmul(regressor, vertices)
      parts.append(regressed.astype(joints.dtype))
      offset['regressor'], count = count, count + self.regressor.shape[0]
    parts.append(xp.zeros_like(joints[..., :1, :]))
    gather, vertex_slot = [], 0
    for s in self.sources:
      if s is None:
        gather.append(count)
      elif s[0] == 'vertex':
        gather.append(offset['vertex'] + vertex_slot)
        vertex_slot += 1
      else:
        gather.append(offset[s[0]] + s[1])
    candidates = xp.concatenate(parts, axis=-2)
    return candidates[..., np.array(gather, np.int32), :]


# Row layouts a regressor file may have besides its joint set's own (T, V), for a set holding
# their joints: the COCO hips alone (left, right: COCO's keypoint order; the SMPL-X
# J_regressor_coco_hip_smplx.npy) and COCO's 17 keypoints (J_regressor_coco_hip_smpl.npy),
# read by name into COCO-WholeBody's 133. Joints a file leaves out keep their other source.
COCO_HIPS = ('left_hip', 'right_hip')
PARTIAL_REGRESSOR_LAYOUTS = (COCO_HIPS, _COCO_BODY)


def regressor_rows(joint_set, num_rows):
  """The joint names of the rows of a (num_rows, V) regressor for `joint_set`, or None when
  no layout has that many rows: the set's own names, else a `PARTIAL_REGRESSOR_LAYOUTS`
  entry whose joints the set holds."""
  jset = _as_set(joint_set)
  if num_rows == jset.num_joints:
    return jset.names
  for layout in PARTIAL_REGRESSOR_LAYOUTS:
    if len(layout) == num_rows and set(layout) <= set(jset.names):
      return layout
  return None


def load_regressor(regressor, joint_set, family):
  """(T, V) float32 from an array, a scipy sparse matrix or a .npy path, checked against
  the joint set (a `JointSet` or its name) and the family's vertex count.

  The file may also cover only some joints (`regressor_rows`, e.g. (2, V) for the COCO
  hips): its rows go to their joints and the other rows are zero (`model_joint_mapping`
  then takes those joints by name).
  """
  joint_set = _as_set(joint_set)
  source = repr(regressor) if isinstance(regressor, (str, os.PathLike)) else 'regressor'
  if isinstance(regressor, (str, os.PathLike)):
    regressor = np.load(regressor)
  if hasattr(regressor, 'toarray'):
    regressor = regressor.toarray()
  regressor = np.asarray(regressor, np.float32)
  num_vertices = skeletons.NUM_VERTICES[family]
  rows = regressor_rows(joint_set, regressor.shape[0]) if regressor.ndim == 2 else None
  if rows is None or regressor.shape[1] != num_vertices:
    partial = [f'({len(layout)}, {num_vertices}) for {", ".join(layout[:2])}'
               f'{", ..." if len(layout) > 2 else ""}' for layout in PARTIAL_REGRESSOR_LAYOUTS
               if set(layout) <= set(joint_set.names) and len(layout) != joint_set.num_joints]
    raise ValueError(f'{source} has shape {regressor.shape}; expected '
                     f'{(joint_set.num_joints, num_vertices)} ({joint_set.name} joints x '
                     f'{family} vertices)' + ''.join(f' or {p}' for p in partial))
  if tuple(rows) == joint_set.names:
    return regressor
  full = np.zeros((joint_set.num_joints, num_vertices), np.float32)
  full[[joint_set.index(n) for n in rows]] = regressor
  return full


# Human3.6M's 17 joints are MPI-INF-3DHP's 17 (its test joints were chosen to match them);
# Human3.6M's 'Neck/Nose' point ('nose' here) is MPI-INF-3DHP's 'head'.
_H36M_AS_MPI_INF_3DHP = {'nose': 'head'}


def h36m_regressor_as_mpi_inf_3dhp(regressor):
  """A (17, V) Human3.6M regressor (J_regressor_h36m_correct.npy) with its rows in
  MPI-INF-3DHP's joint order (MPI_INF_3DHP_17), as MPI-INF-3DHP runs take it."""
  regressor = np.asarray(regressor)
  if regressor.ndim != 2 or regressor.shape[0] != H36M_17.num_joints:
    raise ValueError(f'a Human3.6M regressor has 17 rows; this one has shape {regressor.shape}')
  names = [_H36M_AS_MPI_INF_3DHP.get(n, n) for n in H36M_17.names]
  return regressor[[names.index(n) for n in MPI_INF_3DHP_17.names]]


# (id(mapping), subset ids) -> (mapping, its restriction): one restricted mapping object per
# mapping and subset, so that the jitted steps and fits it is static for compile once.
_RESTRICTED = {}


def restrict_to_mapping(model, mapping):
  """(model, mapping) on only the vertices the mapping reads (`body_models.restrict`):
  the same mapped joints for a fraction of the skinning. Call outside `jit`."""
  sub, ids = body_models.restrict(model, mapping.vertex_support())
  key = (id(mapping), ids.tobytes())
  if key not in _RESTRICTED:
    # The entry holds the mapping itself, so its id is not reused while cached.
    _RESTRICTED[key] = (mapping, mapping.on_vertices(ids))
  return sub, _RESTRICTED[key][1]


def model_joint_mapping(family, joint_set, *, num_landmarks=0, regressor=None, side=None):
  """How to read `joint_set` off a body model's `Output`.

  Each target joint comes, in this order of preference, from its row of `regressor`
  (rows that are all zero are skipped), from the model's point of the same name (a joint,
  an extra vertex joint, a landmark, or for MANO a fingertip vertex), or is unavailable.
  H36M_17 / MPI_INF_3DHP_17 without a regressor thus use the model's pelvis, hips, knees,
  ankles, shoulders, elbows, wrists, neck, nose and head, and mark 'torso' and 'head_top'
  invalid: right for the synthetic sets only; real datasets give the regressor
  `check_regressor` asks for (e.g. J_regressor_h36m_correct.npy).

  Args:
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    joint_set: JointSet or registry name (T joints).
    num_landmarks: the model's face landmark count (`model.num_landmarks`: 0, 51 or 68).
    regressor: (T, V) vertex regressor, as an array or a .npy path, or None; or one of
      some joints (`regressor_rows`: (2, V) for the COCO hips).
    side: 'left' or 'right': which hand of a SMPL / SMPL-X model gives a single-hand
      set (HAND_21, MANO_21). Ignored for other sets and for MANO.
  Returns:
    A `JointMapping`.
  Raises:
    ValueError when the model provides none of the set's joints.
  """
  if family not in skeletons.FAMILIES:
    raise ValueError(f'unknown family {family!r}; expected one of {skeletons.FAMILIES}')
  jset = _as_set(joint_set)
  names = jset.names
  if jset.name in SINGLE_HAND_SETS and family != 'mano':
    names = _qualified_names(jset, side)
  rows = (np.zeros((jset.num_joints, 0), np.float32) if regressor is None
          else load_regressor(regressor, jset, family))
  points = _model_points(family, num_landmarks)
  sources, used_rows = [], []
  for t, name in enumerate(names):
    if rows[t].any():
      sources.append(('regressor', len(used_rows)))
      used_rows.append(rows[t])
    else:
      sources.append(points.get(name))
  if all(s is None for s in sources):
    raise ValueError(f'a {family} model provides none of the joints of {jset.name}')
  return JointMapping(
      joint_set=jset.name, family=family, sources=tuple(sources),
      regressor=np.stack(used_rows) if used_rows else None,
      num_model_joints=len(skeletons.output_joint_names(family, num_landmarks)))


# ---- which joints need a regressor --------------------------------------------------------

# family -> (file, what it is and where it is published).
_H36M_FILES = {
    'smpl': ('J_regressor_h36m_correct.npy', "17 x 6890, I2L-MeshNet's data/Human36M"),
    'smplx': ('J_regressor_h36m_smplx.npy', "17 x 10475, Hand4Whole's data/Human36M")}
_MPI_COMMAND = ('python -m neuralannot_jax.data.joint_sets {file} '
                'J_regressor_mpi_inf_3dhp_{family}.npy')
_COCO_HIP_FILES = {
    'smpl': ('J_regressor_coco_hip_smpl.npy', "17 x 6890, COCO's 17, I2L-MeshNet's data/MSCOCO"),
    'smplx': ('J_regressor_coco_hip_smplx.npy', '2 x 10475: left hip, right hip')}


@dataclasses.dataclass(frozen=True)
class RegressorRule:
  """Joints of a dataset that a body model names but places elsewhere.

  Attributes:
    joints: the joints that must come from a vertex regressor on a real dataset (those the
      model has a point of the same name for; the others are not name-matched anyway).
    why: what differs, for the error message.
    files: family -> (file name, what it is): the regressor the authors use.
    convert: how to make the file from the authors' (a command with {file}, {family}), or ''.
  """
  joints: tuple
  why: str
  files: dict
  convert: str = ''


# Human3.6M's joints are marker-based and MPI-INF-3DHP's its capture skeleton's, chosen to
# match them: their pelvis, hips and neck are not SMPL's. COCO's annotated hips sit lower and
# wider than the models' hip joints; its other keypoints by name (eyes, ears, nose: vertices;
# limbs: joints) are the authors' approximation too.
REGRESSOR_RULES = {
    'H36M_17': RegressorRule(H36M_17.names, "Human3.6M's joints are marker-based",
                             _H36M_FILES),
    'MPI_INF_3DHP_17': RegressorRule(
        MPI_INF_3DHP_17.names, "MPI-INF-3DHP's joints are Human3.6M's, not the model's",
        _H36M_FILES, convert=_MPI_COMMAND),
    'COCO_17': RegressorRule(COCO_HIPS, "COCO's hips are not the model's hip joints",
                             _COCO_HIP_FILES),
    'COCO_WHOLEBODY_133': RegressorRule(COCO_HIPS, "COCO's hips are not the model's hip joints",
                                        _COCO_HIP_FILES),
}


def required_regressor_joints(family, joint_set):
  """The joints of `joint_set` that a `family` model must read through a vertex regressor on
  a real dataset (empty when matching by name is right: the model's own joints, or none of
  the joints of `REGRESSOR_RULES` has a namesake on the model)."""
  rule = REGRESSOR_RULES.get(_as_set(joint_set).name)
  if rule is None or family not in skeletons.FAMILIES:
    return ()
  points = _model_points(family, 0)
  return tuple(n for n in rule.joints if n in points)


def _file_to_give(jset, family, field):
  """How to give the regressor a rule asks for: the flag, the file and where it comes from."""
  rule = REGRESSOR_RULES[jset.name]
  name, what = rule.files.get(family, ('a vertex regressor of these joints', ''))
  source = f'~/models/{name}' + (f' ({what})' if what else '')
  if rule.convert:
    out = f'J_regressor_mpi_inf_3dhp_{family}.npy'
    text = (f'{source} in {jset.name} order: run '
            f'`{rule.convert.format(file=f"~/models/{name}", family=family)}`, then '
            f'--config.{field}={out}')
  else:
    text = f'--config.{field}={source}'
  if jset.name == 'COCO_WHOLEBODY_133':
    text += f' (in a whole-body config: --config.parts.body.{field}=...)'
  return text


def check_regressor(family, joint_set, regressor, field='model.regressor'):
  """Raise ValueError, naming `field` and the file to give, unless `regressor` (a .npy path,
  an array, or None / '' for none) gives every `required_regressor_joints` of the set.

  For real datasets only: the synthetic sets' joints are the model's own.
  """
  jset = _as_set(joint_set)
  joints = required_regressor_joints(family, jset)
  if not joints:
    return
  why = (f'{REGRESSOR_RULES[jset.name].why}: matching {", ".join(joints[:4])}'
         f'{", ..." if len(joints) > 4 else ""} to the {family} model\'s points of the same '
         f'names fits the wrong points. Give the vertex regressor the authors use, '
         f'{_file_to_give(jset, family, field)}')
  is_path = isinstance(regressor, (str, os.PathLike))
  if regressor is None or (is_path and not str(regressor)):
    raise ValueError(f'{field} is empty on {jset.name}. {why}')
  label = f'{field} {str(regressor)!r}' if is_path else field
  if is_path and not os.path.isfile(regressor):
    raise ValueError(f'{label}: no such file. {why}')
  try:
    rows = load_regressor(regressor, jset, family)
  except ValueError as e:
    raise ValueError(f'{field}: {e}') from None
  missing = [n for n in joints if not rows[jset.index(n)].any()]
  if missing:
    raise ValueError(f'{label} has all-zero rows for {missing}. {why}')


def _main(argv=None):
  """`python -m neuralannot_jax.data.joint_sets H36M.npy OUT.npy`: a Human3.6M regressor
  rewritten in MPI-INF-3DHP's joint order (`h36m_regressor_as_mpi_inf_3dhp`)."""
  import argparse  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=_main.__doc__)
  parser.add_argument('h36m_regressor', help='(17, V) .npy, e.g. J_regressor_h36m_correct.npy')
  parser.add_argument('out', help='the (17, V) .npy to write, in MPI_INF_3DHP_17 order')
  args = parser.parse_args(argv)
  np.save(args.out, h36m_regressor_as_mpi_inf_3dhp(np.load(args.h36m_regressor)))
  print(f'wrote {args.out}: the rows of {args.h36m_regressor} in MPI-INF-3DHP order')


if __name__ == '__main__':
  _main()
