"""The embedded default: everything generated on this machine, nothing to download.

    python -m neuralannot_jax.main --config=configs/synthetic_body.py
    python -m neuralannot_jax.main --config=configs/synthetic_body.py --config.body_model.path=~/models
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.workdir = 'work_dir/synthetic_body'
  config.seed = 0

  # Body model: a file or a folder in the smplx library's layout. Empty: generate the
  # procedural stand-ins (official file layouts, real sizes) into <workdir>/body_models.
  config.body_model = ml_collections.ConfigDict()
  config.body_model.family = 'smpl'
  config.body_model.path = ''
  config.body_model.gender = 'neutral'
  config.body_model.num_betas = 10
  return config
