"""FreiHAND training set, MoCap mode (GT 3D joints): right-hand MANO from the 21 hand joints.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

    python -m neuralannot_jax.main --config=configs/freihand_hand.py \\
        --config.dataset.root=~/data/FreiHAND --config.body_model.path=~/models
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/freihand_hand'
  config.body_model.family = 'mano'
  config.dataset.format = 'freihand'
  config.dataset.root = ''                # folder of training_{xyz,K,mano}.json and training/rgb/
  config.dataset.options = {'vertices': False}
  config.model.mode = 'mocap'
  config.train.num_steps = 20000
  config.train.lr_boundaries = (16000,)
  return config
