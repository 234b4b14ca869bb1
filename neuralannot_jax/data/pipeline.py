"""Samples -> fixed-shape numpy batches -> arrays sharded over the device mesh.

The geometry (crop, flip, augmentation) lives in `crop.py`; see its docstring for the pixel and
affine conventions. Here: ImageNet normalisation, stacking crops into batches, the `Loader`
(threaded decode + warp, shuffling, padding for annotation, skipping unreadable images) and
`shard`, which places a host's batch on the mesh with NamedSharding(mesh, P('data')).

Batches are per process: in a multi-process run every process gives the Loader all the
samples and the per-process batch size, and the Loader reads only this process's share (its
rows of each global training batch; its contiguous part of the set for annotation); `shard`
assembles the global array. Processes must agree on the number of steps.
"""

import collections
import concurrent.futures
from typing import Optional

from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from neuralannot_jax.data import crop as crop_lib
from neuralannot_jax.runtime import distributed
# The pipeline's public API includes the crop entry points.
from neuralannot_jax.data.crop import Augment  # pylint: disable=unused-import
from neuralannot_jax.data.crop import to_crop  # pylint: disable=unused-import

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255

# Keys of a batch, all numpy with leading dimension B. 'mask' marks real (not padded) rows.
BATCH_KEYS = ('image', 'joints_2d', 'valid', 'joints_3d', 'valid3d', 'has_3d', 'affine',
              'inverse', 'focal', 'princpt', 'has_camera', 'rotation', 'flipped', 'index', 'mask')


def normalize(image):
  """(..., H, W, 3) RGB in [0, 255], any dtype -> float32 with ImageNet mean/std removed."""
  return (np.asarray(image, np.float32) - IMAGENET_MEAN) / IMAGENET_STD


def make_batch(crops, pad_to=None):
  """Stack `to_crop` dicts into one batch of fixed shapes.

  Args:
    crops: list of dicts from `to_crop`, all with the same joint count K and crop size S.
    pad_to: batch size B >= len(crops); missing rows repeat the last crop with mask False and
      index -1, so a padded batch runs through the network like any other.
  Returns:
    dict of numpy arrays: image (B, S, S, 3) float32 normalised; joints_2d (B, K, 2);
    valid (B, K); joints_3d (B, K, 3); valid3d (B, K); has_3d (B,) bool; affine, inverse
    (B, 2, 3); focal, princpt (B, 2); has_camera (B,) bool; rotation (B,) deg; flipped (B,)
    bool; index (B,) int32; mask (B,) bool.
  Raises:
    ValueError naming the sample indices when the crops disagree in shape.
  """
  if not crops:
    raise ValueError('make_batch: no crops')
  n = len(crops)
  pad_to = n if pad_to is None else pad_to
  if pad_to < n:
    raise ValueError(f'make_batch: {n} crops do not fit a batch of {pad_to}')
  for key in ('image', 'joints_2d', 'joints_3d'):
    shapes = {c[key].shape for c in crops}
    if len(shapes) > 1:
      raise ValueError(f'make_batch: {key} shapes differ across samples '
                       f'{[int(c["index"]) for c in crops]}: {sorted(shapes)}')
  rows = list(crops) + [crops[-1]] * (pad_to - n)
  batch = {key: np.stack([r[key] for r in rows]) for key in BATCH_KEYS if key != 'mask'}
  batch['image'] = normalize(batch['image'])
  batch['mask'] = np.arange(pad_to) < n
  batch['index'][n:] = -1
  return batch


def shard(batch, mesh, axis='data'):
  """Place a process-local batch on `mesh`, split along its first dimension.

  Args:
    batch: dict (any pytree) of numpy arrays with leading dimension B_local, a multiple of
      the process's number of devices in `mesh`.
    mesh: a jax.sharding.Mesh with an axis named `axis`.
  Returns:
    the same pytree of global jax.Arrays, NamedSharding(mesh, P(axis)), leading dimension
    B_local * number of processes.
  """
  sharding = NamedSharding(mesh, P(axis))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


