"""COCO-WholeBody hands, in-the-wild mode: MANO (PCA pose) from the 21 hand keypoints of each hand
box; left hands mirrored into right ones and back.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

    python -m neuralannot_jax.main --config=configs/coco_hand.py \\
        --config.dataset.root=~/data/coco --config.body_model.path=~/models
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/coco_hand'
  config.body_model.family = 'mano'
  config.dataset.format = 'coco_wholebody'
  config.dataset.root = ''                # COCO folder: annotations/coco_wholebody_train_v1.0.json,
                                          # images/train2017/
  config.dataset.options = {'parts': ['hand'], 'min_keypoints': 6}
  config.model.mode = 'wild'
  config.train.num_steps = 20000
  config.train.lr_boundaries = (16000,)
  return config
