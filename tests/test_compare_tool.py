"""tools/compare_annotators.py's report: the released world-frame files are scored beside
the camera-frame file (issue 16, item 10)."""

import argparse

import module_files  # pylint: disable=wrong-import-order


def _tool():
  return module_files.tool('compare_annotators')


def _result(mpjpe, mpvpe, world=None):
  out = {'samples': 10, 'annotate_seconds': 1.0, 'train_seconds': 2.0, 'mpjpe': mpjpe,
         'pa_mpjpe': mpjpe / 2, 'mpvpe': mpvpe, 'pa_mpvpe': mpvpe / 2}
  if world is not None:
    out['world_frame'] = {'mpjpe': world[0], 'pa_mpjpe': world[1], 'mpvpe': world[2]}
  return out


def test_the_world_frame_files_get_their_own_rows():
  tool = _tool()
  args = argparse.Namespace(argv=[], num_images=10, steps=5, noise_px=2.0, noise_mm=15.0,
                            hand_noise_mm=5.0, swap=0.0, drop=0.0)
  results = {'body_3d': {'smplify': _result(30.0, 50.0, (31.5, 22.0, 51.0)),
                         'neuralannot': _result(28.0, 37.0, (192.0, 60.0, 200.0))},
             'hand_3d': {'smplify': _result(7.7, 7.5), 'neuralannot': _result(10.6, 9.1)}}
  text = tool.markdown(results, args)
  assert '## World-frame files' in text
  rows = [line for line in text.splitlines() if line.startswith('| ') and '192.0' in line]
  assert rows == [f'| {tool.REGIMES["body_3d"][3]} | NeuralAnnot (ours) | 28.0 / 37.0 | '
                  '192.0 / 60.0 / 200.0 |']
  # Hands have no world-frame files: no rows for them.
  assert sum(line.startswith(f'| {tool.REGIMES["hand_3d"][3]} |')
             for line in text.splitlines()) == 0


def test_the_regimes_from_2d_joints_train_for_their_own_number_of_steps():
  tool = _tool()
  args = argparse.Namespace(steps=600, wild_steps=1500)
  assert [tool.regime_steps(r, args) for r in ('body_3d', 'body_2d', 'hand_3d', 'hand_2d')] == [
      600, 1500, 600, 1500]
  assert tool.regime_steps('body_2d', argparse.Namespace(steps=600, wild_steps=0)) == 600
