"""What every synthetic-set writer shares: atomic, byte-reproducible files and a batched
body-model forward pass.

    common.write_json(path, obj)          # temporary file, then rename
    forward = common.BatchedForward(model, batch_size=16)
    vertices, joints = forward(global_orient=aa, hand_pose=pose, betas=betas)
"""

import io
import json
import os
import zipfile

import cv2
import jax
import numpy as np

import body_models
from body_models._atomic import write_bytes as write_atomic  # bytes or str, atomically


def write_json(path, obj):
  return write_atomic(path, json.dumps(obj, separators=(',', ':')))


def write_jpeg(path, image, quality):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise OSError(f'could not encode {path} as JPEG')
  return write_atomic(path, buf.tobytes())


def write_npy(path, array):
  """One array as a .npy file, atomically."""
  buf = io.BytesIO()
  np.save(buf, np.asarray(array), allow_pickle=False)
  return write_atomic(path, buf.getvalue())


def write_npz(path, arrays):
  """A compressed .npz whose bytes depend only on the arrays (fixed member timestamps)."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
    for key, value in arrays.items():
      info = zipfile.ZipInfo(key + '.npy', date_time=(1980, 1, 1, 0, 0, 0))
      info.compress_type = zipfile.ZIP_DEFLATED
      with zf.open(info, 'w', force_zip64=True) as member:
        np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
  return write_atomic(path, buf.getvalue())


def rounded(values, digits):
  """Rounded plain-float list (json-ready) of any array-like."""
  return np.round(np.asarray(values, np.float64), digits).tolist()


def batches(count, size):
  """Consecutive ranges of at most `size` covering range(count)."""
  for start in range(0, count, size):
    yield range(start, min(start + size, count))


class BatchedForward:
  """`body_models.forward`, jitted once and run in fixed-size batches.

  A fixed batch shape means one compilation, and results that do not depend on how
  many samples were asked for (the padding repeats the last sample).
  """

  def __init__(self, model, batch_size):
    self.model, self.batch_size = model, batch_size
    self.forward = jax.jit(body_models.forward)

  def __call__(self, **params):
    """Parameters as (N, D) arrays, N <= batch_size (keyword names as `body_models.forward`)
    -> vertices (N, V, 3), joints (N, K, 3), float64."""
    n = len(next(iter(params.values())))
    pad = lambda x: np.concatenate(
        [x, np.repeat(x[-1:], self.batch_size - n, 0)]).astype(np.float32)
    out = self.forward(self.model, **{k: pad(np.asarray(v).reshape(n, -1))
                                      for k, v in params.items()})
    return (np.asarray(out.vertices, np.float64)[:n], np.asarray(out.joints, np.float64)[:n])
