"""The tfds builder: readers' Samples written to array_record and read back unchanged.

Fixtures are tiny files in the datasets' own layouts under a manual_dir; what comes back from
the build must equal what the reader itself returns, field by field and arrays exactly.
"""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neuralannot_jax.data import builders
from neuralannot_jax.data import coco
from neuralannot_jax.data import freihand
from neuralannot_jax.data.sample import AnnotationError
from neuralannot_jax.data.sample import Sample
from neuralannot_jax.data.sample import make_sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = [f.name for f in Sample.__dataclass_fields__.values()]


def write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(data, f)


def keypoints(x0, labelled):
  """COCO [x, y, v] * 17, joints in `labelled` at (x0 + j + 0.5, 2j + 1) with v = 2."""
  flat = []
  for j in range(17):
    flat += [x0 + j + 0.5, 2.0 * j + 1, 2] if j in labelled else [0, 0, 0]
  return flat


def write_coco(manual):
  """Three images, four people: three usable, one crowd."""
  people = [(101, 1, [10.5, 20.25, 100.0, 200.0], range(17), 0),
            (102, 1, [0.0, 0.0, 640.0, 100.0], (), 1),
            (105, 3, [300.0, 100.0, 50.0, 120.0], range(5), 0),
            (103, 2, [5.0, 5.0, 30.0, 40.0], (0, 3), 0)]
  data = {
      'images': [{'id': i, 'file_name': f'{i:012d}.jpg', 'height': 400 + i, 'width': 640}
                 for i in (1, 2, 3)],
      'annotations': [{'id': a, 'image_id': i, 'category_id': 1, 'bbox': box, 'iscrowd': crowd,
                       'area': box[2] * box[3], 'keypoints': keypoints(a, lab),
                       'num_keypoints': len(lab)} for a, i, box, lab, crowd in people],
      'categories': [{'id': 1, 'name': 'person'}],
  }
  write(os.path.join(manual, 'annotations', 'person_keypoints_train2017.json'), data)


def read_coco(manual, **options):
  return coco.read(os.path.join(manual, 'annotations', 'person_keypoints_train2017.json'),
                   os.path.join(manual, 'images', 'train2017'), layout='person_keypoints',
                   **options)


def write_freihand(manual, n=3):
  """n annotated poses in front of the camera, with MANO parameters and vertices."""
  rng = np.random.default_rng(0)
  xyz = [(np.array([0.0, 0.0, 0.6]) + rng.normal(scale=0.03, size=(21, 3))).tolist()
         for _ in range(n)]
  k = [[[rng.uniform(400, 600), 0, 112], [0, rng.uniform(400, 600), 112], [0, 0, 1]]
       for _ in range(n)]
  lists = {'xyz': xyz, 'K': k, 'mano': rng.normal(size=(n, 1, 61)).tolist(),
           'verts': rng.normal(size=(n, 778, 3)).tolist()}
  for key, values in lists.items():
    write(os.path.join(manual, f'training_{key}.json'), values)


def assert_same(got, want):
  """Two Sample lists equal field by field; arrays exactly, with dtype and shape."""
  assert [s.ann_id for s in got] == [s.ann_id for s in want]
  for g, w in zip(got, want):
    for name in FIELDS:
      a, b = getattr(g, name), getattr(w, name)
      if isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert a.shape == b.shape, name
      elif isinstance(b, dict):
        assert list(a) == list(b), name
        for key in b:
          assert a[key].dtype == b[key].dtype
          np.testing.assert_array_equal(a[key], b[key], err_msg=f'{name}.{key}')
      else:
        assert a == b and type(a) is type(b), (name, a, b)


def record_files(data_dir):
  return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
          for d, _, files in os.walk(data_dir) for f in files if '.array_record' in f}


def full_sample(**changes):
  fields = dict(
      dataset='coco_wholebody', ann_id='7_left', image_path='/d/img.jpg', bbox=[1, 2, 3, 4],
      part='hand', joint_set='HAND_21', joints_2d=np.arange(42).reshape(21, 2),
      joints_2d_valid=np.arange(21) % 2, joints_3d=np.ones((21, 3)) / 3, focal=[500.5, 501],
      princpt=[64, 63.25], image_size=(480, 640), image_id='img_9', parent_id=7,
      hand_side='left', gt_family='mano', gt_gender='neutral',
      gt_params={'hand_pose': np.linspace(0, 1, 45), 'global_orient': [0.1, 0.2, 0.3]},
      gt_vertices=np.full((778, 3), 0.25))
  fields.update(changes)
  return make_sample('test', **fields)


