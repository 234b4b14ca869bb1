"""The NeuralAnnot network: image backbone (+ 3D-joint encoder in MoCap mode) + regression head.

Two modes, as in NeuralAnnot (Moon et al., CVPRW 2022):
  * in-the-wild: pooled image feature (B, C) -> head -> (B, output_size);
  * MoCap (GT 3D joints exist): the root-relative GT joints go through `JointEncoder` to (B, 512),
    concatenated with the image feature before the head.

The backbone is any NNX module with `__call__(images (B, H, W, 3)) -> (B, C)` and an `out_features`
int; the head's width is a plain int (the decoder's `HeadSpec.size`). This file imports neither, so
the network knows nothing about which body model its output will be decoded into.

Precision: `dtype` is the compute dtype of the joint encoder and the head (bfloat16 on accelerators);
their parameters stay float32 and the output is always float32, so losses and decoding (rotations,
skinning) run in full precision. The backbone keeps whatever dtype it was built with.
"""

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class JointEncoder(nnx.Module):
  """GT 3D joints + validity -> a feature: flatten -> Linear -> ReLU -> Linear -> ReLU.

  Invalid joints are replaced by zeros and the validity itself is an input channel, so the network
  can tell "joint at the root" from "joint unknown"; with the `where` below, whatever an invalid
  joint holds (garbage, NaN) never reaches the output.
  """

  def __init__(self, num_joints: int, hidden: int = 512, out: int = 512, *, rngs: nnx.Rngs,
               dtype=jnp.float32, scale: float = 1.0):
    """Args: scale: metres that become 1 at the input (about the joints' spread, so that
    they weigh like the validity channel and the Linear's default init sees unit inputs)."""
    self.num_joints = num_joints
    self.scale = float(scale)
    self.out_features = out
    self.dtype = dtype
    self.fc1 = nnx.Linear(num_joints * 4, hidden, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, out, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)

  def __call__(self, joints, valid):
    """Encodes joints.

    Args:
      joints: (B, K, 3) root-relative 3D joints in metres, K == num_joints.
      valid: (B, K) validity, bool or {0, 1}.
    Returns:
      (B, out) features in `dtype`.
    """
    joints = jnp.asarray(joints)
    valid = jnp.asarray(valid)
    if joints.ndim != 3 or joints.shape[1:] != (self.num_joints, 3):
      raise ValueError(f'JointEncoder: joints must be (B, {self.num_joints}, 3), got {joints.shape}')
    if valid.shape != joints.shape[:2]:
      raise ValueError(f'JointEncoder: valid must be {joints.shape[:2]} (B, K), got {valid.shape}')
    mask = valid[..., None] > 0
    # `where`, not a product: 0 * NaN is NaN, and datasets mark missing joints in either way.
    x = jnp.where(mask, joints / self.scale, 0).astype(self.dtype)
    x = jnp.concatenate([x, mask.astype(self.dtype)], axis=-1)  # (B, K, 4)
    x = x.reshape(x.shape[0], -1)  # (B, 4K)
    x = nnx.relu(self.fc1(x))
    return nnx.relu(self.fc2(x))


def small_init(scale: float = 0.01):
  """Glorot-uniform scaled by `scale` (the "gain"): starts the regressor near its bias."""
  return nnx.initializers.variance_scaling(scale**2, 'fan_avg', 'uniform')


