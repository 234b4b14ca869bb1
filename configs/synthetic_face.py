"""Synthetic faces: FLAME from the 68 face keypoints, nothing to download.

Renders FLAME stand-in heads in the COCO-WholeBody layout (face_kpts, face_box; known GT),
trains the in-the-wild annotator on them (global and jaw rotation, shape 10, expression 10,
supervised through FLAME's landmark embedding), annotates the same set and scores the FLAME
pseudo-GTs against the GT. The CPU-sized training of configs/synthetic_body.py.

    python -m neuralannot_jax.main --config=configs/synthetic_face.py
"""

import os

from neuralannot_jax import experiment


def get_config():
  return experiment.load_config(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 'synthetic_body.py'), {
          'workdir': 'work_dir/synthetic_face',
          'body_model.family': 'flame',
          'dataset.synthetic.kind': 'face',
          'dataset.synthetic.num_images': 1000,
          'model.mode': 'wild',
          'train.num_steps': 1200,
          'train.lr_boundaries': (1000,),
      })
