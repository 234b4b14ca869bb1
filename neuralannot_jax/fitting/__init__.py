"""The SMPLify-X style baseline annotator: per-sample optimisation, batched and jitted.

  fit3d.fit_3d   body-model parameters from GT 3D joints (the paper's supplementary mode)
  priors         Geman-McClure robustifier, shape / pose / elbow-knee / hand PCA priors
  common         mapped joints of one sample, Kabsch alignment, the Adam loop
"""

from neuralannot_jax.fitting import common
from neuralannot_jax.fitting import fit3d
from neuralannot_jax.fitting import priors
from neuralannot_jax.fitting.fit3d import fit_3d

__all__ = ['common', 'fit3d', 'priors', 'fit_3d']
