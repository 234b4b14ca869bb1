"""`body_models` works alone: only jax and numpy, nothing of the annotator or the test stack."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import sys
    # Make every optional or heavier package impossible to import.
    for name in ('scipy', 'torch', 'smplx', 'chumpy', 'flax', 'optax', 'neuralannot_jax',
                 'tensorflow', 'tensorflow_datasets', 'cv2'):
      sys.modules[name] = None
    import numpy as np
    import body_models
    from body_models import synthetic, vposer
    path = synthetic.write_model('smpl', sys.argv[1])
    model = body_models.load(path)
    out = model(body_pose=np.zeros((2, 69)))
    assert out.vertices.shape == (2, 6890, 3)
    loaded = sorted(m for m in sys.modules if sys.modules[m] is not None and
                    m.split('.')[0] in ('scipy', 'torch', 'flax', 'neuralannot_jax'))
    assert not loaded, loaded
    print('standalone ok')
''')


def test_body_models_needs_only_jax_and_numpy(tmp_path):
  result = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'standalone ok' in result.stdout
