"""tools/compare_annotators.py's report: the released world-frame files are scored beside
the camera-frame file (issue 16, item 10)."""

import argparse
import json

import pytest

import module_files  # pylint: disable=wrong-import-order


def _tool():
  return module_files.tool('compare_annotators')


def _regimes():
  return module_files.tool('comparison_regimes')


def _report():
  return module_files.tool('comparison_report')


def _result(mpjpe, mpvpe, world=None):
  out = {'samples': 10, 'annotate_seconds': 1.0, 'train_seconds': 2.0, 'mpjpe': mpjpe,
         'pa_mpjpe': mpjpe / 2, 'mpvpe': mpvpe, 'pa_mpvpe': mpvpe / 2}
  if world is not None:
    out['world_frame'] = {'mpjpe': world[0], 'pa_mpjpe': world[1], 'mpvpe': world[2]}
  return out


def test_the_world_frame_files_get_their_own_rows():
  report = _report()
  regimes = _regimes()
  args = argparse.Namespace(argv=[], num_images=10, steps=5, noise_px=2.0, noise_mm=15.0,
                            hand_noise_mm=5.0, swap=0.0, drop=0.0)
  results = {'body_3d': {'smplify': _result(30.0, 50.0, (31.5, 22.0, 51.0)),
                         'neuralannot': _result(28.0, 37.0, (192.0, 60.0, 200.0))},
             'hand_3d': {'smplify': _result(7.7, 7.5), 'neuralannot': _result(10.6, 9.1)}}
  text = report.markdown(results, args)
  assert '## World-frame files' in text
  rows = [line for line in text.splitlines() if line.startswith('| ') and '192.0' in line]
  assert rows == [f'| {regimes.REGIMES["body_3d"][3]} | NeuralAnnot (ours) | 28.0 / 37.0 | '
                  '192.0 / 60.0 / 200.0 |']
  # Hands have no world-frame files: no rows for them.
  assert sum(line.startswith(f'| {regimes.REGIMES["hand_3d"][3]} |')
             for line in text.splitlines()) == 0


def test_the_regimes_from_2d_joints_train_for_their_own_number_of_steps():
  regimes = _regimes()
  args = argparse.Namespace(steps=600, wild_steps=1500)
  assert [regimes.regime_steps(r, args) for r in ('body_3d', 'body_2d', 'hand_3d', 'hand_2d')] == [
      600, 1500, 600, 1500]
  assert regimes.regime_steps('body_2d', argparse.Namespace(steps=600, wild_steps=0)) == 600


def test_stage_two_trains_on_from_stage_one_and_its_refined_file(tmp_path):
  regimes = _regimes()
  args = argparse.Namespace(steps=600, wild_steps=1500, two_stage_steps=300,
                            wild_two_stage_steps=900, workdir=str(tmp_path), quiet=True,
                            num_images=10, fit_batch=8, noise_px=2.0, noise_mm=15.0,
                            hand_noise_mm=5.0, swap=0.0, drop=0.0)
  stage_one = regimes.regime_config('body_2d', 'neuralannot', args)
  assert not stage_one.train.two_stage.init and not stage_one.train.two_stage.init_weights
  for annotator, output in (('neuralannot_2', 'pseudo_gt'),
                            ('neuralannot_2_refine', 'pseudo_gt_refine')):
    two = regimes.regime_config('body_2d', annotator, args)
    assert two.workdir != stage_one.workdir
    assert two.train.two_stage.init_weights == stage_one.workdir
    assert two.train.two_stage.init == f'{stage_one.workdir}/pseudo_gt_refine.json'
    assert (two.train.num_steps, two.annotate.output) == (900, output)
  # Stage two of a MoCap regime: its own steps, the MoCap learning rate, one train stage.
  two = regimes.regime_config('hand_3d', 'neuralannot_2', args)
  assert (two.train.num_steps, two.train.lr, two.stages) == (300, regimes.MOCAP_LR,
                                                             'train,annotate,evaluate')
  assert regimes.regime_config('hand_3d', 'neuralannot_2_refine',
                               args).stages == 'annotate,evaluate'
  assert regimes.two_stage_steps('hand_3d', argparse.Namespace()) == 0


