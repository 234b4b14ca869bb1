"""`BodyModel`: one SMPL-family model as a JAX pytree, and its forward pass.

A `BodyModel` holds arrays (leaves: they can be passed through `jit`, `vmap`,
`grad` and sharded) and static metadata (family, kinematic tree), so

    out = jax.jit(body_models.forward)(model, body_pose=pose, betas=betas)

traces the model's arrays as inputs and never recompiles for a new model of the
same family and sizes.
"""

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from body_models import lbs
from body_models import rotations
from body_models import skeletons

Array = Any


@dataclasses.dataclass(frozen=True)
class Output:
  """What `forward` returns; `...` is the batch shape of the parameters.

  vertices: (..., V, 3) posed mesh, metres.
  joints: (..., K, 3) the kinematic joints, then the extra vertex joints, then the
    face landmarks (static 51, then contour 17 if enabled): the smplx library's order,
    named by `model.joint_names`.
  full_pose: (..., J, 3) axis-angle of every kinematic joint (hand means and PCA applied).
  global_rotations: (..., J, 3, 3) rotation of each joint in the world frame.
  global_translations: (..., J, 3) position of each kinematic joint (= joints[..., :J, :]).
  """
  vertices: Array
  joints: Array
  full_pose: Array
  global_rotations: Array
  global_translations: Array


jax.tree_util.register_dataclass(
    Output, data_fields=[f.name for f in dataclasses.fields(Output)], meta_fields=[])


@dataclasses.dataclass(frozen=True)
class BodyModel:
  """Arrays of one model (float dtype is the model's dtype) and static metadata.

  Array fields (pytree leaves):
    v_template (V, 3); shapedirs (V, 3, S); exprdirs (V, 3, E) (E = 0 without
    expressions); posedirs (V, 3, 9*(J-1)); J_regressor (J, V); weights (V, J);
    joint_template (J, 3) = J_regressor @ v_template and joint_shapedirs (J, 3, S),
    joint_exprdirs (J, 3, E): the regressor applied ahead of time (it is linear);
    pose_mean (J, 3) added to the full pose (hand means unless flat_hand_mean);
    hand_components {pose name: (C, 45)} when hands take PCA coefficients, else {};
    faces (F, 3) int32; extra_vertex_ids (X,) int32; landmark_vertex_ids (L, 3) int32
    and landmark_bary (L, 3); contour_vertex_ids (79, 17, 3) and contour_bary
    (79, 17, 3), or None.
  Static fields: family, gender, parents, levels (the tree grouped by depth),
    neck_chain (joints whose rotations give the neck's, for the contour).
  """
  v_template: Array
  shapedirs: Array
  exprdirs: Array
  posedirs: Array
  J_regressor: Array
  weights: Array
  joint_template: Array
  joint_shapedirs: Array
  joint_exprdirs: Array
  pose_mean: Array
  hand_components: dict
  faces: Array
  extra_vertex_ids: Array
  landmark_vertex_ids: Array
  landmark_bary: Array
  contour_vertex_ids: Optional[Array]
  contour_bary: Optional[Array]
  family: str = dataclasses.field(metadata=dict(static=True))
  gender: Optional[str] = dataclasses.field(metadata=dict(static=True))
  parents: tuple = dataclasses.field(metadata=dict(static=True))
  levels: tuple = dataclasses.field(metadata=dict(static=True))
  neck_chain: tuple = dataclasses.field(metadata=dict(static=True))

  # ---- sizes (static: read off array shapes) ----
  @property
  def num_vertices(self):
    return self.v_template.shape[0]

  @property
  def num_joints(self):
    return len(self.parents)

  @property
  def num_betas(self):
    return self.shapedirs.shape[-1]

  @property
  def num_expression(self):
    return self.exprdirs.shape[-1]

  @property
  def dtype(self):
    return self.v_template.dtype

  @property
  def use_pca(self):
    return bool(self.hand_components)

  @property
  def num_landmarks(self):
    n = self.landmark_vertex_ids.shape[0]
    return n + (0 if self.contour_vertex_ids is None else self.contour_vertex_ids.shape[1])

  @property
  def joint_names(self):
    return skeletons.output_joint_names(self.family, self.num_landmarks)

  def param_shapes(self):
    """{name: trailing shape} of every parameter `forward` accepts."""
    shapes = {}
    for name, n in skeletons.POSE_PARTS[self.family]:
      comps = self.hand_components.get(name)
      shapes[name] = (comps.shape[0],) if comps is not None else (3 * n,)
    shapes['betas'] = (self.num_betas,)
    if skeletons.HAS_EXPRESSION[self.family]:
      shapes['expression'] = (self.num_expression,)
    shapes['transl'] = (3,)
    return shapes

  def zero_params(self, batch_shape=()):
    """Parameters of the rest pose (mean hands unless flat), mean shape, at the origin."""
    return {k: jnp.zeros(tuple(batch_shape) + s, self.dtype)
            for k, s in self.param_shapes().items()}

  def __call__(self, *, return_verts=True, return_full_pose=False, pose2rot=True, **params):
    """`forward(self, **params)`.

    return_verts, return_full_pose and pose2rot are the smplx library's flags, taken so
    that its calls run unchanged: vertices and full_pose always come back, and poses are
    axis-angle (for rotation matrices use `forward_rotmats`).
    """
    del return_verts, return_full_pose  # both are always computed
    if not pose2rot:
      raise ValueError('pose2rot=False (poses as rotation matrices) is not supported by '
                       'calling the model; use body_models.forward_rotmats')
    return forward(self, **params)

  def __repr__(self):
    return (f'BodyModel({self.family}, gender={self.gender}, V={self.num_vertices}, '
            f'J={self.num_joints}, betas={self.num_betas}, expression={self.num_expression}, '
            f'pca={self.use_pca}, landmarks={self.num_landmarks}, dtype={self.dtype})')


