"""What every dataset reader returns, and the checks the COCO-style readers share.

Two kinds of trouble, handled differently on purpose:
- content that real datasets contain (crowd regions, people with no labelled joint, zero-area
  boxes, images not on disk): the record is skipped and counted in `ReadResult.skipped`, because
  one such record among 100k must not stop a run;
- structure that no reader can interpret (a missing key, a keypoint list of the wrong length,
  `annotations` not being a list): `AnnotationError` naming the file, the record and the field,
  because it means the file is not the format the reader was asked to read.
"""

import collections
import dataclasses
import json
import os

import numpy as np

from neuralannot_jax.data.sample import AnnotationError


@dataclasses.dataclass
class ReadResult:
  """The samples one annotation file yields, and what was left out.

  Attributes:
    source: the annotation file read.
    dataset: the dataset name written into every sample.
    samples: list of `Sample`, in file order.
    skipped: {reason: count} of left-out records, e.g. 'crowd', 'no_keypoints', 'tiny_box',
      'missing_image'; readers of several parts prefix the part, e.g. 'hand_invalid'.
    extras: {ann_id: {name: value}} for per-record facts `Sample` has no field for (3DPW's SMPL
      gender, for one); empty for most formats.
  """
  source: str
  dataset: str
  samples: list = dataclasses.field(default_factory=list)
  skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  extras: dict = dataclasses.field(default_factory=dict)

  def summary(self):
    """One line: how many samples of which part, from where, and what was skipped."""
    parts = collections.Counter(s.part for s in self.samples)
    made = ', '.join(f'{n} {part}' for part, n in sorted(parts.items())) or 'none'
    skips = ', '.join(f'{n} {why}' for why, n in sorted(self.skipped.items())) or 'nothing'
    return (f'{self.dataset}: {len(self.samples)} samples ({made}) from {self.source}; '
            f'skipped {skips}')


def fail(source, record, field, message):
  """Raise AnnotationError as '<file>: <record>: <field>: <message>' (record e.g. 'image 5')."""
  raise AnnotationError(f'{source}: {record}: {field}: {message}')


def ann_label(ann, index):
  """How errors name an annotation: by its id, or by its position when it has none."""
  if isinstance(ann, dict) and 'id' in ann:
    return f'annotation {ann["id"]!r}'
  return f'annotation #{index} (no id)'


def load_json(path):
  """The parsed JSON document at `path`; AnnotationError when it is not JSON."""
  try:
    with open(path, 'rb') as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    fail(path, 'file', 'json', f'not valid JSON ({e})')


def load_json_file(path, required=True):
  """`load_json(path)`, or None for an absent optional file; a missing required one fails."""
  if not os.path.isfile(path):
    if required:
      fail(path, 'file', 'path', 'missing')
    return None
  return load_json(path)


def image_size(image, source):
  """(height, width) of a COCO-style image record, as ints; AnnotationError otherwise."""
  try:
    return (int(image['height']), int(image['width']))
  except (TypeError, ValueError):
    fail(source, f'image {image["id"]!r}', 'height/width',
         f'not integers: {image["height"]!r}, {image["width"]!r}')


def require(record, key, source, label, field=None):
  """record[key], or AnnotationError naming the missing field (`field`, default `key`)."""
  field = field or key
  if not isinstance(record, dict):
    fail(source, label, field, f'its record is a {type(record).__name__}, not an object')
  if key not in record:
    fail(source, label, field, 'missing')
  return record[key]


def coco_tables(data, source, image_keys=('id', 'file_name', 'height', 'width')):
  """The image table and annotation list of a COCO-style document.

  Args:
    data: the parsed JSON, a dict with lists 'images' and 'annotations'.
    source: the file, named in errors.
    image_keys: keys every image record must have.
  Returns:
    ({image id: image record}, annotation list).
  """
  if not isinstance(data, dict):
    fail(source, 'file', 'top level', f'is a {type(data).__name__}, expected an object')
  tables = []
  for key in ('images', 'annotations'):
    value = require(data, key, source, 'file')
    if not isinstance(value, list):
      fail(source, 'file', key, f'is a {type(value).__name__}, expected a list')
    tables.append(value)
  images = {}
  for index, image in enumerate(tables[0]):
    label = f'image {image["id"]!r}' if isinstance(image, dict) and 'id' in image else (
        f'image #{index} (no id)')
    for key in image_keys:
      require(image, key, source, label)
    images[image['id']] = image
  return images, tables[1]


def image_of(ann, images, source, label):
  """The image record an annotation points to; a dangling image_id is a broken file."""
  image_id = require(ann, 'image_id', source, label)
  try:
    return images[image_id]
  except (KeyError, TypeError):
    fail(source, label, 'image_id', f'{image_id!r} is not in the file\'s images')


def numbers(value, source, label, field, size):
  """(size,) float32 from a flat or nested list of exactly `size` finite numbers."""
  try:
    array = np.asarray(value, dtype=np.float32).reshape(-1)
  except (TypeError, ValueError) as e:
    fail(source, label, field, f'not numeric ({e})')
  if array.size != size:
    fail(source, label, field, f'has {array.size} values, expected {size}')
  if not np.isfinite(array).all():
    fail(source, label, field, 'has non-finite values')
  return array


def keypoints(value, source, label, field, count):
  """COCO keypoints [x, y, v] * count -> ((count, 2) pixels, (count,) 1 where v > 0 else 0).

  COCO's v: 0 not labelled (x = y = 0), 1 labelled but hidden, 2 labelled and visible; both
  labelled kinds supervise the annotator, so validity is v > 0.
  """
  flat = numbers(value, source, label, field, 3 * count).reshape(count, 3)
  return flat[:, :2].copy(), (flat[:, 2] > 0).astype(np.float32)


def box_is_usable(box, min_size):
  """True when an xywh box (4,) is wider and taller than `min_size` pixels."""
  return bool(box[2] > min_size and box[3] > min_size)


class ImageCheck:
  """Whether image files exist, asked once per path (several people share an image)."""

  def __init__(self, enabled):
    self.enabled = enabled
    self._seen = {}

  def missing(self, path):
    if not self.enabled:
      return False
    if path not in self._seen:
      self._seen[path] = not os.path.isfile(path)
    return self._seen[path]
