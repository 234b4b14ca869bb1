"""Synthetic hands: MANO from GT 3D hand joints, nothing to download.

Renders a FreiHAND-style set (stand-in MANO right hands in plausible poses, known GT), trains
the MoCap-mode annotator on it (6D rotations, the 21 GT joints in), annotates the same set and
scores the MANO pseudo-GTs against the GT. Sized like configs/synthetic_body.py for a CPU.

    python -m neuralannot_jax.main --config=configs/synthetic_hand.py
    python -m neuralannot_jax.main --config=configs/synthetic_hand.py --config.model.mode=wild
        # from 2D keypoints: MANO PCA pose, the virtual crop camera
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/synthetic_hand'

  config.body_model.family = 'mano'
  config.dataset.format = 'synthetic'
  config.dataset.synthetic.kind = 'freihand'
  config.dataset.synthetic.num_images = 1000
  config.dataset.synthetic.size = 128

  config.model.mode = 'mocap'
  config.model.depth = 18
  config.model.crop_size = 64

  config.train.augment = False
  config.train.batch_size = 32
  config.train.lr = 1e-3
  config.train.num_steps = 1200
  config.train.lr_boundaries = (1000,)
  config.train.checkpoint_every = 100
  config.train.log_every = 10
  config.train.num_workers = 2
  config.annotate.batch_size = 32
  return config
