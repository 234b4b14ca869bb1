"""Procedural stand-ins for the SMPL, SMPL-X, MANO and FLAME model files.

The official files are licensed downloads. These are generated instead, written
in the official layouts so that our loader and the `smplx` library both read them,
and shaped like the real ones: exact vertex and joint counts, a humanoid closed
mesh (each part a closed surface; about as many triangles as the real meshes), at
most 4 skinning influences per vertex, sparse joint regressors, dense shape and
pose blend shapes, face landmarks and hand PCA.

    from body_models import synthetic
    paths = synthetic.write_all('models')        # {'smpl': .../SMPL_NEUTRAL.pkl, ...}
    arrays = synthetic.make_model_arrays('smplx')  # in memory, official key names

Rest poses (see `anatomy` for details): bodies in T-pose, y up, facing +z, model's
left = +x, pelvis at the origin, ~1.73 m; MANO a flat right hand, fingers along -x,
palm facing -y, thumb toward +z; FLAME a head and neck facing +z, head centre at
the origin. Only numpy is needed; scipy (if present) writes sparse regressors.
"""

from body_models.synthetic.build import make_model_arrays, mirror_mano, official_mano_left
from body_models.synthetic.files import write_all, write_model

__all__ = ['make_model_arrays', 'mirror_mano', 'official_mano_left', 'write_all',
           'write_model']
