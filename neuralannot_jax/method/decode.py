"""Head outputs -> body-model parameters.

The annotator's head emits one flat vector per sample; `HeadSpec` says what each slice
means for a family and a mode, and `decode` turns the slices into parameters in the
smplx library's names (axis-angle), ready for `body_models.forward`:

  mode 'mocap' (3D GT joints constrain every joint): each pose joint of
    `skeletons.POSE_PARTS[family]` as a 6D rotation (first two matrix columns, the layout
    of `body_models.rotations`), as Hand4Whole's heads do.
  mode 'wild' (2D GT only, so priors carry the depth-ambiguous part): the body pose of
    SMPL / SMPL-X as a VPoser latent, hand poses as MANO PCA coefficients; the global
    orientation and the jaw / neck stay 6D.
  Both: eye poses (and FLAME's neck, which the released FLAME files do not carry) are not
  predicted (zero), as in the authors' code; betas (10),
  expression (10) for SMPL-X / FLAME, and 3 camera numbers -> `transl` through
  `camera.camera_translation`.

Rotations predicted as rotations (6D, VPoser) are the joints' final local rotations;
PCA coefficients are offsets from the model's mean hand, as in smplx. So that
`forward(model, **decode(...))` and `forward_rotmats(model, **decode_rotmats(...))` give
the same mesh, pass `pose_mean=model.pose_mean` to both when the model has a mean hand
pose (SMPL-X / MANO loaded with flat_hand_mean=False); `decode` then subtracts it from the
rotation-predicted parts, which the forward pass adds back.
"""

import dataclasses
from typing import Optional, Tuple

import jax.numpy as jnp
import numpy as np

from body_models import rotations
from body_models import skeletons
from body_models import vposer
from neuralannot_jax.method import camera

MODES = ('mocap', 'wild')

# Ways a pose part is predicted.
ROT6D, VPOSER, PCA, FIXED = 'rot6d', 'vposer', 'pca', 'fixed'
# Parts the head never predicts: the eyes follow the head (authors' code sets them to 0).
FIXED_PARTS = ('leye_pose', 'reye_pose')
# The 6D (first two matrix columns, row by row) of diag(1, -1, -1): a model (y up, facing +z)
# turned upright and towards an OpenCV camera (y down, looking along +z).
FACING_CAMERA_6D = np.array([1, 0, 0, -1, 0, 0], np.float32)
# VPoser covers the 21 body joints SMPL and SMPL-X share (no hands: SMPL's 22, 23).
VPOSER_JOINTS = 21


