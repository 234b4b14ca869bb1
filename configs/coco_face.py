"""COCO-WholeBody faces, in-the-wild mode: FLAME (global and jaw rotation, shape, expression) from the
68 face keypoints through FLAME's landmark embedding.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

    python -m neuralannot_jax.main --config=configs/coco_face.py \\
        --config.dataset.root=~/data/coco --config.body_model.path=~/models
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/coco_face'
  config.body_model.family = 'flame'
  config.dataset.format = 'coco_wholebody'
  config.dataset.root = ''                # COCO folder: annotations/coco_wholebody_train_v1.0.json,
                                          # images/train2017/
  config.dataset.options = {'parts': ['face'], 'min_keypoints': 10}
  config.model.mode = 'wild'
  config.train.num_steps = 20000
  config.train.lr_boundaries = (16000,)
  return config