class Annotator(nnx.Module):
  """Backbone (+ JointEncoder) -> concatenation -> [Linear -> ReLU] -> Linear (B, output_size).

  Attributes:
    backbone: the image feature extractor passed in (trained together with the head).
    joint_encoder: a JointEncoder in MoCap mode, None in in-the-wild mode.
    mocap: True when built with `num_joints_3d`.
  """

  def __init__(self, backbone: nnx.Module, output_size: int, *,
               num_joints_3d: Optional[int] = None, hidden: Optional[int] = None,
               rngs: nnx.Rngs, dtype=jnp.float32, joint_feature_size: int = 512,
               init_scale: float = 0.01, output_bias=None, joint_scale: float = 1.0):
    """Builds the network.

    Args:
      backbone: NNX module, images (B, H, W, 3) -> (B, C), with an int `out_features` == C.
      output_size: width of the head's output (the decoder's `HeadSpec.size`).
      num_joints_3d: K of the GT 3D joints; set it for MoCap mode, leave None for in-the-wild.
      hidden: if set, one hidden Linear + ReLU of this width before the output layer.
      rngs: parameter initialisation keys.
      dtype: compute dtype of the encoder and head (parameters stay float32).
      joint_feature_size: width of the JointEncoder's hidden and output layers (512 in the paper).
      init_scale: gain of the output layer's init; small, so the first predictions sit at
        `output_bias` (zero unless given: the decoder adds the mean pose, or 0 means identity).
      output_bias: optional (output_size,) initial bias of the output layer, e.g. mean parameters.
      joint_scale: metres that the JointEncoder maps to 1 (its `scale`): about the spread of
        the root-relative joints (tens of centimetres for a body, a few for a hand).
    """
    if not isinstance(getattr(backbone, 'out_features', None), (int, np.integer)):
      raise TypeError('Annotator: the backbone needs an int `out_features` (its feature width C), '
                      f'got {getattr(backbone, "out_features", None)!r}')
    self.backbone = backbone
    self.output_size = int(output_size)
    self.num_joints_3d = num_joints_3d
    self.dtype = dtype
    self.mocap = num_joints_3d is not None
    in_features = int(backbone.out_features)
    if self.mocap:
      self.joint_encoder = JointEncoder(num_joints_3d, joint_feature_size, joint_feature_size,
                                        rngs=rngs, dtype=dtype, scale=joint_scale)
      in_features += joint_feature_size
    else:
      self.joint_encoder = None
    if hidden:
      self.hidden = nnx.Linear(in_features, hidden, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
      in_features = hidden
    else:
      self.hidden = None
    if output_bias is None:
      bias_init = nnx.initializers.zeros
    else:
      bias = np.asarray(output_bias, np.float32)
      if bias.shape != (self.output_size,):
        raise ValueError(f'Annotator: output_bias must be ({self.output_size},), got {bias.shape}')
      bias_init = lambda key, shape, dtype=jnp.float32: jnp.asarray(bias, dtype)
    self.head = nnx.Linear(in_features, self.output_size, dtype=dtype, param_dtype=jnp.float32,
                           kernel_init=small_init(init_scale), bias_init=bias_init, rngs=rngs)

  def from_joints(self, joints_3d, joints_3d_valid):
    """The MoCap head on the GT joints alone, the image feature held at zero: (B, output_size).

    For a warm start of the joint branch (`train.warm_start_joints`): cheap, as no image
    is read. The backbone is not called, so its state (BatchNorm statistics) is untouched.
    """
    if not self.mocap:
      raise ValueError('Annotator.from_joints: only a MoCap-mode network has a joint branch')
    b = joints_3d.shape[0]
    features = jnp.concatenate(
        [jnp.zeros((b, self.backbone.out_features), self.dtype),
         self.joint_encoder(joints_3d, joints_3d_valid)], axis=-1)
    if self.hidden is not None:
      features = nnx.relu(self.hidden(features))
    return self.head(features).astype(jnp.float32)

  def __call__(self, images, joints_3d=None, joints_3d_valid=None):
    """Regresses the head output.

    Args:
      images: (B, H, W, 3) crops, as the backbone expects them.
      joints_3d: (B, K, 3) root-relative GT joints (MoCap mode only; required there).
      joints_3d_valid: (B, K) their validity (MoCap mode only; required there).
    Returns:
      (B, output_size) float32.
    """
    given = joints_3d is not None or joints_3d_valid is not None
    if self.mocap and (joints_3d is None or joints_3d_valid is None):
      raise ValueError(f'Annotator is in MoCap mode (num_joints_3d={self.num_joints_3d}): pass '
                       'both joints_3d (B, K, 3) and joints_3d_valid (B, K)')
    if not self.mocap and given:
      raise ValueError('Annotator is in in-the-wild mode (num_joints_3d=None) but got 3D joints: '
                       'build it with num_joints_3d=K to use them')
    features = self.backbone(images).astype(self.dtype)  # (B, C)
    if features.ndim != 2 or features.shape[1] != self.backbone.out_features:
      raise ValueError(f'Annotator: the backbone returned {features.shape}, expected '
                       f'(B, {self.backbone.out_features})')
    if self.mocap:
      features = jnp.concatenate(
          [features, self.joint_encoder(joints_3d, joints_3d_valid)], axis=-1)
    if self.hidden is not None:
      features = nnx.relu(self.hidden(features))
    return self.head(features).astype(jnp.float32)


def count_params(model: nnx.Module, filter=nnx.Param) -> int:
  """Number of scalars in the model's variables of type `filter` (trainable parameters by default)."""
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, filter))))
