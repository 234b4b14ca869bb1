"""MSCOCO person keypoints, in-the-wild mode (GT 2D joints only): SMPL from the 17 body keypoints.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

COCO's annotated hips sit lower and wider than the model's hip joints: the run requires the
COCO hip regressor the authors use, and stops naming it when it is missing. SMPL:
J_regressor_coco_hip_smpl.npy (17 x 6890, I2L-MeshNet's data/MSCOCO); SMPL-X:
J_regressor_coco_hip_smplx.npy (2 x 10475: left hip, right hip). The other keypoints are the
model's points of the same names (nose, eyes, ears: vertices; limbs: joints), as theirs are.

    python -m neuralannot_jax.main --config=configs/coco_body.py \\
        --config.dataset.root=~/data/coco --config.body_model.path=~/models \\
        --config.model.vposer_path=~/models/vposer_v2.npz \\
        --config.model.regressor=~/models/J_regressor_coco_hip_smpl.npy
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/coco_body'
  config.body_model.family = 'smpl'       # or 'smplx'
  config.dataset.format = 'coco'
  config.dataset.root = ''                # COCO folder: annotations/person_keypoints_train2017.json,
                                          # images/train2017/
  config.dataset.options = {'min_keypoints': 6}
  config.model.mode = 'wild'
  # Required: the COCO hips come from it (SMPL-X: J_regressor_coco_hip_smplx.npy).
  config.model.regressor = ''             # ~/models/J_regressor_coco_hip_smpl.npy
  # ~150k persons / 192 = ~780 steps an epoch: ~50 epochs, lr / 10 for the last fifth.
  config.train.num_steps = 40000
  config.train.lr_boundaries = (32000,)
  return config
