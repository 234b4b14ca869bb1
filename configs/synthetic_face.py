"""Synthetic faces: FLAME from the 68 face keypoints, nothing to download.

Renders FLAME stand-in heads in the COCO-WholeBody layout (face_kpts, face_box; known GT),
trains the in-the-wild annotator on them (global and jaw rotation, shape 10, expression 10,
supervised through FLAME's landmark embedding), annotates the same set and scores the FLAME
pseudo-GTs against the GT. Sized like configs/synthetic_body.py for a CPU.

    python -m neuralannot_jax.main --config=configs/synthetic_face.py
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/synthetic_face'

  config.body_model.family = 'flame'
  config.dataset.format = 'synthetic'
  config.dataset.synthetic.kind = 'face'
  config.dataset.synthetic.num_images = 1000
  config.dataset.synthetic.size = 128

  config.model.mode = 'wild'
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
