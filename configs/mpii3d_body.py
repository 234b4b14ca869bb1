"""MPI-INF-3DHP, MoCap mode (GT 3D joints): SMPL from its 17 joints.

The paper's settings (experiment.default_config): ResNet-50 at 256 px, global batch 192,
Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.model.backbone_weights=resnet50.npz (tools/convert_torchvision_resnet.py).

    python -m neuralannot_jax.main --config=configs/mpii3d_body.py \\
        --config.dataset.root=~/data/MPI_INF_3DHP --config.body_model.path=~/models
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
  config.train.num_steps = 30000
  config.train.lr_boundaries = (24000,)
  return config
