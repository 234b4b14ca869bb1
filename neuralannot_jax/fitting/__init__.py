"""The SMPLify-X style baseline annotator: per-sample optimisation, batched and jitted.

  fit3d.fit_3d   body-model parameters from GT 3D joints (the paper's supplementary mode)
  fit2d.fit_2d   from GT 2D joints: torso camera init, flipped try, staged priors, VPoser
  refine2d.refine_2d  from GT 2D joints, started from and kept near a network's prediction
  priors         Geman-McClure robustifier, shape / pose / elbow-knee / hand PCA priors
  common         mapped joints of one sample, Kabsch alignment, the Adam loops
"""

from neuralannot_jax.fitting import common
from neuralannot_jax.fitting import fit2d
from neuralannot_jax.fitting import fit3d
from neuralannot_jax.fitting import priors
from neuralannot_jax.fitting import refine2d
from neuralannot_jax.fitting.fit2d import fit_2d
from neuralannot_jax.fitting.fit3d import fit_3d

__all__ = ['common', 'fit2d', 'fit3d', 'priors', 'refine2d', 'fit_2d', 'fit_3d']
