"""Run an experiment: python -m neuralannot_jax.main --config=configs/<experiment>.py

Stages, in order, each resumable from what the work directory already holds:
  body model   load the configured model, or generate the stand-ins when none is given.
The training, annotation and evaluation stages build on this one as they land.
Override any config value on the command line: --config.body_model.family=smplx.
"""

import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from ml_collections import config_flags

import body_models

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config: a configs/*.py file; override fields with '
    '--config.<field>=<value>.', lock_config=True)
flags.mark_flags_as_required(['config'])


def prepare_body_model(config):
  """Path of the body model to use: the configured one, or generated stand-ins."""
  if config.body_model.path:
    return os.path.expanduser(config.body_model.path)
  out = os.path.join(config.workdir, 'body_models')
  if not os.path.isdir(os.path.join(out, config.body_model.family)):
    from body_models import synthetic  # pylint: disable=g-import-not-at-top
    logging.info('No body model given: writing the procedural stand-in to %s', out)
    synthetic.write_model(config.body_model.family, out, seed=config.seed)
  return out


def check_body_model(model):
  """One jitted forward + backward pass, so a broken model fails here, not mid-training."""
  params = model.zero_params((2,))
  loss = lambda p: jnp.sum(body_models.forward(model, **p).joints ** 2)
  grads = jax.jit(jax.grad(loss))(params)
  if not all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads)):
    raise RuntimeError(f'{model}: non-finite gradients at the rest pose')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  os.makedirs(config.workdir, exist_ok=True)
  start = time.time()

  path = prepare_body_model(config)
  model = body_models.load(path, config.body_model.family, gender=config.body_model.gender,
                           num_betas=config.body_model.num_betas)
  check_body_model(model)
  print(f'body model: {model} from {path}')
  print(f'devices: {jax.device_count()} x {jax.devices()[0].platform}')
  print(f'done in {time.time() - start:.1f} s; work directory: {config.workdir}. '
        'Training and annotation stages are not in this version yet.')


if __name__ == '__main__':
  app.run(main)
