"""SMPLify-X style fitting to GT 2D joints (in-the-wild data), batched and jitted.

Per sample (all `vmap`-ped, each with its own optimiser state):
  1. Camera from the torso (SMPLify-X's `guess_init`): the depth t_z from similar
     triangles, focal * (model torso length, 3D) / (GT torso length, 2D), over the
     shoulder-hip edges of each side (wrist to the four finger roots for MANO); t_x, t_y
     put the model's torso centre on the GT torso centre. A person with no torso edge
     labelled (truncated, occluded) gets the same similar triangles on the spread of
     whatever joints are labelled, and with fewer than two of them the depth at which a
     typical subject fills the crop as the annotation box does. The body starts facing the
     camera (global orient 180 deg about x: the model's y up becomes the camera's y
     down) and, as SMPLify-X's flipped try, also facing away (then rotated 180 deg about
     the vertical); both are fitted and the lower final loss is kept.
  2. Stage 0, camera only: global orient and translation on the torso joints, plus
     SMPLify-X's term keeping t_z near its estimate.
  3. Stages 1..4, everything: Geman-McClure (per coordinate, sigma 100 px) on the valid
     joints, with prior weights decreasing stage by stage (SMPLify-X's schedule, squared
     as it squares them): VPoser latent |z|^2 (or |body_pose|^2 without a VPoser), shape
     |betas|^2, elbow/knee bending, hand PCA |c|^2. Adam, a fixed number of steps per
     stage inside `lax.scan`.

Given a `start` (a network's prediction, `--config.annotator=neuralannot_refine`), steps 1
and 2 are replaced by it: the stages run from its pose (the VPoser latent at the encoder's
mean for it), shape and translation, and from it turned around.

The body pose is the VPoser decoder of `body_models.vposer`, with the official weights
or the project's own prior (`neuralannot_jax.models.pose_prior.load_or_train`). Pixels are the
ones of the given camera (e.g. the crop camera of `neuralannot_jax.method.camera.crop_camera`);
SMPLify-X's weights and its sigma of 100 px were set on whole photos, where a person is
several hundred pixels tall; for a small crop set `pixel_scale` (`DEFAULTS`) so that the
residuals are measured at that scale, or the priors outweigh the joints and every fit
drifts to the prior's mean pose.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from body_models import rotations
from body_models import vposer
from neuralannot_jax.data import joint_sets
from neuralannot_jax.fitting import common
from neuralannot_jax.fitting import priors
from neuralannot_jax.method import camera
from neuralannot_jax.method import finger_prior

# SMPLify-X's stage weights (cfg_files/fit_smplx.yaml); each enters squared.
STAGES = (
    # data, body pose, shape, bending, hands
    dict(data=1.0, pose=404.0, shape=100.0, bending=317.0, hand=404.0),
    dict(data=1.0, pose=404.0, shape=50.0, bending=317.0, hand=404.0),
    dict(data=1.0, pose=57.4, shape=10.0, bending=100.0, hand=57.4),
    dict(data=1.0, pose=4.78, shape=0.5, bending=31.7, hand=4.78),
)
DEFAULTS = {
    'sigma': 100.0,           # Geman-McClure scale, pixels (per coordinate, scaled ones)
    # Residuals are multiplied by this before the robust data term (e.g. 1024 / crop side
    # for a crop camera: SMPLify-X's weights are for people several hundred pixels tall).
    'pixel_scale': 1.0,
    'depth_weight': 100.0,    # stage 0: (t_z - initial t_z)^2, squared as SMPLify-X
    # metres, when fewer than two joints are labelled; None: a typical subject
    # (`camera.TYPICAL_EXTENT`) spanning 1 / BOX_SCALE of a crop of 2 * princpt + 1 px.
    'default_depth': None,
}
DEFAULT_STEPS_PER_STAGE = 100
DEFAULT_LR = 0.02

TORSO_EDGES_BODY = (('left_shoulder', 'left_hip'), ('right_shoulder', 'right_hip'))
TORSO_EDGES_HAND = (('wrist', 'index1'), ('wrist', 'middle1'), ('wrist', 'ring1'),
                    ('wrist', 'pinky1'))

# Initial global orients (axis-angle): facing the camera (180 deg about x) and facing
# away (that, then 180 deg about the camera's vertical: Ry(pi) Rx(pi) = Rz(pi)).
FACING = (np.pi, 0.0, 0.0)
FACING_AWAY = (0.0, 0.0, np.pi)


def _torso(model, mapping):
  """(edges (E, 2), joints (P,)) indices into the set for the torso init and stage 0."""
  names = list(mapping.names)
  edges = TORSO_EDGES_HAND if model.family == 'mano' else TORSO_EDGES_BODY
  ok = lambda n: n in names and mapping.sources[names.index(n)] is not None
  edges = [(names.index(a), names.index(b)) for a, b in edges if ok(a) and ok(b)]
  if not edges:
    raise ValueError(f'the torso camera init needs {edges} in {mapping.joint_set}')
  joints = sorted({i for e in edges for i in e})
  return tuple(edges), tuple(joints)


def _typical_depth(family, focal, princpt):
  """Depth of a typical subject spanning 1 / BOX_SCALE of the crop whose centre is princpt."""
  part = camera.FAMILY_PART[family]
  side = 2.0 * jnp.max(princpt) + 1.0
  return jnp.mean(focal) * camera.TYPICAL_EXTENT[part] * camera.BOX_SCALE / side


def initial_translation(rest, root, orient, joints_2d, valid, focal, princpt, edges, torso,
                        default_depth):
  """Camera translation of one sample from its torso (similar triangles).

  Args:
    rest: (T, 3) the model's rest-pose set joints; root: (3,) the rest-pose root joint
      the global orient rotates about; orient: (3,) initial global orient.
    joints_2d: (T, 2) pixels; valid: (T,); focal, princpt: (2,).
    edges: ((a, b), ...) torso edges; torso: joint indices of the torso.
    default_depth: metres (scalar), used when fewer than two joints are valid.
  Returns:
    (3,) transl: the posed torso centre projects on the GT torso centre (the valid
    joints' centre when no torso joint is valid), at the depth focal * L3d / L2d, L the
    mean valid torso edge length, or without one the RMS spread of the valid joints about
    their centre.
  """
  e = np.array(edges, np.int32)
  ev = valid[e[:, 0]] * valid[e[:, 1]]
  n = jnp.sum(ev)
  l3 = jnp.sum(ev * jnp.linalg.norm(rest[e[:, 0]] - rest[e[:, 1]], axis=-1))
  l2 = jnp.sum(ev * jnp.linalg.norm(joints_2d[e[:, 0]] - joints_2d[e[:, 1]], axis=-1))
  f = jnp.mean(focal)
  # Without a torso edge: the spread of the labelled joints, rest pose against image.
  nv = jnp.sum(valid)
  mv = jnp.maximum(nv, 1.0)
  c3_all = jnp.sum(valid[:, None] * rest, 0) / mv
  c2_all = jnp.sum(valid[:, None] * joints_2d, 0) / mv
  s3 = jnp.sqrt(jnp.sum(valid * jnp.sum(jnp.square(rest - c3_all), -1)) / mv)
  s2 = jnp.sqrt(jnp.sum(valid * jnp.sum(jnp.square(joints_2d - c2_all), -1)) / mv)
  spread_depth = jnp.where((nv >= 2) & (s2 > 1.0), f * s3 / jnp.maximum(s2, 1.0),
                           default_depth)
  depth = jnp.where((n > 0) & (l2 > 1e-3), f * l3 / jnp.maximum(l2, 1e-3), spread_depth)
  t = np.array(torso, np.int32)
  tv = valid[t]
  has_torso = jnp.sum(tv) > 0
  m = jnp.maximum(jnp.sum(tv), 1.0)
  rot = rotations.axis_angle_to_matrix(orient)
  posed = (rest - root) @ rot.T + root
  c3 = jnp.where(has_torso, jnp.sum(tv[:, None] * posed[t], 0) / m,
                 jnp.sum(valid[:, None] * posed, 0) / mv)
  c2 = jnp.where(has_torso, jnp.sum(tv[:, None] * joints_2d[t], 0) / m,
                 jnp.where(nv > 0, c2_all, princpt))
  # (c3_xy + t_xy) / (c3_z + t_z) * f + pp = c2  with  c3_z + t_z = depth.
  xy = (c2 - princpt) * depth / focal - c3[:2]
  return jnp.concatenate([xy, (depth - c3[2])[None]])


def _model_params(model, params, vp):
  """Optimised variables -> smplx-named parameters (the VPoser latent decoded)."""
  out = {k: v for k, v in params.items() if k != 'body_latent'}
  if 'body_latent' in params:
    pose = vposer.decode(vp, params['body_latent']).astype(model.dtype)   # (63,)
    n = model.param_shapes()['body_pose'][0]
    out['body_pose'] = jnp.pad(pose, (0, n - pose.shape[-1]))   # SMPL: hands (22, 23) 0
  return out


_WEIGHT_NAMES = ('data', 'pose', 'shape', 'bending', 'hand')
# MANO: the stages' 'bending' weight (squared) times this acts on the fingers'
# hyperextension (`finger_prior.overextension`, a mean of ~sin^2 over 14 joints), as
# SMPLify's acts on elbows and knees: three joints 30 degrees past their allowance then
# cost 5e4 at the first stage (the global rotation is settled there) and 500 at the last
# (a 16 px shift of one coordinate in the reference crop).
FINGER_BEND_SCALE = 10.0


def finger_overextension(model, params):
  """`finger_prior.hand_overextension` of one MANO hand: params {smplx name: (n,)},
  hand_pose as the model takes it (PCA coefficients or 45 numbers, relative to the mean)
  -> scalar."""
  pose = params['hand_pose']
  if 'hand_pose' in model.hand_components:
    pose = pose @ model.hand_components['hand_pose']
  return finger_prior.hand_overextension(pose, model.joint_template, model.pose_mean)


def _stage_loss(params, stage, *, model, mapping, plan, vp, j2d, valid, focal, princpt,
                table, torso_mask, tz0, cfg):
  """Scalar objective of one sample at stage index `stage` (int32, traced).

  Stage 0 is the camera stage: only global_orient and transl move (the other gradients
  are cut), only the torso joints count, and t_z is held near its torso estimate.
  Stages 1.. are the rows of `table` (weights of `_WEIGHT_NAMES`, squared).
  """
  camera_stage = stage == 0
  moving = lambda k: k in ('global_orient', 'transl')
  params = {k: v if moving(k) else
            jnp.where(camera_stage, jax.lax.stop_gradient(v), v)
            for k, v in params.items()}
  w = dict(zip(_WEIGHT_NAMES, table[stage]))
  mp = _model_params(model, params, vp)
  pred = common.mapped_joints(model, mapping, mp, plan)
  proj = camera.project(pred, focal, princpt)
  vw = valid * jnp.where(camera_stage, torso_mask, 1.0)
  residual = (proj - j2d) * cfg['pixel_scale']
  loss = w['data'] ** 2 * jnp.sum(vw[:, None] * priors.gmof(residual, cfg['sigma']))
  loss += jnp.where(camera_stage, cfg['depth_weight'] ** 2, 0.0) * jnp.square(
      params['transl'][2] - tz0)
  prior = 0.0
  if 'body_latent' in params:
    prior += w['pose'] ** 2 * priors.pose_l2_prior(params['body_latent'])
  elif 'body_pose' in params:
    prior += w['pose'] ** 2 * priors.pose_l2_prior(params['body_pose'])
  prior += w['shape'] ** 2 * priors.shape_prior(params['betas'])
  if model.family in ('smpl', 'smplx'):
    prior += w['bending'] ** 2 * priors.bending_prior(mp['body_pose'])
  if model.family == 'mano':
    prior += w['bending'] ** 2 * FINGER_BEND_SCALE * finger_overextension(model, mp)
  for name in ('left_hand_pose', 'right_hand_pose', 'hand_pose'):
    if name in params:
      prior += w['hand'] ** 2 * priors.hand_pca_prior(params[name])
  return loss + jnp.where(camera_stage, 0.0, prior)


@functools.partial(jax.jit, static_argnames=('mapping', 'plan', 'steps', 'lr', 'stages',
                                             'cfg', 'edges', 'torso', 'camera_stage'))
def _fit(model, vp, j2d, valid, focal, princpt, orient0, start, *, mapping, plan, steps, lr,
         stages, cfg, edges, torso, camera_stage=True):
  cfg = dict(cfg)
  stages = [dict(s) for s in stages]
  # Row 0 (camera stage) only uses 'data'; it repeats the first stage's weights.
  table = jnp.asarray([[s[n] for n in _WEIGHT_NAMES] for s in [stages[0]] + stages],
                      model.dtype)
  first = 0 if camera_stage else 1
  rest = common.mapped_joints(model, mapping, {}, plan)
  root = model.joint_template[0]
  torso_mask = jnp.zeros(valid.shape[-1], model.dtype).at[np.array(torso)].set(1.0)

  def one(j2d, valid, focal, princpt, orient0, start):
    params = {k: v[0] for k, v in model.zero_params((1,)).items() if k != 'expression'}
    params.update(start)
    if vp is not None:
      pose = params.pop('body_pose')
      n = vposer.dimensions(vp)[2] * 3
      # A given pose starts the latent at the encoder's mean for it (zero: the prior's mean).
      params['body_latent'] = (vposer.encode(vp, pose[:n])[0].astype(model.dtype)
                               if 'body_pose' in start else
                               jnp.zeros((vposer.dimensions(vp)[0],), model.dtype))
    params['global_orient'] = orient0.astype(model.dtype)
    if 'transl' not in start:
      default_depth = (_typical_depth(model.family, focal, princpt)
                       if cfg['default_depth'] is None else cfg['default_depth'])
      params['transl'] = initial_translation(rest, root, orient0, j2d, valid, focal,
                                             princpt, edges, torso, default_depth)
    kw = dict(model=model, mapping=mapping, plan=plan, vp=vp, j2d=j2d, valid=valid,
              focal=focal, princpt=princpt, table=table, torso_mask=torso_mask,
              tz0=params['transl'][2], cfg=cfg)
    params, _ = common.staged_adam(lambda p, s: _stage_loss(p, s + first, **kw), params,
                                   table.shape[0] - first, steps, lr)
    final = _stage_loss(params, jnp.int32(table.shape[0] - 1), **kw)
    mp = _model_params(model, params, vp)
    joints = common.mapped_joints(model, mapping, mp, plan)
    return params, mp, joints, camera.project(joints, focal, princpt), final

  return jax.vmap(one)(j2d, valid, focal, princpt, orient0, start)


def fit_2d(model, joints_2d, valid, mapping, *, focal, princpt, vposer_params=None,
           steps_per_stage=DEFAULT_STEPS_PER_STAGE, lr=DEFAULT_LR, stages=STAGES,
           options=None, try_flip=True, start=None):
  """Fit body-model parameters to GT 2D joints, a batch at once.

  Args:
    model: `body_models.BodyModel` (SMPL, SMPL-X or MANO).
    joints_2d: (B, T, 2) GT joints of `mapping`'s set, pixels of the camera below.
    valid: (B, T) weights in [0, 1].
    mapping: `JointMapping` from the model to the set.
    focal, princpt: (2,) or (B, 2) the camera, pixels (e.g. `camera.crop_camera`).
    vposer_params: VPoser weights (`body_models.vposer.load` or
      `neuralannot_jax.models.pose_prior.load_or_train`): the body pose is then its decoded
      latent. None: the body pose is optimised as axis-angle with an L2 prior.
    steps_per_stage: Adam steps of each stage (camera stage + len(stages)).
    lr: Adam step size, cosine-decayed within each stage.
    stages: per-stage weights {data, pose, shape, bending, hand} (each used squared).
    options: overrides of `DEFAULTS` (sigma, pixel_scale, depth_weight, default_depth).
    try_flip: also fit from the orientation facing away and keep the better fit.
    start: None, or {smplx name: (B, n)} a prediction to start from instead of the mean
      pose facing the camera (the 'neuralannot_refine' annotator from 2D joints): its
      body pose enters through the VPoser encoder, its translation (camera frame) replaces
      the torso camera init, the camera stage is skipped, and the flipped try is the
      start turned around (`turned_around`).
  Returns:
    {smplx name: (B, n)} (`global_orient`, `body_pose`, ..., `betas`, `transl`: camera
    space, `model(**params)` projects onto the GT), 'body_latent' (B, L) when a VPoser is
    used, 'joints_2d' (B, T, 2) the fit's projection, 'error' (B,) its mean pixel
    distance to the valid GT joints, 'loss' (B,) the final objective, 'flipped' (B,)
    bool: the facing-away (or turned-around) start won, 'joints' (B, T, 3) the set's
    joints in the camera frame.
  """
  joints_2d = jnp.asarray(joints_2d, model.dtype)
  valid = jnp.asarray(valid, model.dtype)
  b, t = joints_2d.shape[:2]
  if joints_2d.shape != (b, len(mapping.sources), 2):
    raise ValueError(f'joints_2d has shape {joints_2d.shape}; expected '
                     f'(B, {len(mapping.sources)}, 2) for {mapping.joint_set}')
  if valid.shape != (b, t):
    raise ValueError(f'valid has shape {valid.shape}; expected {(b, t)}')
  valid = valid * jnp.asarray(mapping.valid, model.dtype)[None]
  focal = jnp.broadcast_to(jnp.asarray(focal, model.dtype), (b, 2))
  princpt = jnp.broadcast_to(jnp.asarray(princpt, model.dtype), (b, 2))
  if model.family in ('mano', 'flame'):
    vposer_params = None
  cfg = dict(DEFAULTS)
  cfg.update(options or {})
  # Only the vertices the joints are read from are skinned (a regressor's support).
  model, mapping = joint_sets.restrict_to_mapping(model, mapping)
  edges, torso = _torso(model, mapping)
  if start is None:
    starts = [FACING, FACING_AWAY] if try_flip else [FACING]
    orient0 = jnp.asarray(np.repeat(np.array(starts), b, axis=0), model.dtype)   # (k B, 3)
    start = {}
  else:
    start = common.checked_start(model, start, b, 'fit_2d')
    orient0 = start.pop('global_orient')
    orient0 = jnp.concatenate([orient0, turned_around(orient0)] if try_flip else [orient0])
  k = orient0.shape[0] // b
  tile = lambda x: jnp.concatenate([x] * k, axis=0)
  params, mp, joints, proj, loss = _fit(
      model, vposer_params, tile(joints_2d), tile(valid), tile(focal), tile(princpt),
      orient0, {name: tile(v) for name, v in start.items()}, mapping=mapping,
      plan=common.joint_plan(model, mapping), steps=int(steps_per_stage), lr=float(lr),
      stages=tuple(tuple(sorted(s.items())) for s in stages),
      cfg=tuple(sorted(cfg.items())), edges=edges, torso=torso,
      camera_stage=not start)
  best, pick = best_start(loss, k, b)
  out = {name: pick(v) for name, v in mp.items()}
  if 'body_latent' in params:
    out['body_latent'] = pick(params['body_latent'])
  out['joints'] = pick(joints)
  return scored(out, pick(proj), joints_2d, valid, loss, best)


def best_start(loss, k, b):
  """The start with the lowest final objective per sample, of k starts stacked start-major:
  (best (B,) int, pick: (k B, ...) -> (B, ...))."""
  best = jnp.argmin(loss.reshape(k, b), axis=0)
  pick = lambda x: jnp.take_along_axis(
      x.reshape((k, b) + x.shape[1:]), best.reshape((1, b) + (1,) * (x.ndim - 1)), 0)[0]
  return best, pick


def scored(out, proj, joints_2d, valid, loss, best):
  """`out` with the kept fit's 'joints_2d', its mean pixel 'error' to the valid GT joints,
  its 'loss' and 'flipped' (the second start, facing away / turned round, won)."""
  out['joints_2d'] = proj
  dist = jnp.linalg.norm(proj - joints_2d, axis=-1)
  out['error'] = jnp.sum(dist * valid, -1) / jnp.maximum(jnp.sum(valid, -1), 1.0)
  out['loss'] = jnp.min(loss.reshape(-1, joints_2d.shape[0]), axis=0)
  out['flipped'] = best == 1
  return out


# Ry(pi): a body turned about the camera's vertical axis (its root stays where it is).
_TURN = np.diag([-1.0, 1.0, -1.0])


def turned_around(global_orient):
  """(..., 3) axis-angle -> the same body turned 180 deg about the camera's vertical."""
  rot = rotations.axis_angle_to_matrix(global_orient)
  return rotations.matrix_to_axis_angle(jnp.asarray(_TURN, rot.dtype) @ rot)


__all__ = ['STAGES', 'DEFAULTS', 'DEFAULT_STEPS_PER_STAGE', 'DEFAULT_LR', 'FACING',
           'FACING_AWAY', 'FINGER_BEND_SCALE', 'initial_translation', 'finger_overextension',
           'turned_around', 'best_start', 'scored', 'fit_2d']
