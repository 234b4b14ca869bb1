"""host_memory.keep_freed_memory: a freed large block is reused without new page faults."""

import json
import os
import platform
import subprocess
import sys

import pytest

# Allocates and frees a 64 MiB block four times from a worker thread (as XLA:CPU's
# executor does) and prints the minor page faults each allocation took.
_PROBE = """
import json, resource, sys, threading
from neuralannot_jax.runtime import host_memory
applied = host_memory.keep_freed_memory()
import numpy as np
faults = []
def work():
  for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 << 20, np.uint8)  # np.ones writes every page
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(json.dumps({'applied': applied, 'faults': faults}))
"""

pytestmark = pytest.mark.skipif(
    platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
    reason='tunes glibc malloc only')


def _probe(malloc_setting):
  env = dict(os.environ, NEURALANNOT_MALLOC=malloc_setting)
  out = subprocess.run([sys.executable, '-c', _PROBE], env=env, check=True,
                       capture_output=True, text=True).stdout
  return json.loads(out.splitlines()[-1])


def test_freed_block_is_reused_without_page_faults():
  kept = _probe('keep')
  assert kept['applied']
  # The first allocation grows the heap; later ones reuse its pages.
  assert sum(kept['faults'][1:]) < 8, kept


def test_default_allocator_faults_on_every_allocation():
  default = _probe('default')
  assert not default['applied']
  # glibc maps a fresh block each time: at least one fault per 2 MiB huge page.
  assert min(default['faults'][1:]) >= 32, default
