"""MPI-INF-3DHP, MoCap mode (GT 3D joints): SMPL from its 17 joints.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

MPI-INF-3DHP's 17 joints are Human3.6M's, not SMPL's: the run requires a vertex regressor of
them, and stops naming it when it is missing. The authors read MPI-INF-3DHP's joints (MuCo-3DHP,
I2L-MeshNet) through Human3.6M's regressor, J_regressor_h36m_correct.npy (I2L-MeshNet's
data/Human36M; SMPL-X: Hand4Whole's J_regressor_h36m_smplx.npy); write it in MPI-INF-3DHP's
joint order once (Human3.6M's 'Neck/Nose' point is MPI-INF-3DHP's 'head'):

    python -m neuralannot_jax.data.joint_sets ~/models/J_regressor_h36m_correct.npy \\
        ~/models/J_regressor_mpi_inf_3dhp_smpl.npy
    python -m neuralannot_jax.main --config=configs/mpii3d_body.py \\
        --config.dataset.root=~/data/MPI_INF_3DHP --config.body_model.path=~/models \\
        --config.model.regressor=~/models/J_regressor_mpi_inf_3dhp_smpl.npy
"""

from neuralannot_jax import experiment


def get_config():
  config = experiment.default_config()
  config.workdir = 'work_dir/mpii3d_body'
  config.body_model.family = 'smpl'
  config.dataset.format = 'mpi_inf_3dhp'
  config.dataset.root = ''                # folder of MPI-INF-3DHP_1k.json, _camera_1k.json,
                                          # _joint_3d.json and images_1k/
  config.dataset.options = {'frame_stride': 3}
  config.model.mode = 'mocap'
  # Required: the 17 joints are fitted and scored through it (not matched by name).
  config.model.regressor = ''             # ~/models/J_regressor_mpi_inf_3dhp_smpl.npy
  config.train.num_steps = 30000
  config.train.lr_boundaries = (24000,)
  return config
