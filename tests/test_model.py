"""BodyModel behaviour: closed-form geometry, batching, and JAX transformations."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.transform import Rotation

import body_models
from body_models import skeletons


@pytest.fixture(scope='module')
def smpl(model_dir):
  return body_models.load(model_dir, 'smpl')


@pytest.fixture(scope='module')
def smplx_model(model_dir):
  return body_models.load(model_dir, 'smplx', use_face_contour=True)


def test_rest_pose_is_the_template(smpl):
  out = smpl()
  assert out.vertices.shape == (6890, 3)   # no parameters: no batch axis
  np.testing.assert_allclose(out.vertices, smpl.v_template, atol=1e-6)
  np.testing.assert_allclose(out.joints[:24], smpl.J_regressor @ smpl.v_template, atol=1e-5)
  np.testing.assert_allclose(out.joints[24:], smpl.v_template[smpl.extra_vertex_ids],
                             atol=1e-6)
  np.testing.assert_allclose(out.global_rotations, np.broadcast_to(np.eye(3), (24, 3, 3)),
                             atol=1e-6)


def test_global_orient_rotates_rigidly_about_the_root(smpl):
  """With only a root rotation R and translation t: v' = R (v - j0) + j0 + t."""
  aa = np.array([0.3, -1.2, 0.5])
  transl = np.array([0.1, -0.2, 2.0])
  out = smpl(global_orient=aa[None], transl=transl[None])
  rot = Rotation.from_rotvec(aa).as_matrix()
  v, j0 = np.asarray(smpl.v_template), np.asarray(smpl.J_regressor @ smpl.v_template)[0]
  np.testing.assert_allclose(out.vertices[0], (v - j0) @ rot.T + j0 + transl, atol=1e-5)


def test_translation_is_exact_for_unnormalised_weights(smplx_model):
  """transl moves every vertex and joint by exactly transl, however the weights and the
  landmarks' barycentric coordinates are scaled (translation happens inside skinning)."""
  rng = np.random.default_rng(11)
  v = smplx_model.num_vertices
  model = dataclasses.replace(
      smplx_model,
      weights=smplx_model.weights * rng.uniform(0.5, 1.5, size=(v, 1)).astype(np.float32),
      landmark_bary=smplx_model.landmark_bary * 1.3,
      contour_bary=smplx_model.contour_bary * 0.8)
  params = dict(body_pose=rng.normal(size=(2, 63)) * 0.3, betas=rng.normal(size=(2, 10)))
  transl = np.array([[0.5, -1.0, 3.0], [-2.0, 0.25, 1.0]], np.float32)
  still, moved = model(**params), model(**params, transl=transl)
  for a, b in ((still.vertices, moved.vertices), (still.joints, moved.joints),
               (still.global_translations, moved.global_translations)):
    np.testing.assert_allclose(b, a + transl[:, None], atol=2e-5)
  # Its gradient: each output point counts once.
  grad = jax.grad(lambda t: jnp.sum(model(**params, transl=t).vertices) +
                  jnp.sum(model(**params, transl=t).joints))(jnp.asarray(transl))
  np.testing.assert_allclose(grad, np.full((2, 3), v + still.joints.shape[1]), rtol=1e-5)


def test_left_mano_is_the_mirror_of_the_right_for_any_shape(model_dir):
  """The left hand is the right hand mirrored through x = 0, betas != 0 included.

  The stand-in MANO_LEFT.pkl carries the official file's shapedirs sign error; the
  loader must undo it. Reference: the right hand's mesh with x negated, under the
  mirrored pose (axis-angle (x, y, z) -> (x, -y, -z)) and translation (x -> -x).
  """
  right = body_models.load(model_dir, 'mano', is_right_hand=True)
  left = body_models.load(model_dir, 'mano', is_right_hand=False)
  rng = np.random.default_rng(7)
  betas = rng.normal(size=(3, 10))
  pose, orient = rng.normal(0, 0.4, (3, 45)), rng.normal(0, 0.4, (3, 3))
  transl = rng.normal(0, 0.1, (3, 3))
  flip_axis, flip_x = np.array([1.0, -1.0, -1.0]), np.array([-1.0, 1.0, 1.0])
  want = right(hand_pose=pose, global_orient=orient, transl=transl, betas=betas)
  got = left(hand_pose=pose * np.tile(flip_axis, 15), global_orient=orient * flip_axis,
             transl=transl * flip_x, betas=betas)
  # float32 noise is ~1e-7 m; the sign error moves vertices by ~1 cm for these betas.
  np.testing.assert_allclose(got.vertices, np.asarray(want.vertices) * flip_x, atol=1e-5)
  np.testing.assert_allclose(got.joints, np.asarray(want.joints) * flip_x, atol=1e-5)
  unshaped = right(hand_pose=pose, global_orient=orient, transl=transl)
  assert np.abs(np.asarray(want.vertices) - np.asarray(unshaped.vertices)).max() > 5e-3


