"""Build a `BodyModel` from model-file arrays, `load()` it from the official files, and
`create()`, the same with the smplx library's names and defaults.
"""

import os

import numpy as np
import jax.numpy as jnp

from body_models import io
from body_models import lbs
from body_models import skeletons
from body_models.model import BodyModel


def _shape_blocks(family, num_dirs):
  """(shape slice, expression slice) of a file's shapedirs, as the smplx library splits them.

  SMPL-X and FLAME files carry either 10 shape + 10 expression directions (SMPL-X v1.0)
  or the full 300 + 100 (SMPL-X v1.1, FLAME 2020). Files of the other families carry
  shape directions only; below the full 300 the smplx library uses the first 10.
  """
  if skeletons.HAS_EXPRESSION[family]:
    full_shape = skeletons.SHAPE_SPACE_DIM[family]
    full = full_shape + skeletons.EXPRESSION_SPACE_DIM[family]
    if num_dirs >= full:
      return slice(0, full_shape), slice(full_shape, full)
    return slice(0, min(10, num_dirs)), slice(min(10, num_dirs), min(20, num_dirs))
  limit = skeletons.SHAPE_SPACE_DIM[family]
  return slice(0, min(num_dirs, 10 if num_dirs < limit else limit)), slice(0, 0)


def _take(block, count, what, family, source):
  available = block.stop - block.start
  if count is None:
    count = available
  if count > available:
    raise ValueError(f'{source}: asked for {count} {what} components but this {family} '
                     f'file has {available}')
  return slice(block.start, block.start + count)


def from_arrays(family, arrays, *, gender=None, num_betas=10, num_expression=10,
                use_pca=False, num_pca_comps=6, flat_hand_mean=False,
                use_face_contour=False, dtype=jnp.float32, source='<arrays>'):
  """Build a `BodyModel` from canonical arrays (see `body_models.io.read_model_file`).

  Args:
    family: 'smpl', 'smplx', 'mano' or 'flame'.
    arrays: v_template (V, 3), f (F, 3), shapedirs (V, 3, S), posedirs (V, 3, P),
      J_regressor (J, V), weights (V, J), parents (J,), and per family the hand PCA
      (`hands_components[l|r]`, `hands_mean[l|r]`) and landmark embedding
      (`lmk_faces_idx`, `lmk_bary_coords`, `dynamic_lmk_faces_idx`, `dynamic_lmk_bary_coords`).
    num_betas, num_expression: how many shape / expression directions to keep
      (None: all the file has).
    use_pca, num_pca_comps: hand poses as that many PCA coefficients instead of 45
      axis-angle numbers (SMPL-X, MANO).
    flat_hand_mean: if False (the smplx library's default) a zero hand pose means the
      file's mean hand pose; if True it means a flat hand.
    use_face_contour: add the 17 pose-dependent jaw-line landmarks (SMPL-X, FLAME).
    dtype: float dtype of the model's arrays (and so of its outputs).
  """
  if family not in skeletons.FAMILIES:
    raise ValueError(f'unknown family {family!r}; expected one of {skeletons.FAMILIES}')
  a = {k: np.asarray(v) for k, v in arrays.items()}
  parents = tuple(int(p) for p in a['parents'])
  faces = a['f'].astype(np.int64)
  num_verts, num_joints = a['v_template'].shape[0], len(parents)

  shape_block, expr_block = _shape_blocks(family, a['shapedirs'].shape[-1])
  shapedirs = a['shapedirs'][..., _take(shape_block, num_betas, 'shape', family, source)]
  if skeletons.HAS_EXPRESSION[family]:
    exprdirs = a['shapedirs'][..., _take(expr_block, num_expression, 'expression', family,
                                         source)]
  else:
    exprdirs = np.zeros((num_verts, 3, 0))

  regressor = a['J_regressor'].astype(np.float64)
  joint_template = regressor @ a['v_template']
  joint_shapedirs = np.einsum('jv,vcs->jcs', regressor, shapedirs)
  joint_exprdirs = np.einsum('jv,vcs->jcs', regressor, exprdirs)

  pose_mean = np.zeros((num_joints, 3))
  hand_components = {}
  offset = 0
  for name, count in skeletons.POSE_PARTS[family]:
    if name in skeletons.HAND_POSE_PARTS[family]:
      suffix = {'left_hand_pose': 'l', 'right_hand_pose': 'r', 'hand_pose': ''}[name]
      if not flat_hand_mean:
        pose_mean[offset:offset + count] = a['hands_mean' + suffix].reshape(count, 3)
      if use_pca:
        comps = a['hands_components' + suffix]
        if not 0 < num_pca_comps <= comps.shape[0]:
          raise ValueError(f'{source}: num_pca_comps={num_pca_comps}, but the file has '
                           f'{comps.shape[0]} hand components')
        hand_components[name] = comps[:num_pca_comps]
    offset += count

  no_landmarks = np.zeros((0, 3), np.int64)
  lmk_ids, lmk_bary = no_landmarks, np.zeros((0, 3))
  contour_ids = contour_bary = None
  neck_chain = ()
  if family in ('smplx', 'flame'):
    lmk_ids = faces[a['lmk_faces_idx'].astype(np.int64)]
    lmk_bary = a['lmk_bary_coords']
    if use_face_contour:
      if 'dynamic_lmk_faces_idx' not in a:
        raise ValueError(f'{source}: use_face_contour needs the dynamic landmark '
                         'embedding (dynamic_lmk_faces_idx), which this model lacks')
      contour_ids = faces[a['dynamic_lmk_faces_idx'].astype(np.int64)]
      contour_bary = a['dynamic_lmk_bary_coords']
      neck_chain = skeletons.kinematic_chain(skeletons.NECK_INDEX[family], parents)

  extra = np.asarray(skeletons.EXTRA_JOINT_VERTICES[family], np.int64)
  if extra.size and extra.max() >= num_verts:
    raise ValueError(f'{source}: a {family} model needs at least {extra.max() + 1} '
                     f'vertices for its extra joints; it has {num_verts}')

  f = lambda x: jnp.asarray(x, dtype)
  i = lambda x: jnp.asarray(x, jnp.int32)
  return BodyModel(
      v_template=f(a['v_template']), shapedirs=f(shapedirs), exprdirs=f(exprdirs),
      posedirs=f(a['posedirs']), J_regressor=f(regressor), weights=f(a['weights']),
      joint_template=f(joint_template), joint_shapedirs=f(joint_shapedirs),
      joint_exprdirs=f(joint_exprdirs), pose_mean=f(pose_mean),
      hand_components={k: f(v) for k, v in hand_components.items()},
      faces=i(faces), extra_vertex_ids=i(extra), landmark_vertex_ids=i(lmk_ids),
      landmark_bary=f(lmk_bary),
      contour_vertex_ids=None if contour_ids is None else i(contour_ids),
      contour_bary=None if contour_bary is None else f(contour_bary),
      family=family, gender=gender, parents=parents, levels=lbs.tree_levels(parents),
      neck_chain=neck_chain)