# ---- Sample <-> example ----------------------------------------------------------------------

@pytest.mark.parametrize('changes', [
    {},
    dict(ann_id=12, image_id=None, parent_id=None, hand_side=None, part='body',
         gt_family=None, gt_gender=None, gt_params=None, gt_vertices=None, focal=None,
         princpt=None, image_size=None, joints_3d=None, joint_set=''),
    dict(gt_params={}, joints_2d=np.zeros((0, 2)), joints_2d_valid=np.zeros(0)),
])
def test_example_round_trip_is_exact(changes):
  sample = full_sample(**changes)
  back, extras = builders.example_to_sample(
      builders.sample_to_example(sample, {'sequence': 'downtown', 'person_id': 1}))
  assert_same([back], [sample])
  assert extras == {'sequence': 'downtown', 'person_id': 1}


def test_ids_keep_their_type_and_bad_fields_are_named():
  for ann_id in (7, '7', 'x_left'):
    back, extras = builders.example_to_sample(builders.sample_to_example(
        full_sample(ann_id=ann_id)))
    assert back.ann_id == ann_id and type(back.ann_id) is type(ann_id) and extras is None
  sample = full_sample(gt_params={'shape': [1.0], 'pose': np.arange(6.0)})
  back, _ = builders.example_to_sample(builders.sample_to_example(sample))
  assert_same([back], [sample])
  with pytest.raises(AnnotationError, match="annotation 2.5: ann_id: 2.5 is a float"):
    builders.sample_to_example(full_sample(ann_id=2.5))
  odd = dataclasses.replace(full_sample(), image_size=(480.5, 640))
  with pytest.raises(AnnotationError, match=r"'7_left': image_size: \(480.5, 640\)"):
    builders.sample_to_example(odd)
  with pytest.raises(AnnotationError, match="'7_left': extras: not json"):
    builders.sample_to_example(full_sample(), {'when': object()})


# ---- building and loading --------------------------------------------------------------------

def test_coco_build_reads_back_what_the_reader_gives(tmp_path):
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  write_coco(manual)
  want = read_coco(manual)
  assert [s.ann_id for s in want.samples] == [101, 105, 103]  # file order
  result = builders.load_result('coco', data_dir, manual)
  assert [s.ann_id for s in result.samples] == [101, 103, 105]  # sorted by ann_id
  assert_same(builders.load_samples('coco', data_dir, order='file'), want.samples)
  assert (result.source, result.dataset) == (want.source, want.dataset)
  assert dict(result.skipped) == dict(want.skipped) == {'crowd': 1}
  assert result.summary() == want.summary()
  source = builders.open_source('coco', data_dir)
  assert len(source) == 3
  assert_same([source[i] for i in (2, 0, 1)], [want.samples[i] for i in (2, 0, 1)])


def test_second_load_does_not_rebuild(tmp_path, monkeypatch):
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  write_coco(manual)
  first = builders.load_samples('coco', data_dir, manual)
  files = record_files(data_dir)
  assert files
  # A rebuild would have to run the reader again: make that fail loudly.
  def boom(*args, **kwargs):
    raise AssertionError('rebuilt')
  monkeypatch.setitem(builders.FORMATS, 'coco', builders.Format(boom, {}))
  again = builders.load_samples('coco', data_dir)  # no manual_dir needed any more
  assert record_files(data_dir) == files
  assert_same(again, first)


def test_freihand_build_keeps_params_vertices_and_camera(tmp_path):
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  write_freihand(manual)
  want = freihand.read(manual, versions=(0, 2))
  config = builders.make_config('freihand', versions=[0, 2])
  got = builders.load_samples(config, data_dir, manual)
  assert [s.ann_id for s in got] == [0, 1, 2, 6, 7, 8]
  assert_same(got, want.samples)
  assert got[0].gt_vertices.shape == (778, 3) and set(got[0].gt_params) == {
      'global_orient', 'hand_pose', 'betas'}


def test_options_get_their_own_config_and_folder(tmp_path):
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  write_coco(manual)
  strict = builders.make_config('coco', min_keypoints=6)
  assert strict.name.startswith('coco-') and strict.name != builders.make_config(
      'coco', min_keypoints=5).name
  assert builders.make_config('coco') is builders.CONFIGS['coco']
  assert_same(builders.load_samples(strict, data_dir, manual, order='file'),
              read_coco(manual, min_keypoints=6).samples)
  assert [s.ann_id for s in builders.load_samples('coco', data_dir, manual)] == [101, 103, 105]
  folders = os.listdir(os.path.join(data_dir, 'neural_annot_samples'))
  assert sorted(f for f in folders if not f.startswith('.')) == sorted(['coco', strict.name])
  with pytest.raises(ValueError, match='rest_root'):
    builders.make_config('h36m', rest_root=None)
  with pytest.raises(ValueError, match='json'):
    builders.make_config('coco', min_keypoints=object())
  with pytest.raises(ValueError, match='unknown config'):
    builders.load_samples('coco_17', data_dir, manual)


