"""Synthetic hands: MANO from GT 3D hand joints, nothing to download.

Renders a FreiHAND-style set (stand-in MANO right hands in plausible poses, known GT), trains
the MoCap-mode annotator on it (6D rotations, the 21 GT joints in), annotates the same set and
scores the MANO pseudo-GTs against the GT. The CPU-sized training of configs/synthetic_body.py.

    python -m neuralannot_jax.main --config=configs/synthetic_hand.py
    python -m neuralannot_jax.main --config=configs/synthetic_hand.py --config.model.mode=wild
        # from 2D keypoints: MANO PCA pose, the virtual crop camera
"""

import os

from neuralannot_jax import experiment


def get_config():
  return experiment.load_config(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 'synthetic_body.py'), {
          'workdir': 'work_dir/synthetic_hand',
          'body_model.family': 'mano',
          'dataset.synthetic.kind': 'freihand',
          'dataset.synthetic.num_images': 1000,
          'model.mode': 'mocap',
          'train.num_steps': 1200,
          'train.lr_boundaries': (1000,),
      })
