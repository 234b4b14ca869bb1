"""Our SMPL-X files read the way the Hand4Whole-family regressors read them.

The reading code below re-writes, in numpy, the lines of mks0601/Hand4Whole_RELEASE that
touch a NeuralAnnot SMPL-X file (OSX and SMPLer-X copy them):
  data/MSCOCO/MSCOCO.py          smplx_params[str(aid)], then
                                 process_human_model_output(p['smplx_param'], p['cam_param'])
  data/Human36M/Human36M.py      Human36M_subject{S}_SMPLX_NeuralAnnot.json,
                                 [str(subject)][str(action)][str(subaction)][str(frame)]
  data/MPI_INF_3DHP/MPI_INF_3DHP.py  MPI-INF-3DHP_SMPLX_NeuralAnnot.json,
                                 [str(subject)][str(seq)][str(frame)]
  common/utils/preprocessing.py  process_human_model_output, 'smplx' branch: which keys it
                                 reads and in which shapes (torch's .view is reshape here).
Every SMPL-X file we write (a body-only annotation, the whole-body merge, the MoCap
world-frame files) must go through it unchanged, and the per-part flags must say what
the file means: a part is read only where it was annotated from its own data.
"""

import json
import os

import numpy as np
import pytest

import body_models
from body_models import synthetic
from neuralannot_jax import annotate
from neuralannot_jax import world_frame
from neuralannot_jax.wholebody import merge as wholebody

# Hand4Whole's smpl_x: 15 joints per hand (orig_joint_part), a 10-d expression code.
HAND_JOINTS = 15
EXPR_CODE_DIM = 10


# ------------------------------------------------------------ Hand4Whole's reading code


def process_smplx_param(human_model_param, cam_param):
  """process_human_model_output's reading of one SMPL-X parameter dict.

  Returns:
    ({'root_pose' (1, 3), 'body_pose' (21, 3), 'lhand_pose' (15, 3), 'rhand_pose' (15, 3),
      'jaw_pose' (1, 3), 'shape' (1, 10), 'expr' (1, 10), 'trans' (1, 3)} float32,
     {'lhand', 'rhand', 'face': whether that part's rotations are supervised},
     gender, focal (2,), princpt (2,)).
  """
  p = human_model_param
  part_valid = {'lhand': True, 'rhand': True, 'face': True}
  root_pose, body_pose, shape, trans = p['root_pose'], p['body_pose'], p['shape'], p['trans']
  if 'lhand_pose' in p and p['lhand_valid']:
    lhand_pose = p['lhand_pose']
  else:
    lhand_pose = np.zeros(3 * HAND_JOINTS, np.float32)
    part_valid['lhand'] = False
  if 'rhand_pose' in p and p['rhand_valid']:
    rhand_pose = p['rhand_pose']
  else:
    rhand_pose = np.zeros(3 * HAND_JOINTS, np.float32)
    part_valid['rhand'] = False
  if 'jaw_pose' in p and 'expr' in p and p['face_valid']:
    jaw_pose, expr = p['jaw_pose'], p['expr']
  else:
    jaw_pose, expr = np.zeros(3, np.float32), np.zeros(EXPR_CODE_DIM, np.float32)
    part_valid['face'] = False
  gender = p['gender'] if 'gender' in p else 'neutral'
  # torch.FloatTensor(x).view(...): a flat list of numbers of exactly the viewed size.
  view = lambda x, *shape: np.asarray(x, np.float32).reshape(*shape)
  arrays = {'root_pose': view(root_pose, 1, 3), 'body_pose': view(body_pose, -1, 3),
            'lhand_pose': view(lhand_pose, -1, 3), 'rhand_pose': view(rhand_pose, -1, 3),
            'jaw_pose': view(jaw_pose, -1, 3), 'shape': view(shape, 1, -1),
            'expr': view(expr, 1, -1), 'trans': view(trans, 1, -1)}
  # cam2pixel indexes f[0], f[1], c[0], c[1].
  focal = np.array([cam_param['focal'][0], cam_param['focal'][1]], np.float32)
  princpt = np.array([cam_param['princpt'][0], cam_param['princpt'][1]], np.float32)
  return arrays, part_valid, gender, focal, princpt