jax.tree_util.register_dataclass(BodyModel)


def restrict(model, vertex_ids):
  """The model on a subset of its vertices: same joints, same outputs at those vertices.

  Skinning costs in proportion to the vertices; a fit or a loss that reads a few joints
  through a vertex regressor needs only the regressor's support (about 1400 of SMPL's
  6890 for a Human3.6M regressor) and the vertices the output joints are made of.

  Args:
    model: a `BodyModel` (concrete arrays: call it outside `jit`).
    vertex_ids: the vertices wanted, any order, repeats allowed.
  Returns:
    (restricted `BodyModel`, ids (V',) int32): ids are the sorted original indices of
    its vertices: `vertex_ids` plus the extra-vertex, landmark and contour vertices, so
    that its `Output.joints` equal the full model's and its `Output.vertices` are the full
    model's `vertices[..., ids, :]`. It has no faces (it is not a mesh to render).
  """
  surface = [np.asarray(model.extra_vertex_ids).ravel(),
             np.asarray(model.landmark_vertex_ids).ravel()]
  if model.contour_vertex_ids is not None:
    surface.append(np.asarray(model.contour_vertex_ids).ravel())
  ids = np.unique(np.concatenate([np.asarray(vertex_ids, np.int64).ravel()] + surface))
  if ids.size and (ids[0] < 0 or ids[-1] >= model.num_vertices):
    raise ValueError(f'restrict: vertex ids must lie in [0, {model.num_vertices})')
  ids = ids.astype(np.int32)
  local = lambda x: jnp.asarray(np.searchsorted(ids, np.asarray(x)).astype(np.int32))
  take = lambda x: jnp.asarray(x)[ids]
  sub = dataclasses.replace(
      model, v_template=take(model.v_template), shapedirs=take(model.shapedirs),
      exprdirs=take(model.exprdirs), posedirs=take(model.posedirs),
      J_regressor=jnp.asarray(model.J_regressor)[:, ids], weights=take(model.weights),
      faces=jnp.zeros((0, 3), jnp.int32), extra_vertex_ids=local(model.extra_vertex_ids),
      landmark_vertex_ids=local(model.landmark_vertex_ids),
      contour_vertex_ids=(None if model.contour_vertex_ids is None
                          else local(model.contour_vertex_ids)))
  return sub, ids


