"""Assemble a complete stand-in model as the official files' arrays.

`make_model_arrays(family)` returns a dict in the official key names:
  v_template (V, 3), f (F, 3) uint32, J (J, 3), J_regressor (J, V) dense,
  kintree_table (2, J) int64 (root parent 4294967295), weights (V, J),
  posedirs (V, 3, 9 (J - 1)), shapedirs (V, 3, S), bs_style, bs_type, and
  SMPL-X: hands_components{l,r} (45, 45), hands_mean{l,r} (45,), lmk_faces_idx (51,),
    lmk_bary_coords (51, 3), dynamic_lmk_faces_idx (79, 17),
    dynamic_lmk_bary_coords (79, 17, 3);
  MANO: hands_components (45, 45), hands_mean (45,);
  FLAME: the landmark arrays above under the same names (the writer moves them
    into FLAME's two embedding files).
"""

import numpy as np

from body_models import skeletons
from body_models.synthetic import anatomy, landmarks, rig, shapes

ROOT_PARENT = 4294967295   # how the official pickles store the root's parent (uint32 -1)

# Designed numbers of shape (and expression) coefficients.
NUM_SHAPE = {'smpl': 10, 'smplx': 10, 'mano': 10, 'flame': 10}
NUM_EXPRESSION = {'smplx': 10, 'flame': 10}
FULL_SHAPE = {'smpl': 300, 'smplx': 300, 'mano': 10, 'flame': 300}
FULL_EXPRESSION = {'smplx': 100, 'flame': 100}


def geometry(family, gender='neutral'):
  """The anatomy of a family (see `anatomy.build_*`)."""
  if family in ('smpl', 'smplx'):
    return anatomy.build_body(family, gender)
  if family == 'mano':
    return anatomy.build_mano()
  if family == 'flame':
    return anatomy.build_flame(gender)
  raise ValueError(f'unknown family {family!r}; expected one of {skeletons.FAMILIES}')


def template(parts, head):
  """Per-vertex attributes of the assembled parts (before any reordering)."""
  verts, faces, part_of, starts = rig.assemble(parts)

  def gather(key, default):
    return np.concatenate([p.get(key, np.broadcast_to(default, (len(p['verts']),) +
                                                      np.shape(default)))
                           for p in parts], 0)

  direction = []
  for p in parts:
    # Overall direction of the part's centre line (start pole to end pole).
    d = p['verts'][-1] - p['verts'][0]
    direction.append(np.broadcast_to(d / np.linalg.norm(d), (len(p['verts']), 3)))
  return dict(
      verts=verts, faces=faces, part_of=part_of, starts=starts,
      kind=np.repeat([p['kind'] for p in parts], np.diff(starts)),
      name=np.repeat([p['name'] for p in parts], np.diff(starts)),
      girth=np.repeat([p['girth'] for p in parts], np.diff(starts)).astype(np.float64),
      axis=gather('axis', np.zeros(3)), along=gather('along', 0.0),
      head_dir=gather('head_dir', np.zeros(3)), direction=np.concatenate(direction, 0),
      head_centre=np.zeros(3) if head is None else head[0])


def extra_vertex_targets(family, geo):
  """[(vertex index the smplx library samples, anatomical spot (3,))]."""
  if family == 'mano':
    names = ('thumb', 'index', 'middle', 'ring', 'pinky')
    return [(i, geo['targets'][f'{n}_tip']) for i, n in zip(skeletons.MANO_TIP_VERTICES, names)]
  ids = skeletons.EXTRA_JOINT_VERTICES[family]
  return [(i, geo['targets'][n]) for i, n in zip(ids, skeletons.EXTRA_JOINTS)]


def extra_vertex_order(verts, targets):
  """A vertex permutation that puts the vertex nearest each spot at its index.

  Args:
    verts: (V, 3); targets: [(index, (3,) spot)].
  Returns:
    order (V,): new vertex i is old vertex order[i]. Untouched vertices keep
    their relative order.
  """
  order = np.full(len(verts), -1)
  used = np.zeros(len(verts), bool)
  for index, spot in targets:
    d = np.linalg.norm(verts - spot, axis=1)
    d[used] = np.inf          # two spots never share a vertex
    src = int(np.argmin(d))
    order[index] = src
    used[src] = True
  order[order < 0] = np.flatnonzero(~used)
  return order


