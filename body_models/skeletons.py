"""Static facts about each body-model family: joints, parents, extra-joint vertices.

These are properties of the official models (and of our stand-ins, which copy them):
kinematic trees, joint names in the `smplx` library's output order, and the mesh
vertices that `smplx` samples as extra joints (nose, eyes, ears, toes, fingertips).
"""

FAMILIES = ('smpl', 'smplx', 'mano', 'flame')

# ---- kinematic trees ---------------------------------------------------------------

SMPL_JOINTS = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee', 'spine2',
    'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot', 'neck',
    'left_collar', 'right_collar', 'head', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hand', 'right_hand',
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                20, 21)

# MANO and SMPL-X order fingers index, middle, pinky, ring, thumb; three joints each.
FINGERS = ('index', 'middle', 'pinky', 'ring', 'thumb')
_FINGER_JOINTS = tuple(f'{f}{k}' for f in FINGERS for k in (1, 2, 3))

MANO_JOINTS = ('wrist',) + _FINGER_JOINTS
MANO_PARENTS = (-1,) + tuple(0 if k == 0 else 1 + 3 * f + k - 1
                             for f in range(5) for k in range(3))


def _hand_parents(wrist, first):
  """Parents of the 15 finger joints of a hand whose joints start at `first`."""
  return tuple(wrist if k == 0 else first + 3 * f + k - 1 for f in range(5) for k in range(3))


SMPLX_JOINTS = (
    SMPL_JOINTS[:22] + ('jaw', 'left_eye_smplhf', 'right_eye_smplhf') +
    tuple('left_' + j for j in _FINGER_JOINTS) + tuple('right_' + j for j in _FINGER_JOINTS))
SMPLX_PARENTS = (SMPL_PARENTS[:22] + (15, 15, 15) + _hand_parents(20, 25) +
                 _hand_parents(21, 40))

FLAME_JOINTS = ('root', 'neck', 'jaw', 'left_eye', 'right_eye')
FLAME_PARENTS = (-1, 0, 1, 1, 1)

PARENTS = {'smpl': SMPL_PARENTS, 'smplx': SMPLX_PARENTS, 'mano': MANO_PARENTS,
           'flame': FLAME_PARENTS}
KINEMATIC_JOINTS = {'smpl': SMPL_JOINTS, 'smplx': SMPLX_JOINTS, 'mano': MANO_JOINTS,
                    'flame': FLAME_JOINTS}
NUM_VERTICES = {'smpl': 6890, 'smplx': 10475, 'mano': 778, 'flame': 5023}

# SMPL-X and FLAME compute the face-contour landmarks from the neck's global rotation:
# the neck joint index whose chain to the root is used (as the smplx library does).
NECK_INDEX = {'smplx': 12, 'flame': 0}

# ---- extra joints sampled from vertices ------------------------------------------------
# Order as the smplx library appends them: face, feet, then left and right fingertips.

EXTRA_JOINTS = (
    'nose', 'right_eye', 'left_eye', 'right_ear', 'left_ear',
    'left_big_toe', 'left_small_toe', 'left_heel', 'right_big_toe', 'right_small_toe',
    'right_heel',
) + tuple(f'{side}_{f}_tip' for side in ('left', 'right')
          for f in ('thumb', 'index', 'middle', 'ring', 'pinky'))

EXTRA_JOINT_VERTICES = {
    # SMPL shares SMPL-H's topology.
    'smpl': (332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787,
             2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133),
    'smplx': (9120, 9929, 9448, 616, 6, 5770, 5780, 8846, 8463, 8474, 8635,
              5361, 4933, 5058, 5169, 5286, 8079, 7669, 7794, 7905, 8022),
    # smplx's MANO layer returns the 16 kinematic joints only; these fingertip
    # vertices (thumb, index, middle, ring, pinky) give the common 21-joint hand.
    'mano': (),
    'flame': (),
}
MANO_TIP_VERTICES = (744, 320, 443, 554, 671)

NUM_STATIC_LANDMARKS = 51   # iBUG-68 points 18..68 (brows, nose, eyes, mouth)
NUM_CONTOUR_LANDMARKS = 17  # iBUG-68 points 1..17 (jaw line), pose dependent


def output_joint_names(family, num_landmarks=0):
  """Names of `Output.joints` in order: kinematic, extra vertex joints, landmarks."""
  names = KINEMATIC_JOINTS[family]
  if EXTRA_JOINT_VERTICES[family]:
    names = names + EXTRA_JOINTS
  lmk = tuple(f'face_{i:02d}' for i in range(min(num_landmarks, NUM_STATIC_LANDMARKS)))
  contour = tuple(f'face_contour_{i:02d}'
                  for i in range(max(0, num_landmarks - NUM_STATIC_LANDMARKS)))
  return names + lmk + contour


def kinematic_chain(joint, parents):
  """Joint indices from `joint` up to the root, e.g. neck -> spine3 -> ... -> pelvis."""
  chain = []
  while joint != -1:
    chain.append(joint)
    joint = parents[joint]
  return tuple(chain)

# ---- parameter layouts ------------------------------------------------------------------
# The pose parameters of each family, in the order they fill the kinematic joints,
# with how many joints each one covers (smplx library names; axis-angle, 3 per joint).

POSE_PARTS = {
    'smpl': (('global_orient', 1), ('body_pose', 23)),
    'smplx': (('global_orient', 1), ('body_pose', 21), ('jaw_pose', 1), ('leye_pose', 1),
              ('reye_pose', 1), ('left_hand_pose', 15), ('right_hand_pose', 15)),
    'mano': (('global_orient', 1), ('hand_pose', 15)),
    'flame': (('global_orient', 1), ('neck_pose', 1), ('jaw_pose', 1), ('leye_pose', 1),
              ('reye_pose', 1)),
}
# Hand pose parameters that may be given as PCA coefficients.
HAND_POSE_PARTS = {'smpl': (), 'smplx': ('left_hand_pose', 'right_hand_pose'),
                   'mano': ('hand_pose',), 'flame': ()}
HAS_EXPRESSION = {'smpl': False, 'smplx': True, 'mano': False, 'flame': True}
# The smplx library's shape / expression split when a file carries the full spaces.
SHAPE_SPACE_DIM = {'smpl': 300, 'smplx': 300, 'mano': 10, 'flame': 300}
EXPRESSION_SPACE_DIM = {'smplx': 100, 'flame': 100}
