"""tfds datasets of the readers' Samples, built once from the user's own files.

Parsing a large annotation file on every run is slow (COCO-WholeBody's 200+ MB of json takes
about 20 s); a dataset built once gives fast start-up, random access and a standard cache. The
builder runs one of our readers on files under tfds's `manual_dir` and writes every `Sample` as
one array_record example. Images stay where they are: records hold their paths, as the reader
built them, so moving the images means building again. Reading back needs no TensorFlow.
A build is reused while the files it was read from are unchanged: it records the source
folder and the path, size and modification time of every annotation file under it (images
excepted: records hold their paths only), and `prepare` builds again when any differs, so a
workdir pointed at another root, or at an edited annotation file, never reuses old samples.

The layout each config expects under manual_dir is in `LAYOUTS` (tfds shows it when
manual_dir is missing or empty); each mirrors the arguments of the reader it runs.

Reader options (min_keypoints, frame_stride, versions, ...) go in through `make_config`, which
names the config after a digest of them, so a build with other options lands in its own folder
instead of silently reusing the first. Options must be json data: `rest_root` (a function) can
not be one, so H36M, MPI-INF-3DHP and InterHand fits are stored without their camera-frame
'transl', as their readers give them without it.

Reading: `open_source` gives lazy random access (decoding one record per index, so start-up
is instant whatever the size); `load_samples` / `load_result` decode everything into a list.

Order: the records are written in the reader's order (`disable_shuffling`, so no key hashing)
and `open_source` indexes them so; `load_samples` sorts by ann_id by default. Nothing downstream
should lean on either: the annotation pass keys its outputs by ann_id, never by position.
"""

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import shutil

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from neuralannot_jax.data import coco
from neuralannot_jax.data import freihand
from neuralannot_jax.data import h36m
from neuralannot_jax.data import interhand
from neuralannot_jax.data import pw3d
from neuralannot_jax.data.reading import ReadResult
from neuralannot_jax.data.sample import AnnotationError
from neuralannot_jax.data.sample import Sample

log = logging.getLogger(__name__)

SPLIT = 'train'  # NeuralAnnot annotates the training set it learns from

# ---- Sample <-> example ----------------------------------------------------------------------
#
# One record holds each array as its own float32 tensor and every other field in one json
# text. Measured with tfds 4.9.10 on this CPU, `as_data_source` decodes at about 10 us per
# feature per record, plus about 100 us per record: a feature per scalar and per presence flag
# (48 features) cost 650 us a record, this layout (11) about 200 us. json also keeps 7 apart
# from '7' and None for free.

# Arrays, each stored as a float32 tensor of this shape (None: the joint or vertex count).
ARRAYS = {
    'bbox': (4,),
    'joints_2d': (None, 2),
    'joints_2d_valid': (None,),
    'joints_3d': (None, 3),
    'joints_3d_valid': (None,),
    'focal': (2,),
    'princpt': (2,),
    'gt_vertices': (None, 3),
}
# Fields stored in the json text; ids and names may be int, str or None.
SCALARS = ('dataset', 'ann_id', 'image_path', 'part', 'joint_set', 'image_id', 'parent_id',
           'hand_side', 'gt_family', 'gt_gender')


def features():
  """The tfds FeaturesDict one `Sample` is stored as.

  ann_id: text, str(ann_id) (the record's key, readable by itself); fields: json of SCALARS,
  image_size, the names of the arrays that are None, gt_params' [name, size] list and the
  sample's ReadResult.extras; one tensor per ARRAYS entry (empty when None); gt_params: (P,)
  the parameters concatenated in the listed order.
  """
  f = {'ann_id': tfds.features.Text(), 'fields': tfds.features.Text()}
  for name, shape in ARRAYS.items():
    f[name] = tfds.features.Tensor(shape=shape, dtype=np.float32)
  f['gt_params'] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
  return tfds.features.FeaturesDict(f)


def _bad(sample, field, message):
  raise AnnotationError(f'{sample.dataset}: annotation {sample.ann_id!r}: {field}: {message}')


def _scalar(value, sample, field):
  """An int, str or None that json gives back with its type."""
  if value is None or isinstance(value, str):
    return value
  if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
    return int(value)
  _bad(sample, field, f'{value!r} is a {type(value).__name__}; only int, str or None are stored')


