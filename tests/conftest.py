"""Shared fixtures: stand-in body models generated once per test session.

XLA:CPU compiles with LLVM at optimisation level 0 in the tests: their models are tiny, so
the suite's time goes to compiling, not running (level 0 cut the end-to-end tests' time by a
quarter). Set before JAX starts its backend; subprocesses the tests start inherit it.
"""

import os

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_backend_optimization_level=0').strip()

import pytest  # pylint: disable=wrong-import-position

from body_models import synthetic  # pylint: disable=wrong-import-position


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
  """A directory in the smplx library's layout holding all four stand-in families."""
  out = tmp_path_factory.mktemp('body_models')
  synthetic.write_all(out, seed=0)
  return out
