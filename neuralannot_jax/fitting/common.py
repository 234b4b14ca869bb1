"""Helpers shared by the 3D and 2D fitters: one sample's mapped joints, rigid alignment.

Every function here works on ONE sample (no batch axis); the fitters `vmap` them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from body_models import lbs
from body_models import model as model_lib
from body_models import rotations
from body_models import skeletons

# Joints whose rest-pose positions give the initial rigid alignment (the paper's
# supplementary: hips and shoulders for bodies, wrist and four finger roots for hands).
BODY_ALIGN_JOINTS = ('left_hip', 'right_hip', 'left_shoulder', 'right_shoulder')
HAND_ALIGN_JOINTS = ('wrist', 'index1', 'middle1', 'ring1', 'pinky1')


def pose_part_names(model):
  """Names of the pose parameters of `model`'s family, global_orient first."""
  return tuple(name for name, _ in skeletons.POSE_PARTS[model.family])


def joint_plan(model, mapping):
  """What `mapped_joints` must compute: the vertex ids that, with the kinematic joints,
  give every mapped joint (a tuple, maybe empty), or None when some joint needs more (a
  regressor, a face landmark: then the full forward pass runs). The cheap path has no
  expression blend shapes: `mapped_joints` falls back to the full pass when given an
  expression.

  Call it outside `jit` (it reads `model.extra_vertex_ids`) and pass the result on.
  """
  if mapping.regressor is not None:
    return None
  if isinstance(model.extra_vertex_ids, jax.core.Tracer):
    return None
  j, x = model.num_joints, int(model.extra_vertex_ids.shape[0])
  ids = []
  for s in mapping.sources:
    if s is None or (s[0] == 'joint' and s[1] < j):
      continue
    if s[0] == 'joint' and s[1] < j + x:
      ids.append(int(np.asarray(model.extra_vertex_ids)[s[1] - j]))
    elif s[0] == 'vertex':
      ids.append(int(s[1]))
    else:
      return None
  return tuple(ids)


def mapped_joints(model, mapping, params, plan='auto'):
  """The joint set's joints of one sample.

  Only what the joint set reads is computed: the kinematic chain, plus the few mesh
  vertices the set takes (SMPL's nose, ears, toes; MANO's fingertips), skinned alone.
  That is exact and, for a 17- or 24-joint set, ~50x cheaper than skinning the whole
  mesh every step. A set that needs a vertex regressor or face landmarks falls back to
  the full forward pass.

  Args:
    model: `body_models.BodyModel`.
    mapping: `JointMapping` of the target set (T joints) for this model.
    params: {smplx name: unbatched array}: pose parts ((3n,) or (C,) PCA), betas (S,),
      transl (3,); absent parts are zero.
    plan: `joint_plan(model, mapping)`, computed here when 'auto' (inside a jit with
      the model traced, 'auto' means the full forward pass).
  Returns:
    (T, 3) joints, metres; rows the model lacks are zero.
  """
  vertex_ids = joint_plan(model, mapping) if plan == 'auto' else plan
  if vertex_ids is None or params.get('expression') is not None:
    out = model_lib.forward(model, **params)
    return mapping.apply(out.joints, out.vertices)
  pose = model_lib.full_pose(model, params, (1,))                      # (1, J, 3)
  rotmats = rotations.axis_angle_to_matrix(pose)
  betas = params.get('betas')
  rest = model.joint_template[None]
  if betas is not None:
    s = betas.shape[-1]
    rest = rest + jnp.einsum('jcs,s->jc', model.joint_shapedirs[..., :s], betas)[None]
  world_rot, world_pos = lbs.rigid_transforms(rotmats, rest, model.parents, model.levels)
  points = [world_pos[0]]
  if vertex_ids:
    ids = np.array(vertex_ids, np.int32)
    verts = model.v_template[ids]
    if betas is not None:
      verts = verts + jnp.einsum('vcs,s->vc', model.shapedirs[ids][..., :s], betas)
    feats = lbs.pose_features(rotmats)[0]                                # (9 (J-1),)
    verts = verts + jnp.einsum('vcp,p->vc', model.posedirs[ids], feats)
    transforms = lbs.skinning_transforms(world_rot, world_pos, rest)
    points.append(lbs.skin(verts[None], model.weights[ids], transforms)[0])
  points = jnp.concatenate(points, 0)
  if params.get('transl') is not None:
    points = points + params['transl']
  gather, slot = [], model.num_joints
  for s in mapping.sources:
    if s is None:
      gather.append(0)
    elif s[0] == 'joint' and s[1] < model.num_joints:
      gather.append(s[1])
    else:
      gather.append(slot)
      slot += 1
  return points[np.array(gather, np.int32)] * jnp.asarray(mapping.valid, points.dtype)[:, None]


