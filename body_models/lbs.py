"""Linear blend skinning as pure functions on a flat batch.

Every function here takes a flat batch dimension N first; `model.py` reshapes any
leading batch shape to N and back. Static structure (parents, tree levels) is plain
Python and never traced.
"""

import jax
import jax.numpy as jnp


def blend(coeffs, dirs):
  """Linear blend shapes.

  Args:
    coeffs: (N, S) coefficients (betas, expression).
    dirs: (X, S) directions flattened over their point axes, e.g. (V*3, S).
  Returns:
    (N, X) offsets.
  """
  return coeffs @ dirs.T


def pose_features(rotmats):
  """(N, J, 3, 3) -> (N, (J-1)*9): non-root rotations minus identity, flattened.

  The pose-corrective basis of SMPL-family models is linear in these features.
  """
  n, j = rotmats.shape[:2]
  eye = jnp.eye(3, dtype=rotmats.dtype)
  return (rotmats[:, 1:] - eye).reshape(n, (j - 1) * 9)


def tree_levels(parents):
  """Group joints by depth in the tree: tuple of tuples of joint indices.

  Joints of one level have all their parents in earlier levels, so a level is
  composed with its parents in one batched matrix product.
  """
  depth = []
  for j, p in enumerate(parents):
    if p >= j:
      raise ValueError(f'parents must be topologically sorted; joint {j} has parent {p}')
    depth.append(0 if p < 0 else depth[p] + 1)
  return tuple(tuple(j for j in range(len(parents)) if depth[j] == d)
               for d in range(max(depth) + 1))


def rigid_transforms(rotmats, joints, parents, levels=None):
  """Pose the kinematic tree.

  Args:
    rotmats: (N, J, 3, 3) local joint rotations (the root's is global).
    joints: (N, J, 3) rest-pose joint locations.
    parents: length-J sequence, -1 for the root; static.
    levels: `tree_levels(parents)`, static; computed if not given.
  Returns:
    world_rot: (N, J, 3, 3) global rotation of each joint.
    world_pos: (N, J, 3) posed joint locations.

  One batched product per tree level. Per-joint results are kept in Python lists and
  stacked once at the end: scatter updates (`.at[].set`) would need an explicit output
  sharding when the batch is sharded over a device mesh.
  """
  levels = levels or tree_levels(parents)
  parent_ids = [max(p, 0) for p in parents]
  is_child = jnp.asarray([p >= 0 for p in parents], joints.dtype)[:, None]
  rel = joints - joints[:, parent_ids] * is_child
  rot = [None] * len(parents)
  pos = [None] * len(parents)
  for j in levels[0]:
    rot[j], pos[j] = rotmats[:, j], rel[:, j]
  for level in levels[1:]:
    idx = list(level)
    parent_rot = jnp.stack([rot[parents[j]] for j in idx], axis=1)     # (N, L, 3, 3)
    parent_pos = jnp.stack([pos[parents[j]] for j in idx], axis=1)     # (N, L, 3)
    level_rot = parent_rot @ rotmats[:, idx]
    level_pos = jnp.einsum('nlab,nlb->nla', parent_rot, rel[:, idx]) + parent_pos
    for k, j in enumerate(idx):
      rot[j], pos[j] = level_rot[:, k], level_pos[:, k]
  return jnp.stack(rot, axis=1), jnp.stack(pos, axis=1)


def skinning_transforms(world_rot, world_pos, joints):
  """(N, J, 3, 4) transforms that move rest-pose points with each joint.

  A_j = [R_j | p_j - R_j J_j]: undo the rest location, rotate, move to the posed joint.
  """
  t = world_pos - jnp.einsum('njab,njb->nja', world_rot, joints)
  return jnp.concatenate([world_rot, t[..., None]], axis=-1)


