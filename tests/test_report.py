"""Tests of neuralannot_jax/report/page.py and tools/visualize.py on a tiny fake run."""

import html.parser
import json
import os

import cv2
import numpy as np
import pytest

from body_models import synthetic
from neuralannot_jax import export
from neuralannot_jax.data import sample as sample_lib
from neuralannot_jax.report import page as report
import module_files  # pylint: disable=wrong-import-order

IDS = (11, 12, 13)


class _Links(html.parser.HTMLParser):
  """Every src / href of a page."""

  def __init__(self):
    super().__init__()
    self.links = []

  def handle_starttag(self, tag, attrs):
    self.links += [v for k, v in attrs if k in ('src', 'href') and v]


def _links(path):
  parser = _Links()
  with open(path, encoding='utf-8') as f:
    parser.feed(f.read())
  return parser.links


class _Lazy:
  """A sequence with only len and [i], as the tfds data sources are."""

  def __init__(self, items):
    self._items = items

  def __len__(self):
    return len(self._items)

  def __getitem__(self, index):
    return self._items[index]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A work directory as `experiment.run` leaves it, 3 SMPL samples, one image missing."""
  work = tmp_path_factory.mktemp('fake_run')
  synthetic.write_model('smpl', str(work / 'body_models'))
  rng = np.random.default_rng(0)
  focal, princpt = np.array([150.0, 150.0]), np.array([63.5, 47.5])
  entries, samples = {}, []
  for k, ann_id in enumerate(IDS):
    params = {'global_orient': np.array([np.pi, 0, 0], np.float32),
              'body_pose': rng.normal(0, 0.1, 69).astype(np.float32),
              'transl': np.array([0.1 * k, 0.0, 5.0], np.float32)}
    entries[ann_id] = export.to_released_entry('smpl', params, focal, princpt)
    entries[ann_id]['quality'] = {'joint_residual_px': 2.0 + 3.0 * k, 'implausible': k == 1}
    image_path = str(work / 'images' / f'{ann_id}.jpg')
    if ann_id != IDS[-1]:   # the last sample's image is missing
      os.makedirs(os.path.dirname(image_path), exist_ok=True)
      cv2.imwrite(image_path, rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    samples.append(sample_lib.make_sample(
        'fake.json', dataset='fake', ann_id=ann_id, image_path=image_path,
        bbox=[30, 10, 60, 80], joint_set='COCO_17',
        joints_2d=rng.uniform(20, 90, (17, 2)), joints_2d_valid=np.ones(17)))
  pred = export.write_coco_style(str(work / 'pseudo_gt.json'), entries)
  os.makedirs(work / 'train')
  metrics = work / 'train' / 'metrics.jsonl'
  lines = [json.dumps({'step': s, 'loss': 1.0 / s, 'joints_2d': 0.5 / s, 'images_per_s': 40.0})
           for s in (10, 20, 30, 40)]
  lines.insert(2, '{"step": 30, "loss": 9')          # cut by a crash, then resumed
  lines.append(json.dumps({'step': 40, 'loss': 0.02, 'joints_2d': 0.01}))
  metrics.write_text('\n'.join(lines) + '\n')
  evaluation = {'family': 'smpl', 'count': 3, 'mpjpe': 60.0, 'pa_mpjpe': 40.0, 'mpvpe': 70.0,
                'pa_mpvpe': 50.0,
                'per_sample': {'ids': [str(i) for i in IDS],
                               'mpjpe': np.array([50.0, 90.0, 40.0]),
                               'pa_mpjpe': np.array([30.0, 50.0, 40.0])}}
  return {'work': str(work), 'pred': pred, 'metrics': str(metrics), 'samples': samples,
          'evaluation': evaluation, 'model': str(work / 'body_models')}


def test_report_of_a_tiny_run_references_files_that_exist(run):
  path = report.write_report(run['work'], _Lazy(run['samples']), run['pred'], run['evaluation'],
                             run['metrics'], run['model'], 'smpl', num=2, tile_height=96)
  assert path == os.path.join(run['work'], 'report', 'index.html')
  links = _links(path)
  assert {'worst.png', 'best.png', 'loss.png', 'residuals.png'} <= set(links)
  for link in links:
    assert not os.path.isabs(link) and '://' not in link, link
    target = os.path.join(os.path.dirname(path), link)
    assert os.path.isfile(target), link
    assert cv2.imread(target) is not None, link
  page = open(path, encoding='utf-8').read()
  assert 'MPJPE (mm)' in page and '60.00' in page and 'final loss' in page
  worst = cv2.imread(os.path.join(os.path.dirname(path), 'worst.png'))
  assert worst.shape[0] == 96 and worst.shape[1] >= 2 * 2 * 96   # two panels side by side
  # No temporary files are left behind.
  assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith('.tmp')]


def test_report_without_evaluation_or_metrics_shows_the_first_samples(run, tmp_path):
  path = report.write_report(str(tmp_path), run['samples'], run['pred'], None,
                             str(tmp_path / 'missing.jsonl'), run['model'], 'smpl', num=8,
                             tile_height=64)
  links = _links(path)
  # The residuals come from the pseudo-GT file itself: shown without an evaluation too.
  assert links == ['first.png', 'first.png', 'residuals.png', 'residuals.png']
  grid = cv2.imread(str(tmp_path / 'report' / 'first.png'))
  assert grid.shape[0] == 2 * 64 + 4                          # 3 tiles in 2 columns
  with pytest.raises(FileNotFoundError, match='nope.json'):
    report.write_report(str(tmp_path), run['samples'], str(tmp_path / 'nope.json'), None,
                        None, run['model'], 'smpl')


def test_rank_samples_orders_by_error_and_maps_hands_to_their_entry():
  entries = {str(i): {} for i in range(6)}
  evaluation = {'per_sample': {'ids': ['0', '1', '2', '3', '4', '5'],
                               'mpjpe': [5.0, 1.0, float('nan'), 9.0, 3.0, 7.0]}}
  metric, groups = report.rank_samples(evaluation, entries, 'smpl', 2)
  assert metric == 'mpjpe'
  assert groups['worst'] == [('3', 9.0), ('5', 7.0)]
  assert groups['best'] == [('1', 1.0), ('4', 3.0)]
  _, groups = report.rank_samples(evaluation, entries, 'smpl', 4)   # too few: no overlap
  assert not {k for k, _ in groups['worst']} & {k for k, _ in groups['best']}
  hands = {'7': {}, '8': {}}
  evaluation = {'per_sample': {'ids': ['7_right', '7_left', '8_right'],
                               'pa_mpjpe': [2.0, 6.0, 4.0]}}
  metric, groups = report.rank_samples(evaluation, hands, 'mano', 1)
  assert metric == 'pa_mpjpe' and groups == {'worst': [('7', 6.0)], 'best': [('8', 4.0)]}
  assert report.rank_samples(None, hands, 'mano', 5) == (None, {'first': [('7', None),
                                                                          ('8', None)]})


def test_read_metrics_keeps_the_last_line_of_a_step(run):
  series = report.read_metrics(run['metrics'])
  steps, loss = series['loss']
  np.testing.assert_array_equal(steps, [10, 20, 30, 40])
  assert loss[-1] == 0.02
  image = report.loss_curve_image(series, size=(200, 300))
  assert image.shape == (200, 300, 3) and (image < 255).any()


def _tool():
  return module_files.tool('visualize')


def test_visualize_tool_writes_one_png_per_id(run, tmp_path, capsys):
  tool = _tool()
  out = tmp_path / 'png'
  assert tool.main(['--pred', run['pred'], '--family', 'smpl', '--model_path', run['model'],
                    '--out', str(out), '--ids', '12,11', '--min_height', '64']) == 0
  assert sorted(os.listdir(out)) == ['11.png', '12.png']
  assert tool.main(['--pred', str(tmp_path / 'nope.json'), '--family', 'smpl',
                    '--out', str(out)]) == 1
  assert 'nope.json' in capsys.readouterr().err
  assert tool.main(['--pred', run['pred'], '--family', 'smpl', '--model_path', run['model'],
                    '--out', str(out), '--ids', '99']) == 1
  assert "'99'" in capsys.readouterr().err


def test_residual_histogram_counts_every_pseudo_gt_and_names_its_quantiles():
  """Issue 16: the report shows the distribution of the per-sample residuals."""
  from neuralannot_jax.report import residuals as residual_plot  # pylint: disable=import-outside-toplevel
  values = np.concatenate([np.arange(1.0, 100.0), [5000.0]])      # one wild fit
  counts, edges = residual_plot.histogram_bins(values, num_bins=10)
  assert counts.sum() == values.size                 # the wild one is in the last bar
  assert edges[0] == 0 and edges[-1] == pytest.approx(np.percentile(values, 99))
  assert counts[-1] == np.sum(values >= edges[-2])
  # MANO files carry the quality per hand; the kind most entries have is drawn.
  entries = {'a': {'right': {'quality': {'joint_residual_mm': 4.0}}, 'left': None},
             'b': {'right': {'quality': {'joint_residual_mm': 6.0}},
                   'left': {'quality': {'joint_residual_px': 3.0}}},
             'c': {'smpl_param': {}, 'quality': {'joint_residual_mm': 8.0, 'implausible': True}},
             'd': {'smpl_param': {}}}
  key, _, got, share = residual_plot.residual_summary(residual_plot.entry_qualities(entries))
  assert key == 'joint_residual_mm' and sorted(got) == [4.0, 6.0, 8.0] and share == 100.0
  assert residual_plot.residual_summary(residual_plot.entry_qualities({'d': {}})) is None
  image = residual_plot.histogram_image(values, unit='px')
  assert image.shape == (300, 640, 3) and (image < 255).any()
