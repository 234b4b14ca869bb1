"""Tests of body_models/synthetic (procedural stand-in model files).

The files are written once per session (about 400 MB; conftest's shared
`model_dir` when there is one) and read back with the smplx library and directly.
"""

import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from body_models import skeletons
from body_models import synthetic
from body_models.synthetic import anatomy, files, landmarks, mesh, shapes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Triangle counts of the official meshes; ours are closed unions of parts, so close.
REAL_FACES = {'smpl': 13776, 'smplx': 20908, 'mano': 1538, 'flame': 9976}
NUM_SHAPE = {'smpl': 10, 'smplx': 20, 'mano': 10, 'flame': 20}


@pytest.fixture(scope='session')
def models(request, tmp_path_factory):
  """The stand-in model root: the suite's shared `model_dir` when conftest has one."""
  try:
    return str(request.getfixturevalue('model_dir'))
  except pytest.FixtureLookupError:
    out = tmp_path_factory.mktemp('synthetic_models')
    synthetic.write_all(str(out))
    return str(out)


@pytest.fixture(scope='session')
def arrays():
  return {family: synthetic.make_model_arrays(family) for family in skeletons.FAMILIES}


def _load_pickle(path):
  with open(path, 'rb') as f:
    return pickle.load(f, encoding='latin1')


# ---- the smplx library reads every file --------------------------------------------------

SMPLX_CASES = {
    'smpl': (dict(model_type='smpl'), 6890, 24 + 21),
    'smplx_npz': (dict(model_type='smplx', ext='npz', use_pca=True, num_pca_comps=12,
                       use_face_contour=True), 10475, 55 + 21 + 51 + 17),
    'smplx_pkl': (dict(model_type='smplx', ext='pkl', use_pca=False), 10475, 55 + 21 + 51),
    'mano_right': (dict(model_type='mano', is_rhand=True, use_pca=True), 778, 16),
    'mano_left': (dict(model_type='mano', is_rhand=False, use_pca=False), 778, 16),
    'flame': (dict(model_type='flame', use_face_contour=True), 5023, 5 + 51 + 17),
}


@pytest.mark.parametrize('case', sorted(SMPLX_CASES))
def test_smplx_library_reads_files(models, case):
  torch = pytest.importorskip('torch')
  smplx = pytest.importorskip('smplx')
  kwargs, num_verts, num_joints = SMPLX_CASES[case]
  model = smplx.create(models, gender='neutral', **kwargs)
  with torch.no_grad():
    out = model()
  assert out.vertices.shape == (1, num_verts, 3)
  assert out.joints.shape == (1, num_joints, 3)
  assert torch.isfinite(out.vertices).all() and torch.isfinite(out.joints).all()


def test_written_layout(models):
  expected = ['smpl/SMPL_NEUTRAL.pkl', 'smplx/SMPLX_NEUTRAL.npz', 'smplx/SMPLX_NEUTRAL.pkl',
              'mano/MANO_RIGHT.pkl', 'mano/MANO_LEFT.pkl', 'flame/FLAME_NEUTRAL.pkl',
              'flame/generic_model.pkl', 'flame/flame_static_embedding.pkl',
              'flame/flame_dynamic_embedding.npy']
  for name in expected:
    assert os.path.isfile(os.path.join(models, name)), name
  leftovers = [n for _, _, names in os.walk(models) for n in names if '.tmp-' in n]
  assert not leftovers
  scipy_sparse = pytest.importorskip('scipy.sparse')
  smpl = _load_pickle(os.path.join(models, 'smpl/SMPL_NEUTRAL.pkl'))
  assert scipy_sparse.issparse(smpl['J_regressor'])
  assert smpl['bs_style'] == 'lbs' and smpl['bs_type'] == 'lrotmin'
  assert smpl['kintree_table'][0, 0] == 4294967295
  np.testing.assert_array_equal(smpl['kintree_table'][1], np.arange(24))
  npz = np.load(os.path.join(models, 'smplx/SMPLX_NEUTRAL.npz'))
  assert npz['J_regressor'].shape == (55, 10475)
  with open(os.path.join(models, 'flame/FLAME_NEUTRAL.pkl'), 'rb') as a, \
      open(os.path.join(models, 'flame/generic_model.pkl'), 'rb') as b:
    assert a.read() == b.read()
  static = _load_pickle(os.path.join(models, 'flame/flame_static_embedding.pkl'))
  assert static['lmk_face_idx'].shape == (51,) and static['lmk_b_coords'].shape == (51, 3)
  dynamic = np.load(os.path.join(models, 'flame/flame_dynamic_embedding.npy'),
                    allow_pickle=True, encoding='latin1')[()]
  assert dynamic['lmk_face_idx'].shape == (79, 17)
  assert dynamic['lmk_b_coords'].shape == (79, 17, 3)


