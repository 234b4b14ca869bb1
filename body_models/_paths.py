"""Model file names: what a name says (gender, hand) and which file a directory holds.

    resolve_model_path('models', 'smplx', gender='female')   # 'models/smplx/SMPLX_FEMALE.npz'
    gender_from_name('basicModel_f_lbs_10_207_0_v1.0.0.pkl')  # 'female'
    hand_from_name('MANO_LEFT.pkl')                           # False
    other_hand_path('models/mano/MANO_LEFT.pkl')              # '.../MANO_RIGHT.pkl' or None

Imports the standard library only.
"""

import os
import re

from body_models._canonical import FAMILIES
from body_models._canonical import check_family
from body_models._unpickle import ModelFileError

_GENDERS = ('neutral', 'female', 'male')
_DEFAULT_EXTS = {'smpl': ('pkl', 'npz'), 'smplx': ('npz', 'pkl'), 'mano': ('pkl', 'npz'),
                 'flame': ('pkl', 'npz')}
# Names of the files as their authors ship them (matched ignoring case: the SMPL
# downloads mix basicModel_ and basicmodel_).
_OFFICIAL_NAMES = {
    'smpl': {g: [f'basicmodel_{a}_lbs_10_207_0_v{v}.pkl' for v in ('1.1.0', '1.0.0')]
             for g, a in (('neutral', 'neutral'), ('female', 'f'), ('male', 'm'))},
    'flame': {'neutral': ['generic_model.pkl'], 'female': ['female_model.pkl'],
              'male': ['male_model.pkl']},
}

# ---- what a name says -----------------------------------------------------------------


def _name_tokens(path):
  """'basicModel_f_lbs_10_207_0_v1.0.0.pkl' -> ['basicmodel', 'f', 'lbs', '10', ...]."""
  return [t for t in re.split(r'[^a-z0-9]+', os.path.basename(os.fspath(path)).lower()) if t]


def gender_from_name(path):
  """'female' | 'male' | 'neutral' when the file name says, else None.

  Knows the smplx library's names (SMPL_NEUTRAL.pkl, SMPLX_FEMALE.npz), the official
  SMPL ones (basicModel_f_lbs_..., basicmodel_m_lbs_..., basicModel_neutral_lbs_...)
  and FLAME 2020's (female_model.pkl). FLAME's generic_model.pkl says nothing: None.
  """
  tokens = _name_tokens(path)
  for gender in _GENDERS:
    if gender in tokens:
      return gender
  if len(tokens) > 1 and tokens[0] == 'basicmodel':
    return {'f': 'female', 'm': 'male', 'n': 'neutral'}.get(tokens[1])
  return None


def hand_from_name(path):
  """True for a right hand (MANO_RIGHT.pkl), False for a left one, None if the name is silent."""
  tokens = _name_tokens(path)
  if 'right' in tokens:
    return True
  if 'left' in tokens:
    return False
  return None


_SIDE_WORD = re.compile(r'(?<![a-z0-9])(left|right)(?![a-z0-9])', re.IGNORECASE)


def _opposite_side(match):
  """'LEFT' -> 'RIGHT', 'Right' -> 'Left', 'left' -> 'right': the word swapped, its case kept."""
  word = match.group(0)
  other = 'right' if word.lower() == 'left' else 'left'
  if word.isupper():
    return other.upper()
  return other.capitalize() if word[0].isupper() else other

# ---- finding the file in a directory -----------------------------------------------------


def _candidate_names(family, gender, ext, is_right_hand):
  """File names to try, in order: the smplx library's, then the official ones."""
  exts = (ext,) if ext else _DEFAULT_EXTS[family]
  if family == 'mano':
    return [f"MANO_{'RIGHT' if is_right_hand else 'LEFT'}.{e}" for e in exts]
  names = [f'{family.upper()}_{gender.upper()}.{e}' for e in exts]
  official = _OFFICIAL_NAMES.get(family, {}).get(gender, [])
  return names + [n for n in official if ext in (None, 'pkl')]


def _find_in_dir(folder, name):
  """`folder/name` if it exists, matching the name ignoring case; else None."""
  exact = os.path.join(folder, name)
  if os.path.isfile(exact):
    return exact
  if not os.path.isdir(folder):
    return None
  for entry in sorted(os.listdir(folder)):
    if entry.lower() == name.lower() and os.path.isfile(os.path.join(folder, entry)):
      return os.path.join(folder, entry)
  return None


def resolve_model_path(path, family=None, gender='neutral', ext=None, is_right_hand=True):
  """The model file that `path` names: itself if a file, else found in a directory.

  In a directory, looks in `<dir>/<family>/` then `<dir>/` for the smplx library's
  names (SMPL_NEUTRAL.pkl, SMPLX_NEUTRAL.npz then .pkl, MANO_RIGHT.pkl / MANO_LEFT.pkl,
  FLAME_NEUTRAL.pkl) and then the official ones (basicModel_neutral_lbs_10_207_0_v1.0.0.pkl
  and the v1.1.0 names; FLAME 2020's generic_model.pkl, female_model.pkl, male_model.pkl).

  Args:
    path: a file or a directory.
    family: which family to look for; None tries all and needs exactly one to be there.
    gender: 'neutral' | 'female' | 'male' (not used for MANO).
    ext: 'pkl' | 'npz' to look for that extension only.
    is_right_hand: MANO: right (MANO_RIGHT) or left (MANO_LEFT).
  Returns:
    str, the path of an existing file.
  Raises:
    ModelFileError listing every path tried.
  """
  path = os.fspath(path)
  if os.path.isfile(path):
    return path
  if not os.path.isdir(path):
    raise ModelFileError(f'{path}: no such file or directory')
  check_family(family)
  gender = str(gender).lower()
  if gender not in _GENDERS:
    raise ModelFileError(f'unknown gender {gender!r}; expected one of {_GENDERS}')
  if ext is not None:
    ext = ext.lstrip('.').lower()
  tried, found = [], {}
  for fam in (family,) if family else FAMILIES:
    for folder in (os.path.join(path, fam), path):
      for name in _candidate_names(fam, gender, ext, is_right_hand):
        tried.append(os.path.join(folder, name))
        hit = _find_in_dir(folder, name)
        if hit is not None and fam not in found:
          found[fam] = hit
  if len(found) > 1:
    raise ModelFileError(f'{path}: holds models of several families ({", ".join(found)}); '
                         'pass family=')
  if not found:
    raise ModelFileError(f'{path}: no model file found; tried:\n  ' + '\n  '.join(tried))
  return next(iter(found.values()))


def other_hand_path(path):
  """The MANO file of the other hand beside `path`, or None.

  'models/mano/MANO_LEFT.pkl' -> 'models/mano/MANO_RIGHT.pkl' when that exists, else the
  same name with the other of .pkl / .npz. The name must say the side exactly once
  (`hand_from_name`); names are matched ignoring case.
  """
  folder, name = os.path.split(os.fspath(path))
  stem, ext = os.path.splitext(name)
  swapped, count = _SIDE_WORD.subn(_opposite_side, stem)
  if count != 1:
    return None
  for other_ext in dict.fromkeys((ext.lower(), '.pkl', '.npz')):
    hit = _find_in_dir(folder, swapped + other_ext)
    if hit is not None:
      return hit
  return None