def align_indices(model, mapping, names=None):
  """Indices in the target set of the joints used for the initial rigid alignment.

  Args:
    names: joint names; None = hips and shoulders (bodies) or wrist and the four finger
      roots (MANO).
  Returns:
    (P,) int32 numpy array, P >= 3.
  Raises:
    ValueError if fewer than 3 of them are in the set and provided by the model.
  """
  if names is None:
    names = HAND_ALIGN_JOINTS if model.family == 'mano' else BODY_ALIGN_JOINTS
  set_names = list(mapping.names)
  idx = [set_names.index(n) for n in names
         if n in set_names and mapping.sources[set_names.index(n)] is not None]
  if len(idx) < 3:
    raise ValueError(f'rigid alignment needs at least 3 of {names} in {mapping.joint_set} '
                     f'(provided by the {model.family} model); found {len(idx)}')
  return np.array(idx, np.int32)


def rigid_align(src, dst, weights):
  """Weighted Kabsch: the rotation R and translation t minimising sum w |R src + t - dst|^2.

  Args:
    src, dst: (P, 3) corresponding points.
    weights: (P,) non-negative (0 drops a point); at least 3 non-collinear points must
      have weight, else R is arbitrary (but finite).
  Returns:
    R (3, 3) proper rotation (det +1, reflections excluded), t (3,).
  """
  w = weights / jnp.maximum(jnp.sum(weights), 1e-12)
  mu_s = jnp.sum(w[:, None] * src, 0)
  mu_d = jnp.sum(w[:, None] * dst, 0)
  cov = jnp.einsum('p,pi,pj->ij', w, src - mu_s, dst - mu_d)    # (3, 3) = S^T W D
  u, _, vt = jnp.linalg.svd(cov)
  d = jnp.sign(jnp.linalg.det(vt.T @ u.T))
  d = jnp.where(d == 0, 1.0, d)
  r = vt.T @ jnp.diag(jnp.array([1.0, 1.0, 1.0], src.dtype).at[2].set(d)) @ u.T
  return r, mu_d - r @ mu_s


def initial_global(model, mapping, joints_3d, valid, align_idx, plan='auto'):
  """Global orient and translation that move the rest pose onto the GT joints.

  The model rotates about its root joint: posed = R (x - j0) + j0 + transl. For the rigid
  map x -> R x + t found on the alignment joints, transl = t - j0 + R j0.

  Args:
    joints_3d: (T, 3) GT joints, metres; valid: (T,) weights.
    align_idx: (P,) from `align_indices`.
    plan: see `mapped_joints`.
  Returns:
    global_orient (3,) axis-angle, transl (3,).
  """
  rest = mapped_joints(model, mapping, {}, plan)                      # (T, 3)
  r, t = rigid_align(rest[align_idx], joints_3d[align_idx], valid[align_idx])
  j0 = model.joint_template[0]
  return rotations.matrix_to_axis_angle(r), t - j0 + r @ j0