def load(path, family=None, *, gender='neutral', is_right_hand=True, ext=None,
         num_betas=10, num_expression=10, use_pca=False, num_pca_comps=6,
         flat_hand_mean=False, use_face_contour=False, dtype=jnp.float32,
         fix_mano_left_shapedirs='auto', landmarks_path=None, contour_path=None,
         cache_dir=None):
  """Load an official SMPL / SMPL-X / MANO / FLAME model file (or a stand-in).

  Args:
    path: a model file (.pkl / .npz), or a directory laid out as the smplx library
      expects (`<dir>/smplx/SMPLX_NEUTRAL.npz`, `<dir>/mano/MANO_RIGHT.pkl`, ...).
    family: 'smpl', 'smplx', 'mano' or 'flame'; detected from the file when None
      (needed to pick a file in a directory).
    gender, is_right_hand, ext: which file to pick in a directory.
    fix_mano_left_shapedirs: undo the known sign error of the official MANO_LEFT.pkl
      (the x rows of its shapedirs); 'auto' does it when the right MANO file beside
      the left one shows the error (see `io.read_model_file`), True always, False never.
    landmarks_path, contour_path: FLAME's landmark embedding files when not beside
      the model (flame_static_embedding.pkl, flame_dynamic_embedding.npy).
    cache_dir: keep a converted .npz of the file there and reuse it.
    Other options: see `from_arrays`.
  Returns:
    A `BodyModel`.
  """
  path = io.resolve_model_path(path, family, gender=gender, ext=ext,
                               is_right_hand=is_right_hand)
  model_file = io.read_model_file(
      path, family, landmarks_path=landmarks_path, contour_path=contour_path,
      fix_mano_left_shapedirs=fix_mano_left_shapedirs, cache_dir=cache_dir)
  return from_arrays(
      model_file.family, model_file.arrays, gender=model_file.gender,
      num_betas=num_betas, num_expression=num_expression, use_pca=use_pca,
      num_pca_comps=num_pca_comps, flat_hand_mean=flat_hand_mean,
      use_face_contour=use_face_contour, dtype=dtype, source=str(path))