def test_bending_one_joint_moves_only_its_subtree(smpl):
  """An elbow bend leaves every joint outside the forearm's subtree where it was."""
  elbow = skeletons.SMPL_JOINTS.index('left_elbow')
  pose = np.zeros((1, 69))
  pose[0, 3 * (elbow - 1) + 2] = 1.0
  out = smpl(body_pose=pose)
  rest = smpl(body_pose=np.zeros((1, 69)))
  subtree = {elbow}
  for j, p in enumerate(skeletons.SMPL_PARENTS):
    if p in subtree:
      subtree.add(j)
  moved = np.linalg.norm(out.joints[0, :24] - rest.joints[0, :24], axis=-1) > 1e-6
  assert set(np.flatnonzero(moved)) == subtree - {elbow}
  # The joints below the elbow keep their distance to it (a rigid rotation about it).
  for j in subtree - {elbow}:
    np.testing.assert_allclose(np.linalg.norm(out.joints[0, j] - out.joints[0, elbow]),
                               np.linalg.norm(rest.joints[0, j] - rest.joints[0, elbow]),
                               atol=1e-5)


@pytest.mark.parametrize('batch_shape', [(), (3,), (2, 3)])
def test_any_leading_batch_shape(smpl, batch_shape):
  rng = np.random.default_rng(0)
  pose = rng.normal(size=batch_shape + (69,)) * 0.3
  betas = rng.normal(size=batch_shape + (10,))
  out = smpl(body_pose=pose, betas=betas)
  assert out.vertices.shape == batch_shape + (6890, 3)
  assert out.joints.shape == batch_shape + (45, 3)
  assert out.global_rotations.shape == batch_shape + (24, 3, 3)
  flat = smpl(body_pose=pose.reshape(-1, 69), betas=betas.reshape(-1, 10))
  np.testing.assert_allclose(out.vertices.reshape(-1, 6890, 3), flat.vertices, atol=1e-6)


def test_broadcasting_and_joint_form_of_pose(smpl):
  rng = np.random.default_rng(1)
  pose = rng.normal(size=(4, 69)) * 0.3
  betas = rng.normal(size=(1, 10))
  out = smpl(body_pose=pose.reshape(4, 23, 3), betas=betas)
  ref = smpl(body_pose=pose, betas=np.repeat(betas, 4, 0))
  np.testing.assert_allclose(out.vertices, ref.vertices, atol=1e-6)
  # Fewer betas than the model has are zero padded.
  np.testing.assert_allclose(smpl(betas=betas[:, :3]).vertices,
                             smpl(betas=np.pad(betas[:, :3], [(0, 0), (0, 7)])).vertices)


def test_forward_rotmats_matches_forward(smplx_model):
  rng = np.random.default_rng(2)
  params = dict(body_pose=rng.normal(size=(2, 63)) * 0.3, betas=rng.normal(size=(2, 10)),
                expression=rng.normal(size=(2, 10)), transl=rng.normal(size=(2, 3)))
  out = smplx_model(**params)
  rotmats = body_models.rotations.axis_angle_to_matrix(out.full_pose)
  again = body_models.forward_rotmats(smplx_model, rotmats, params['betas'],
                                      params['expression'], params['transl'])
  np.testing.assert_allclose(again.vertices, out.vertices, atol=1e-5)
  np.testing.assert_allclose(again.joints, out.joints, atol=1e-5)