def _float32(value, sample, field, shape):
  array = np.asarray(value, np.float32)
  if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
    _bad(sample, field, f'has shape {array.shape}, expected {shape}')
  return array


def _empty(shape):
  """Zeros of `shape` with every unknown size 0: the stand-in for an absent array."""
  return np.zeros([0 if s is None else s for s in shape], np.float32)


def _image_size(sample):
  if sample.image_size is None:
    return None
  size = np.asarray(sample.image_size)
  if size.shape != (2,) or not np.issubdtype(size.dtype, np.integer):
    _bad(sample, 'image_size', f'{sample.image_size!r} is not (height, width) integers')
  return [int(v) for v in size]


def _params(sample):
  """(json [[name, size], ...] or None, (P,) float32 of the parameters concatenated)."""
  if sample.gt_params is None:
    return None, _empty((None,))
  arrays = [_float32(v, sample, f'gt_params.{k}', (None,)) for k, v in sample.gt_params.items()]
  layout = [[str(k), int(a.size)] for k, a in zip(sample.gt_params, arrays)]
  return layout, np.concatenate(arrays) if arrays else _empty((None,))


def sample_to_example(sample, extras=None):
  """A `Sample` (+ its ReadResult.extras entry) -> a dict matching `features()`.

  Arrays are stored as float32, the dtype `make_sample` gives them; everything else round-trips
  exactly through `example_to_sample`, ints staying ints.
  Raises:
    AnnotationError naming the dataset, the ann_id and the field that can not be stored.
  """
  fields = {name: _scalar(getattr(sample, name), sample, name) for name in SCALARS}
  fields['image_size'] = _image_size(sample)
  fields['none'] = [name for name in ARRAYS if getattr(sample, name) is None]
  fields['gt_params'], params = _params(sample)
  fields['extras'] = extras
  example = {name: _empty(shape) if getattr(sample, name) is None
             else _float32(getattr(sample, name), sample, name, shape)
             for name, shape in ARRAYS.items()}
  try:
    example['fields'] = json.dumps(fields)
  except TypeError as e:
    _bad(sample, 'extras', f'not json data ({e})')
  example['ann_id'] = str(fields['ann_id'])
  example['gt_params'] = params
  return example


def _text(value):
  """tfds's numpy decoding gives Text features as bytes."""
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def example_to_sample(example):
  """A decoded example (as `as_data_source` gives it) -> (Sample, extras or None)."""
  stored = json.loads(_text(example['fields']))
  fields = {name: stored[name] for name in SCALARS}
  fields['image_size'] = None if stored['image_size'] is None else tuple(stored['image_size'])
  for name in ARRAYS:
    fields[name] = None if name in stored['none'] else np.asarray(example[name], np.float32)
  fields['gt_params'] = None
  if stored['gt_params'] is not None:
    values = np.asarray(example['gt_params'], np.float32)
    ends = np.cumsum([size for _, size in stored['gt_params']], dtype=int)
    fields['gt_params'] = {name: values[end - size:end]
                           for (name, size), end in zip(stored['gt_params'], ends)}
  return Sample(**fields), stored['extras']


# ---- formats ---------------------------------------------------------------------------------

def _joined(manual_dir, options, defaults):
  """options with each path option (given or default) joined to manual_dir; an absolute
  path stays as it is."""
  out = dict(options)
  for key, default in defaults.items():
    value = out.get(key, default)
    if value is not None:
      out[key] = os.path.join(manual_dir, str(value))
  return out


@dataclasses.dataclass(frozen=True)
class Format:
  """How one config reads manual_dir.

  Attributes:
    reader: the reader function (its keyword options are the config's options).
    paths: {path option: default relative to manual_dir, or None for the reader's default}.
    fixed: reader keywords the config fixes (not options).
    positional: path options passed positionally, in order; with none, manual_dir is the
      reader's first argument.
  """
  reader: object
  paths: dict
  fixed: dict = dataclasses.field(default_factory=dict)
  positional: tuple = ()

  def option_names(self):
    """Keyword options a config may set: the reader's, less the fixed and non-data ones."""
    params = inspect.signature(self.reader).parameters
    names = {n for n, p in params.items() if p.kind == p.KEYWORD_ONLY}
    return (names | set(self.paths)) - set(self.fixed) - {'rest_root', 'split', 'set_name'}

  def read(self, manual_dir, options):
    """Run the reader on manual_dir -> ReadResult."""
    kwargs = _joined(manual_dir, options, self.paths)
    args = [kwargs.pop(key) for key in self.positional] or [manual_dir]
    return self.reader(*args, **kwargs, **self.fixed)