def make_model_arrays(family, seed=0, *, gender='neutral', full_dims=False,
                      dtype=np.float64):
  """A stand-in model as a dict of arrays in the official key names (see module doc).

  Args:
    family: 'smpl', 'smplx', 'mano' (a right hand; see `mirror_mano` for the left)
      or 'flame'.
    seed: drives the random parts (pose correctives, shape / expression directions
      past the ten designed ones, hand PCA components past the designed ones).
      The geometry, weights and regressor do not depend on it.
    gender: 'neutral', 'male' or 'female' (slightly different proportions; ignored
      for MANO).
    full_dims: SMPL 300 shape dims; SMPL-X and FLAME 300 shape + 100 expression
      (the v1.1 / FLAME 2020 layout). Otherwise 10 (+ 10).
    dtype: of the float arrays.
  """
  if gender not in ('neutral', 'male', 'female'):
    raise ValueError(f'gender must be neutral, male or female, not {gender!r}')
  rng = np.random.default_rng([seed, skeletons.FAMILIES.index(family)])
  geo = geometry(family, gender)
  names = skeletons.KINEMATIC_JOINTS[family]
  parents = skeletons.PARENTS[family]
  index = {n: i for i, n in enumerate(names)}
  joints = np.stack([geo['joints'][n] for n in names])
  t = template(geo['parts'], geo['head'])
  v = t['verts']

  extra = {index[k]: e for k, e in geo['segments'].items()}
  weights = rig.skinning_weights(geo['parts'], t['starts'], len(v), index, joints,
                                 parents, extra)
  regressor = rig.joint_regressor(v, weights, joints, parents)
  posedirs = rig.pose_correctives(v, joints, parents, rng)

  num_shape = (FULL_SHAPE if full_dims else NUM_SHAPE)[family]
  if family in ('smpl', 'smplx'):
    shapedirs = shapes.body_shape(t, geo['joints'], num_shape, rng)
  elif family == 'mano':
    shapedirs = shapes.mano_shape(t, geo['joints'], num_shape, rng)
  else:
    shapedirs = shapes.flame_shape(t, geo['joints'], num_shape, rng)
  if family in NUM_EXPRESSION:
    num_expr = (FULL_EXPRESSION if full_dims else NUM_EXPRESSION)[family]
    expr = shapes.expression(t, geo['joints'], 'jaw', num_expr, rng)
    shapedirs = np.concatenate([shapedirs, expr], 2)

  out = {}
  if family in ('smplx', 'flame'):
    head_faces = t['kind'][t['faces'][:, 0]] == 'head'
    out.update(landmarks.embed(v, t['faces'], head_faces, *geo['head']))
  if family in ('smplx', 'mano'):
    components, mean = shapes.hand_pca(rng)
    if family == 'mano':
      out.update(hands_components=components, hands_mean=mean)
    else:
      out.update(hands_componentsl=shapes.mirror_hand_pose(components),
                 hands_componentsr=components,
                 hands_meanl=shapes.mirror_hand_pose(mean), hands_meanr=mean)

  # Put the right vertices at the indices the smplx library samples as extra joints.
  order = np.arange(len(v))
  targets = extra_vertex_targets(family, geo)
  if targets:
    order = extra_vertex_order(v, targets)
  new_index = np.empty_like(order)
  new_index[order] = np.arange(len(order))

  kintree = np.stack([np.array([ROOT_PARENT if p < 0 else p for p in parents], np.int64),
                      np.arange(len(parents), dtype=np.int64)])
  arrays = dict(
      v_template=v[order], f=new_index[t['faces']].astype(np.uint32), J=joints,
      J_regressor=regressor[:, order], kintree_table=kintree, weights=weights[order],
      posedirs=posedirs[order], shapedirs=shapedirs[order], bs_style='lbs',
      bs_type='lrotmin')
  arrays.update(out)
  return {k: (a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == 'f' else a)
          for k, a in arrays.items()}


def mirror_mano(right):
  """MANO_LEFT arrays from MANO_RIGHT ones: the mirror image through x = 0.

  Vertices, joints and offsets get x negated and triangles are re-wound. A pose
  of the left hand is the right's with the y and z axis-angle components negated,
  so the PCA basis and mean are mirrored that way, and each pose-corrective
  feature (R - I)[i, j] picks up the sign m_i m_j (m = (-1, 1, 1)).
  """
  m = np.array([-1.0, 1.0, 1.0])
  left = dict(right)
  left['v_template'] = right['v_template'] * m
  left['J'] = right['J'] * m
  left['f'] = right['f'][:, ::-1].copy()
  left['shapedirs'] = right['shapedirs'] * m[None, :, None]
  feature_sign = np.tile(np.outer(m, m).reshape(9), right['posedirs'].shape[2] // 9)
  left['posedirs'] = right['posedirs'] * m[None, :, None] * feature_sign[None, None]
  left['hands_components'] = shapes.mirror_hand_pose(right['hands_components'])
  left['hands_mean'] = shapes.mirror_hand_pose(right['hands_mean'])
  return {k: (a.astype(right[k].dtype) if isinstance(a, np.ndarray) else a)
          for k, a in left.items()}


def official_mano_left(right):
  """MANO_LEFT arrays as the official file ships them: `mirror_mano`, but with the
  right hand's shapedirs unchanged.

  The official MANO_LEFT.pkl has this sign error in the x rows of its shape directions
  (smplx issue 48); loaders undo it (`io.read_model_file`). The stand-in carries it too,
  so that the undoing is exercised and tested.
  """
  left = mirror_mano(right)
  left['shapedirs'] = right['shapedirs'].copy()
  return left