def translation_joint(weights, transforms, offset):
  """Extend weights and transforms so that `skin` also adds `offset` to every point.

  Args:
    weights: (V, J) skinning weights.
    transforms: (N, J, 3, 4) from `skinning_transforms` of joints already moved by offset.
    offset: (N, 3) translation.
  Returns:
    (V, J + 1) weights and (N, J + 1, 3, 4) transforms.

  Moving every joint by o moves a skinned point by (sum_j w_vj) o. The extra joint, a pure
  translation [0 | o] with weight 1 - sum_j w_vj, makes that exactly o for any weights,
  normalised or not. Why translate inside the skinning product rather than add o to the
  posed points: the gradient for o is then part of the product's sum over vertices. As a
  separate (N, V, 3) add, XLA:CPU both reduced its gradient over all vertices and fused
  the add into the caller's loss reductions, at 8-13% of a SMPL-X forward+backward.
  """
  n = transforms.shape[0]
  shift = jnp.concatenate([jnp.zeros((n, 1, 3, 3), transforms.dtype),
                           offset[:, None, :, None].astype(transforms.dtype)], axis=-1)
  rest = 1 - jnp.sum(weights, axis=1, keepdims=True)
  return (jnp.concatenate([weights, rest], axis=1),
          jnp.concatenate([transforms, shift], axis=1))


@jax.custom_vjp
def skin(points, weights, transforms):
  """Blend per-joint transforms and apply them.

  Args:
    points: (N, V, 3) rest-pose (shaped and pose-corrected) vertices.
    weights: (V, J) skinning weights.
    transforms: (N, J, 3, 4) from `skinning_transforms`.
  Returns:
    (N, V, 3) posed vertices.

  Written out per coordinate with a hand-made gradient: XLA:CPU turns the usual
  einsum form of "blend 3x4 matrices, apply to each vertex" (and its autodiff) into
  batched 3x4 dot products that run an order of magnitude slower than these
  elementwise products and one plain matrix product.
  """
  return _skin_forward(points, weights, transforms)[0]


def _skin_forward(points, weights, transforms):
  n, j = transforms.shape[:2]
  per_joint = transforms.reshape(n, j, 12).transpose(0, 2, 1).reshape(n * 12, j)
  blended = (per_joint @ weights.T).reshape(n, 3, 4, -1)          # (N, row, col, V)
  p = points.transpose(0, 2, 1)                                   # (N, 3, V)
  out = (blended[:, :, 0] * p[:, None, 0] + blended[:, :, 1] * p[:, None, 1] +
         blended[:, :, 2] * p[:, None, 2] + blended[:, :, 3])    # (N, 3, V)
  return out.transpose(0, 2, 1), blended


def _skin_fwd(points, weights, transforms):
  out, blended = _skin_forward(points, weights, transforms)
  return out, (points, weights, transforms, blended)


def _skin_bwd(res, d_out):
  points, weights, transforms, blended = res
  n, j = transforms.shape[:2]
  p = points.transpose(0, 2, 1)                                   # (N, 3, V)
  d = d_out.transpose(0, 2, 1)                                    # (N, 3, V)
  # out[a] = sum_b blended[a, b] p[b] + blended[a, 3]
  d_points = (blended[:, 0, :3] * d[:, 0:1] + blended[:, 1, :3] * d[:, 1:2] +
              blended[:, 2, :3] * d[:, 2:3]).transpose(0, 2, 1)
  d_blended = jnp.stack([d * p[:, None, 0], d * p[:, None, 1], d * p[:, None, 2], d],
                        axis=2).reshape(n * 12, -1)               # (N*12, V)
  d_transforms = (d_blended @ weights).reshape(n, 12, j).transpose(0, 2, 1)
  per_joint = transforms.reshape(n, j, 12).transpose(0, 2, 1).reshape(n * 12, j)
  # A sum over the batch: under explicit sharding the result takes the weights' sharding.
  d_weights = jnp.matmul(d_blended.T, per_joint, out_sharding=jax.typeof(weights).sharding)
  return d_points, d_weights, d_transforms.reshape(transforms.shape)


skin.defvjp(_skin_fwd, _skin_bwd)


def barycentric_points(vertices, vertex_ids, bary):
  """Points on faces from barycentric coordinates.

  Args:
    vertices: (N, V, 3).
    vertex_ids: (L, 3) shared, or (N, L, 3) per sample: the corners of each face.
    bary: (L, 3) or (N, L, 3) barycentric coordinates.
  Returns:
    (N, L, 3).
  """
  if vertex_ids.ndim == 2:
    corners = vertices[:, vertex_ids]                                # (N, L, 3, 3)
  else:
    corners = jax.vmap(lambda v, i: v[i])(vertices, vertex_ids)      # (N, L, 3, 3)
  bary = jnp.broadcast_to(bary, corners.shape[:-1])
  return jnp.einsum('nlkc,nlk->nlc', corners, bary)
