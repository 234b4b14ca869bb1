"""3DPW training set, in-the-wild mode: SMPL from the 2D joints shipped with the set (OpenPose
detections in the '_latest' json); the GT SMPL fits score the result.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

    python -m neuralannot_jax.main --config=configs/pw3d_body.py \\
        --config.dataset.root=~/data/3DPW --config.body_model.path=~/models
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/pw3d_body'
  config.body_model.family = 'smpl'
  config.dataset.format = 'pw3d'
  config.dataset.root = ''                # folder of 3DPW_latest_train.json and imageFiles/
  config.dataset.options = {'openpose': True,
                            'annotation_file': '3DPW_latest_train.json'}
  config.model.mode = 'wild'
  config.train.num_steps = 20000
  config.train.lr_boundaries = (16000,)
  return config
