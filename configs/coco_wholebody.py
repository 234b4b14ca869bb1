"""COCO-WholeBody, whole body: SMPL-X body, MANO hands and FLAME face annotated separately in the
wild (GT 2D keypoints only) and merged per person into SMPL-X pseudo-GTs, as NeuralAnnot releases
them (<workdir>/pseudo_gt_smplx.json: `smplx_param` with lhand_valid / rhand_valid / face_valid).

The paper's settings for every part (experiment.default_config): ResNet-50 at 256 px, global
batch 192, Adam at lr 1e-4 dropped x10 once. Give the ImageNet backbone with
--config.parts.body.model.backbone_weights=resnet50.npz (likewise parts.hand, parts.face;
tools/convert_torchvision_resnet.py), and VPoser v2 with
--config.parts.body.model.vposer_path=vposer.npz (tools/convert_vposer.py).

COCO's annotated hips sit lower and wider than SMPL-X's hip joints: the body part requires
the COCO hip regressor the authors use, J_regressor_coco_hip_smplx.npy (2 x 10475: left hip,
right hip; a 17- or 133-row COCO regressor is read by name too), and stops naming it when it
is missing.

    python -m neuralannot_jax.main --config=configs/coco_wholebody.py \\
        --config.dataset.root=~/data/coco --config.body_model.path=~/models \\
        --config.parts.body.model.regressor=~/models/J_regressor_coco_hip_smplx.npy

`body_model.path` holds smplx/SMPLX_NEUTRAL.npz, mano/MANO_RIGHT.pkl + MANO_LEFT.pkl and
flame/ (FLAME_NEUTRAL.pkl or generic_model.pkl with its landmark embeddings).
"""

from neuralannot_jax.wholebody import run as wholebody_run


def get_config():
  config = wholebody_run.wholebody_config()
  config.workdir = 'work_dir/coco_wholebody'
  config.dataset.format = 'coco_wholebody'
  config.dataset.root = ''                # COCO folder: annotations/coco_wholebody_train_v1.0.json,
                                          # images/train2017/
  for part, min_keypoints in ((config.parts.body, 6), (config.parts.hand, 6),
                              (config.parts.face, 10)):
    part.model.mode = 'wild'
    part.dataset.options = {'min_keypoints': min_keypoints}
    part.train.num_steps = 20000
    part.train.lr_boundaries = (16000,)
  return config
