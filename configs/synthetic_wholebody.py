"""The whole-body demo on this machine: body (SMPL-X), hands (MANO) and face (FLAME) annotated
separately on a synthetic COCO-WholeBody-style set and merged into SMPL-X pseudo-GTs.

Renders SMPL-X stand-in people with posed fingers, jaw and expression (known GT SMPL-X,
`data.synthetic.wholebody`), trains the three in-the-wild annotators on their crops, merges
the three annotations per person and scores each part against the GT. Small backbones,
crops and step counts so the whole job runs in about 15 minutes on a 2-core CPU.

    python -m neuralannot_jax.main --config=configs/synthetic_wholebody.py
    python -m neuralannot_jax.main --config=configs/synthetic_wholebody.py \\
        --config.parts.hand.train.num_steps=600 --workdir=runs/wholebody
"""

from neuralannot_jax.wholebody import run as wholebody_run


def _small(part, crop_size, num_steps, batch_size=32):
  """A ResNet-18 part trained briefly without augmentation (the demo annotates the set it
  trains on after a short run: augmentation would only slow its convergence here)."""
  part.model.depth = 18
  part.model.crop_size = crop_size
  part.train.augment = False
  part.train.batch_size = batch_size
  part.train.lr = 1e-3
  part.train.num_steps = num_steps
  part.train.lr_boundaries = (int(num_steps * 0.8),)
  part.train.checkpoint_every = 100
  part.train.log_every = 10
  part.train.num_workers = 1   # as configs/synthetic_body.py (docs/cpu.md)
  part.annotate.batch_size = 32


def get_config():
  config = wholebody_run.wholebody_config()
  config.workdir = 'work_dir/synthetic_wholebody'
  config.dataset.format = 'synthetic'
  config.dataset.synthetic.num_images = 320
  # Hands need the pixels: at 288 px a hand box is 19-48 px (10th-90th percentile).
  config.dataset.synthetic.size = 288

  body = config.parts.body
  _small(body, crop_size=64, num_steps=400)
  body.dataset.options = {'min_keypoints': 6}
  # The VPoser-style prior trained on the synthetic pose sampler (seconds to a minute).
  body.model.pose_prior.num_steps = 1000

  hand = config.parts.hand
  _small(hand, crop_size=48, num_steps=400)
  hand.dataset.options = {'min_keypoints': 6}

  face = config.parts.face
  _small(face, crop_size=48, num_steps=300)
  face.dataset.options = {'min_keypoints': 10}
  return config