# ---- shapes and counts ----------------------------------------------------------------------


@pytest.mark.parametrize('family', skeletons.FAMILIES)
def test_counts_and_closed_mesh(arrays, family):
  a = arrays[family]
  v, j = skeletons.NUM_VERTICES[family], len(skeletons.PARENTS[family])
  assert a['v_template'].shape == (v, 3)
  assert a['J'].shape == (j, 3)
  assert a['weights'].shape == (v, j)
  assert a['J_regressor'].shape == (j, v)
  assert a['posedirs'].shape == (v, 3, 9 * (j - 1))
  assert a['shapedirs'].shape == (v, 3, NUM_SHAPE[family])
  np.testing.assert_array_equal(a['kintree_table'][0, 1:], skeletons.PARENTS[family][1:])
  faces = a['f'].astype(np.int64)
  assert abs(len(faces) - REAL_FACES[family]) < 0.02 * REAL_FACES[family]
  assert faces.min() == 0 and faces.max() == v - 1
  # Closed and consistently oriented: every directed edge once, its reverse once.
  edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
  keys = edges[:, 0] * v + edges[:, 1]
  assert len(np.unique(keys)) == len(keys)
  assert np.all(np.isin(edges[:, 1] * v + edges[:, 0], keys))
  assert mesh.signed_volume(a['v_template'], faces) > 0    # triangles face outward


@pytest.mark.parametrize('family', skeletons.FAMILIES)
def test_skinning_weights(arrays, family):
  w = arrays[family]['weights']
  assert np.all(w >= 0)
  np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
  assert np.count_nonzero(w, axis=1).max() <= 4
  # Every joint drives some vertices (the short spine2 bone shares the chest).
  assert np.all(w.max(0) > 0.4)


@pytest.mark.parametrize('family', skeletons.FAMILIES)
def test_joint_regressor(arrays, family):
  a = arrays[family]
  reg = a['J_regressor']
  assert np.all(reg >= 0)
  np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-12)
  assert np.count_nonzero(reg, axis=1).max() <= 200          # sparse rows
  err = np.linalg.norm(reg @ a['v_template'] - a['J'], axis=1)
  assert err.max() < 1e-3


def test_regressor_in_pickle_matches(models, arrays):
  mano = _load_pickle(os.path.join(models, 'mano/MANO_RIGHT.pkl'))
  reg = mano['J_regressor']
  reg = reg.toarray() if hasattr(reg, 'toarray') else reg
  np.testing.assert_array_equal(reg, arrays['mano']['J_regressor'])


@pytest.mark.parametrize('family', ['smpl', 'smplx'])
def test_body_proportions(arrays, family):
  a = arrays[family]
  v = a['v_template']
  height = v[:, 1].max() - v[:, 1].min()
  assert 1.5 < height < 1.9
  assert np.linalg.norm(a['J'][0]) < 0.05                    # pelvis at the origin
  names = skeletons.KINEMATIC_JOINTS[family]
  j = dict(zip(names, a['J']))
  assert j['left_shoulder'][0] > 0.1 and j['right_shoulder'][0] < -0.1   # left is +x
  assert j['head'][1] > j['neck'][1] > j['spine3'][1] > j['pelvis'][1] > j['left_knee'][1]
  # Symmetric rest pose.
  np.testing.assert_allclose(j['left_wrist'] * [-1, 1, 1], j['right_wrist'], atol=1e-12)


def test_gendered_bodies_differ():
  male = synthetic.make_model_arrays('smpl', gender='male')['v_template']
  female = synthetic.make_model_arrays('smpl', gender='female')['v_template']
  assert np.ptp(male[:, 1]) > np.ptp(female[:, 1])
  with pytest.raises(ValueError):
    synthetic.make_model_arrays('smpl', gender='other')


# ---- blend shapes -------------------------------------------------------------------------


@pytest.mark.parametrize('family', ['smpl', 'smplx'])
def test_height_beta_is_monotonic(arrays, family):
  a = arrays[family]
  heights = [np.ptp((a['v_template'] + b * a['shapedirs'][..., 0])[:, 1])
             for b in np.linspace(-3, 3, 13)]
  assert np.all(np.diff(heights) > 0)
  assert 1.35 < heights[0] and heights[-1] < 2.15