def _batch_shape(model, params):
  """Broadcast leading shape of the given parameters (everything but the trailing dims)."""
  expected = model.param_shapes()
  shapes = []
  for name, value in params.items():
    if value is None:
      continue
    if name not in expected:
      raise TypeError(f'{model.family} takes no parameter {name!r}; '
                      f'it takes {sorted(expected)}')
    value = jnp.asarray(value)
    want = expected[name]
    if name in ('betas', 'expression'):
      if value.ndim < 1 or value.shape[-1] > want[0]:
        raise ValueError(f'{name} has shape {value.shape}; the model has {want[0]} '
                         f'{name} components (load it with more to use more)')
      shapes.append(value.shape[:-1])
    elif value.shape[-1:] == want:
      shapes.append(value.shape[:-1])
    elif (name not in model.hand_components and want[0] > 3 and
          value.shape[-2:] == (want[0] // 3, 3)):
      shapes.append(value.shape[:-2])
    else:
      raise ValueError(f'{name} has shape {value.shape}; expected (..., {want[0]})')
  return jnp.broadcast_shapes(*shapes) if shapes else ()


def full_pose(model, params, batch_shape):
  """Assemble the (N, J, 3) axis-angle pose from named parts (PCA and means applied)."""
  n = int(np.prod(batch_shape, dtype=np.int64))
  parts = []
  for name, joints in skeletons.POSE_PARTS[model.family]:
    value = params.get(name)
    if value is None:
      parts.append(jnp.zeros((n, joints, 3), model.dtype))
      continue
    value = jnp.asarray(value, model.dtype)
    if name in model.hand_components:
      value = value @ model.hand_components[name]
    elif value.shape[-1] != 3 * joints:            # given as (..., joints, 3)
      value = value.reshape(value.shape[:-2] + (3 * joints,))
    value = jnp.broadcast_to(value, tuple(batch_shape) + (3 * joints,))
    parts.append(value.reshape(n, joints, 3))
  return jnp.concatenate(parts, axis=1) + model.pose_mean


def _coefficients(model, value, size, batch_shape):
  """(..., <=size) coefficients -> (N, size), zero padded."""
  n = int(np.prod(batch_shape, dtype=np.int64))
  if value is None:
    return jnp.zeros((n, size), model.dtype)
  value = jnp.asarray(value, model.dtype)
  value = jnp.pad(value, [(0, 0)] * (value.ndim - 1) + [(0, size - value.shape[-1])])
  return jnp.broadcast_to(value, batch_shape + (size,)).reshape(n, size)


def neck_yaw_index(model, rotmats):
  """(N, J, 3, 3) -> (N,) row of the contour table for the neck's rotation about y.

  The contour landmarks depend on which side of the face is visible. As in the smplx
  library: the neck's global rotation, its y Euler angle in whole degrees, clamped to
  [-39, 39], maps to rows 0..39 (turned one way) and 40..78 (the other).
  """
  rel = jnp.broadcast_to(jnp.eye(3, dtype=rotmats.dtype), rotmats.shape[:1] + (3, 3))
  for j in model.neck_chain:
    rel = rotmats[:, j] @ rel
  sy = jnp.sqrt(rel[:, 0, 0] ** 2 + rel[:, 1, 0] ** 2)
  yaw = jnp.arctan2(-rel[:, 2, 0], sy)
  deg = jnp.round(jnp.minimum(-yaw * 180.0 / jnp.pi, 39.0)).astype(jnp.int32)
  return jnp.where(deg < 0, jnp.where(deg < -39, 78, 39 - deg), deg)


def forward(model, *, global_orient=None, body_pose=None, jaw_pose=None, leye_pose=None,
            reye_pose=None, left_hand_pose=None, right_hand_pose=None, hand_pose=None,
            neck_pose=None, betas=None, expression=None, transl=None):
  """Pose and shape the model.

  Every parameter is optional (zero when absent) and may carry any leading batch
  shape `...`; shapes broadcast. Pose parts are axis-angle, flat (..., 3*n) as in the
  smplx library, or (..., n, 3); hand poses are (..., C) PCA coefficients when the
  model was loaded with `use_pca=True`. betas (..., <=S) and expression (..., <=E) are
  zero padded. Parameters are cast to the model's dtype.

  Returns:
    `Output` with vertices (..., V, 3) and joints (..., K, 3), transl applied.
  """
  params = dict(global_orient=global_orient, body_pose=body_pose, jaw_pose=jaw_pose,
                leye_pose=leye_pose, reye_pose=reye_pose, left_hand_pose=left_hand_pose,
                right_hand_pose=right_hand_pose, hand_pose=hand_pose, neck_pose=neck_pose,
                betas=betas, expression=expression, transl=transl)
  params = {k: v for k, v in params.items() if v is not None}
  batch_shape = tuple(_batch_shape(model, params))
  pose = full_pose(model, params, batch_shape)
  rotmats = rotations.axis_angle_to_matrix(pose)
  return _skinned(model, rotmats, pose, params.get('betas'), params.get('expression'),
                  params.get('transl'), batch_shape)


def forward_rotmats(model, rotmats, betas=None, expression=None, transl=None):
  """Forward pass from rotation matrices, for callers that predict rotations directly.

  Args:
    rotmats: (..., J, 3, 3) local rotations of every kinematic joint (no pose mean
      is added here: these are the final rotations).
    betas: (..., <=S); expression: (..., <=E); transl: (..., 3); all optional.
  Returns:
    `Output`; its `full_pose` is the axis-angle of `rotmats`.
  """
  rotmats = jnp.asarray(rotmats, model.dtype)
  if rotmats.shape[-3:] != (model.num_joints, 3, 3):
    raise ValueError(f'rotmats has shape {rotmats.shape}; expected '
                     f'(..., {model.num_joints}, 3, 3) for {model.family}')
  params = dict(betas=betas, expression=expression, transl=transl)
  batch_shape = tuple(jnp.broadcast_shapes(rotmats.shape[:-3], _batch_shape(model, params)))
  n = int(np.prod(batch_shape, dtype=np.int64))
  rotmats = jnp.broadcast_to(rotmats, batch_shape + rotmats.shape[-3:]).reshape(
      (n,) + rotmats.shape[-3:])
  return _skinned(model, rotmats, None, betas, expression, transl, batch_shape)


def _skinned(model, rotmats, pose, betas, expression, transl, batch_shape):
  """The forward pass on a flat batch: rotmats (N, J, 3, 3), pose (N, J, 3) or None."""
  n = rotmats.shape[0]
  v = model.num_vertices
  coeffs = _coefficients(model, betas, model.num_betas, batch_shape)
  dirs = model.shapedirs.reshape(v * 3, -1)
  jdirs = model.joint_shapedirs.reshape(-1, model.num_betas)
  if model.num_expression:
    coeffs = jnp.concatenate(
        [coeffs, _coefficients(model, expression, model.num_expression, batch_shape)], 1)
    dirs = jnp.concatenate([dirs, model.exprdirs.reshape(v * 3, -1)], 1)
    jdirs = jnp.concatenate([jdirs, model.joint_exprdirs.reshape(jdirs.shape[0], -1)], 1)

  v_shaped = model.v_template + lbs.blend(coeffs, dirs).reshape(n, v, 3)
  rest_joints = model.joint_template + lbs.blend(coeffs, jdirs).reshape(n, -1, 3)
  features = lbs.pose_features(rotmats)
  v_posed = v_shaped + lbs.blend(features, model.posedirs.reshape(v * 3, -1)).reshape(n, v, 3)

  world_rot, world_pos = lbs.rigid_transforms(rotmats, rest_joints, model.parents, model.levels)
  offset = None if transl is None else _coefficients(model, transl, 3, batch_shape)
  if offset is None:
    weights = model.weights
    transforms = lbs.skinning_transforms(world_rot, world_pos, rest_joints)
  else:  # translated inside the skinning product: see lbs.translation_joint
    world_pos = world_pos + offset[:, None]
    weights, transforms = lbs.translation_joint(
        model.weights, lbs.skinning_transforms(world_rot, world_pos, rest_joints), offset)
  vertices = lbs.skin(v_posed, weights, transforms)

  def surface_points(vertex_ids, bary):
    points = lbs.barycentric_points(vertices, vertex_ids, bary)
    if offset is None:
      return points
    # The vertices carry the offset: coordinates that do not sum to 1 would scale it.
    return points + (1 - jnp.sum(bary, -1))[..., None] * offset[:, None]

  joints = [world_pos, vertices[:, model.extra_vertex_ids],
            surface_points(model.landmark_vertex_ids, model.landmark_bary)]
  if model.contour_vertex_ids is not None:
    row = neck_yaw_index(model, rotmats)
    joints.append(surface_points(model.contour_vertex_ids[row], model.contour_bary[row]))
  joints = jnp.concatenate(joints, axis=1)

  unflat = lambda x: x.reshape(tuple(batch_shape) + x.shape[1:])
  return Output(
      vertices=unflat(vertices),
      joints=unflat(joints),
      full_pose=unflat(rotations.matrix_to_axis_angle(rotmats) if pose is None else pose),
      global_rotations=unflat(world_rot),
      global_translations=unflat(world_pos),
  )
