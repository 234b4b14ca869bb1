"""InterHand2.6M training set, MoCap mode (GT 3D joints): MANO for every annotated hand, left hands
mirrored into right ones for the network and mirrored back in the output.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

    python -m neuralannot_jax.main --config=configs/interhand_hand.py \\
        --config.dataset.root=~/data/InterHand2.6M --config.body_model.path=~/models
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/interhand_hand'
  config.body_model.family = 'mano'
  config.dataset.format = 'interhand'
  config.dataset.root = ''                # InterHand2.6M folder: annotations/train/, images/train/
  config.model.mode = 'mocap'
  config.train.num_steps = 40000
  config.train.lr_boundaries = (32000,)
  return config
