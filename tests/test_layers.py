"""The layers import downwards only, at the top of a module or inside a function.

A lower layer that reaches up (`distributed.read_shard` once imported `annotate` inside a
function, which closed the loop data/pipeline -> distributed -> annotate -> train ->
data/pipeline) shows no error at import time, so this reads every import statement."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The stages: what runs a job. Nothing below them may import one.
STAGES = ('neuralannot_jax.main', 'neuralannot_jax.experiment', 'neuralannot_jax.train',
          'neuralannot_jax.annotate', 'neuralannot_jax.shards', 'neuralannot_jax.evaluate',
          'neuralannot_jax.report.page', 'neuralannot_jax.wholebody.run',
          'neuralannot_jax.wholebody.evaluate', 'neuralannot_jax.fitting.annotator')


def _modules(package):
  """{module name: path} of every .py file under `package`."""
  out = {}
  for folder, _, files in os.walk(os.path.join(ROOT, package)):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
        out[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = path
  return out


def imported(path, module):
  """Every module an import statement of the file names, anywhere in it (a `from a import
  b` names both a and a.b, b being a module or not)."""
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')
        base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
      names.add(base)
      names.update(f'{base}.{alias.name}' for alias in node.names)
  return names


def _reaches(names, targets):
  return sorted(n for n in names for t in targets if n == t or n.startswith(t + '.'))


def violations():
  """['<module> imports <module>: <rule>'] over both packages."""
  found = []
  for module, path in sorted({**_modules('body_models'), **_modules('neuralannot_jax')}.items()):
    names = imported(path, module)
    if module.startswith('body_models'):
      rule, banned = 'body_models imports nothing of neuralannot_jax', ('neuralannot_jax',)
    elif module.startswith('neuralannot_jax.data'):
      rule, banned = 'data/ imports no stage', STAGES
    elif module.startswith('neuralannot_jax.runtime'):
      rule, banned = 'runtime/ imports no stage', STAGES
    elif module.startswith(('neuralannot_jax.method', 'neuralannot_jax.models')):
      rule, banned = 'method/ and models/ import no stage', STAGES
    else:
      continue
    found += [f'{module} imports {name}: {rule}' for name in _reaches(names, banned)]
  return found


def test_no_lower_layer_imports_a_higher_one():
  assert violations() == []


def test_the_walk_sees_imports_inside_functions(tmp_path):
  """The check fails on the import that closed the loop (inside a function)."""
  path = tmp_path / 'distributed.py'
  path.write_text('import os\n\n\ndef read_shard(path):\n'
                  '  from neuralannot_jax import annotate\n  return annotate\n')
  names = imported(str(path), 'neuralannot_jax.runtime.distributed')
  assert _reaches(names, STAGES) == ['neuralannot_jax.annotate']
  relative = tmp_path / 'pipeline.py'
  relative.write_text('from .. import train\nfrom . import crop\n')
  names = imported(str(relative), 'neuralannot_jax.data.pipeline')
  assert 'neuralannot_jax.train' in names and 'neuralannot_jax.data.crop' in names


@pytest.mark.parametrize('module', STAGES)
def test_every_stage_named_exists(module):
  assert module in _modules('neuralannot_jax'), module
