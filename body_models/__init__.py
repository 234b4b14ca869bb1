"""Pure-JAX SMPL, SMPL-X, MANO and FLAME body models.

    import body_models
    model = body_models.load('models/smplx/SMPLX_NEUTRAL.npz')   # or a folder + family
    out = model(body_pose=pose, betas=betas)      # out.vertices (B, V, 3), out.joints (B, K, 3)

`model` is a pytree: pass it to `jax.jit`, `jax.vmap`, `jax.grad` like any array.
`body_models.create(path, model_type='smplx', ...)` takes `smplx.create`'s names and
defaults, for code written against the smplx library.
Depends only on jax and numpy (scipy is optional). Submodules: `rotations`,
`skeletons` (joint names, trees), `io` (official file readers), `vposer`,
`synthetic` (procedural stand-in models in the official file layouts).
"""

from body_models import io
from body_models import rotations
from body_models import skeletons
from body_models.io import ModelFileError
from body_models.loading import create
from body_models.loading import from_arrays
from body_models.loading import load
from body_models.model import BodyModel
from body_models.model import Output
from body_models.model import forward
from body_models.model import forward_rotmats
from body_models.model import restrict

__all__ = ['BodyModel', 'Output', 'ModelFileError', 'create', 'forward', 'forward_rotmats',
           'from_arrays', 'load', 'restrict', 'io', 'rotations', 'skeletons']