# What each config expects under manual_dir. Paths in quotes are options, relative to
# manual_dir, shown with their defaults.
LAYOUTS = '''\
  coco            'annotations/person_keypoints_train2017.json', images in 'images/train2017/'
                  (coco.read with layout 'person_keypoints': COCO_17 bodies)
  coco_wholebody  'annotations/coco_wholebody_train_v1.0.json', images in 'images/train2017/'
                  (coco.read with layout 'wholebody': bodies, hands, faces)
  pw3d            '3DPW_train.json', images in 'imageFiles/<sequence>/' (pw3d.read)
  h36m            manual_dir is the Human3.6M root: annotations/Human36M_subject*_*.json,
                  images/; 'annot_dir', 'image_dir' override them (h36m.read)
  mpi_inf_3dhp    manual_dir holds MPI-INF-3DHP_1k.json, _camera_1k.json, _joint_3d.json,
                  optionally _SMPL_NeuralAnnot.json, and images_1k/; 'image_dir' overrides
                  it (h36m.read_mpi_inf_3dhp)
  freihand        manual_dir holds training_{xyz,K,mano,verts}.json and training/rgb/
                  (freihand.read)
  interhand       manual_dir is the InterHand2.6M root: annotations/train/InterHand2.6M_train_
                  {data,camera,joint_3d,MANO_NeuralAnnot}.json, images/train/; 'annot_dir',
                  'image_dir' override them (interhand.read, split 'train')
'''

_COCO_IMAGES = 'images/train2017'
FORMATS = {
    'coco': Format(coco.read, {'annotation_file': 'annotations/person_keypoints_train2017.json',
                               'image_dir': _COCO_IMAGES},
                   fixed={'layout': 'person_keypoints'},
                   positional=('annotation_file', 'image_dir')),
    'coco_wholebody': Format(coco.read,
                             {'annotation_file': 'annotations/coco_wholebody_train_v1.0.json',
                              'image_dir': _COCO_IMAGES},
                             fixed={'layout': 'wholebody'},
                             positional=('annotation_file', 'image_dir')),
    'pw3d': Format(pw3d.read, {'annotation_file': '3DPW_train.json', 'image_dir': 'imageFiles'},
                   positional=('annotation_file', 'image_dir')),
    'h36m': Format(h36m.read, {'annot_dir': None, 'image_dir': None}),
    'mpi_inf_3dhp': Format(h36m.read_mpi_inf_3dhp, {'image_dir': None}),
    'freihand': Format(freihand.read, {}),
    'interhand': Format(interhand.read, {'annot_dir': None, 'image_dir': None},
                        fixed={'split': 'train'}),
}


# ---- the builder -----------------------------------------------------------------------------

def check_not_empty(result, fmt):
  """AnnotationError naming the file when a reader yields no sample: tfds would only say
  'No examples were yielded', naming nothing."""
  if result.samples:
    return
  skips = ', '.join(f'{n} {why}' for why, n in sorted(result.skipped.items()))
  raise AnnotationError(f'{result.source}: no usable samples: the {fmt} reader '
                        + (f'skipped every record ({skips})' if skips else
                           'found no annotation in it'))


@dataclasses.dataclass(eq=False)
class SamplesConfig(tfds.core.BuilderConfig):
  """One format and its reader options (json data), e.g. {'min_keypoints': 5}."""
  format: str = ''
  options: dict = dataclasses.field(default_factory=dict)


def _check_options(fmt, options):
  if fmt not in FORMATS:
    raise ValueError(f'unknown format {fmt!r}; known: {sorted(FORMATS)}')
  unknown = sorted(set(options) - FORMATS[fmt].option_names())
  if unknown:
    raise ValueError(f'{fmt}: options {unknown} are not build options; allowed: '
                     f'{sorted(FORMATS[fmt].option_names())} (rest_root is a function and '
                     f'can not be stored with a build)')
  try:
    return json.dumps(options, sort_keys=True)
  except TypeError as e:
    raise ValueError(f'{fmt}: build options must be json data: {e}') from None


