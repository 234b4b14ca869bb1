"""A short per-sample fit to GT 2D joints started from, and kept near, a network's prediction.

The in-the-wild hands' half of `--config.annotator=neuralannot_refine` (and bodies' when no
VPoser is given; with one, bodies run `fit2d.fit_2d` from the prediction). The pose is
optimised as axis-angle with an anchor to the start instead of a pose prior, from the start,
from it turned around and, for a hand, from its palm twin; the lowest final objective wins.
"""

import functools

import jax
import jax.numpy as jnp

from body_models import mirror
from body_models import rotations
from neuralannot_jax.data import joint_sets
from neuralannot_jax.fitting import common
from neuralannot_jax.fitting import fit2d
from neuralannot_jax.fitting import priors
from neuralannot_jax.method import camera
from neuralannot_jax.method import losses

# A refinement (`refine_2d`): the start (the network's prediction) is the pose prior, as
# in `fit3d.REFINE_WEIGHTS`; shape and bending keep SMPLify-X's last-stage weights
# (0.5^2, 31.7^2). In the pixels of the reference crop, 1 cm of a body is about 5 px, so
# the anchor weighs as the 3D refinement's does against its 1e6 on metres. 'hinge' keeps
# elbows and knees in their bending plane (`losses.hinge_swing`, about sin^2 of the angle
# off it): 2D joints do not pin that plane, and on the comparison's COCO-style set 48% of
# the refined bodies had an elbow or knee beyond the pose sampler's limits without it, 25%
# with it, at the same MPJPE (205 against 204 mm).
REFINE_WEIGHTS = {'anchor': 1e3, 'shape': 0.25, 'bending': 1e3, 'hinge': 1e4}
# MANO's 'bending' is the fingers' (`finger_overextension`), at the fit's last stage weight.
HAND_REFINE_WEIGHTS = {'anchor': 1e2, 'shape': 0.25,
                       'bending': fit2d.STAGES[-1]['bending'] ** 2 * fit2d.FINGER_BEND_SCALE,
                       'hinge': 0.0}


def _refine_loss(params, anchor, *, model, mapping, plan, j2d, valid, focal, princpt, cfg,
                 weights):
  """Scalar objective of one refined sample: the robust 2D term, the anchor to the start
  on every part but global_orient and transl, shape and bending priors."""
  pred = common.mapped_joints(model, mapping, params, plan)
  residual = (camera.project(pred, focal, princpt) - j2d) * cfg['pixel_scale']
  loss = jnp.sum(valid[:, None] * priors.gmof(residual, cfg['sigma']))
  for name in anchor:
    if name not in ('global_orient', 'transl'):
      loss += weights['anchor'] * jnp.sum(jnp.square(params[name] - anchor[name]))
  loss += weights['shape'] * priors.shape_prior(params['betas'])
  if model.family in ('smpl', 'smplx') and weights['bending']:
    loss += weights['bending'] * priors.bending_prior(params['body_pose'])
  if model.family == 'mano' and weights['bending']:
    loss += weights['bending'] * fit2d.finger_overextension(model, params)
  if model.family in ('smpl', 'smplx') and weights.get('hinge'):
    idx, axes = losses.hinge_joints(model.family)
    body = params['body_pose'].reshape(-1, 3)[idx - 1]      # body_pose starts at joint 1
    loss += weights['hinge'] * losses.hinge_swing(rotations.axis_angle_to_matrix(body)[None],
                                                  axes)
  return loss


@functools.partial(jax.jit, static_argnames=('mapping', 'plan', 'steps', 'lr', 'cfg',
                                             'weights'))
def _refine(model, j2d, valid, focal, princpt, start, *, mapping, plan, steps, lr, cfg,
            weights):
  cfg, weights = dict(cfg), dict(weights)

  def one(j2d, valid, focal, princpt, start):
    kw = dict(model=model, mapping=mapping, plan=plan, j2d=j2d, valid=valid, focal=focal,
              princpt=princpt, cfg=cfg, weights=weights)
    params, _ = common.adam_steps(lambda p, _: _refine_loss(p, start, **kw), start, steps, lr)
    final = _refine_loss(params, start, **kw)
    joints = common.mapped_joints(model, mapping, params, plan)
    return params, joints, camera.project(joints, focal, princpt), final

  return jax.vmap(one)(j2d, valid, focal, princpt, start)