def read_mscoco(path, aid):
  """MSCOCO.py: the entry of annotation `aid` (None when the file has none), processed."""
  with open(path) as f:
    smplx_params = json.load(f)
  if str(aid) not in smplx_params:
    return None
  smplx_param = smplx_params[str(aid)]
  return process_smplx_param(smplx_param['smplx_param'], smplx_param['cam_param'])


def read_mocap(path, key, cam_param):
  """Human36M.py / MPI_INF_3DHP.py: the frame at nested string keys, with the dataset's
  camera (R, t, focal, princpt) instead of one from the file."""
  with open(path) as f:
    smplx_param = json.load(f)
  for k in key:
    smplx_param = smplx_param[str(k)]
  return process_smplx_param(smplx_param, cam_param)


# The released SMPL-X layout as those readers take it: (1, 3) root, 21 body joints, ...
SHAPES = {'root_pose': (1, 3), 'body_pose': (21, 3), 'lhand_pose': (15, 3),
          'rhand_pose': (15, 3), 'jaw_pose': (1, 3), 'shape': (1, 10), 'expr': (1, 10),
          'trans': (1, 3)}


def check_read(read, params, parts, atol=1e-6):
  """The read arrays have the released shapes; a part is the file's where its flag says it
  was annotated, else zero; body, shape and translation are always the file's.

  Args:
    read: `process_smplx_param`'s result.
    params: {smplx name: 1-D array} the file was written from.
    parts: {'lhand', 'rhand', 'face': the part's expected flag}.
    atol: how near the file's numbers must be to params.
  """
  arrays, part_valid, gender, _, _ = read
  assert {k: v.shape for k, v in arrays.items()} == SHAPES
  assert part_valid == parts and gender == 'neutral'
  for key, name in (('root_pose', 'global_orient'), ('body_pose', 'body_pose'),
                    ('shape', 'betas'), ('trans', 'transl')):
    np.testing.assert_allclose(arrays[key].reshape(-1), params[name], atol=atol, err_msg=key)
  for part, key, name in (('lhand', 'lhand_pose', 'left_hand_pose'),
                          ('rhand', 'rhand_pose', 'right_hand_pose'),
                          ('face', 'jaw_pose', 'jaw_pose'), ('face', 'expr', 'expression')):
    want = params[name] if parts[part] else np.zeros_like(params[name])
    np.testing.assert_allclose(arrays[key].reshape(-1), want, atol=atol, err_msg=key)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope='module')
def smplx(tmp_path_factory):
  root = tmp_path_factory.mktemp('consumer_models')
  return body_models.load(synthetic.write_model('smplx', str(root)), 'smplx')


def smplx_params(seed):
  """One person's SMPL-X parameters, every part non-zero (so a zeroed part shows)."""
  rng = np.random.default_rng(seed)
  sizes = {'global_orient': 3, 'body_pose': 63, 'left_hand_pose': 45,
           'right_hand_pose': 45, 'jaw_pose': 3, 'betas': 10, 'expression': 10}
  params = {k: (0.3 * rng.standard_normal(n)).astype(np.float32) for k, n in sizes.items()}
  params['transl'] = np.array([0.1, -0.2, 4.0], np.float32) + 0.1 * rng.standard_normal(3)
  return {k: np.asarray(v, np.float32) for k, v in params.items()}


def body_annotation(seed, camera='virtual'):
  return annotate.Annotation(smplx_params(seed), np.array([1500.0, 1500.0]),
                             np.array([320.0, 240.0]), 'smplx', camera=camera)


# ------------------------------------------------------------------------------- files


def test_body_only_smplx_file_reads_without_hands_or_face(tmp_path):
  """coco_body with family=smplx (and a whole-body run's body part) writes hand and face
  parameters it never annotated from hand or face data: readers must skip them."""
  annotations = {7: body_annotation(0), 8: body_annotation(1)}
  path, _ = annotate.write(annotations, str(tmp_path), 'pseudo_gt')
  for aid, ann in annotations.items():
    read = read_mscoco(path, aid)
    check_read(read, ann.params, {'lhand': False, 'rhand': False, 'face': False})
    np.testing.assert_allclose(read[3], ann.focal)
    np.testing.assert_allclose(read[4], ann.princpt)
  assert read_mscoco(path, 9) is None


