"""Keep freed host memory in the process, so that XLA:CPU stops faulting in fresh pages.

An XLA:CPU executable gets its temporary buffer from malloc on every run: about 2 GB for a
ResNet-50 train step at batch 8, 256 px. glibc serves blocks that large with a fresh mmap
and unmaps them on free (always so from a worker thread's arena), so every step the kernel
hands out and zeroes some 500 000 new pages: 1.3 s of system time in a 3 s step on a
2-core machine (tools/benchmark_resnet.py). `keep_freed_memory` makes glibc serve every
thread from the main heap and never give memory back, so the block is faulted in once and
reused by the following steps. The cost: the process keeps its peak heap until it exits.

It must run before jax starts its thread pools (before the first computation): a thread
that has already allocated keeps its own arena. `neuralannot_jax.main` calls it before
importing jax. Set NEURALANNOT_MALLOC=default to leave the allocator alone.
"""

import ctypes
import ctypes.util
import os
import platform

ENV_VAR = 'NEURALANNOT_MALLOC'

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def keep_freed_memory():
  """Tune glibc's malloc as the module docstring says; returns whether it did.

  Does nothing (returns False) off glibc (macOS, musl) or when NEURALANNOT_MALLOC=default.
  """
  if os.environ.get(ENV_VAR, '').lower() == 'default':
    return False
  if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
    return False
  libc_path = ctypes.util.find_library('c')
  if libc_path is None:
    return False
  mallopt = getattr(ctypes.CDLL(libc_path), 'mallopt', None)
  if mallopt is None:
    return False
  # One arena: threads allocate from the main heap, which grows with brk and can hold
  # blocks of any size (a thread arena cannot, so glibc would mmap them). No mmap at all,
  # and -1 (SIZE_MAX) as the trim threshold: freed memory stays for the next step.
  return all(mallopt(param, value) == 1 for param, value in
             ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1)))


def command_prefix():
  """'NEURALANNOT_MALLOC=<value> ' when the variable is set, else '': for commands written to reports."""
  return f'{ENV_VAR}={os.environ[ENV_VAR]} ' if ENV_VAR in os.environ else ''


def describe(applied):
  """A few words for a report on what `keep_freed_memory` returned."""
  return 'freed memory kept (host_memory)' if applied else 'glibc defaults'