def _float_dtype(dtype):
  """A numpy float dtype from a numpy / jax one, or from a torch one by its name."""
  try:
    found = np.dtype(dtype)
  except TypeError:  # torch.float64 is no numpy dtype, but its name says which one
    found = np.dtype(str(dtype).rsplit('.', 1)[-1])
  if found.kind != 'f':
    raise ValueError(f'dtype must be a float type, not {dtype!r}')
  return found


def _smplx_counts(family, num_dirs, num_betas, num_expression):
  """(num_betas, num_expression) cut to what a file with `num_dirs` directions has.

  The smplx library asks for up to that many and quietly takes fewer (10 + 10 from a
  SMPL-X v1.0 file, 300 + 100 at most from a full one); `from_arrays` would refuse.
  """
  shape_block, expr_block = _shape_blocks(family, num_dirs)
  return (min(num_betas, shape_block.stop - shape_block.start),
          min(num_expression, expr_block.stop - expr_block.start))


def create(model_path, model_type='smpl', *, gender='neutral', ext=None, use_pca=True,
           num_pca_comps=6, flat_hand_mean=False, num_betas=10, num_expression_coeffs=10,
           is_rhand=True, use_face_contour=False, dtype=jnp.float32, batch_size=1):
  """`smplx.create` with the same names and defaults, returning a `BodyModel`.

  Code written against the smplx library runs after changing its import:
  `model(global_orient=..., body_pose=..., betas=..., transl=..., expression=...,
  left_hand_pose=..., hand_pose=...)` gives the same vertices and joints (as jax arrays).

  Args:
    model_path: a model file (its family is read from its contents, `model_type` is then
      ignored, as smplx does), or a folder holding `<model_type>/` (or the files directly).
    model_type: 'smpl', 'smplx', 'mano' or 'flame' (SMPL+H is not supported).
    gender: 'neutral', 'female' or 'male': which file in a folder.
    ext: 'pkl' or 'npz' in a folder; None tries smplx's default for the family first
      (npz for SMPL-X, pkl for the others), then the other one.
    use_pca, num_pca_comps: hands as that many PCA coefficients (SMPL-X, MANO); note the
      default True, where `load` defaults to 45 axis-angle numbers.
    flat_hand_mean: False: a zero hand pose is the file's mean hand pose.
    num_betas, num_expression_coeffs: at most that many shape / expression coefficients;
      fewer when the file has fewer (as smplx does).
    is_rhand: MANO in a folder: MANO_RIGHT (True) or MANO_LEFT (False).
    use_face_contour: SMPL-X and FLAME: add the 17 jaw-line landmarks.
    dtype: float32 or float64; numpy, jax or torch dtypes (torch.float64) are taken.
    batch_size: accepted so that smplx calls run; unused: outputs take the batch shape of
      the parameters passed (none passed: no batch dimension).
  Returns:
    A `BodyModel`. Unlike smplx, a left MANO hand comes with the official file's shapedirs
    sign error undone (see `io.read_model_file`'s fix_mano_left_shapedirs='auto').
  """
  del batch_size  # the parameters' shapes decide
  family = str(model_type).lower()
  if family == 'smplh':
    raise ValueError(f"create: model_type='smplh': SMPL+H is not supported; "
                     f'expected one of {skeletons.FAMILIES}')
  if family not in skeletons.FAMILIES:
    raise ValueError(f'create: unknown model_type {model_type!r}; expected one of '
                     f'{skeletons.FAMILIES}')
  if os.path.isfile(model_path):
    family = None  # as in smplx, the file says what it is
  path = io.resolve_model_path(model_path, family, gender=gender, ext=ext,
                               is_right_hand=is_rhand)
  model_file = io.read_model_file(path, family)
  num_betas, num_expression = _smplx_counts(
      model_file.family, model_file.arrays['shapedirs'].shape[-1], num_betas,
      num_expression_coeffs)
  return from_arrays(
      model_file.family, model_file.arrays, gender=model_file.gender, num_betas=num_betas,
      num_expression=num_expression, use_pca=use_pca, num_pca_comps=num_pca_comps,
      flat_hand_mean=flat_hand_mean, use_face_contour=use_face_contour,
      dtype=_float_dtype(dtype), source=str(path))
