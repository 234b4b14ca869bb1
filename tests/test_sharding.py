"""A BodyModel replicated over a device mesh, with the batch sharded, gives the same result.

Runs in a fresh process: the number of CPU devices is fixed when JAX starts.
"""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import sys
    import jax
    jax.config.update('jax_num_cpu_devices', 4)
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    import body_models
    from body_models import synthetic

    path = synthetic.write_model('smpl', sys.argv[1])
    model = body_models.load(path)
    assert jax.device_count() == 4, jax.devices()
    axis_type = getattr(jax.sharding.AxisType, sys.argv[2])
    mesh = jax.make_mesh((4,), ('data',), axis_types=(axis_type,))
    replicated = jax.device_put(model, NamedSharding(mesh, P()))
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(8, 69)).astype(np.float32) * 0.3
    betas = rng.normal(size=(8, 10)).astype(np.float32)
    batch = NamedSharding(mesh, P('data'))
    pose_s, betas_s = jax.device_put(pose, batch), jax.device_put(betas, batch)

    @jax.jit
    def step(model, pose, betas):
      loss = lambda p: jax.numpy.mean(body_models.forward(model, body_pose=p, betas=betas).joints ** 2)
      return body_models.forward(model, body_pose=pose, betas=betas).vertices, jax.grad(loss)(pose)

    verts, grad = step(replicated, pose_s, betas_s)
    jax.block_until_ready(verts)
    assert verts.sharding.spec[0] == 'data', verts.sharding
    assert len(verts.addressable_shards) == 4
    ref_v, ref_g = jax.jit(step)(model, pose, betas)
    np.testing.assert_allclose(np.asarray(verts), np.asarray(ref_v), atol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(ref_g), atol=1e-6)
    print('sharded ok')
''')


@pytest.mark.parametrize('axis_type', ['Explicit', 'Auto'])
def test_sharded_forward_and_gradient_match(tmp_path, axis_type):
  result = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path), axis_type],
                          capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'sharded ok' in result.stdout
