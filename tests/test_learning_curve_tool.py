"""tools/learning_curve.py's table and figure (issue 16, item 7), on made-up curves: the
tool's runs are the main job's, tested elsewhere."""

import argparse
import json

import cv2
import numpy as np
import module_files  # pylint: disable=wrong-import-order


def _tool():
  return module_files.tool('learning_curve')   # it imports comparison_regimes


def _scores(mpjpe):
  return {'mpjpe': mpjpe, 'pa_mpjpe': mpjpe / 2, 'mpvpe': mpjpe * 1.2, 'implausible_pct': 0.0,
          'count': 10}


def test_rows_follow_the_steps_and_budgets_and_the_figure_has_a_panel_per_regime(tmp_path):
  tool = _tool()
  network = [(100, 0.2, _scores(300.0)), (200, 0.4, _scores(250.0)), (400, 0.8, _scores(220.0))]
  fitter = [(0.25, 0.01, _scores(190.0)), (1.0, 0.04, _scores(150.0))]
  curves = {'body_2d': (network, fitter), 'hand_2d': (network[:2], fitter)}
  args = argparse.Namespace(argv=['--steps', '400'], num_images=10, swap=0.05, drop=0.0)
  figure = str(tmp_path / 'curve.png')
  text = tool.markdown(curves, args, figure)
  body = text.split('## ')[1]
  rows = [line.split(' | ')[:4] for line in body.splitlines() if line.startswith('| network')
          or line.startswith('| fitter')]
  assert rows == [['| network', 'step 100', '0.200', '300.0'],
                  ['| network', 'step 200', '0.400', '250.0'],
                  ['| network', 'step 400', '0.800', '220.0'],
                  ['| fitter', '0.25 x steps', '0.010', '190.0'],
                  ['| fitter', '1 x steps', '0.040', '150.0']]
  assert '(curve.png)' in text
  tool.plot(curves, figure, size=(300, 200))
  image = cv2.imread(figure)
  assert image.shape == (200, 600, 3)
  # The network's line (blue in BGR) in both panels; the fitter's (red) too.
  blue = (image[..., 0] > 150) & (image[..., 1] < 120) & (image[..., 2] < 60)
  red = (image[..., 2] > 150) & (image[..., 0] < 60) & (image[..., 1] < 60)
  for panel in (slice(0, 300), slice(300, 600)):
    assert blue[:, panel].sum() > 50 and red[:, panel].sum() > 50
  # Log time axis: the fitter's points (0.01-0.04 s) lie left of the network's (0.2-0.8 s).
  cols = lambda mask: np.nonzero(mask[:, :300].any(0))[0]
  assert cols(red).mean() < cols(blue).mean()


def test_training_time_is_read_at_the_step(tmp_path):
  tool = _tool()
  train = tmp_path / 'train'
  train.mkdir()
  with open(train / 'metrics.jsonl', 'w') as f:
    for step, rate in ((10, 100.0), (20, 50.0), (30, 25.0)):
      f.write(json.dumps({'step': step, 'images_per_s': rate}) + '\n')
  # 20 steps of 32 images at the 50 images/s logged at step 20.
  np.testing.assert_allclose(tool._seconds_at(str(train), 20, 32), 20 * 32 / 50.0)  # pylint: disable=protected-access
