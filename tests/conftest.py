"""Shared fixtures: stand-in body models generated once per test session.

The suite's time goes to compiling, not running (the models are tiny), so:
- XLA:CPU compiles with LLVM at optimisation level 0 (cut the end-to-end tests by a quarter);
- a persistent compilation cache, fresh for each session, lets the many tests that build the
  same tiny train step compile it once (test_train + test_main: 201 -> 168 s).
Both are set before JAX starts; subprocesses the tests start inherit them.
"""

import atexit
import os
import shutil
import tempfile

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_backend_optimization_level=0').strip()
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _CACHE_DIR = tempfile.mkdtemp(prefix='neuralannot_test_jax_cache_')
  atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _CACHE_DIR
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'

import pytest  # pylint: disable=wrong-import-position

from body_models import synthetic  # pylint: disable=wrong-import-position


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
  """A directory in the smplx library's layout holding all four stand-in families."""
  out = tmp_path_factory.mktemp('body_models')
  synthetic.write_all(out, seed=0)
  return out


# The suite runs on every core (pytest-xdist, `-n auto --dist loadfile` in pyproject.toml):
# a test file is the unit of work, so each file's module fixtures (the end-to-end runs) are
# built once. xdist orders the files by their number of tests (most first); among files of
# equal count, and in one process (-n0), the heaviest listed here go first. Ordering all files
# heaviest-first (--no-loadscope-reorder) was tried and was slower on 2 cores: the end-to-end
# files that launch subprocesses then ran side by side.
HEAVY_FIRST = ('test_multiprocess.py', 'test_main.py', 'test_train.py', 'test_fitting_annotator.py',
               'test_wild_network.py',
               'test_wholebody_run.py', 'test_annotate.py', 'test_model.py', 'test_parity.py',
               'test_fitting.py', 'test_resnet.py', 'test_notebook.py')


def pytest_collection_modifyitems(items):
  def rank(item):
    name = os.path.basename(str(item.fspath))
    return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)
  items.sort(key=rank)   # stable: each file keeps its own order