def adam_steps(loss_fn, params, num_steps, lr, final_lr_fraction=0.01):
  """Adam with a cosine-decayed step size for a fixed number of steps, in `lax.scan`.

  Args:
    loss_fn: (params, step) -> scalar; `step` is the int32 step index (for annealed
      terms).
    params: initial pytree.
  Returns:
    (final params, (num_steps,) loss history).
  """
  schedule = optax.cosine_decay_schedule(lr, num_steps, alpha=final_lr_fraction)
  opt = optax.adam(schedule)
  grad_fn = jax.value_and_grad(loss_fn)

  def step(carry, i):
    p, state = carry
    loss, g = grad_fn(p, i)
    updates, state = opt.update(g, state, p)
    return (optax.apply_updates(p, updates), state), loss

  (params, _), losses = jax.lax.scan(step, (params, opt.init(params)),
                                     jnp.arange(num_steps, dtype=jnp.int32))
  return params, losses


def annealed_sigma(step, num_steps, sigma, sigma_start, fraction=0.5):
  """Geman-McClure scale decayed geometrically from sigma_start to sigma.

  Graduated non-convexity: with a wide sigma the data term is nearly quadratic, so a
  far-off joint still pulls (a knee folded the wrong way, whose ankle is right, would
  otherwise sit in the robustifier's flat tail); the final sigma gives the robust fit.

  Args:
    step: int32 scalar step index; num_steps: total steps (static).
    sigma, sigma_start: final and initial scale; fraction: share of the steps spent
      decaying (the rest use `sigma`).
  Returns:
    scalar float32.
  """
  t = jnp.clip(step / max(fraction * num_steps, 1.0), 0.0, 1.0)
  return sigma_start * (sigma / sigma_start) ** t


def checked_start(model, start, batch, where):
  """A refinement's start, {smplx name: (B, n)}, in the model's dtype and shapes.

  Every parameter of `model` but 'expression' must be given; `where` names the caller in
  the error.
  """
  zero = model.zero_params((batch,))
  missing = sorted(set(zero) - set(start) - {'expression'})
  if missing:
    raise ValueError(f'{where}: start lacks {missing}')
  for k in zero:
    if k in start and np.size(start[k]) != np.prod(zero[k].shape):
      hint = (' (the model takes hand PCA coefficients: give it without PCA, full hand '
              'poses)' if 'hand_pose' in k and model.hand_components else '')
      raise ValueError(f'{where}: start[{k!r}] has shape {np.shape(start[k])}; the model '
                       f'takes {tuple(zero[k].shape)}{hint}')
  return {k: jnp.asarray(start[k], model.dtype).reshape(zero[k].shape) for k in zero
          if k != 'expression'}


def staged_adam(loss_fn, params, num_stages, steps_per_stage, lr, final_lr_fraction=0.01):
  """Several optimisation stages in ONE `lax.scan` (one compiled loop, not one per stage).

  Each stage restarts Adam (fresh moments, as SMPLify-X restarts its optimiser) and its
  own cosine-decayed step size; the loss sees the stage index and picks its weights.

  Args:
    loss_fn: (params, stage) -> scalar; `stage` is an int32 scalar in [0, num_stages).
    params: initial pytree.
  Returns:
    (final params, (num_stages * steps_per_stage,) loss history).
  """
  adam = optax.scale_by_adam()
  schedule = optax.cosine_decay_schedule(lr, steps_per_stage, alpha=final_lr_fraction)
  grad_fn = jax.value_and_grad(loss_fn)
  fresh = adam.init(params)

  def step(carry, i):
    p, state = carry
    stage, k = i // steps_per_stage, i % steps_per_stage
    state = jax.tree_util.tree_map(lambda a, b: jnp.where(k == 0, a, b), fresh, state)
    loss, g = grad_fn(p, stage)
    updates, state = adam.update(g, state, p)
    rate = schedule(k)
    p = jax.tree_util.tree_map(lambda x, u: x - rate * u, p, updates)
    return (p, state), loss

  total = num_stages * steps_per_stage
  (params, _), losses = jax.lax.scan(step, (params, fresh),
                                     jnp.arange(total, dtype=jnp.int32))
  return params, losses
