"""The sign error in the official MANO_LEFT.pkl's shape directions: telling it and undoing it.

The official left hand is the right hand mirrored through x = 0 (template, joints, pose
basis), except for its shape directions: the file ships the right hand's shapedirs
unchanged. The x component of every direction then has the wrong sign, so a left hand
with betas != 0 is not the mirror image of the right hand with the same betas (smplx
issue 48). Users of the smplx library undo it by negating `shapedirs[:, 0, :]` of the
left model when its x rows match the right model's.

    needs_fix = left_sign_error(left_shapedirs, right_shapedirs)   # True | False | None

Rule: in a mirrored pair the left x rows are the negated right ones, in the official
pair they are equal. Whichever of the two the left file is clearly closer to (by a
factor of `CLEAR_FACTOR` in summed absolute difference) decides; files that are neither
(not a pair, or shapes that differ) give None: nothing can be told.

Imports numpy only.
"""

import numpy as np

# Mirrored: sum |L_x + R_x| is 0 up to float noise; the official error: sum |L_x - R_x|
# is. Either way the other sum is about twice the x rows' size, so a factor of 10
# leaves a wide margin and still refuses two unrelated hands.
CLEAR_FACTOR = 10.0


def check_mode(mode):
  """Raise a ValueError unless `mode` is 'auto', True or False."""
  if not (mode is True or mode is False or mode == 'auto'):
    raise ValueError(f"fix_mano_left_shapedirs must be 'auto', True or False, not {mode!r}")


def left_sign_error(left_shapedirs, right_shapedirs):
  """Does the left hand carry the official file's sign error, judged against the right hand?

  Args:
    left_shapedirs: (V, 3, S) the left file's shape directions.
    right_shapedirs: (V', 3, S') the right file's, same vertex order when they are a pair.
  Returns:
    True: the left x rows equal the right ones (the official error; negate them).
    False: they are the negated right ones (already a mirror image; leave them).
    None: neither clearly (different vertex counts, unrelated hands, no x component).
  """
  left, right = np.asarray(left_shapedirs), np.asarray(right_shapedirs)
  if left.ndim != 3 or right.ndim != 3 or left.shape[:2] != right.shape[:2]:
    return None
  count = min(left.shape[2], right.shape[2])
  left_x, right_x = left[:, 0, :count], right[:, 0, :count]
  as_official = np.abs(left_x - right_x).sum()
  as_mirror = np.abs(left_x + right_x).sum()
  if as_official * CLEAR_FACTOR < as_mirror:
    return True
  if as_mirror * CLEAR_FACTOR < as_official:
    return False
  return None


def undo_sign_error(shapedirs):
  """(V, 3, S) -> a copy with the x rows negated."""
  fixed = np.array(shapedirs, copy=True)
  fixed[:, 0, :] *= -1.0
  return fixed
