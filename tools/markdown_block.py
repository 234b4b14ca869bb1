"""A tool's generated block in a Markdown file, replaced in place on every run.

The block lives between two HTML comments (invisible once rendered), one per line:

    <!-- benchmark_fitting:begin -->

    ## Batched SMPLify-X style fitter, 2026-11-24
    ...table...

    <!-- benchmark_fitting:end -->

`write_block` swaps what lies between them and keeps the hand-written text around them
(commentary, what was tried and not kept) byte for byte. Where the file has neither marker,
the block is appended at its end as a new section. The benchmark tools import this module
by name: run as `python tools/x.py`, the tools folder is first on sys.path.
"""

import os
import stat
import tempfile


def markers(name):
  """(begin, end): the two comment lines that delimit block `name`."""
  return f'<!-- {name}:begin -->', f'<!-- {name}:end -->'


def replace_block(text, name, block):
  """`text` with block `name` set to `block`; pure, str -> str.

  Between the markers goes `block` without its leading and trailing newlines, with a blank
  line on each side (so a table never runs into the end marker). Everything up to and
  including the begin marker, and from the end marker on, is kept byte for byte. With
  neither marker in `text`, the markers and the block are appended after a blank line.

  Raises:
    ValueError: one marker without the other, a marker more than once, or end before
      begin: the markers were edited by hand and must be fixed by hand, since any guess
      could overwrite hand-written text.
  """
  begin, end = markers(name)
  block = block.strip('\n')
  counts = (text.count(begin), text.count(end))
  if counts == (0, 0):
    sep = '' if not text else '\n' if text.endswith('\n') else '\n\n'
    return f'{text}{sep}{begin}\n\n{block}\n\n{end}\n'
  start, stop = text.find(begin), text.find(end)
  if counts != (1, 1) or stop < start:
    raise ValueError(
        f'found {begin!r} {counts[0]} time(s) and {end!r} {counts[1]} time(s): keep exactly '
        f'one of each, {begin!r} first, around the generated {name} block (or delete both to '
        'have the block appended at the end)')
  start += len(begin)
  return f'{text[:start]}\n\n{block}\n\n{text[stop:]}'


def write_block(path, name, block):
  """Replace (or append) block `name` of the Markdown file `path`; a missing file is empty.

  Written to a temporary file in the same folder, then renamed over `path`: an interrupted
  run leaves the old file whole. The file keeps its permission bits.

  Raises:
    ValueError: as `replace_block`, with `path` in the message; `path` is left unchanged.
  """
  try:
    with open(path, encoding='utf-8', newline='') as f:
      text = f.read()
    mode = stat.S_IMODE(os.stat(path).st_mode)
  except FileNotFoundError:
    text, mode = '', 0o666 & ~_umask()
  try:
    new_text = replace_block(text, name, block)
  except ValueError as e:
    raise ValueError(f'{path}: {e}') from None
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                             prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f:
      f.write(new_text)
    os.chmod(tmp, mode)   # mkstemp makes it 0600
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def _umask():
  """The process's umask (reading it means setting it, so it is set straight back)."""
  mask = os.umask(0)
  os.umask(mask)
  return mask