def test_the_header_names_only_the_regimes_that_have_a_stage_two():
  report = _report()
  both = report.two_stage_sentence(argparse.Namespace(two_stage_steps=600,
                                                     wild_two_stage_steps=1500))
  assert '600 more steps from 3D joints and 1500 more steps from 2D joints,' in both
  wild_only = report.two_stage_sentence(argparse.Namespace(two_stage_steps=0,
                                                         wild_two_stage_steps=1500))
  assert '3D joints' not in wild_only.split('(')[0]
  assert '1500 more steps from 2D joints (from 3D joints: one stage only)' in wild_only
  assert report.two_stage_sentence(argparse.Namespace(two_stage_steps=0,
                                                    wild_two_stage_steps=0)) == ''


def test_set_gives_every_run_a_config_field_after_the_tools_own(tmp_path):
  regimes = _regimes()
  args = argparse.Namespace(steps=600, wild_steps=1500, workdir=str(tmp_path), quiet=True,
                            num_images=10, fit_batch=8, noise_px=2.0, noise_mm=15.0,
                            hand_noise_mm=5.0, swap=0.0, drop=0.0,
                            set=dict(map(regimes.parse_setting, [
                                'model.depth=50', 'model.compute_dtype=bfloat16',
                                'train.lr=3e-4'])))
  for regime in ('body_2d', 'hand_3d'):
    for annotator in ('neuralannot', 'smplify', 'neuralannot_refine'):
      config = regimes.regime_config(regime, annotator, args)
      assert (config.model.depth, config.model.compute_dtype) == (50, 'bfloat16')
      # The user's rate wins over the MoCap regimes' own.
      assert config.train.lr == 3e-4
  assert regimes.regime_config('hand_3d', 'neuralannot', argparse.Namespace(
      **{**vars(args), 'set': {}})).train.lr == regimes.MOCAP_LR
  with pytest.raises(argparse.ArgumentTypeError, match='FIELD=VALUE'):
    regimes.parse_setting('model.depth')


def test_report_only_reports_finished_runs_and_runs_nothing(tmp_path, monkeypatch):
  tool = _tool()
  from neuralannot_jax import experiment  # pylint: disable=import-outside-toplevel
  def no_run(config):
    raise AssertionError(f'--report_only ran {config.workdir}')
  monkeypatch.setattr(experiment, 'run', no_run)
  finished = tmp_path / 'hand_3d' / 'neuralannot'
  (finished / 'train').mkdir(parents=True)
  (finished / 'train' / 'metrics.jsonl').write_text(
      json.dumps({'step': 40, 'images_per_s': 320.0}) + '\n')
  (finished / 'comparison.json').write_text(json.dumps(
      {**_result(9.8, 8.8), 'train_steps': 40, 'settings': {'model.depth': 50}}))
  # A fit made under other --set fields is not this comparison's: left out.
  (tmp_path / 'hand_3d' / 'smplify').mkdir()
  (tmp_path / 'hand_3d' / 'smplify' / 'comparison.json').write_text(json.dumps(
      {**_result(8.1, 7.8), 'train_steps': 40, 'settings': {'model.depth': 18}}))
  out = tmp_path / 'report.md'
  argv = ['--regimes', 'hand_3d,body_2d', '--steps', '40', '--num_images', '10',
          '--workdir', str(tmp_path), '--out', str(out), '--report_only']
  results = tool.main(argv + ['--set', 'model.depth=50'])
  assert list(results) == ['hand_3d'] and list(results['hand_3d']) == ['neuralannot']
  # Its training time is read off its log: 40 steps of 32 images at 320 images/s.
  assert results['hand_3d']['neuralannot']['train_seconds'] == pytest.approx(4.0)
  text = out.read_text()
  assert '| NeuralAnnot (ours) | 9.8 |' in text and 'SMPLify-X style fitting |' not in text
  assert 'ResNet-50' in text and 'Table 5' not in text
  # It recorded no code fingerprint: reported, but flagged as another code's.
  assert "**Made by other code than the tool's present code:** hand_3d/neuralannot" in text
  assert 'Wall time of all' not in text        # nor its wall time
  # Nothing finished under these settings: no report, and the stale one is gone.
  with pytest.raises(SystemExit, match='no finished run'):
    tool.main(argv + ['--set', 'model.depth=34'])
  assert not out.exists()