@pytest.mark.parametrize('family', skeletons.FAMILIES)
def test_shape_directions_are_plausible(arrays, family):
  a = arrays[family]
  dirs = a['shapedirs'][..., :10]
  flat = dirs.reshape(-1, dirs.shape[-1])
  cos = (flat.T @ flat) / np.outer(np.linalg.norm(flat, axis=0), np.linalg.norm(flat, axis=0))
  off_diagonal = cos[~np.eye(len(cos), dtype=bool)]
  assert np.abs(off_diagonal).max() < 0.5                    # roughly orthogonal
  size = np.ptp(a['v_template'], axis=0).max()
  # Three standard deviations on one coefficient move no vertex by more than 15% of
  # the model's size; a random shape in [-3, 3] keeps the model's extent sensible.
  assert 3 * np.abs(dirs).max() < 0.15 * size
  rng = np.random.default_rng(0)
  for _ in range(5):
    betas = rng.uniform(-3, 3, dirs.shape[-1])
    shaped = a['v_template'] + dirs @ betas
    assert 0.7 < np.ptp(shaped, axis=0).max() / size < 1.3


@pytest.mark.parametrize('family', ['smplx', 'flame'])
def test_expressions_move_only_the_face(arrays, family):
  a = arrays[family]
  expr = a['shapedirs'][..., 10:]
  moved = np.abs(expr).max(axis=(1, 2)) > 0
  v = a['v_template']
  centre, radii = anatomy.build_flame()['head'] if family == 'flame' else (
      anatomy.HEAD_CENTRE, anatomy.HEAD_RADII)
  assert moved.sum() > 200
  assert np.all(v[moved, 2] > centre[2])                     # in front of the head centre
  assert np.all(v[moved, 1] > centre[1] - 1.3 * radii[1])    # nothing below the chin
  # Expression 0 opens the mouth: the chin moves down, the brows stay.
  low = moved & (v[:, 1] < np.percentile(v[moved, 1], 10))
  assert expr[low, 1, 0].mean() < -0.001 and expr[low, 1, 0].min() < -0.004
  assert np.abs(expr[moved & (v[:, 1] > centre[1] + 0.3 * radii[1]), :, 0]).max() < 1e-6


@pytest.mark.parametrize('family', skeletons.FAMILIES)
def test_pose_correctives_small_dense_local(arrays, family):
  a = arrays[family]
  p = a['posedirs']
  assert np.abs(p).max() < 0.02                              # at most a couple of cm
  assert np.count_nonzero(p) > 0.99 * p.size                 # dense, like learned ones
  # Joint 1's correctives fade away from it.
  d = np.linalg.norm(a['v_template'] - a['J'][1], axis=1)
  near = np.abs(p[d < np.percentile(d, 5), :, :9]).max()
  far = np.abs(p[d > np.percentile(d, 95), :, :9]).max()
  assert far < 0.2 * near


def test_full_dims():
  flame = synthetic.make_model_arrays('flame', full_dims=True)
  assert flame['shapedirs'].shape == (5023, 3, 400)
  expr = flame['shapedirs'][..., 300:]
  assert np.all(np.isfinite(flame['shapedirs']))
  # Later directions are smaller, like a PCA basis.
  norms = np.linalg.norm(flame['shapedirs'].reshape(-1, 400), axis=0)
  assert norms[299] < norms[0] and norms[399] < norms[300]
  assert np.abs(expr[flame['v_template'][:, 1] < -0.15]).max() == 0   # neck untouched
  assert synthetic.make_model_arrays('smpl', full_dims=True)['shapedirs'].shape[-1] == 300


# ---- extra joints, landmarks, hands ---------------------------------------------------------


@pytest.mark.parametrize('family', ['smpl', 'smplx'])
def test_extra_joint_vertices_are_anatomical(arrays, family):
  a = arrays[family]
  v = a['v_template']
  names = skeletons.KINEMATIC_JOINTS[family]
  j = dict(zip(names, a['J']))
  x = {n: v[i] for n, i in zip(skeletons.EXTRA_JOINTS, skeletons.EXTRA_JOINT_VERTICES[family])}
  head = v[v[:, 1] > j['head'][1]]
  assert x['nose'][2] > head[:, 2].max() - 0.005            # the frontmost head point
  assert x['left_eye'][0] > 0.015 and x['right_eye'][0] < -0.015
  assert min(x['left_eye'][1], x['right_eye'][1]) > x['nose'][1]
  assert x['left_ear'][0] > 0.9 * head[:, 0].max() and x['right_ear'][0] < 0.9 * head[:, 0].min()
  sole = v[:, 1].min()
  for side, s in (('left', 1), ('right', -1)):
    big, small, heel = x[f'{side}_big_toe'], x[f'{side}_small_toe'], x[f'{side}_heel']
    ankle = j[f'{side}_ankle']
    assert s * big[0] > 0 and s * small[0] > s * big[0]       # small toe is lateral
    assert big[2] > ankle[2] + 0.12 and heel[2] < ankle[2] - 0.03
    assert max(big[1], small[1], heel[1]) < sole + 0.03
    tips = np.stack([x[f'{side}_{f}_tip'] for f in ('thumb', 'index', 'middle', 'ring', 'pinky')])
    wrist = j[f'{side}_wrist']
    assert np.all(s * (tips[1:, 0] - wrist[0]) > 0.09) and s * (tips[0, 0] - wrist[0]) > 0.06
    assert np.argmax(s * tips[:, 0]) == 2                     # middle finger is longest
    assert np.argmax(tips[:, 2]) == 0                         # thumb points forward