@dataclasses.dataclass(frozen=True)
class Slot:
  """One slice of the head output.

  name: the parameter it becomes ('global_orient', 'body_pose', ..., 'betas',
    'expression', 'camera'); kind: 'rot6d', 'vposer', 'pca' or 'linear';
  joints: pose joints it covers (0 for non-pose slots); width: numbers in the slice.
  """
  name: str
  kind: str
  joints: int
  width: int


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  """What the head predicts for one family and mode. Hashable: pass it as static to jit.

  Attributes:
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    mode: 'mocap' or 'wild' (see the module docstring).
    num_betas: shape coefficients (10, as the released pseudo-GTs).
    num_expression: expression coefficients (SMPL-X, FLAME only).
    latent_dim: VPoser latent size (32 for the released VPoser v2).
    num_hand_comps: MANO PCA coefficients per hand in 'wild' mode.
    crop_size: network input side S (or (H, W)), for the camera.
    focal: virtual focal length (fx, fy) on the crop, pixels.
    camera_3d_size: metres; None = the authors' value for the family (2.5 body, 0.4
      hand / face; see `camera`).
  """
  family: str
  mode: str
  num_betas: int = 10
  num_expression: int = 10
  latent_dim: int = 32
  num_hand_comps: int = 6
  crop_size: object = 256
  focal: Tuple[float, float] = camera.FOCAL
  camera_3d_size: Optional[float] = None

  def __post_init__(self):
    if self.family not in skeletons.FAMILIES:
      raise ValueError(f'HeadSpec: unknown family {self.family!r}; expected one of '
                       f'{skeletons.FAMILIES}')
    if self.mode not in MODES:
      raise ValueError(f'HeadSpec: unknown mode {self.mode!r}; expected one of {MODES}')
    if isinstance(self.crop_size, list):
      object.__setattr__(self, 'crop_size', tuple(self.crop_size))
    object.__setattr__(self, 'focal', tuple(float(f) for f in self.focal))

  def pose_kind(self, name):
    """How pose part `name` is predicted: 'rot6d', 'vposer', 'pca' or 'fixed'."""
    if name in FIXED_PARTS or (self.family == 'flame' and name == 'neck_pose'):
      # FLAME's released pseudo-GTs have no neck: the head's rotation is global_orient.
      return FIXED
    if self.mode == 'wild':
      if name == 'body_pose' and self.family in ('smpl', 'smplx'):
        return VPOSER
      if name in skeletons.HAND_POSE_PARTS[self.family]:
        return PCA
    return ROT6D

  @property
  def slots(self):
    """Tuple of `Slot`s in output order: pose parts (family order), betas, expression, camera."""
    out = []
    for name, joints in skeletons.POSE_PARTS[self.family]:
      kind = self.pose_kind(name)
      if kind == ROT6D:
        out.append(Slot(name, kind, joints, 6 * joints))
      elif kind == VPOSER:
        out.append(Slot(name, kind, joints, self.latent_dim))
      elif kind == PCA:
        out.append(Slot(name, kind, joints, self.num_hand_comps))
    out.append(Slot('betas', 'linear', 0, self.num_betas))
    if skeletons.HAS_EXPRESSION[self.family]:
      out.append(Slot('expression', 'linear', 0, self.num_expression))
    out.append(Slot('camera', 'linear', 0, 3))
    return tuple(out)

  @property
  def size(self):
    """Total width of the head output."""
    return sum(s.width for s in self.slots)

  @property
  def depth_size(self):
    """The camera_3d_size in use (metres)."""
    if self.camera_3d_size is not None:
      return float(self.camera_3d_size)
    return camera.default_camera_3d_size(self.family)

  def split(self, raw):
    """(..., size) head output -> {slot name: slice}.

    6D slots come out as (..., joints, 6); the others as (..., width).
    """
    raw = jnp.asarray(raw)
    if raw.shape[-1] != self.size:
      raise ValueError(f'HeadSpec.split: the head output has shape {raw.shape}; the '
                       f'{self.family}/{self.mode} head predicts (..., {self.size})')
    out, offset = {}, 0
    for slot in self.slots:
      value = raw[..., offset:offset + slot.width]
      if slot.kind == ROT6D:
        value = value.reshape(value.shape[:-1] + (slot.joints, 6))
      out[slot.name] = value
      offset += slot.width
    return out

  def neutral(self, dtype=np.float32):
    """(size,) the head output of a plausible mean subject: a natural bias for the last layer.

    It decodes to: `global_orient` upright and facing the camera (a half turn about x:
    the models are y-up and face +z, the camera frame is OpenCV's, y down and looking
    along +z); every other rotation-predicted joint at identity (the mean pose is added
    by the decoder where the model has one), zero latent / PCA / shape / expression; and
    the camera at (0, 0, the depth at which a subject of typical size fills the crop as
    the annotation box does, `camera.typical_depth_logit`).
    """
    parts = []
    for slot in self.slots:
      if slot.kind == ROT6D:
        joints = np.tile(np.array([1, 0, 0, 1, 0, 0], dtype), (slot.joints, 1))
        if slot.name == 'global_orient':
          joints[0] = FACING_CAMERA_6D
        parts.append(joints.reshape(-1))
      elif slot.name == 'camera':
        parts.append(np.array([0, 0, camera.typical_depth_logit(self.family)], dtype))
      else:
        parts.append(np.zeros(slot.width, dtype))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------


def _check(spec, raw_outputs):
  missing = [s.name for s in spec.slots if s.name not in raw_outputs]
  if missing:
    raise ValueError(f'decode: the {spec.family}/{spec.mode} head outputs lack {missing}; '
                     f'give the dict from HeadSpec.split')
  for slot in spec.slots:
    shape = jnp.shape(raw_outputs[slot.name])
    want = (slot.joints, 6) if slot.kind == ROT6D else (slot.width,)
    if tuple(shape[-len(want):]) != want or len(shape) < len(want):
      raise ValueError(f'decode: {slot.name!r} has shape {shape}; expected (..., '
                       f'{", ".join(map(str, want))}) for the {spec.family}/{spec.mode} head')


