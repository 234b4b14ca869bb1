"""The paper's 3D fitting mode: body-model parameters from GT 3D joints (MoCap data).

NeuralAnnot's supplementary fits its baseline to GT 3D joints like this, and so do we:
  1. initial global rotation and translation by a rigid (Kabsch) alignment of the model's
     rest-pose hips and shoulders (bodies) or wrist and four finger roots (hands) to the
     GT joints (`common.initial_global`);
  2. joint rotations (axis-angle, the smplx parameters themselves; PCA coefficients
     where the model takes hand PCA), betas and translation optimised together against
       w_data * sum_k valid_k * gmof(|J_k - G_k|, sigma)      (per joint, metres)
       + w_shape * |betas|^2 + w_pose * |pose|^2 + w_bend * bending(body_pose)
     with Adam for a fixed number of steps inside `lax.scan`, `vmap`-ped over samples
     (each sample has its own optimiser state, so results do not depend on the batch)
     and jitted.

Weights. The paper gives the data weight, 1e6, in metres. sigma = 0.1 m (our choice)
keeps the term quadratic (~ r^2) for the centimetre errors a good fit has and caps a
grossly wrong GT joint at 1 cm^2 * 1e6 = 1e4, which beats the priors but not the other
joints. Adam is invariant to the overall loss scale, so only these ratios matter.
The pose and bending priors weigh 1e3. Real GT joints are not the model's: markers sit
1-2 cm off any regressor's joints, plus noise. Against such joints (the synthetic
Human3.6M set's: a regressor variant 1-2 cm off the given one, 10 mm noise; 64 stand-in
SMPL bodies, 800 steps) priors of 1 let the fit turn every free joint to chase the
centimetres: 100% of the bodies had a joint beyond the pose sampler's limits
(`plausibility`; wrists, ankles, feet), MPJPE 23.8 / MPVPE 62.2 mm. Priors of 1e2 / 1e3 /
3e3 / 1e4: 78 / 34 / 20 / 19% implausible, MPJPE 23.0 / 21.3 / 22.7 / 36.7, MPVPE
48.3 / 46.5 / 50.8 / 68.0 mm. On exact joints 1e3 costs nothing either (MPJPE 15.1 vs
16.0 mm at 1). A hand's bones are ~10x shorter, so the same angle moves its joints ~10x
less and the priors must be ~100x weaker (`HAND_WEIGHTS`): on 64 synthetic FreiHAND-style
hands with 5 mm noise, priors of 1 / 10 / 100 / 1000 gave MPJPE 8.1 / 8.0 / 7.6 / 10.6 and
MPVPE 8.2 / 7.8 / 7.4 / 10.6 mm.

Annealing. sigma starts at 1 m and decays geometrically to 0.1 m over the first half
of the steps (`common.annealed_sigma`). With 0.1 m from the start, a sitting pose whose
knee the optimiser folds backwards (ankle right, knee 0.6 m off) stays there: the knee's
residual sits in the flat tail of the robustifier and no longer pulls. Measured on 96
sampled stand-in SMPL poses (SMPL_24 joints, 800 steps, lr 0.1): sigma_start 0.1 left fits
stuck at 21 and 45 mm already in smaller trials; 0.3: median 0.5 mm, 1/96 stuck at 21 mm;
1.0 (the default): median 1.5 mm, max 3.2 mm, none stuck; 1.0 with 1200 steps: median
0.7 mm, max 2.0 mm.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from neuralannot_jax.data import joint_sets
from neuralannot_jax.fitting import common
from neuralannot_jax.fitting import priors

DEFAULT_WEIGHTS = {
    'data': 1e6,      # the paper's weight on the 3D joint term (metres)
    'sigma': 0.1,     # Geman-McClure scale, metres
    'sigma_start': 1.0,   # annealed from this to 'sigma' over the first half
    'shape': 1.0,     # |betas|^2
    'pose': 1e3,      # |axis-angle|^2 of every part but global_orient (or |PCA|^2)
    'bending': 1e3,   # SMPLify elbow/knee prior (SMPL, SMPL-X)
}
# MANO's defaults where they differ from the bodies' (see the module docstring).
HAND_WEIGHTS = {'pose': 1e2, 'bending': 1e2}
# A refinement (`start` given): the start, not the zero pose, is the pose prior.
REFINE_WEIGHTS = {'pose': 0.0, 'anchor': 1e3, 'sigma_start': 0.1}
HAND_REFINE_WEIGHTS = {'pose': 0.0, 'anchor': 1e2, 'sigma_start': 0.1}
DEFAULT_NUM_STEPS = 800
DEFAULT_LR = 0.1


def _initial_params(model, mapping, joints_3d, valid, align_idx, plan):
  """{smplx name: (n,)} for one sample: Kabsch global pose, everything else zero."""
  params = {k: v[0] for k, v in model.zero_params((1,)).items()
            if k not in ('expression',)}
  orient, transl = common.initial_global(model, mapping, joints_3d, valid, align_idx, plan)
  params['global_orient'] = orient.astype(model.dtype)
  params['transl'] = transl.astype(model.dtype)
  return params


def _loss(params, model, mapping, joints_3d, valid, weights, sigma, plan, anchor=None):
  """Scalar objective of one sample (see the module docstring); with `anchor` (the start
  of a refinement) also weights['anchor'] * |params - anchor|^2 over every part but
  global_orient and transl."""
  pred = common.mapped_joints(model, mapping, params, plan)
  dist = jnp.sqrt(jnp.sum(jnp.square(pred - joints_3d), -1) + 1e-12)   # (T,)
  loss = weights['data'] * jnp.sum(valid * priors.gmof(dist, sigma))
  if anchor is not None:
    for name in anchor:
      if name not in ('global_orient', 'transl'):
        loss += weights['anchor'] * jnp.sum(jnp.square(params[name] - anchor[name]))
  loss += weights['shape'] * priors.shape_prior(params['betas'])
  for name in common.pose_part_names(model)[1:]:
    loss += weights['pose'] * priors.pose_l2_prior(params[name])
  if model.family in ('smpl', 'smplx') and weights.get('bending'):
    loss += weights['bending'] * priors.bending_prior(params['body_pose'])
  return loss


@functools.partial(jax.jit, static_argnames=('mapping', 'num_steps', 'lr', 'weights',
                                             'align_idx', 'plan'))
def _fit(model, joints_3d, valid, start, *, mapping, num_steps, lr, weights, align_idx, plan):
  weights = dict(weights)
  align_idx = np.array(align_idx, np.int32)

  def one(j3d, v, start):
    if start is None:
      init, anchor = _initial_params(model, mapping, j3d, v, align_idx, plan), None
    else:
      init, anchor = start, start

    def loss_fn(p, step):
      sigma = common.annealed_sigma(step, num_steps, weights['sigma'],
                                    weights['sigma_start'])
      return _loss(p, model, mapping, j3d, v, weights, sigma, plan, anchor)

    return common.adam_steps(loss_fn, init, num_steps, lr)

  params, losses = jax.vmap(one)(joints_3d, valid, start)
  # The fitted joints inside the same compiled function: run eagerly, the model's forward
  # pass dispatches op by op and took longer than the whole fit of a small batch.
  pred = jax.vmap(lambda p: common.mapped_joints(model, mapping, p, plan))(params)
  return params, losses, pred


def fit_3d(model, joints_3d, valid, mapping, *, num_steps=DEFAULT_NUM_STEPS, lr=DEFAULT_LR,
           weights=None, align_joints=None, start=None):
  """Fit body-model parameters to GT 3D joints, a batch at once.

  Args:
    model: `body_models.BodyModel` (SMPL, SMPL-X or MANO); hand poses are fitted as PCA
      coefficients when the model was loaded with `use_pca=True`.
    joints_3d: (B, T, 3) GT joints of the set `mapping` describes, camera (or world)
      space, metres.
    valid: (B, T) weights in [0, 1] (0 = missing joint).
    mapping: `data.joint_sets.JointMapping` from the model to the GT joint set
      (`model_joint_mapping(model.family, set, num_landmarks=model.num_landmarks)`);
      its unavailable joints are ignored.
    num_steps: Adam steps (fixed: the whole fit is one compiled `lax.scan`).
    lr: initial Adam step size (radians / metres / beta units), cosine-decayed to 1%.
    weights: overrides of `DEFAULT_WEIGHTS` (and for MANO of `HAND_WEIGHTS`).
    align_joints: joint names for the initial rigid alignment (None: hips and shoulders,
      or wrist and four finger roots for MANO).
    start: a refinement: {smplx name: (B, n)} to start from (e.g. the network's
      prediction), in the GT joints' frame, with every parameter the fit optimises; the
      rigid alignment is skipped and weights['anchor'] * |params - start|^2 (every part
      but global_orient and transl) keeps each sample near it (`REFINE_WEIGHTS`).
  Returns:
    {smplx parameter name: (B, n)} (`global_orient`, `body_pose`, ..., `betas`,
    `transl`; `model(**params)` reproduces the fit in the GT joints' frame), plus
    'joints' (B, T, 3) the fitted joints, 'error' (B,) their mean distance to the valid
    GT joints in metres, and 'loss' (B, num_steps) the objective per step.
  """
  joints_3d = jnp.asarray(joints_3d, model.dtype)
  valid = jnp.asarray(valid, model.dtype)
  if joints_3d.ndim != 3 or joints_3d.shape[1:] != (len(mapping.sources), 3):
    raise ValueError(f'joints_3d has shape {joints_3d.shape}; expected '
                     f'(B, {len(mapping.sources)}, 3) for {mapping.joint_set}')
  if valid.shape != joints_3d.shape[:2]:
    raise ValueError(f'valid has shape {valid.shape}; expected {joints_3d.shape[:2]}')
  valid = valid * jnp.asarray(mapping.valid, model.dtype)[None]
  w = dict(DEFAULT_WEIGHTS)
  if model.family == 'mano':
    w.update(HAND_WEIGHTS)
  if start is not None:
    w.update(HAND_REFINE_WEIGHTS if model.family == 'mano' else REFINE_WEIGHTS)
  w.update(weights or {})
  # Only the vertices the joints are read from are skinned (a regressor's support).
  model, mapping = joint_sets.restrict_to_mapping(model, mapping)
  align_idx = tuple(int(i) for i in common.align_indices(model, mapping, align_joints))
  if start is not None:
    start = common.checked_start(model, start, joints_3d.shape[0], 'fit_3d')
  params, losses, pred = _fit(model, joints_3d, valid, start, mapping=mapping,
                              num_steps=int(num_steps), lr=float(lr),
                              weights=tuple(sorted(w.items())), align_idx=align_idx,
                              plan=common.joint_plan(model, mapping))
  dist = jnp.linalg.norm(pred - joints_3d, axis=-1)
  error = jnp.sum(dist * valid, -1) / jnp.maximum(jnp.sum(valid, -1), 1.0)
  return dict(params, joints=pred, error=error, loss=losses)


__all__ = ['DEFAULT_WEIGHTS', 'HAND_WEIGHTS', 'REFINE_WEIGHTS', 'HAND_REFINE_WEIGHTS',
           'DEFAULT_NUM_STEPS', 'DEFAULT_LR', 'fit_3d']
