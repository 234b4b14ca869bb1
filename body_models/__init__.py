"""Pure-JAX SMPL, SMPL-X, MANO and FLAME body models.

    import body_models
    model = body_models.load('models/smplx/SMPLX_NEUTRAL.npz')
    out = model(body_pose=pose, betas=betas)      # out.vertices (B, V, 3), out.joints (B, J, 3)

Depends only on jax and numpy (scipy is optional).
"""

from body_models import rotations
from body_models import skeletons
