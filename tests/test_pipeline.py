"""Crop geometry, augmentation, batching, the Loader and sharding.

Covers neuralannot_jax/data/crop.py and neuralannot_jax/data/pipeline.py.
"""

import subprocess
import sys
import textwrap

import cv2
import jax
import numpy as np
import pytest

from neuralannot_jax.data import crop
from neuralannot_jax.data import pipeline
from neuralannot_jax.data.sample import make_sample

PAIRS = ((1, 2), (3, 4))  # a toy 5-joint body: 0 centre, (1, 2) and (3, 4) left/right


def _sample(path='x.png', k=5, seed=0, camera=True, part='body', hand_side=None, size=(120, 160),
            ann_id=0, fx=500.0, fy=500.0):
  """A sample whose 2D joints are the projections of its 3D joints (when `camera`)."""
  rng = np.random.default_rng(seed)
  h, w = size
  joints_3d = np.concatenate([rng.uniform(-0.3, 0.3, (k, 2)), rng.uniform(2.5, 3.5, (k, 1))], 1)
  focal, princpt = np.array([fx, fy]), np.array([w / 2 + 3.0, h / 2 - 2.0])
  joints_2d = joints_3d[:, :2] / joints_3d[:, 2:] * focal + princpt
  lo, hi = joints_2d.min(0), joints_2d.max(0)
  return make_sample('test', dataset='t', ann_id=ann_id, image_path=str(path),
                     bbox=[*lo - 5, *(hi - lo + 10)], part=part, hand_side=hand_side,
                     joints_2d=joints_2d, joints_3d=joints_3d,
                     focal=focal if camera else None, princpt=princpt if camera else None)


def _blank(size=(120, 160)):
  return np.zeros((*size, 3), np.uint8)


def _project(joints_3d, focal, princpt):
  return joints_3d[:, :2] / joints_3d[:, 2:] * focal + princpt


# ----------------------------------------------------------------------------- geometry


def test_square_box_keeps_centre_and_enlarges_longer_side():
  box = crop.square_box([10, 20, 40, 80], 1.25)
  np.testing.assert_allclose(box[:2] + box[2:] / 2, [30, 60])
  np.testing.assert_allclose(box[2:], [100, 100])


def test_box_maps_onto_crop_extent():
  affine = crop.crop_transform([50, 70], 40, 256)
  corners = crop.transform_points([[30, 50], [70, 90], [50, 70]], affine)
  np.testing.assert_allclose(corners, [[-0.5, -0.5], [255.5, 255.5], [127.5, 127.5]], atol=1e-4)


def test_points_round_trip_random_boxes_rotations_flips():
  rng = np.random.default_rng(0)
  for _ in range(200):
    center, size = rng.uniform(0, 2000, 2), rng.uniform(5, 1500)
    rot, flip, out = rng.uniform(-180, 180), bool(rng.integers(2)), int(rng.integers(32, 512))
    affine = crop.crop_transform(center, size, out, rot, flip)
    inverse = crop.crop_transform(center, size, out, rot, flip, inverse=True)
    points = rng.uniform(0, 2000, (17, 2))
    back = crop.transform_points(crop.transform_points(points, affine), inverse)
    np.testing.assert_allclose(back, points, atol=1e-3)
    np.testing.assert_allclose(crop.invert_affine(affine), inverse, rtol=1e-5, atol=1e-4)


def test_drawn_dot_lands_at_transformed_joint():
  rng = np.random.default_rng(1)
  h, w = 300, 400
  for _ in range(10):
    point = rng.integers([60, 60], [w - 60, h - 60]).astype(np.float64)
    ys, xs = np.mgrid[:h, :w]
    blob = np.exp(-((xs - point[0]) ** 2 + (ys - point[1]) ** 2) / (2 * 3.0 ** 2))
    image = np.repeat((blob * 255).astype(np.uint8)[..., None], 3, -1)
    center = point + rng.uniform(-30, 30, 2)
    affine = crop.crop_transform(center, rng.uniform(100, 200), 128, rng.uniform(-45, 45),
                                 bool(rng.integers(2)))
    warped = crop.warp_image(image, affine, 128)[..., 0].astype(np.float64)
    assert warped.shape == (128, 128)
    ys, xs = np.mgrid[:128, :128]
    found = np.array([(warped * xs).sum(), (warped * ys).sum()]) / warped.sum()
    expected = crop.transform_points(point[None], affine)[0]
    assert np.linalg.norm(found - expected) < 1.0, (found, expected)