def test_model_is_a_pytree_through_jit_vmap_grad(smplx_model):
  leaves, treedef = jax.tree_util.tree_flatten(smplx_model)
  assert all(isinstance(x, jax.Array) for x in leaves)
  assert jax.tree_util.tree_unflatten(treedef, leaves).parents == smplx_model.parents

  traces = []

  @jax.jit
  def verts(model, pose):
    traces.append(1)
    return body_models.forward(model, body_pose=pose).vertices

  rng = np.random.default_rng(3)
  pose = jnp.asarray(rng.normal(size=(2, 63)) * 0.3, jnp.float32)
  # The references compiled too: an eager SMPL-X pass costs seconds of op-by-op dispatch.
  reference = jax.jit(body_models.forward)(smplx_model, body_pose=pose)
  np.testing.assert_allclose(verts(smplx_model, pose), reference.vertices, atol=1e-5)
  # A different model of the same family and sizes reuses the compiled function.
  other = jax.tree_util.tree_map(lambda x: x * 1, smplx_model)
  verts(other, pose)
  assert len(traces) == 1

  per_sample = jax.jit(jax.vmap(
      lambda p: body_models.forward(smplx_model, body_pose=p).joints))(pose)
  np.testing.assert_allclose(per_sample, reference.joints, atol=1e-5)

  # vmap over models: two shapes of one model, stacked as a batch of pytrees.
  stacked = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), smplx_model, other)
  out = jax.jit(jax.vmap(lambda m: body_models.forward(m).vertices))(stacked)
  assert out.shape == (2, 10475, 3)
  np.testing.assert_allclose(out[0], jax.jit(lambda m: m().vertices)(smplx_model), atol=1e-6)


def test_gradients_match_finite_differences(model_dir):
  with jax.enable_x64(True):
    model = body_models.load(model_dir, 'smpl', dtype=jnp.float64)
    rng = np.random.default_rng(4)
    target = model(body_pose=rng.normal(size=(1, 69)) * 0.3).joints

    @jax.jit  # check_grads calls it many times: compiled once instead of op by op
    def loss(pose, betas):
      out = model(body_pose=pose, betas=betas)
      return jnp.sum((out.joints - target) ** 2) + 1e-3 * jnp.sum(out.vertices ** 2)

    pose = jnp.asarray(rng.normal(size=(1, 69)) * 0.3)
    betas = jnp.asarray(rng.normal(size=(1, 10)))
    check_grads(loss, (pose, betas), order=1, modes=['rev'], atol=1e-5,
                              rtol=1e-5)
    g = jax.grad(loss)(jnp.zeros((1, 69)), betas)
    assert np.all(np.isfinite(g))


def test_float32_and_float64_agree(model_dir):
  rng = np.random.default_rng(5)
  params = dict(body_pose=rng.normal(size=(2, 63)) * 0.4, betas=rng.normal(size=(2, 10)))
  f32 = body_models.load(model_dir, 'smplx')(**params)
  with jax.enable_x64(True):
    f64 = body_models.load(model_dir, 'smplx', dtype=jnp.float64)(**params)
    np.testing.assert_allclose(f32.vertices, f64.vertices, atol=1e-4)


def test_clear_errors_for_bad_parameters(smpl, model_dir):
  with pytest.raises(TypeError, match='left_hand_pose'):
    smpl(left_hand_pose=np.zeros((1, 45)))
  with pytest.raises(ValueError, match='body_pose'):
    smpl(body_pose=np.zeros((1, 68)))
  with pytest.raises(ValueError, match='betas'):
    smpl(betas=np.zeros((1, 11)))
  with pytest.raises(ValueError, match='shape'):
    body_models.load(model_dir, 'smpl', num_betas=16)
  with pytest.raises(ValueError, match='rotmats'):
    body_models.forward_rotmats(smpl, np.zeros((2, 23, 3, 3)))


def test_joint_names_and_parameter_shapes(smplx_model, model_dir):
  assert smplx_model.joint_names[:3] == ('pelvis', 'left_hip', 'right_hip')
  assert len(smplx_model.joint_names) == smplx_model().joints.shape[-2]
  assert smplx_model.param_shapes()['left_hand_pose'] == (45,)
  pca = body_models.load(model_dir, 'smplx', use_pca=True, num_pca_comps=12)
  assert pca.param_shapes()['left_hand_pose'] == (12,)
  zeros = pca.zero_params((2,))
  assert pca(**zeros).vertices.shape == (2, 10475, 3)
