"""Issue 16, item 6: the in-the-wild network must give each image its own pose.

A user's run on a COCO-style set showed the same standing body for every person: the
network had collapsed to one mean pose. Here eight stand-in bodies in different poses have
their COCO-17 keypoints drawn on noise images; trained on those 2D keypoints alone (VPoser
latent body pose, predicted camera), the network must fit each image's skeleton (its shape
after a 2D similarity alignment, which only the pose changes) better than the other images'.

What this does not show: that the 3D poses are right. From 2D keypoints and a random VPoser
(no prior worth the name), their 3D errors after Procrustes stay ~23 cm here; the comparison
(tools/compare_annotators.py) measures that on rendered people with a trained prior."""

import dataclasses
import os

import cv2
import numpy as np
import pytest

import body_models
from body_models import synthetic
from neuralannot_jax import train as train_lib
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import pipeline
from neuralannot_jax.data.sample import make_sample
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.method import camera
from neuralannot_jax.method import decode

SIZE, CROP, COUNT = 64, 32, 8
FOCAL, DEPTH = 90.0, 4.0


def _bodies(root, rng):
  """(stand-in SMPL, COUNT samples): bodies in sampled poses facing the camera, their COCO-17
  keypoints drawn on noise images."""
  smpl = body_models.load(root, 'smpl')
  body_pose = np.stack([poses.sample_body_pose(rng).reshape(-1) for _ in range(COUNT)])
  facing = np.tile([np.pi, 0.0, 0.0], (COUNT, 1))          # OpenCV camera: upright, facing it
  out = smpl(global_orient=facing, body_pose=body_pose,
             transl=np.tile([0.0, 0.2, DEPTH], (COUNT, 1)))
  mapping = joint_sets.model_joint_mapping('smpl', 'COCO_17')
  joints = np.asarray(mapping.apply(out.joints, out.vertices), np.float64)
  focal, princpt = np.array([FOCAL, FOCAL]), np.array([SIZE / 2, SIZE / 2])
  samples = []
  for i in range(COUNT):
    j2 = joints[i, :, :2] / joints[i, :, 2:] * focal + princpt
    image = np.random.default_rng(i).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    for p in j2:
      cv2.circle(image, (int(round(p[0])), int(round(p[1]))), 1, (255, 255, 255), -1)
    path = os.path.join(root, f'{i}.png')
    cv2.imwrite(path, image)
    lo, hi = j2.min(0), j2.max(0)
    samples.append(make_sample('fake', dataset='fake', ann_id=i, image_path=path,
                               bbox=[lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]],
                               joint_set='COCO_17', joints_2d=j2,
                               joints_2d_valid=np.asarray(mapping.valid), focal=focal,
                               princpt=princpt, image_size=(SIZE, SIZE)))
  return smpl, samples


def _aligned_error(pred, target):
  """Mean distance after the best 2D similarity (rotation, scale, shift) of pred onto
  target: (K, 2), (K, 2) -> scalar. What is left is the skeleton's shape: its pose."""
  a, b = pred - pred.mean(0), target - target.mean(0)
  u, s, vt = np.linalg.svd(a.T @ b)
  d = np.sign(np.linalg.det(u @ vt))
  s[-1] *= d
  u[:, -1] *= d
  return np.linalg.norm(s.sum() / (a ** 2).sum() * a @ (u @ vt) - b, axis=-1).mean()


def own_and_others(proj, target, valid):
  """Shape errors of each image's prediction against its own keypoints and, on average,
  against the other images' keypoints: (N, K, 2), (N, K, 2), (N, K) -> (own, others)."""
  n = len(proj)
  errors = np.array([[_aligned_error(proj[j][valid[i]], target[i][valid[i]]) for j in range(n)]
                     for i in range(n)])
  return np.diag(errors).mean(), errors[~np.eye(n, dtype=bool)].mean()


def _train(root, samples, smpl, steps=150):
  """The wild-mode network trained `steps` steps on the samples (one batch). Returns, in eval
  mode: its projected joints (N, K, 2) in crop pixels, the keypoints (N, K, 2) and their
  validity (N, K), and the first and last 2D loss terms."""
  cfg = train_lib.TrainConfig(model_path=root, family='smpl', mode='wild', joint_set='COCO_17',
                              depth=10, crop_size=CROP, batch_size=COUNT, lr=1e-3,
                              num_workers=0, progress=False, seed=0)
  mesh = train_lib.make_mesh()
  model, optimizer = train_lib.create_train_state(cfg, mesh)
  vposer_params = train_lib.load_vposer(cfg)          # random weights: fine for this check
  loader = pipeline.Loader(samples, COUNT, train=True, out_size=CROP, num_workers=0,
                           augment=train_lib.NO_AUGMENT)
  batch, _ = next(iter(loader))
  batch = pipeline.shard(train_lib.step_batch(batch), mesh)
  spec = train_lib.make_step_spec(cfg)
  # As `train.train` does: the loss skins only the vertices the keypoints are read from.
  restricted, mapping = joint_sets.restrict_to_mapping(smpl, spec.mapping)
  step_spec = dataclasses.replace(spec, mapping=mapping)
  losses = []
  for step in range(steps):
    metrics = train_lib.train_step(model, optimizer, restricted, batch, vposer_params,
                                   step_spec=step_spec)
    losses.append(train_lib.check_finite(metrics, step + 1)['joints_2d'])
  model.eval()
  raw = model(batch['image'])
  params = decode.decode_rotmats(spec.spec, spec.spec.split(raw), vposer_params=vposer_params,
                                 pose_mean=smpl.pose_mean)
  out = body_models.forward_rotmats(smpl, params['rotmats'], params['betas'])
  joints = spec.mapping.apply(out.joints, out.vertices) + params['transl'][:, None]
  proj = camera.project(joints, *camera.crop_camera((CROP, CROP), spec.spec.focal))
  return (np.asarray(proj), np.asarray(batch['joints_2d']), np.asarray(batch['valid']) > 0,
          losses[0] if losses else None, losses[-1] if losses else None)


@pytest.fixture(scope='module')
def bodies(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('wild'))
  synthetic.write_model('smpl', root)
  smpl, samples = _bodies(root, np.random.default_rng(2))
  return root, smpl, samples


def test_the_network_gives_each_image_its_own_pose(bodies):
  root, smpl, samples = bodies
  proj, target, valid, first, last = _train(root, samples, smpl)
  assert last < 0.3 * first, (first, last)
  own, others = own_and_others(proj, target, valid)
  # A network that gives every image one pose fits its own image's skeleton exactly as well
  # as the others' (own == others); this one fits its own far better (measured with
  # ResNet-10: 0.88 px against 2.68 at 150 steps; ResNet-18: 1.25 against 2.81, and a
  # ratio of 0.56 at 80 steps, 1.0 untrained).
  assert own < 0.65 * others, (own, others)
  # The measure itself: one pose (image 0's) given to every image fails it.
  collapsed = own_and_others(np.repeat(proj[:1], COUNT, axis=0), target, valid)
  assert collapsed[0] == pytest.approx(collapsed[1], rel=0.05)