def make_config(fmt, **options):
  """The config for `fmt` with reader options; named '<fmt>-<digest of options>' when any.

  Example: make_config('coco', min_keypoints=5, check_images=True).
  """
  text = _check_options(fmt, options)
  if not options:
    return CONFIGS[fmt]
  digest = hashlib.sha1(text.encode()).hexdigest()[:10]
  return SamplesConfig(name=f'{fmt}-{digest}', format=fmt, options=options,
                       description=f'{fmt} read with {text}')


CONFIGS = {fmt: SamplesConfig(name=fmt, format=fmt, description=f'{fmt}, reader defaults')
           for fmt in FORMATS}


class NeuralAnnotSamples(tfds.core.GeneratorBasedBuilder):
  """The Samples one reader makes of the user's files, one record each, train split only."""

  # Bump when a reader's output changes, so that builds made by older code are not reused.
  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Samples of the seven readers, images as paths.',
                   '1.1.0': 'Human3.6M / MPI-INF-3DHP records carry frame keys and extrinsics.'}
  BUILDER_CONFIGS = list(CONFIGS.values())
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Place the dataset\'s own files under manual_dir (nothing is downloaded):\n' + LAYOUTS)

  # tfds finds a builder's source file through importlib_resources, a backport that is not
  # installed (nor needed on Python >= 3.9); naming the file directly skips that lookup.
  code_path = epath.Path(__file__)

  def __init__(self, **kwargs):
    # array_record gives random access and reads without TensorFlow.
    kwargs.setdefault('file_format', 'array_record')
    super().__init__(**kwargs)

  def _info(self):
    # Built directly, not by `dataset_info_from_configs`, which wants a package folder of
    # README / citation files beside the class.
    return tfds.core.DatasetInfo(
        builder=self, description='Samples of NeuralAnnot-JAX readers (neuralannot_jax.data).',
        features=features(), metadata=tfds.core.MetadataDict(),
        # Keep the reader's order rather than tfds's hash-of-key order.
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    config = self.builder_config
    _check_options(config.format, config.options)
    manual_dir = os.fspath(dl_manager.manual_dir)
    result = FORMATS[config.format].read(manual_dir, config.options)
    log.info('%s', result.summary())
    check_not_empty(result, config.format)
    # What the reader left out travels with the build, so `load_result` can still summarise.
    self.info.metadata.update(source=result.source, dataset=result.dataset,
                              skipped=dict(result.skipped),
                              files=source_fingerprint(manual_dir, self.data_dir_root))
    return {SPLIT: self._generate_examples(result)}

  def _generate_examples(self, result):
    seen = set()
    for sample in result.samples:
      key = str(sample.ann_id)
      # tfds would refuse the duplicate too, but without naming the file.
      if key in seen:
        raise AnnotationError(f'{result.source}: annotation {sample.ann_id!r}: ann_id: its '
                              f'record key {key!r} is taken by an earlier annotation')
      seen.add(key)
      yield key, sample_to_example(sample, result.extras.get(sample.ann_id))


# ---- loading ---------------------------------------------------------------------------------

def builder(name_or_config, data_dir):
  """The NeuralAnnotSamples builder of a config name ('coco', ...) or `SamplesConfig`."""
  if isinstance(name_or_config, str) and name_or_config not in CONFIGS:
    raise ValueError(f'unknown config {name_or_config!r}; known: {sorted(CONFIGS)} '
                     '(use make_config for reader options)')
  return NeuralAnnotSamples(config=name_or_config, data_dir=os.fspath(data_dir))


# Files that are not annotations: records hold only their paths.
_IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.mp4', '.avi')


def source_fingerprint(manual_dir, exclude=None):
  """sha1 of the source folder's real path and of (relative path, size, mtime) of every
  file under it except images and the folder `exclude` (a tfds data_dir inside it): what a
  build was read from. A link to the folder is the folder (a two-stage run's stage two
  reads stage one's rendered set through one)."""
  root = os.path.realpath(os.fspath(manual_dir))
  exclude = None if exclude is None else os.path.realpath(os.fspath(exclude))
  digest = hashlib.sha1(root.encode())
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if os.path.join(folder, d) != exclude)
    for name in sorted(files):
      if name.lower().endswith(_IMAGE_SUFFIXES):
        continue
      path = os.path.join(folder, name)
      try:
        stat = os.stat(path)
      except OSError:      # a broken link: no annotation the reader could read
        continue
      digest.update(f'{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n'
                    .encode())
  return digest.hexdigest()