def test_joints_outside_crop_are_invalid():
  sample = _sample()
  sample.joints_2d[0] = [-500, -500]
  out = crop.to_crop(sample, 64, image=_blank())
  assert out['valid'][0] == 0 and np.all(out['valid'][1:] == 1)


def test_left_hand_flip_round_trip_is_exact():
  image = np.random.default_rng(2).integers(0, 255, (120, 160, 3), np.uint8)
  left = _sample(part='hand', hand_side='left')
  right = _sample(part='hand', hand_side='right')
  a = crop.to_crop(left, 64, image=image, flip_pairs=PAIRS)
  b = crop.to_crop(right, 64, image=image, flip_pairs=PAIRS)
  assert a['flipped'] and not b['flipped']
  # Mirrored, not swapped: joint j of the left crop is joint j of the right crop mirrored.
  np.testing.assert_allclose(a['joints_2d'][:, 0], 63 - b['joints_2d'][:, 0], atol=1e-4)
  np.testing.assert_allclose(a['joints_2d'][:, 1], b['joints_2d'][:, 1], atol=1e-4)
  np.testing.assert_array_equal(a['joints_3d'][:, 0], -left.joints_3d[:, 0])
  np.testing.assert_allclose(np.abs(a['image'].astype(int) - cv2.flip(b['image'], 1)), 0, atol=2)
  np.testing.assert_allclose(crop.transform_points(a['joints_2d'], a['inverse']), left.joints_2d,
                             atol=1e-3)
  np.testing.assert_array_equal(crop.crop_to_camera_3d(a['joints_3d'], a['rotation'], a['flipped']),
                                left.joints_3d)
  # A hand is never flipped by augmentation: it must stay a right hand.
  c = crop.to_crop(right, 64, image=image, flip_pairs=PAIRS, aug=crop.AugParams(flip=True))
  assert not c['flipped']


def test_body_flip_twice_is_identity():
  sample = _sample()
  sample.joints_2d_valid[1] = 0
  aug = crop.AugParams(flip=True)
  once = crop.to_crop(sample, 64, aug=aug, flip_pairs=PAIRS, image=_blank())
  plain = crop.to_crop(sample, 64, flip_pairs=PAIRS, image=_blank())
  assert once['flipped'] and not plain['flipped']
  # Swapped: the left wrist of the flipped crop is the mirrored right wrist.
  np.testing.assert_allclose(once['joints_2d'][1, 0], 63 - plain['joints_2d'][2, 0], atol=1e-4)
  assert once['valid'][2] == 0 and once['valid'][1] == 1
  # Flip again (mirror + swap) and map back: the original sample.
  twice_2d = crop.swap_pairs(crop.transform_points(once['joints_2d'], once['inverse']), PAIRS)
  np.testing.assert_allclose(twice_2d, sample.joints_2d, atol=1e-3)
  np.testing.assert_array_equal(crop.swap_pairs(once['valid'], PAIRS), sample.joints_2d_valid)
  twice_3d = crop.swap_pairs(crop.crop_to_camera_3d(once['joints_3d'], 0.0, True), PAIRS)
  np.testing.assert_array_equal(twice_3d, sample.joints_3d)
  # Without flip pairs a body is never flipped (it would mislabel left and right).
  assert not crop.to_crop(sample, 64, aug=aug, image=_blank())['flipped']


@pytest.mark.parametrize('part,side', [('body', None), ('hand', 'left'), ('hand', 'right')])
def test_rotated_3d_projects_onto_rotated_2d(part, side):
  rng = np.random.default_rng(3)
  for trial in range(20):
    sample = _sample(seed=trial, part=part, hand_side=side)
    aug = crop.AugParams(scale=rng.uniform(0.75, 1.25), rotation_deg=rng.uniform(-60, 60),
                         flip=bool(rng.integers(2)))
    out = crop.to_crop(sample, 256, aug=aug, flip_pairs=PAIRS, image=_blank())
    assert out['has_camera']
    projected = _project(out['joints_3d'], out['focal'], out['princpt'])
    np.testing.assert_allclose(projected, out['joints_2d'], atol=2e-3)
    np.testing.assert_allclose(
        crop.crop_to_camera_3d(out['joints_3d'], out['rotation'], out['flipped']),
        crop.swap_pairs(sample.joints_3d, PAIRS) if out['flipped'] and part == 'body'
        else sample.joints_3d, atol=1e-6)