def test_mano_tip_vertices(arrays):
  a = arrays['mano']
  tips = a['v_template'][list(skeletons.MANO_TIP_VERTICES)]   # thumb, index, middle, ring, pinky
  wrist = a['J'][0]
  assert np.all(tips[1:, 0] < wrist[0] - 0.09)               # right hand: fingers along -x
  assert tips[0, 0] < wrist[0] - 0.06
  assert np.argmin(tips[:, 0]) == 2 and np.argmax(tips[:, 2]) == 0
  # Each tip is the extreme of its finger: nothing of the hand is farther along -x
  # than the middle fingertip.
  assert tips[2, 0] == a['v_template'][:, 0].min()


@pytest.mark.parametrize('family', ['smplx', 'flame'])
def test_landmarks(arrays, family):
  a = arrays[family]
  v, f = a['v_template'], a['f'].astype(np.int64)
  for idx, bary in ((a['lmk_faces_idx'], a['lmk_bary_coords']),
                    (a['dynamic_lmk_faces_idx'], a['dynamic_lmk_bary_coords'])):
    assert np.all(bary >= 0)
    np.testing.assert_allclose(bary.sum(-1), 1.0, atol=1e-12)
    assert idx.min() >= 0 and idx.max() < len(f)
  lmk = np.einsum('li,lid->ld', a['lmk_bary_coords'], v[f[a['lmk_faces_idx']]])
  assert lmk.shape == (51, 3)
  nose_tip = 13                                               # iBUG point 31
  assert np.argmax(lmk[:, 2]) == nose_tip
  # Brows above eyes above the nose tip above the mouth; subject's right first.
  brows, eyes, mouth = lmk[0:10], lmk[19:31], lmk[31:51]
  assert brows[:, 1].min() > eyes[:, 1].max()
  assert eyes[:, 1].min() > lmk[nose_tip, 1] > mouth[:, 1].max()
  assert lmk[0, 0] < 0 < lmk[9, 0]
  contour = np.einsum('ri,rid->rd', a['dynamic_lmk_bary_coords'][0],
                      v[f[a['dynamic_lmk_faces_idx'][0]]])
  assert contour[0, 0] < 0 < contour[16, 0]
  assert contour[8, 1] < mouth[:, 1].min()                    # the chin
  # The rows for the head turned left (yaw > 0) slide the contour toward -x.
  turned = np.einsum('ri,rid->rd', a['dynamic_lmk_bary_coords'][78],
                     v[f[a['dynamic_lmk_faces_idx'][78]]])
  assert landmarks.yaw_of_row(78) == 39.0 and turned[8, 0] < contour[8, 0] - 0.01


def test_hand_pca(arrays):
  for comps in (arrays['mano']['hands_components'], arrays['smplx']['hands_componentsr'],
                arrays['smplx']['hands_componentsl']):
    np.testing.assert_allclose(comps @ comps.T, np.eye(45), atol=1e-12)
  sx = arrays['smplx']
  flip = np.tile([1, -1, -1], 15)
  np.testing.assert_array_equal(sx['hands_componentsl'], sx['hands_componentsr'] * flip)
  np.testing.assert_array_equal(sx['hands_meanl'], sx['hands_meanr'] * flip)
  # The first component curls the fingers of the right hand about +z (toward the palm).
  first = arrays['mano']['hands_components'][0].reshape(15, 3)
  assert np.all(first[:12, 2] > 0)


def test_left_mano_is_the_mirror(models):
  right = _load_pickle(os.path.join(models, 'mano/MANO_RIGHT.pkl'))
  left = _load_pickle(os.path.join(models, 'mano/MANO_LEFT.pkl'))
  np.testing.assert_array_equal(left['v_template'], right['v_template'] * [-1, 1, 1])
  np.testing.assert_array_equal(left['f'], right['f'][:, ::-1])
  np.testing.assert_array_equal(left['hands_components'],
                                shapes.mirror_hand_pose(right['hands_components']))
  # Except the shape directions: the right hand's, as in the official file (its sign error).
  np.testing.assert_array_equal(left['shapedirs'], right['shapedirs'])


