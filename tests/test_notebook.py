"""tools/colab_tpu.ipynb runs: its code cells, less the colab-only ones, on a CPU.

The cells are taken from the notebook's JSON and run in order as one script in a fresh
process, with the parameters cell fed through its NEURALANNOT_* environment variables (a
tiny synthetic run in a temporary work directory) and 3 forced CPU devices, so that the
cell fitting the batch to the device count has work to do."""

import json
import os
import subprocess
import sys

from test_main import TINY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, 'tools', 'colab_tpu.ipynb')
COLAB_ONLY = '# colab-only'


def _notebook():
  with open(NOTEBOOK, encoding='utf-8') as f:
    return json.load(f)


def _source(cell):
  source = cell['source']
  return ''.join(source) if isinstance(source, list) else source


def _code_cells(notebook):
  return [_source(c) for c in notebook['cells'] if c['cell_type'] == 'code']


def test_the_notebook_is_nbformat_4_with_the_colab_steps_marked():
  notebook = _notebook()
  assert notebook['nbformat'] == 4 and notebook['metadata']['kernelspec']['language'] == 'python'
  for cell in notebook['cells']:
    assert cell['cell_type'] in ('code', 'markdown') and 'metadata' in cell
    if cell['cell_type'] == 'code':
      # Saved unexecuted: no outputs to go stale, nothing from the author's machine.
      assert cell['outputs'] == [] and cell['execution_count'] is None
  colab_only = [c for c in _code_cells(notebook) if c.startswith(COLAB_ONLY)]
  joined = '\n'.join(colab_only)
  assert 'pip' in joined and 'REPO_URL' in joined and 'drive.mount' in joined
  # The install is the only colab-only step the run depends on; the rest is plain Python.
  for source in _code_cells(notebook):
    if not source.startswith(COLAB_ONLY):
      compile(source, 'cell', 'exec')


def test_the_cells_train_annotate_and_report_on_cpu(tmp_path):
  cells = [c for c in _code_cells(_notebook()) if not c.startswith(COLAB_ONLY)]
  script = tmp_path / 'notebook.py'
  script.write_text('\n\n'.join(cells) + '\n', encoding='utf-8')
  workdir = tmp_path / 'work'
  # batch 5 is no multiple of the 3 devices: the notebook must make it 3.
  overrides = {**TINY, 'train.batch_size': 5, 'annotate.batch_size': 5}
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='3',
             NEURALANNOT_REPO=REPO, NEURALANNOT_WORKDIR=str(workdir),
             NEURALANNOT_OVERRIDES=json.dumps(overrides))
  proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert '3 cpu device(s)' in proc.stdout
  assert 'batch 5 -> 3' in proc.stdout
  with open(workdir / 'data' / 'h36m' / 'gt_smpl.json', encoding='utf-8') as f:
    gt = json.load(f)
  with open(workdir / 'pseudo_gt.json', encoding='utf-8') as f:
    pseudo_gt = json.load(f)
  assert sorted(pseudo_gt) == sorted(gt)          # every synthetic image annotated
  assert (workdir / 'report' / 'index.html').exists()
  assert f'pseudo-GTs: {workdir / "pseudo_gt.json"}' in proc.stdout
  assert 'MPJPE' in proc.stdout                   # the summary cell printed the scores
  assert 'loss.png' in proc.stdout                # the report cell found its figures