def test_missing_manual_dir_shows_the_layout(tmp_path):
  with pytest.raises(FileNotFoundError, match='(?s)nothing: no such folder.*'
                                              'person_keypoints_train2017.json'):
    builders.load_samples('coco', str(tmp_path / 'tfds'), str(tmp_path / 'nothing'))


def test_a_build_is_not_reused_for_other_or_changed_files(tmp_path):
  """Issue 17, item 1: the build is keyed by the files it was read from, not only by the
  format and options: another root, or an edited annotation file, builds again."""
  data_dir = str(tmp_path / 'tfds')
  first, second = str(tmp_path / 'first'), str(tmp_path / 'second')
  write_coco(first)
  assert [s.ann_id for s in builders.load_samples('coco', data_dir, first)] == [101, 103, 105]
  files = record_files(data_dir)
  # The same files again: reused (the record files are the very same).
  builders.load_samples('coco', data_dir, first)
  assert record_files(data_dir) == files
  # Another root with other people.
  write_coco(second)
  path = os.path.join(second, 'annotations', 'person_keypoints_train2017.json')
  with open(path) as f:
    data = json.load(f)
  data['annotations'] = [a for a in data['annotations'] if a['id'] != 105]
  write(path, data)
  assert [s.ann_id for s in builders.load_samples('coco', data_dir, second)] == [101, 103]
  # The first root's annotation file edited in place.
  path = os.path.join(first, 'annotations', 'person_keypoints_train2017.json')
  data['annotations'] = [a for a in data['annotations'] if a['id'] != 103]
  write(path, data)
  assert [s.ann_id for s in builders.load_samples('coco', data_dir, first)] == [101]


def test_a_file_without_usable_samples_is_named_with_the_skips(tmp_path):
  """An empty annotation list ended in tfds's 'No examples were yielded', naming no file."""
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  write_coco(manual)
  path = os.path.join(manual, 'annotations', 'person_keypoints_train2017.json')
  with open(path) as f:
    data = json.load(f)
  crowd = [a for a in data['annotations'] if a['iscrowd']]
  write(path, dict(data, annotations=[]))
  with pytest.raises(AnnotationError, match=r'person_keypoints_train2017\.json: no usable '
                     r'samples: the coco reader found no annotation'):
    builders.load_samples('coco', data_dir, manual)
  write(path, dict(data, annotations=crowd))   # one record, skipped: the count is named
  with pytest.raises(AnnotationError, match=r'no usable samples: .*skipped every record '
                     r'\(1 crowd\)'):
    builders.load_samples('coco', data_dir, manual)


def test_every_format_has_a_config_a_layout_and_options(tmp_path):
  assert sorted(builders.CONFIGS) == sorted(['coco', 'coco_wholebody', 'pw3d', 'h36m',
                                             'mpi_inf_3dhp', 'freihand', 'interhand'])
  for name in builders.CONFIGS:
    assert f'\n  {name} ' in '\n' + builders.LAYOUTS
    b = builders.builder(name, tmp_path)
    assert b.builder_config.format == name and b.info.file_format.value == 'array_record'
    assert 'check_images' in builders.FORMATS[name].option_names()
  assert 'frame_stride' in builders.FORMATS['h36m'].option_names()
  assert 'layout' not in builders.FORMATS['coco'].option_names()


def test_mixed_ids_sort_ints_first():
  samples = [full_sample(ann_id=i) for i in ('5_left', 12, '5_face', 5)]
  assert [s.ann_id for s in sorted(samples, key=builders._order_key)] == [
      5, 12, '5_face', '5_left']


def test_build_and_read_never_import_tensorflow(tmp_path):
  """In a fresh process, since other tests may have imported anything."""
  manual = str(tmp_path / 'manual')
  write_coco(manual)
  script = (
      'import sys\n'
      'from neuralannot_jax.data import builders\n'
      f'samples = builders.load_samples("coco", {str(tmp_path / "tfds")!r}, {manual!r})\n'
      'assert len(samples) == 3, samples\n'
      'print("tensorflow" in sys.modules, sorted(m for m in sys.modules\n'
      '      if m.split(".")[0] == "tensorflow"))\n')
  out = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().splitlines()[-1] == 'False []'