def test_mirrored_pose_gives_mirrored_hand(models):
  torch = pytest.importorskip('torch')
  smplx = pytest.importorskip('smplx')
  kw = dict(model_type='mano', use_pca=False, flat_hand_mean=True, dtype=torch.float64)
  right = smplx.create(models, is_rhand=True, **kw)
  left = smplx.create(models, is_rhand=False, **kw)
  # The fix smplx users apply to the official MANO_LEFT, whose error the stand-in copies.
  left.shapedirs[:, 0, :] *= -1
  rng = np.random.default_rng(3)
  pose = rng.normal(0, 0.4, (2, 45))
  orient = rng.normal(0, 0.4, (2, 3))
  betas = rng.normal(0, 1, (2, 10))
  flip = np.array([1.0, -1.0, -1.0])
  with torch.no_grad():
    r = right(hand_pose=torch.tensor(pose), global_orient=torch.tensor(orient),
              betas=torch.tensor(betas))
    l = left(hand_pose=torch.tensor(pose * np.tile(flip, 15)),
             global_orient=torch.tensor(orient * flip), betas=torch.tensor(betas))
  np.testing.assert_allclose(l.vertices.numpy(), r.vertices.numpy() * [-1, 1, 1], atol=1e-9)


# ---- determinism, files, tool -----------------------------------------------------------


def test_same_seed_same_bytes(tmp_path):
  a = files.write_model('mano', str(tmp_path / 'a'), seed=0)
  b = files.write_model('mano', str(tmp_path / 'b'), seed=0)
  c = files.write_model('mano', str(tmp_path / 'c'), seed=1)
  with open(a, 'rb') as fa, open(b, 'rb') as fb, open(c, 'rb') as fc:
    da, db, dc = fa.read(), fb.read(), fc.read()
  assert da == db and da != dc
  fl = [files.write_model('flame', str(tmp_path / n), seed=0) for n in ('a', 'b')]
  for name in ('FLAME_NEUTRAL.pkl', 'flame_dynamic_embedding.npy'):
    with open(os.path.join(os.path.dirname(fl[0]), name), 'rb') as x, \
        open(os.path.join(os.path.dirname(fl[1]), name), 'rb') as y:
      assert x.read() == y.read()


def test_smplx_arrays_deterministic(arrays):
  again = synthetic.make_model_arrays('smplx', seed=0)
  other = synthetic.make_model_arrays('smplx', seed=1)
  for key, value in arrays['smplx'].items():
    np.testing.assert_array_equal(again[key], value)
  assert not np.array_equal(other['posedirs'], arrays['smplx']['posedirs'])
  np.testing.assert_array_equal(other['v_template'], arrays['smplx']['v_template'])


def test_npz_bytes_reproducible():
  data = {'a': np.arange(5.0), 'b': np.eye(2, dtype=np.float32)}
  blob = files.npz_bytes(data)
  assert blob == files.npz_bytes(data)
  with zipfile.ZipFile(io.BytesIO(blob)) as zf:
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
  loaded = np.load(io.BytesIO(blob))
  np.testing.assert_array_equal(loaded['a'], data['a'])


def test_float32_option():
  a = synthetic.make_model_arrays('mano', dtype=np.float32)
  assert a['v_template'].dtype == np.float32 and a['posedirs'].dtype == np.float32
  assert a['f'].dtype == np.uint32 and a['kintree_table'].dtype == np.int64


def test_tool(tmp_path):
  tool = os.path.join(REPO, 'tools', 'make_synthetic_body_models.py')
  help_text = subprocess.run([sys.executable, tool, '--help'], capture_output=True,
                             text=True, check=True).stdout
  assert '--full_dims' in help_text and '--seed' in help_text
  run = subprocess.run([sys.executable, tool, '--out', str(tmp_path), '--families', 'mano'],
                       capture_output=True, text=True, check=True)
  assert 'wrote 1 stand-in model' in run.stdout
  assert (tmp_path / 'mano' / 'MANO_LEFT.pkl').is_file()


def test_import_needs_only_numpy():
  code = ('import sys; import body_models.synthetic; '
          'print(sorted(m for m in ("scipy", "torch", "smplx") if m in sys.modules))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       check=True, cwd=REPO)
  assert out.stdout.strip() == '[]'