def test_crop_camera_exact_for_unequal_focals_without_rotation():
  sample = _sample(fx=500.0, fy=560.0)
  out = crop.to_crop(sample, 128, aug=crop.AugParams(scale=1.2, flip=True), flip_pairs=PAIRS,
                     image=_blank())
  projected = _project(out['joints_3d'], out['focal'], out['princpt'])
  np.testing.assert_allclose(projected, out['joints_2d'], atol=1e-3)


def test_no_camera_no_3d():
  sample = make_sample('t', dataset='t', ann_id=1, image_path='x', bbox=[10, 10, 30, 40],
                       joints_2d=np.full((3, 2), 20.0))
  out = crop.to_crop(sample, 32, image=_blank())
  assert not out['has_camera'] and not out['has_3d']
  assert out['joints_3d'].shape == (3, 3) and np.all(out['valid3d'] == 0)
  np.testing.assert_array_equal(out['focal'], 0)


def test_augment_is_deterministic_and_in_range():
  config = crop.Augment()
  draws = [crop.draw_augment(config, np.random.default_rng(s)) for s in range(500)]
  again = [crop.draw_augment(config, np.random.default_rng(s)) for s in range(500)]
  assert draws == again
  scales = np.array([d.scale for d in draws])
  rots = np.array([d.rotation_deg for d in draws])
  colors = np.array([d.color for d in draws])
  assert scales.min() >= 0.75 and scales.max() <= 1.25
  assert np.abs(rots).max() <= 60 and 0.3 < np.mean(rots == 0) < 0.5
  assert colors.min() >= 0.8 and colors.max() <= 1.2
  assert 0.4 < np.mean([d.flip for d in draws]) < 0.6


def test_colour_jitter_scales_channels():
  image = np.full((120, 160, 3), 100, np.uint8)
  out = crop.to_crop(_sample(), 32, aug=crop.AugParams(color=(0.8, 1.0, 1.2)), image=image)
  assert out['image'].dtype == np.float32
  np.testing.assert_allclose(out['image'][16, 16], [80, 100, 120], atol=1e-3)


# ----------------------------------------------------------------------------- batching, loader


@pytest.fixture
def dataset(tmp_path):
  """10 samples on 10 small PNGs; sample 3's file is corrupt and sample 6's is missing."""
  samples = []
  rng = np.random.default_rng(4)
  for i in range(10):
    path = tmp_path / f'{i}.png'
    if i == 3:
      path.write_bytes(b'\x89PNG\r\n\x1a\n this is not an image')
    elif i != 6:
      cv2.imwrite(str(path), rng.integers(0, 255, (120, 160, 3), np.uint8))
    samples.append(_sample(path, seed=i, ann_id=f'a{i}', camera=i % 2 == 0))
  return samples


def test_normalize():
  out = pipeline.normalize(np.full((2, 2, 3), [123.675, 116.28, 103.53], np.float32))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out, 0, atol=1e-5)


def test_make_batch_rejects_mixed_joint_counts():
  a = crop.to_crop(_sample(k=5), 32, image=_blank())
  b = crop.to_crop(_sample(k=4), 32, image=_blank())
  with pytest.raises(ValueError, match='joints_2d'):
    pipeline.make_batch([a, b])


