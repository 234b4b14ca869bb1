"""Human3.6M, MoCap mode (GT 3D joints): SMPL from the 17 H36M joints of the training subjects.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

Human3.6M's joints are marker-based, not SMPL's: the run requires the vertex regressor the
authors use, J_regressor_h36m_correct.npy (17 x 6890, I2L-MeshNet's data/Human36M; for
SMPL-X, Hand4Whole's J_regressor_h36m_smplx.npy), and stops naming it when it is missing.

    python -m neuralannot_jax.main --config=configs/h36m_body.py \\
        --config.dataset.root=~/data/Human36M --config.body_model.path=~/models \\
        --config.model.regressor=~/models/J_regressor_h36m_correct.npy
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/h36m_body'
  config.body_model.family = 'smpl'
  config.dataset.format = 'h36m'
  config.dataset.root = ''                # Human3.6M folder: annotations/Human36M_subject*_*.json, images/
  # Every 5th frame of subjects 1, 5, 6, 7, 8, as the common training protocol.
  config.dataset.options = {'frame_stride': 5}
  config.model.mode = 'mocap'
  # Required: the 17 joints are fitted and scored through it (not matched by name).
  config.model.regressor = ''             # ~/models/J_regressor_h36m_correct.npy
  config.train.num_steps = 30000
  config.train.lr_boundaries = (24000,)
  return config
