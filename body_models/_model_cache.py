"""The on-disk cache of canonical model arrays: one .npz per file read and options.

    entry = entry_path(cache_dir, path, aux_paths, options)
    cached = read_entry(entry)               # (family, {key: array}) or None
    write_entry(entry, family, arrays)

An entry is named by a hash of the bytes of every file read and of the options, so a
changed file or option gives a new entry and a stale one is never reused. The cache
only saves time: an unreadable entry is ignored and rebuilt, and a failed write only
warns.

Imports numpy and the standard library only.
"""

import hashlib
import json
import os
import warnings

import numpy as np

from body_models._atomic import atomic_open
from body_models._canonical import FAMILIES

_CACHE_VERSION = 1
_FAMILY_ENTRY = '__family__'


def _hash_file(digest, path):
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)


def entry_path(cache_dir, path, aux_paths, options):
  """`cache_dir/<hash>.npz`: a hash of the bytes of `path` and of `aux_paths`, and of `options`.

  Args:
    cache_dir: the cache folder.
    path: the model file.
    aux_paths: other files the result depends on; None or a missing one hashes as empty.
    options: a JSON-serialisable dict of everything else the result depends on.
  """
  digest = hashlib.sha256(f'neuralannot-jax model cache v{_CACHE_VERSION}\n'.encode())
  digest.update(json.dumps(options, sort_keys=True).encode())
  for aux in [path] + list(aux_paths):
    digest.update(b'\0file\0')
    if aux is not None and os.path.isfile(aux):
      _hash_file(digest, aux)
  return os.path.join(os.fspath(cache_dir), digest.hexdigest()[:40] + '.npz')


def read_entry(cache_path):
  """-> (family, {key: array}) or None when the entry is absent or unreadable."""
  if not os.path.isfile(cache_path):
    return None
  try:
    with np.load(cache_path, allow_pickle=False) as entry:
      arrays = {k: entry[k] for k in entry.files if k != _FAMILY_ENTRY}
      family = str(entry[_FAMILY_ENTRY])
  except Exception as e:  # A damaged entry is rebuilt, never trusted.
    warnings.warn(f'ignoring unreadable model cache entry {cache_path} ({e})')
    return None
  return (family, arrays) if family in FAMILIES else None


def write_entry(cache_path, family, arrays):
  """Write the entry atomically: a temporary file in the same folder, then os.replace."""
  try:
    with atomic_open(cache_path, 'wb') as f:
      np.savez(f, **{_FAMILY_ENTRY: np.array(family)}, **arrays)
  except OSError as e:  # The cache only saves time; a read-only folder must not stop a load.
    warnings.warn(f'could not write the model cache entry {cache_path} ({e})')
