"""Shared fixtures: stand-in body models generated once per test session."""

import pytest

from body_models import synthetic


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
  """A directory in the smplx library's layout holding all four stand-in families."""
  out = tmp_path_factory.mktemp('body_models')
  synthetic.write_all(out, seed=0)
  return out