class Loader:
  """Iterates over a list of `Sample`s in batches from `make_batch`.

  Training (`train=True`): each epoch is a fresh permutation drawn from (seed, epoch), each
  sample's augmentation from (seed, epoch, index), so a run is reproducible whatever the
  threads do; the last partial global batch is dropped (fixed shapes for BatchNorm). With
  P processes the global batch is P * batch_size: every process draws the same permutation
  and process p loads rows [p * batch_size, (p + 1) * batch_size) of each global batch, so
  the global batches are those of one process with the global batch size.
  Annotation (`train=False`): samples in order, no augmentation, and the last partial batch
  is padded to the batch size (`mask` False on the padding). With P processes, process p
  reads only its contiguous share `distributed.share(N, p, P)` of the samples.

  Unreadable images are logged once, skipped and counted (`skipped`: index -> path,
  `num_skipped`); the batch fills up from the next samples. Iterating yields
  (batch, ann_ids) with ann_ids the list of the real rows' `Sample.ann_id`, in row order
  (padding is always at the end).
  """

  def __init__(self, samples, batch_size, *, train, out_size=256, scale=1.25,
               augment: Optional[Augment] = None, flip_pairs=None, seed=0, num_workers=4,
               num_devices=None, prefetch_batches=2, process_index=None, process_count=None):
    """Args:
      samples: `Sample`s, all of one joint set: a list or any sequence (len and [i]),
        such as `builders.open_source`, which decodes each record when it is read.
      batch_size: per-process batch size; a multiple of `num_devices`.
      train: shuffle, augment and drop the remainder; else in order, padded.
      out_size, scale: crop side in pixels and box enlargement.
      augment: augmentation config for training (default `Augment()`); ignored otherwise.
      flip_pairs: (i, j) left/right joint pairs of the joint set; None disables body flips.
      seed: the shuffling and augmentation seed.
      num_workers: decode/warp threads (OpenCV releases the GIL); 0 works inline.
      num_devices: devices this process feeds (default jax.local_device_count()).
      prefetch_batches: batches of work kept in flight ahead of the consumer.
      process_index, process_count: this process and the number of processes (default
        jax.process_index(), jax.process_count()); they pick the share read here.
    """
    num_devices = jax.local_device_count() if num_devices is None else num_devices
    if batch_size <= 0 or batch_size % num_devices:
      raise ValueError(f'batch_size {batch_size} must be a positive multiple of the '
                       f'{num_devices} local devices')
    # A list, or any sequence with len() and [i] (e.g. builders.open_source, which decodes
    # records lazily): the loader reads each sample once per epoch, when it loads it.
    self.samples = samples if hasattr(samples, '__getitem__') and hasattr(samples, '__len__') \
        else list(samples)
    self.batch_size = batch_size
    self.train = train
    self.out_size = out_size
    self.scale = scale
    self.augment = (augment or Augment()) if train else None
    self.flip_pairs = tuple(tuple(p) for p in flip_pairs) if flip_pairs else None
    self.seed = seed
    self.num_workers = num_workers
    self.prefetch_batches = prefetch_batches
    self.process_index = jax.process_index() if process_index is None else process_index
    self.process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= self.process_index < self.process_count:
      raise ValueError(f'process_index {self.process_index} is not in 0 .. '
                       f'{self.process_count - 1}')
    self.skipped = {}
    self.num_skipped = 0
    self._next_epoch = 0

  def __len__(self):
    """Batches per epoch when every image reads (skips can make it fewer)."""
    if self.train:
      return len(self.samples) // (self.batch_size * self.process_count)
    return -(-len(self.order(0)) // self.batch_size)

  def order(self, epoch):
    """(M,) int sample indices this process reads in `epoch`, in reading order.

    Training: a seeded permutation of all N samples, cut into global batches of
    batch_size * process_count (the remainder dropped), of which this process keeps its
    rows; M = (N // global batch) * batch_size. Annotation: this process's contiguous share.
    """
    n = len(self.samples)
    if not self.train:
      return np.arange(*distributed.share(n, self.process_index, self.process_count))
    permutation = np.random.default_rng([self.seed, epoch]).permutation(n)
    per_epoch = n // (self.batch_size * self.process_count)
    # (batches, processes, rows): process p's rows of global batch b are [b, p].
    rows = permutation[:per_epoch * self.batch_size * self.process_count].reshape(
        per_epoch, self.process_count, self.batch_size)
    return rows[:, self.process_index].reshape(-1)

  def load(self, index, epoch=0):
    """`to_crop` dict of sample `index`, or None when its image cannot be read."""
    sample = self.samples[index]
    image = crop_lib.read_image(sample.image_path)
    if image is None:
      return None
    aug = None
    if self.augment is not None:
      aug = crop_lib.draw_augment(self.augment,
                                  np.random.default_rng([self.seed, epoch, int(index)]))
    crop = crop_lib.to_crop(sample, self.out_size, self.scale, aug, self.flip_pairs,
                            image=image, index=int(index))
    crop['ann_id'] = sample.ann_id
    return crop

  def __iter__(self):
    """One epoch; successive iterations are successive epochs."""
    epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
    return self.epoch(epoch)

  def epoch(self, epoch):
    """Generator of (batch, ann_ids) for one epoch (see the class docstring)."""
    order = self.order(epoch)
    window = max(1, self.batch_size * self.prefetch_batches)
    executor = (concurrent.futures.ThreadPoolExecutor(self.num_workers)
                if self.num_workers > 0 else None)
    pending = collections.deque()
    pending_next, skipped_before = 0, self.num_skipped
    crops = []
    try:
      while pending_next < len(order) or pending:
        # Keep a bounded window in flight: never decode the whole dataset ahead.
        while pending_next < len(order) and len(pending) < window:
          index = int(order[pending_next])
          pending_next += 1
          if executor is None:
            pending.append((index, _Done(self.load(index, epoch))))
          else:
            pending.append((index, executor.submit(self.load, index, epoch)))
        index, future = pending.popleft()
        crop = future.result()
        if crop is None:
          self._skip(index)
          continue
        crops.append(crop)
        if len(crops) == self.batch_size:
          yield self._emit(crops)
          crops = []
      if crops and not self.train:
        yield self._emit(crops)
    finally:
      if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)
    if self.num_skipped > skipped_before:
      logging.warning('Loader: skipped %d unreadable images this epoch (%d distinct so far)',
                      self.num_skipped - skipped_before, len(self.skipped))

  def _skip(self, index):
    sample = self.samples[index]
    path = sample.image_path
    if index not in self.skipped:
      logging.warning('Loader: cannot read %s (annotation %r); skipping it', path,
                      sample.ann_id)
    self.skipped[index] = path
    self.num_skipped += 1

  def _emit(self, crops):
    batch = make_batch(crops, pad_to=self.batch_size)
    return batch, [c['ann_id'] for c in crops]


class _Done:
  """A finished stand-in for a Future, for num_workers=0."""

  def __init__(self, value):
    self._value = value

  def result(self):
    return self._value