def test_whole_body_merge_reads_the_parts_it_annotated(tmp_path, smplx):
  """Body, hand and face files as a whole-body run writes them, merged: each person's hands
  and face are read exactly where that person had them."""
  bodies = {101: body_annotation(2), 202: body_annotation(3)}
  body_file, _ = annotate.write(bodies, str(tmp_path / 'body'), 'pseudo_gt')
  rng = np.random.default_rng(4)
  mano = lambda: {'global_orient': rng.normal(0, 0.3, 3).astype(np.float32),
                  'hand_pose': rng.normal(0, 0.3, 45).astype(np.float32),
                  'betas': np.zeros(10, np.float32),
                  'transl': np.array([0, 0, 0.6], np.float32)}
  hands = {'101_left': annotate.Annotation(mano(), np.array([900.0, 900.0]),
                                           np.array([60.0, 60.0]), 'mano', hand_side='left',
                                           parent_id=101)}
  hand_file, _ = annotate.write(hands, str(tmp_path / 'hand'), 'pseudo_gt')
  face = {'jaw_pose': np.array([0.2, 0.0, 0.0], np.float32),
          'expression': rng.normal(0, 1, 10).astype(np.float32),
          'global_orient': np.zeros(3, np.float32), 'betas': np.zeros(10, np.float32),
          'transl': np.array([0, 0, 0.5], np.float32)}
  faces = {'202_face': annotate.Annotation(face, np.array([700.0, 700.0]),
                                           np.array([50.0, 50.0]), 'flame')}
  face_file, _ = annotate.write(faces, str(tmp_path / 'face'), 'pseudo_gt')
  out, counts = wholebody.merge_files(body_file, hand_file, face_file,
                                      tmp_path / 'wholebody.json', smplx)
  assert counts == {'persons': 2, 'rhand': 0, 'lhand': 1, 'face': 1}
  with open(out) as f:
    merged = json.load(f)
  expected = {101: {'lhand': True, 'rhand': False, 'face': False},
              202: {'lhand': False, 'rhand': False, 'face': True}}
  for aid, parts in expected.items():
    # What the reader must give back where a flag is true is the merged file's own value.
    written = merged[str(aid)]['smplx_param']
    params = dict(bodies[aid].params,
                  body_pose=np.asarray(written['body_pose'], np.float32),
                  left_hand_pose=np.asarray(written['lhand_pose'], np.float32),
                  jaw_pose=np.asarray(written['jaw_pose'], np.float32),
                  expression=np.asarray(written['expr'], np.float32))
    check_read(read_mscoco(out, aid), params, parts)
  np.testing.assert_allclose(merged['202']['smplx_param']['jaw_pose'], face['jaw_pose'])
  np.testing.assert_allclose(merged['202']['smplx_param']['expr'], face['expression'])


@pytest.mark.parametrize('dataset, key, name', [
    ('h36m', (9, 2, 1, 40), 'Human36M_subject9_SMPLX_NeuralAnnot.json'),
    ('mpi_inf_3dhp', (3, 1, 40), 'MPI-INF-3DHP_SMPLX_NeuralAnnot.json')])
def test_mocap_world_frame_smplx_files_read_without_hands_or_face(tmp_path, smplx, dataset,
                                                                  key, name):
  """The world-frame MoCap files of a SMPL-X run: one body per frame, read by the
  Human3.6M / MPI-INF-3DHP loaders' own keys, hands and face skipped."""
  ann = body_annotation(5, camera='dataset')
  # An identity camera: the world-frame parameters are the camera-space ones.
  extras = {1: {'frame_key': list(key), 'R': np.eye(3), 't_mm': np.zeros(3)}}
  paths, left_out, _, _ = world_frame.write_mocap({1: ann}, extras, smplx, 'smplx', dataset,
                                               str(tmp_path))
  assert left_out == 0 and [os.path.basename(p) for p in paths] == [name]
  # The frame's path in the file: Human3.6M's files are per subject.
  inner = key[1:] if dataset == 'h36m' else key
  cam = {'R': np.eye(3, dtype=np.float32), 't': np.zeros(3, np.float32),
         'focal': np.array([1145.0, 1144.0], np.float32),
         'princpt': np.array([512.0, 515.0], np.float32)}
  read = read_mocap(paths[0], inner, cam)
  # atol: the root rotation went through matrices (camera_to_world) in float32.
  check_read(read, ann.params, {'lhand': False, 'rhand': False, 'face': False}, atol=1e-5)