def prepare(name_or_config, data_dir, manual_dir=None):
  """Build the dataset unless `data_dir` already holds a build of the same files; returns
  the builder.

  manual_dir defaults to tfds's `<data_dir>/downloads/manual`. A build whose recorded
  `source_fingerprint` differs from manual_dir's now (another folder, an annotation file
  edited, added or removed) is deleted and built again.

  Raises:
    FileNotFoundError: manual_dir is given and is not a folder.
  """
  b = builder(name_or_config, data_dir)
  if manual_dir is not None:
    if not os.path.isdir(os.fspath(manual_dir)):
      raise FileNotFoundError(f'{os.fspath(manual_dir)}: no such folder (the dataset root, '
                              f'with:\n{LAYOUTS})')
    if b.is_prepared():
      built_from = b.info.metadata.get('files')
      if built_from != source_fingerprint(manual_dir, data_dir):
        log.warning('%s: the dataset files differ from those the build in %s was read '
                    'from (another root, or annotation files changed); building again',
                    os.fspath(manual_dir), b.data_dir)
        shutil.rmtree(os.fspath(b.data_dir))
        b = builder(name_or_config, data_dir)
  if not b.is_prepared():
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(manual_dir))
    b.download_and_prepare(download_config=config)
  return b


class SampleSource:
  """Random access to a built dataset's Samples, in the reader's order.

  len(source) and source[i] (an int index) decode only record i, so opening costs the same
  for ten samples or a million; this is the sequence protocol grain's data sources follow.
  """

  def __init__(self, data_source):
    self._source = data_source

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    return example_to_sample(self._source[index])[0]

  def __iter__(self):
    # Explicit: the underlying source raises ValueError, not IndexError, past the end.
    return (self[i] for i in range(len(self)))

  def extras(self):
    """{ann_id: the reader's extras} of every record that has some (decodes them all)."""
    out = {}
    for i in range(len(self._source)):
      sample, extras = example_to_sample(self._source[i])
      if extras is not None:
        out[sample.ann_id] = extras
    return out


def open_source(name_or_config, data_dir, manual_dir=None):
  """Build if needed -> `SampleSource` over the train split (arguments as `load_result`)."""
  return SampleSource(prepare(name_or_config, data_dir, manual_dir).as_data_source(split=SPLIT))


def _order_key(sample):
  # ints before strings, so mixed id sets (COCO-WholeBody: 5 and '5_left') still sort.
  return (0, sample.ann_id, '') if isinstance(sample.ann_id, int) else (1, 0, sample.ann_id)


def load_result(name_or_config, data_dir, manual_dir=None, *, order='ann_id'):
  """Build if needed, then decode everything back into the reader's `ReadResult`.

  Decoding every record costs about 0.2 ms each on one CPU core (tfds's numpy decoding),
  more per sample than the json readers themselves: where start-up time matters, index an
  `open_source` instead of loading a list.

  Args:
    name_or_config: a format name ('coco', 'coco_wholebody', 'pw3d', 'h36m', 'mpi_inf_3dhp',
      'freihand', 'interhand') or a config from `make_config`.
    data_dir: the tfds data folder the build is cached in.
    manual_dir: the folder holding the dataset's files (see `LAYOUTS`); needed only to build.
    order: 'ann_id' sorts samples by ann_id (ints first, then strings); 'file' keeps the
      reader's order.
  Returns:
    ReadResult with samples, extras, skipped counts, source and dataset as the reader gave.
  """
  if order not in ('ann_id', 'file'):
    raise ValueError(f"order must be 'ann_id' or 'file', not {order!r}")
  b = prepare(name_or_config, data_dir, manual_dir)
  source = b.as_data_source(split=SPLIT)
  meta = b.info.metadata
  result = ReadResult(source=meta['source'], dataset=meta['dataset'])
  result.skipped.update(meta['skipped'])
  for i in range(len(source)):
    sample, extras = example_to_sample(source[i])
    result.samples.append(sample)
    if extras is not None:
      result.extras[sample.ann_id] = extras
  if order == 'ann_id':
    result.samples.sort(key=_order_key)
  return result


def load_samples(name_or_config, data_dir, manual_dir=None, *, order='ann_id'):
  """Build if needed, read back -> list of `Sample`, sorted by ann_id (see `load_result`)."""
  return load_result(name_or_config, data_dir, manual_dir, order=order).samples