def _pose_offsets(spec):
  """{part name: (first joint, joints)} in the kinematic order of the family."""
  out, offset = {}, 0
  for name, joints in skeletons.POSE_PARTS[spec.family]:
    out[name] = (offset, joints)
    offset += joints
  return out


def _mean_part(pose_mean, first, joints, dtype):
  """(joints, 3) slice of the model's pose mean, or zeros."""
  if pose_mean is None:
    return jnp.zeros((joints, 3), dtype)
  return jnp.asarray(pose_mean, dtype)[first:first + joints]


def _components(hand_components, name):
  """The (C, 45) PCA matrix for hand part `name`, or None."""
  if hand_components is None:
    return None
  if isinstance(hand_components, dict):
    if name not in hand_components:
      raise ValueError(f'decode: hand_components has no matrix for {name!r} '
                       f'(it has {sorted(hand_components)})')
    return hand_components[name]
  return hand_components


def _check_components(comps, spec, name, dtype):
  """The (C, 45) matrix as an array of `dtype`, or a clear error when C is not the head's."""
  comps = jnp.asarray(comps, dtype)
  if comps.shape != (spec.num_hand_comps, 45):
    raise ValueError(f'decode: hand_components for {name!r} has shape {comps.shape}; the head '
                     f'predicts {spec.num_hand_comps} coefficients, so (C, 45) = '
                     f'({spec.num_hand_comps}, 45) (load the model with num_pca_comps='
                     f'{spec.num_hand_comps})')
  return comps


def _vposer_params(spec, vposer_params):
  if vposer_params is None:
    raise ValueError(f'decode: the {spec.family} wild head predicts the body pose as a VPoser '
                     'latent; pass vposer_params= (body_models.vposer.load or init_params)')
  latent, _, joints = vposer.dimensions(vposer_params)
  if latent != spec.latent_dim or joints != VPOSER_JOINTS:
    raise ValueError(f'decode: the VPoser weights have latent {latent} and {joints} joints; '
                     f'the head predicts a latent of {spec.latent_dim} for {VPOSER_JOINTS} joints')
  return vposer_params


def _batch_shape(spec, raw_outputs):
  slot = spec.slots[0]
  value = raw_outputs[slot.name]
  return tuple(jnp.shape(value)[:-2 if slot.kind == ROT6D else -1])


def _rest(spec, raw_outputs):
  """betas, expression and transl."""
  out = {'betas': raw_outputs['betas']}
  if skeletons.HAS_EXPRESSION[spec.family]:
    out['expression'] = raw_outputs['expression']
  out['transl'] = camera.camera_translation(raw_outputs['camera'], spec.crop_size,
                                            spec.focal, spec.depth_size)
  return out