def refine_2d(model, joints_2d, valid, mapping, start, *, focal, princpt, steps=200, lr=0.01,
              options=None, weights=None, try_flip=True, try_palm=True):
  """A short per-sample fit to GT 2D joints started from, and kept near, a prediction.

  The in-the-wild half of `--config.annotator=neuralannot_refine`. The body pose is
  optimised as axis-angle (no VPoser) with `REFINE_WEIGHTS['anchor'] * |params - start|^2`
  instead of a pose prior, and elbows and knees kept in their bending plane ('hinge').
  With `try_flip`, the start turned around (180 deg about the camera's vertical) is
  refined too and the lower final objective wins: from 2D joints a network can face a
  person the wrong way, which the labelled left/right sides show. With `try_palm`, a hand
  is also tried with its tilt mirrored in depth (`body_models.mirror.palm_twin`), which
  the 2D joints cannot tell apart and the fingers' bend ('bending':
  `fit2d.finger_overextension`) can. (Starting from the facing twin instead,
  `body_models.mirror.facing_twin`, scored 9 mm worse on the comparison's COCO-style set:
  annotation's facing check has already chosen between them.)

  Args:
    model: `body_models.BodyModel` (SMPL, SMPL-X or MANO) with full hand poses (no PCA).
    joints_2d, valid, mapping, focal, princpt: as `fit_2d`.
    start: {smplx name: (B, n)}: every parameter the model takes but 'expression'
      ('transl' in the camera above).
    steps, lr: Adam steps and step size (cosine-decayed to 1%).
    options: overrides of `fit2d.DEFAULTS` (sigma, pixel_scale).
    weights: overrides of `REFINE_WEIGHTS` (MANO: `HAND_REFINE_WEIGHTS`).
    try_flip: also refine the turned-around start.
    try_palm: MANO: also refine the start's palm twin.
  Returns:
    {smplx name: (B, n)} refined, 'joints' (B, T, 3) the set's joints in the camera frame,
    'joints_2d' (B, T, 2), 'error' (B,) mean pixel distance to the valid GT joints, 'loss'
    (B,), 'flipped' (B,) bool: the turned-around start won, 'palm_twin' (B,) bool: the
    palm twin's start won.
  """
  joints_2d = jnp.asarray(joints_2d, model.dtype)
  valid = jnp.asarray(valid, model.dtype)
  b, t = joints_2d.shape[:2]
  if joints_2d.shape != (b, len(mapping.sources), 2) or valid.shape != (b, t):
    raise ValueError(f'joints_2d {joints_2d.shape} / valid {valid.shape}; expected '
                     f'(B, {len(mapping.sources)}, 2) / (B, {len(mapping.sources)})')
  if model.hand_components:
    raise ValueError('refine_2d: give the model without hand PCA (full hand poses)')
  valid = valid * jnp.asarray(mapping.valid, model.dtype)[None]
  focal = jnp.broadcast_to(jnp.asarray(focal, model.dtype), (b, 2))
  princpt = jnp.broadcast_to(jnp.asarray(princpt, model.dtype), (b, 2))
  cfg = {'sigma': fit2d.DEFAULTS['sigma'], 'pixel_scale': fit2d.DEFAULTS['pixel_scale']}
  cfg.update({k: v for k, v in (options or {}).items() if k in cfg})
  w = dict(HAND_REFINE_WEIGHTS if model.family == 'mano' else REFINE_WEIGHTS)
  w.update(weights or {})
  start = common.checked_start(model, start, b, 'refine_2d')
  model, mapping = joint_sets.restrict_to_mapping(model, mapping)
  starts, names = [start], ['start']
  if try_flip:
    starts.append(dict(start, global_orient=fit2d.turned_around(start['global_orient'])))
    names.append('flipped')
  if try_palm and model.family == 'mano':   # the tilt in depth, which 2D joints leave open
    starts.append(mirror.palm_twin(start, model.joint_template, model.pose_mean))
    names.append('palm_twin')
  k = len(starts)
  tile = lambda x: jnp.concatenate([x] * k, axis=0)
  stacked = {name: jnp.concatenate([s[name] for s in starts], 0) for name in start}
  params, joints, proj, loss = _refine(
      model, tile(joints_2d), tile(valid), tile(focal), tile(princpt), stacked,
      mapping=mapping, plan=common.joint_plan(model, mapping), steps=int(steps),
      lr=float(lr), cfg=tuple(sorted(cfg.items())), weights=tuple(sorted(w.items())))
  best, pick = fit2d.best_start(loss, k, b)
  out = {name: pick(v) for name, v in params.items()}
  out['joints'] = pick(joints)
  out = fit2d.scored(out, pick(proj), joints_2d, valid, loss, best)
  for name in ('flipped', 'palm_twin'):   # `scored`'s 'flipped' assumes the turn is second
    out[name] = best == names.index(name) if name in names else jnp.zeros((b,), bool)
  return out


__all__ = ['REFINE_WEIGHTS', 'HAND_REFINE_WEIGHTS', 'refine_2d']