def test_annotation_loader_order_padding_and_skips(dataset):
  loader = pipeline.Loader(dataset, 4, train=False, out_size=64, num_workers=3, num_devices=1)
  batches = list(loader)
  assert len(batches) == 2  # 8 readable samples
  batch, ids = batches[0]
  shapes = {k: (v.shape, v.dtype) for k, v in batch.items()}
  assert shapes['image'] == ((4, 64, 64, 3), np.float32)
  assert shapes['joints_2d'] == ((4, 5, 2), np.float32)
  assert shapes['valid'] == ((4, 5), np.float32)
  assert shapes['joints_3d'] == ((4, 5, 3), np.float32)
  assert shapes['valid3d'] == ((4, 5), np.float32)
  assert shapes['affine'] == shapes['inverse'] == ((4, 2, 3), np.float32)
  assert shapes['focal'] == ((4, 2), np.float32) and shapes['princpt'] == ((4, 2), np.float32)
  for key in ('has_3d', 'has_camera', 'flipped', 'mask'):
    assert shapes[key] == ((4,), np.bool_), key
  assert shapes['index'] == ((4,), np.int32) and shapes['rotation'] == ((4,), np.float32)
  assert ids == ['a0', 'a1', 'a2', 'a4']
  np.testing.assert_array_equal(batch['index'], [0, 1, 2, 4])
  np.testing.assert_array_equal(batch['has_camera'], [True, False, True, True])
  assert batch['mask'].all()
  last, last_ids = batches[1]
  assert last_ids == ['a5', 'a7', 'a8', 'a9'] and last['mask'].all()
  assert loader.num_skipped == 2 and sorted(loader.skipped) == [3, 6]
  # Annotation crops are unaugmented: joints map back to the image.
  np.testing.assert_allclose(
      crop.transform_points(batch['joints_2d'], batch['inverse']),
      np.stack([dataset[i].joints_2d for i in batch['index']]), atol=1e-3)

  loader = pipeline.Loader(dataset, 3, train=False, out_size=32, num_workers=0, num_devices=1)
  batches = list(loader)
  assert [ids for _, ids in batches] == [['a0', 'a1', 'a2'], ['a4', 'a5', 'a7'], ['a8', 'a9']]
  last = batches[-1][0]
  np.testing.assert_array_equal(last['mask'], [True, True, False])
  np.testing.assert_array_equal(last['index'], [8, 9, -1])
  assert last['image'].shape == (3, 32, 32, 3)


