"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The one implementation for both packages (`neuralannot_jax` imports it from here, since
`body_models` must stand alone).
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode='w'):
  """Open a temporary file beside `path`; on success it replaces `path`, else vanishes.

  The temporary file is in the same folder so that `os.replace` is a rename on one file
  system (atomic). Its data reach the disk (fsync) before the rename, and it gets the
  permissions `open` would have given. Missing folders are made.
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.',
                             suffix='.tmp')
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    # mkstemp makes the file private (0600); give it the permissions open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def write_bytes(path, data):
  """Write bytes (or str, as UTF-8) to `path` atomically; returns `path`."""
  with atomic_open(path, 'wb') as f:
    f.write(data.encode() if isinstance(data, str) else data)
  return path
