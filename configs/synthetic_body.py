"""The embedded default: everything generated on this machine, nothing to download.

Renders a synthetic Human3.6M-style set (SMPL stand-in people, 4 cameras, known GT), trains
the MoCap-mode annotator on it (GT 3D joints in), annotates it and scores the pseudo-GTs
against the GT. A small backbone and crop (ResNet-18, 64 px) so the whole job runs in about
12 minutes on a 2-core CPU (BENCHMARKS.md).

    python -m neuralannot_jax.main --config=configs/synthetic_body.py
    python -m neuralannot_jax.main --config=configs/synthetic_body.py --config.body_model.path=~/models
    python -m neuralannot_jax.main --config=configs/synthetic_body.py \\
        --config.dataset.synthetic.kind=coco --config.model.mode=wild     # from 2D keypoints
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/synthetic_body'

  config.dataset.format = 'synthetic'
  config.dataset.synthetic.kind = 'h36m'
  config.dataset.synthetic.num_images = 1200
  config.dataset.synthetic.size = 128

  config.model.mode = 'mocap'
  config.model.depth = 18
  config.model.crop_size = 64

  # The demo annotates the set it trains on after a short run: augmentation (a regulariser
  # for long runs) would only slow its convergence here.
  config.train.augment = False
  config.train.batch_size = 32
  # The joint branch first, on the GT 3D joints alone (under 3 minutes on 2 cores): on a
  # CPU budget most of what the MoCap annotator learns (`train.warm_start_joints`). 10000
  # steps instead of 6000: MPJPE 25.4 -> 23.8 mm. Then 1000 steps of the whole network
  # (7.4 minutes): 1500 gave 23.75 mm instead of 24.96 for 3.7 minutes more.
  config.train.warm_start.steps = 10000
  config.train.lr = 1e-3
  config.train.num_steps = 1000
  config.train.lr_boundaries = (800,)
  config.train.checkpoint_every = 100
  config.train.log_every = 10
  # One image-loading thread: on 2 cores more of them compete with XLA's compute threads
  # (docs/cpu.md: 77 images/s with 1 against 63 with 2 and 62 with 4).
  config.train.num_workers = 1
  config.annotate.batch_size = 32
  return config