def test_a_truncated_jpeg_is_skipped_and_counted_not_read_half_grey(tmp_path):
  """OpenCV decodes a truncated JPEG with only a warning, the missing rows grey: such an
  image was cropped and annotated. It is unreadable now, skipped and counted; a complete
  JPEG (with an EXIF thumbnail carrying its own end marker) still reads."""
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (120, 160, 3), np.uint8)
  whole = tmp_path / 'whole.jpg'
  assert cv2.imwrite(str(whole), image)
  data = whole.read_bytes()
  cut = tmp_path / 'cut.jpg'
  cut.write_bytes(data[:len(data) * 2 // 3])
  decoded = cv2.imread(str(cut))
  assert decoded is not None and decoded.shape == image.shape   # what OpenCV alone does
  assert crop.read_image(cut) is None
  np.testing.assert_array_equal(crop.read_image(whole), cv2.imread(str(whole))[..., ::-1])
  # A thumbnail's markers sit in an APP1 segment before the image: FFD8 .. FFDA .. FFD9.
  thumb = b'Exif\x00\x00' + b'\xff\xd8\xff\xda\x00\x02\xff\xd9'
  app1 = b'\xff\xe1' + (len(thumb) + 2).to_bytes(2, 'big') + thumb
  with_thumb = data[:2] + app1 + data[2:]
  assert crop.jpeg_is_complete(with_thumb)
  assert not crop.jpeg_is_complete(with_thumb[:len(with_thumb) * 2 // 3])
  samples = [_sample(path, ann_id=name, size=(120, 160))
             for path, name in ((whole, 'whole'), (cut, 'cut'), (whole, 'again'))]
  loader = pipeline.Loader(samples, 2, train=False, out_size=32, num_workers=0, num_devices=1)
  assert [ids for _, ids in loader] == [['whole', 'again']]
  assert loader.num_skipped == 1 and loader.skipped == {1: str(cut)}


class _CountingSource:
  """A lazy sequence of samples, like builders.open_source, counting record reads."""

  def __init__(self, samples):
    self._samples, self.reads = samples, 0

  def __len__(self):
    return len(self._samples)

  def __getitem__(self, index):
    self.reads += 1
    return self._samples[index]


def test_loader_reads_a_lazy_source_once_per_sample(dataset):
  source = _CountingSource(dataset)
  loader = pipeline.Loader(source, 4, train=False, out_size=32, num_workers=2, num_devices=1)
  ids = [i for _, batch_ids in loader for i in batch_ids]
  assert ids == [s.ann_id for k, s in enumerate(dataset) if k not in (3, 6)]
  assert source.reads == len(dataset) + 2   # the two unreadable ones are looked up to log


def test_train_loader_shuffles_deterministically(dataset):
  def run(seed, workers):
    loader = pipeline.Loader(dataset, 2, train=True, out_size=32, seed=seed, num_workers=workers,
                             num_devices=1)
    return [list(loader) for _ in range(2)]

  a, b, c = run(0, 4), run(0, 0), run(1, 2)
  ids = lambda epochs: [[i for _, batch_ids in e for i in batch_ids] for e in epochs]
  assert ids(a) == ids(b)
  assert ids(a)[0] != ids(a)[1]  # a new permutation each epoch
  assert ids(a) != ids(c)
  for (x, _), (y, _) in zip(a[0], b[0]):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)
  for epoch in ids(a):
    assert sorted(epoch) == sorted(f'a{i}' for i in range(10) if i not in (3, 6))
  # Augmented: some crop rotated or flipped.
  rotations = np.concatenate([x['rotation'] for e in a for x, _ in e])
  assert np.any(rotations != 0)


def test_train_loader_drops_remainder(dataset):
  loader = pipeline.Loader(dataset, 3, train=True, out_size=32, num_devices=1)
  batches = list(loader)
  assert len(batches) == 2 and all(len(ids) == 3 for _, ids in batches)  # 8 readable
  assert len(loader) == 3


def test_batch_size_must_divide_devices(dataset):
  with pytest.raises(ValueError, match='multiple'):
    pipeline.Loader(dataset, 6, train=True, num_devices=4)


def test_shard_one_device(dataset):
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ('data',))
  loader = pipeline.Loader(dataset, 2, train=False, out_size=32, num_devices=1)
  batch, _ = next(iter(loader))
  arrays = pipeline.shard(batch, mesh)
  for key, value in batch.items():
    assert arrays[key].shape == value.shape
    np.testing.assert_array_equal(np.asarray(arrays[key]), value)


SHARD_SCRIPT = textwrap.dedent('''
    import sys
    import jax
    jax.config.update('jax_num_cpu_devices', 4)
    import cv2
    import numpy as np
    from jax.sharding import PartitionSpec as P
    from neuralannot_jax.data import pipeline
    from neuralannot_jax.data.sample import make_sample

    assert jax.device_count() == 4, jax.devices()
    samples = []
    for i in range(10):
      path = f'{sys.argv[1]}/{i}.png'
      cv2.imwrite(path, np.full((40, 50, 3), i * 10, np.uint8))
      samples.append(make_sample('s', dataset='s', ann_id=i, image_path=path, bbox=[5, 5, 30, 20],
                                 joints_2d=np.full((3, 2), 15.0)))
    try:
      pipeline.Loader(samples, 6, train=False)
      raise SystemExit('batch size 6 accepted on 4 devices')
    except ValueError:
      pass
    mesh = jax.make_mesh((4,), ('data',))
    loader = pipeline.Loader(samples, 8, train=False, out_size=16, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    for batch, ids in batches:
      arrays = pipeline.shard(batch, mesh)
      for key, value in batch.items():
        array = arrays[key]
        assert array.sharding.spec == P('data'), (key, array.sharding)
        assert len(array.addressable_shards) == 4
        assert array.addressable_shards[0].data.shape == (2,) + value.shape[1:]
        np.testing.assert_array_equal(np.asarray(array), value)
      total = jax.jit(lambda a: (a['image'].mean((1, 2, 3)) * a['mask']).sum())(arrays)
      jax.block_until_ready(total)
    np.testing.assert_array_equal(batches[1][0]['mask'], [1, 1, 0, 0, 0, 0, 0, 0])
    print('sharded ok')
''')


def test_shard_over_four_cpu_devices(tmp_path):
  result = subprocess.run([sys.executable, '-c', SHARD_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'sharded ok' in result.stdout
