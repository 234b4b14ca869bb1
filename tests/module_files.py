"""Import a script or config file by its path (tools/ and configs/ are not packages)."""

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path, name=None):
  """The module of the Python file at `path`, executed once per call (not cached in
  sys.modules); `name` defaults to the file's stem."""
  path = os.fspath(path)
  name = name or os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def tool(name):
  """tools/<name>.py, with tools/ on sys.path while it loads, as when it is run as a script
  (some tools import their neighbours by name)."""
  folder = os.path.join(REPO, 'tools')
  sys.path.insert(0, folder)
  try:
    return load(os.path.join(folder, f'{name}.py'))
  finally:
    sys.path.remove(folder)


def config(name):
  """configs/<name>.py's get_config()."""
  return load(os.path.join(REPO, 'configs', f'{name}.py')).get_config()