def test_the_runs_of_a_regime_share_one_rendered_set(tmp_path):
  tool = _tool()
  network, fitter = tmp_path / 'neuralannot', tmp_path / 'smplify'
  (network / 'data' / 'freihand').mkdir(parents=True)
  tool.share_rendered_set(str(network), str(fitter), 'freihand')
  assert not (fitter / 'data').exists()       # not finished rendering: nothing to share
  (network / 'data' / 'freihand' / '.complete').write_text('{}')
  tool.share_rendered_set(str(network), str(fitter), 'freihand')
  assert (fitter / 'data').is_symlink() and (fitter / 'data' / 'freihand').is_dir()
  # Relative: the work directories can move together.
  moved = tmp_path.parent / (tmp_path.name + '_moved')
  tmp_path.rename(moved)
  assert (moved / 'smplify' / 'data' / 'freihand' / '.complete').exists()
  moved.rename(tmp_path)
  # A run's own set is never replaced; a link pointing nowhere is.
  own = tmp_path / 'other'
  (own / 'data').mkdir(parents=True)
  tool.share_rendered_set(str(network), str(own), 'freihand')
  assert not (own / 'data').is_symlink()
  broken = tmp_path / 'broken'
  broken.mkdir()
  (broken / 'data').symlink_to(tmp_path / 'nowhere')
  tool.share_rendered_set(str(network), str(broken), 'freihand')
  assert (broken / 'data' / 'freihand' / '.complete').exists()


def test_a_run_made_by_other_code_is_flagged_and_the_wall_time_summed(tmp_path, capsys):
  tool = _tool()
  for name, code, wall in (('neuralannot', tool.code_fingerprint(), 600.0),
                           ('smplify', '0123456789ab', 120.0)):
    run = tmp_path / 'hand_3d' / name
    (run / 'train').mkdir(parents=True)
    (run / 'train' / 'metrics.jsonl').write_text(
        json.dumps({'step': 40, 'images_per_s': 320.0}) + '\n')
    (run / 'comparison.json').write_text(json.dumps(
        {**_result(9.8, 8.8), 'train_steps': 40, 'settings': {}, 'code': code,
         'wall_seconds': wall}))
  out = tmp_path / 'report.md'
  tool.main(['--regimes', 'hand_3d', '--steps', '40', '--num_images', '10', '--workdir',
             str(tmp_path), '--out', str(out), '--report_only'])
  text = out.read_text()
  assert "other code than the tool's present code:** hand_3d/smplify (" in text
  assert 'hand_3d/neuralannot' not in text
  assert f"{tmp_path / 'hand_3d' / 'smplify'} was finished by other code" in capsys.readouterr().err
  assert 'Wall time of all 2 runs: 12 min' in text


def test_the_code_fingerprint_follows_the_code_the_runs_execute(tmp_path):
  tool = _tool()
  for name in tool.CODE_FILES:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text('# the tool\n')
  module = tmp_path / 'neuralannot_jax' / 'method' / 'losses.py'
  module.parent.mkdir(parents=True)
  module.write_text('WEIGHT = 1.0\n')
  (tmp_path / 'configs').mkdir()
  (tmp_path / 'configs' / 'synthetic_body.py').write_text('STEPS = 600\n')
  fingerprint = lambda: tool.code_fingerprint(str(tmp_path))
  before = fingerprint()
  assert len(before) == 12
  module.write_text('WEIGHT = 2.0\n')
  assert fingerprint() != before
  module.write_text('WEIGHT = 1.0\n')
  (tmp_path / 'neuralannot_jax' / '__pycache__').mkdir()
  (tmp_path / 'neuralannot_jax' / '__pycache__' / 'losses.cpython-312.pyc').write_bytes(b'x')
  (tmp_path / 'notes.txt').write_text('not code')
  (tmp_path / 'tools' / 'comparison_report.py').write_text('# wording only\n')
  assert fingerprint() == before     # caches, other files and the report's wording do not count
  (tmp_path / 'configs' / 'synthetic_body.py').write_text('STEPS = 900\n')
  assert fingerprint() != before     # configs do
  (tmp_path / 'configs' / 'synthetic_body.py').write_text('STEPS = 600\n')
  (tmp_path / 'tools' / 'comparison_regimes.py').write_text('# other regimes\n')
  assert fingerprint() != before     # and so do the runs' configs per regime