def decode(spec, raw_outputs, *, vposer_params=None, hand_components=None, pose_mean=None):
  """Head outputs -> body-model parameters (smplx names, axis-angle).

  Args:
    spec: the `HeadSpec` of the head.
    raw_outputs: `spec.split(raw)`: {slot name: (..., joints, 6) or (..., width)}.
    vposer_params: VPoser weights; needed when the body pose is a latent ('wild' SMPL /
      SMPL-X). `vposer.decode` gives 21 joints; SMPL's two hand joints (22, 23) are zero.
    hand_components: for 'wild' hands: a (C, 45) matrix (every hand part) or {part name:
      (C, 45)} such as `model.hand_components`: the coefficients become a 45-d axis-angle
      offset from the mean hand, for a model loaded with use_pca=False. None passes the C
      coefficients through, for a model loaded with use_pca=True and num_pca_comps=C.
    pose_mean: (J, 3) `model.pose_mean`, or None (zeros); see the module docstring.
  Returns:
    {pose part: (..., 3 * joints) (or (..., C) PCA coefficients, see above); 'betas':
    (..., num_betas); 'expression': (..., num_expression) (SMPL-X, FLAME); 'transl':
    (..., 3) camera translation, metres}.
  """
  _check(spec, raw_outputs)
  batch = _batch_shape(spec, raw_outputs)
  dtype = jnp.asarray(raw_outputs['camera']).dtype
  offsets = _pose_offsets(spec)
  params = {}
  for name, joints in skeletons.POSE_PARTS[spec.family]:
    first = offsets[name][0]
    kind = spec.pose_kind(name)
    mean = _mean_part(pose_mean, first, joints, dtype)
    if kind == FIXED:
      aa = jnp.zeros(batch + (joints, 3), dtype)
    elif kind == ROT6D:
      aa = rotations.rot6d_to_axis_angle(raw_outputs[name]) - mean
    elif kind == VPOSER:
      body = vposer.decode(_vposer_params(spec, vposer_params), raw_outputs[name])
      body = body.reshape(batch + (VPOSER_JOINTS, 3)).astype(dtype)
      # SMPL's body_pose also covers the two hand joints; VPoser does not model them.
      body = jnp.concatenate(
          [body, jnp.zeros(batch + (joints - VPOSER_JOINTS, 3), dtype)], axis=-2)
      aa = body - mean
    else:  # PCA
      comps = _components(hand_components, name)
      coeffs = raw_outputs[name]
      if comps is None:
        params[name] = coeffs
        continue
      aa = (coeffs @ _check_components(comps, spec, name, dtype)).reshape(batch + (joints, 3))
    params[name] = aa.reshape(batch + (3 * joints,))
  params.update(_rest(spec, raw_outputs))
  return params


def decode_rotmats(spec, raw_outputs, *, vposer_params=None, hand_components=None,
                   pose_mean=None):
  """Head outputs -> local rotation matrices, for `body_models.forward_rotmats`.

  Skips the matrix -> axis-angle -> matrix round trip of `decode` + `forward`: 6D and
  VPoser parts give matrices directly. Arguments as `decode`, except that PCA hands need
  `hand_components`, and `pose_mean` is added to the PCA and fixed parts (the
  rotation-predicted parts are final rotations already).

  Returns:
    {'rotmats': (..., J, 3, 3) every kinematic joint, 'betas', 'expression' (SMPL-X,
    FLAME), 'transl'}: `forward_rotmats(model, **result)`.
  """
  _check(spec, raw_outputs)
  batch = _batch_shape(spec, raw_outputs)
  dtype = jnp.asarray(raw_outputs['camera']).dtype
  offsets = _pose_offsets(spec)
  mats = []
  for name, joints in skeletons.POSE_PARTS[spec.family]:
    first = offsets[name][0]
    kind = spec.pose_kind(name)
    mean = _mean_part(pose_mean, first, joints, dtype)
    if kind == FIXED:
      rot = jnp.broadcast_to(rotations.axis_angle_to_matrix(mean), batch + (joints, 3, 3))
    elif kind == ROT6D:
      rot = rotations.rot6d_to_matrix(raw_outputs[name])
    elif kind == VPOSER:
      rot = vposer.decode_matrices(_vposer_params(spec, vposer_params), raw_outputs[name])
      eye = jnp.broadcast_to(jnp.eye(3, dtype=dtype), batch + (joints - VPOSER_JOINTS, 3, 3))
      rot = jnp.concatenate([rot.astype(dtype), eye], axis=-3)
    else:  # PCA
      comps = _components(hand_components, name)
      if comps is None:
        raise ValueError(f'decode_rotmats: {name!r} is predicted as PCA coefficients; '
                         'pass hand_components= (model.hand_components or the file\'s matrix)')
      aa = (raw_outputs[name] @ _check_components(comps, spec, name, dtype)).reshape(
          batch + (joints, 3))
      rot = rotations.axis_angle_to_matrix(aa + mean)
    mats.append(rot)
  out = {'rotmats': jnp.concatenate(mats, axis=-3)}
  out.update(_rest(spec, raw_outputs))
  return out


__all__ = ['MODES', 'FIXED_PARTS', 'FACING_CAMERA_6D', 'VPOSER_JOINTS', 'Slot', 'HeadSpec',
           'decode', 'decode_rotmats']
