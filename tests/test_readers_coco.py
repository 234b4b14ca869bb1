"""Readers of COCO person keypoints, COCO-WholeBody and 3DPW JSON files.

Each test writes a small fixture in the dataset's exact layout, reads it back, and checks that
every field round-trips, that the kinds of bad content real datasets have are skipped and
counted, and that structurally broken records raise AnnotationError naming file, record and
field. Where pycocotools is installed, it must open every fixture: the proof that they are
real COCO-style files.
"""

import json
import os

import numpy as np
import pytest

from neuralannot_jax.data import AnnotationError
from neuralannot_jax.data import coco
from neuralannot_jax.data import pw3d


def kpts(count, x0, labelled=None, v=2):
  """COCO keypoints [x, y, v] * count: x = x0 + j, y = 2j + 1 where labelled, else 0, 0, 0."""
  labelled = range(count) if labelled is None else labelled
  flat = []
  for j in range(count):
    flat += [x0 + j + 0.5, 2.0 * j + 1, v] if j in labelled else [0, 0, 0]
  return flat


def xy(flat):
  """(K, 2) and (K,) validity expected from a flat keypoint list."""
  a = np.asarray(flat, np.float32).reshape(-1, 3)
  return a[:, :2], (a[:, 2] > 0).astype(np.float32)


def write(tmp_path, name, data):
  path = tmp_path / name
  path.write_text(json.dumps(data))
  return str(path)


def coco_header():
  return {
      'info': {'description': 'test fixture', 'version': '1.0', 'year': 2017},
      'licenses': [{'id': 1, 'name': 'test', 'url': ''}],
      'categories': [{'id': 1, 'name': 'person', 'supercategory': 'person',
                      'keypoints': ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
                                    'left_shoulder', 'right_shoulder', 'left_elbow',
                                    'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
                                    'right_hip', 'left_knee', 'right_knee', 'left_ankle',
                                    'right_ankle'],
                      'skeleton': [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13]]}],
  }


def image(image_id, name, height, width, **extra):
  return dict(id=image_id, file_name=name, height=height, width=width, license=1,
              coco_url=f'http://images.cocodataset.org/train2017/{name}',
              date_captured='2013-11-14 11:18:45', **extra)


def person(ann_id, image_id, bbox, keypoints, iscrowd=0, **extra):
  x, y, w, h = bbox
  segmentation = ({'counts': [0, 10, 20], 'size': [480, 640]} if iscrowd
                  else [[x, y, x + w, y, x + w, y + h, x, y + h]])
  return dict(id=ann_id, image_id=image_id, category_id=1, iscrowd=iscrowd, bbox=bbox,
              area=float(w * h), segmentation=segmentation, keypoints=keypoints,
              num_keypoints=int(sum(1 for v in keypoints[2::3] if v > 0)), **extra)


# --- COCO person keypoints -------------------------------------------------------------------

def coco_data():
  """3 images, 5 people: 2 good, 1 crowd, 1 with no keypoints, 1 with a zero-width box."""
  alternating = kpts(17, 100)
  alternating[2::6] = [1] * len(alternating[2::6])  # v = 1 (hidden) on every other joint
  return {**coco_header(),
          'images': [image(1, '000000000001.jpg', 480, 640),
                     image(2, '000000000002.jpg', 300, 400),
                     image(3, '000000000003.jpg', 427, 640)],
          'annotations': [
              person(101, 1, [10.5, 20.25, 100.0, 200.0], alternating),
              person(102, 1, [0.0, 0.0, 640.0, 100.0], kpts(17, 0, labelled=()), iscrowd=1),
              person(103, 2, [5.0, 5.0, 30.0, 40.0], kpts(17, 0, labelled=())),
              person(104, 2, [5.0, 5.0, 0.0, 40.0], kpts(17, 50, labelled=(0, 1, 2))),
              person(105, 3, [300.0, 100.0, 50.0, 120.0], kpts(17, 300, labelled=range(5))),
          ]}


def test_coco_fields_round_trip_and_skips_are_counted(tmp_path):
  data = coco_data()
  path = write(tmp_path, 'person_keypoints_train2017.json', data)
  result = coco.read(path, tmp_path / 'train2017')
  assert result.source == path and result.dataset == 'coco'
  assert [s.ann_id for s in result.samples] == [101, 105]
  assert dict(result.skipped) == {'crowd': 1, 'no_keypoints': 1, 'tiny_box': 1}
  anns = {a['id']: a for a in data['annotations']}
  images = {i['id']: i for i in data['images']}
  for s in result.samples:
    ann, img = anns[s.ann_id], images[anns[s.ann_id]['image_id']]
    joints, valid = xy(ann['keypoints'])
    assert s.dataset == 'coco' and s.part == 'body' and s.joint_set == 'COCO_17'
    assert s.joints_2d.shape == (17, 2) and s.joints_2d.dtype == np.float32
    np.testing.assert_array_equal(s.joints_2d, joints)
    np.testing.assert_array_equal(s.joints_2d_valid, valid)
    assert s.bbox.tolist() == ann['bbox']
    assert s.image_path == os.path.join(str(tmp_path / 'train2017'), img['file_name'])
    assert s.image_size == (img['height'], img['width']) and s.image_id == img['id']
    assert s.focal is None and s.princpt is None and s.joints_3d is None
    assert s.parent_id is None and s.hand_side is None and s.gt_params is None
  assert result.samples[0].joints_2d_valid.sum() == 17  # v = 1 and v = 2 both count
  assert result.samples[1].joints_2d_valid.tolist() == [1] * 5 + [0] * 12


def test_coco_options(tmp_path):
  path = write(tmp_path, 'person_keypoints_train2017.json', coco_data())
  strict = coco.read(path, tmp_path, min_keypoints=6)
  assert [s.ann_id for s in strict.samples] == [101]
  # Each record is counted once, under its first reason: keypoints are checked before the box.
  assert dict(strict.skipped) == {'crowd': 1, 'no_keypoints': 3}
  boxes = coco.read(path, tmp_path, min_box_size=60)
  assert [s.ann_id for s in boxes.samples] == [101] and boxes.skipped['tiny_box'] == 2
  # Images are looked at only when asked: here only image 1 exists.
  (tmp_path / '000000000001.jpg').write_bytes(b'')
  assert len(coco.read(path, tmp_path).samples) == 2
  checked = coco.read(path, tmp_path, check_images=True)
  assert [s.ann_id for s in checked.samples] == [101]
  assert checked.skipped['missing_image'] == 1
  with pytest.raises(ValueError, match='hand'):
    coco.read(path, tmp_path, parts=('body', 'hand'))


def test_coco_summary_is_one_line(tmp_path):
  path = write(tmp_path, 'person_keypoints_train2017.json', coco_data())
  line = coco.read(path, tmp_path).summary()
  assert '\n' not in line and '2 samples' in line and '2 body' in line
  assert '1 crowd' in line and '1 no_keypoints' in line and '1 tiny_box' in line


def _del(key, index=0, table='annotations'):
  return lambda d: d[table][index].pop(key)


def _set(key, value, index=0, table='annotations'):
  return lambda d: d[table][index].__setitem__(key, value)


@pytest.mark.parametrize('mutate,record,field', [
    (_del('keypoints'), 'annotation 101', 'keypoints'),
    (_set('keypoints', [1.0] * 50), 'annotation 101', 'keypoints'),
    (_set('keypoints', ['x'] * 51), 'annotation 101', 'keypoints'),
    (_set('bbox', [1.0, 2.0, 3.0]), 'annotation 101', 'bbox'),
    (_del('bbox', index=4), 'annotation 105', 'bbox'),
    (_set('image_id', 99), 'annotation 101', 'image_id'),
    (_del('id', index=2), 'annotation #2', 'id'),
    (_del('file_name', table='images'), 'image 1', 'file_name'),
    (_set('height', 'tall', table='images'), 'image 1', 'height'),
    (lambda d: d.pop('images'), 'file', 'images'),
    (lambda d: d.__setitem__('annotations', {}), 'file', 'annotations'),
    (lambda d: d['annotations'].__setitem__(1, [1, 2]), 'annotation #1', 'id'),
])
def test_coco_malformed_records_name_file_record_and_field(tmp_path, mutate, record, field):
  data = coco_data()
  mutate(data)
  path = write(tmp_path, 'person_keypoints_train2017.json', data)
  with pytest.raises(AnnotationError) as e:
    coco.read(path, tmp_path)
  message = str(e.value)
  assert path in message and record in message and field in message, message


def test_not_json_is_an_annotation_error(tmp_path):
  path = tmp_path / 'broken.json'
  path.write_text('{"images": [')
  with pytest.raises(AnnotationError, match='broken.json'):
    coco.read(path, tmp_path)


# --- COCO-WholeBody --------------------------------------------------------------------------

def wholebody(ann_id, image_id, bbox, body, parts, iscrowd=0):
  """A whole-body person; parts maps 'foot'/'face'/'lefthand'/'righthand' to
  (valid, keypoints, box) and leaves out parts that are unlabelled (all zero, flag false)."""
  counts = {'foot': 6, 'face': 68, 'lefthand': 21, 'righthand': 21}
  extra = {}
  for name, count in counts.items():
    valid, flat, box = parts.get(name, (False, kpts(count, 0, labelled=()), [0.0] * 4))
    extra[f'{name}_kpts'] = flat
    extra[f'{name}_valid'] = valid
    if name != 'foot':
      extra[f'{name}_box'] = box
  return person(ann_id, image_id, bbox, body, iscrowd=iscrowd, **extra)


def wholebody_data():
  """2 images, 5 people covering every keep / skip path of body, hands and face."""
  full = dict(foot=(True, kpts(6, 200), [0.0] * 4),
              face=(True, kpts(68, 300), [300.0, 0.0, 40.0, 42.0]),
              lefthand=(True, kpts(21, 400), [400.0, 0.0, 25.0, 45.0]),
              righthand=(True, kpts(21, 500, v=1), [500.0, 0.0, 26.0, 46.0]))
  return {**coco_header(),
          'images': [image(1, '000000000010.jpg', 480, 640),
                     image(2, '000000000020.jpg', 360, 640)],
          'annotations': [
              wholebody(201, 1, [10.0, 20.0, 300.0, 400.0], kpts(17, 100), full),
              wholebody(202, 1, [50.0, 60.0, 80.0, 90.0], kpts(17, 100, labelled=range(8)),
                        dict(righthand=(True, kpts(21, 600, labelled=range(10)),
                                        [600.0, 10.0, 20.0, 30.0]),
                             face=(True, kpts(68, 300), [50.0, 60.0, 0.0, 12.0]))),
              wholebody(203, 1, [0.0, 0.0, 640.0, 200.0], kpts(17, 0, labelled=()), {},
                        iscrowd=1),
              wholebody(204, 2, [100.0, 100.0, 60.0, 60.0], kpts(17, 0, labelled=()),
                        dict(righthand=(True, kpts(21, 700), [700.0, 5.0, 30.0, 30.0]),
                             lefthand=(True, kpts(21, 0, labelled=()),
                                       [90.0, 90.0, 20.0, 20.0]))),
              wholebody(205, 2, [200.0, 100.0, 60.0, 60.0], kpts(17, 0, labelled=()), {}),
          ]}


def test_wholebody_fields_round_trip_and_skips_are_counted(tmp_path):
  data = wholebody_data()
  path = write(tmp_path, 'coco_wholebody_train_v1.0.json', data)
  result = coco.read(path, tmp_path)
  by_id = {s.ann_id: s for s in result.samples}
  assert [s.ann_id for s in result.samples] == [
      201, '201_left', '201_right', '201_face', 202, '202_right', 204, '204_right']
  assert dict(result.skipped) == {'crowd': 1, 'no_keypoints': 1, 'hand_invalid': 3,
                                  'hand_no_keypoints': 1, 'face_invalid': 2,
                                  'face_tiny_box': 1}
  anns = {a['id']: a for a in data['annotations']}

  # The body: 17 body + 6 foot + 68 face + 21 left hand + 21 right hand, in that order.
  body, ann = by_id[201], anns[201]
  joints, valid = xy(ann['keypoints'] + ann['foot_kpts'] + ann['face_kpts']
                     + ann['lefthand_kpts'] + ann['righthand_kpts'])
  assert body.joint_set == 'COCO_WHOLEBODY_133' and body.part == 'body'
  assert body.joints_2d.shape == (133, 2)
  np.testing.assert_array_equal(body.joints_2d, joints)
  np.testing.assert_array_equal(body.joints_2d_valid, valid)
  assert body.joints_2d[17, 0] == 200.5 and body.joints_2d[23, 0] == 300.5
  assert body.joints_2d[91, 0] == 400.5 and body.joints_2d[112, 0] == 500.5
  assert body.bbox.tolist() == ann['bbox'] and body.parent_id is None

  for side in ('left', 'right'):
    hand = by_id[f'201_{side}']
    joints, valid = xy(ann[f'{side}hand_kpts'])
    assert hand.part == 'hand' and hand.hand_side == side and hand.joint_set == 'HAND_21'
    assert hand.parent_id == 201 and hand.image_id == 1 and hand.image_size == (480, 640)
    assert hand.bbox.tolist() == ann[f'{side}hand_box']
    np.testing.assert_array_equal(hand.joints_2d, joints)
    np.testing.assert_array_equal(hand.joints_2d_valid, valid)
    assert hand.image_path == body.image_path == str(tmp_path / '000000000010.jpg')
  face = by_id['201_face']
  assert face.part == 'face' and face.joint_set == 'FACE_68' and face.hand_side is None
  assert face.parent_id == 201 and face.bbox.tolist() == ann['face_box']
  np.testing.assert_array_equal(face.joints_2d, xy(ann['face_kpts'])[0])

  # A person with no body joints but a labelled hand still gives a body sample; its valid
  # joints are exactly the right hand's.
  assert np.flatnonzero(by_id[204].joints_2d_valid).tolist() == list(range(112, 133))
  assert by_id['202_right'].joints_2d_valid.tolist() == [1] * 10 + [0] * 11
  assert by_id['204_right'].parent_id == 204 and by_id['204_right'].image_id == 2


def test_wholebody_parts_and_layout(tmp_path):
  path = write(tmp_path, 'coco_wholebody_train_v1.0.json', wholebody_data())
  hands = coco.read(path, tmp_path, parts=('hand',))
  assert [s.ann_id for s in hands.samples] == ['201_left', '201_right', '202_right',
                                               '204_right']
  assert dict(hands.skipped) == {'crowd': 1, 'hand_invalid': 3, 'hand_no_keypoints': 1}
  faces = coco.read(path, tmp_path, parts=['face'])
  assert [s.ann_id for s in faces.samples] == ['201_face']
  # Forced to the plain layout, the same file gives 17-joint bodies only.
  plain = coco.read(path, tmp_path, layout='person_keypoints')
  assert {s.joint_set for s in plain.samples} == {'COCO_17'}
  assert [s.ann_id for s in plain.samples] == [201, 202]
  assert plain.skipped['no_keypoints'] == 2
  assert '8 samples (3 body, 1 face, 4 hand)' in coco.read(path, tmp_path).summary()


@pytest.mark.parametrize('mutate,field', [
    (_del('lefthand_kpts'), 'lefthand_kpts'),
    (_del('righthand_valid'), 'righthand_valid'),
    (_set('face_kpts', [1.0] * 67 * 3), 'face_kpts'),
    (_set('lefthand_valid', 'yes'), 'lefthand_valid'),
    (_set('face_box', [1.0, 2.0]), 'face_box'),
    (_del('foot_kpts'), 'foot_kpts'),
])
def test_wholebody_malformed_records_name_file_record_and_field(tmp_path, mutate, field):
  data = wholebody_data()
  mutate(data)
  path = write(tmp_path, 'coco_wholebody_train_v1.0.json', data)
  with pytest.raises(AnnotationError) as e:
    coco.read(path, tmp_path)
  message = str(e.value)
  assert path in message and 'annotation 201' in message and field in message, message


# --- 3DPW ------------------------------------------------------------------------------------

def pw3d_image(image_id, sequence, name, focal, princpt):
  return dict(id=image_id, file_name=name, sequence=sequence, width=1080, height=1920,
              cam_param={'focal': focal, 'princpt': princpt})


def pw3d_ann(ann_id, image_id, bbox, seed, gender, nested_trans=False, **extra):
  rng = np.random.default_rng(seed)
  trans = [0.1 * seed, -0.2, 4.0 + seed]
  return dict(id=ann_id, image_id=image_id, bbox=bbox,
              smpl_param={'pose': rng.normal(0, 0.3, 72).tolist(),
                          'shape': rng.normal(0, 1, 10).tolist(),
                          'trans': [trans] if nested_trans else trans, 'gender': gender},
              **extra)


def pw3d_data():
  """3 frames of 2 sequences, 4 people: one with an OpenPose result, one with a zero box."""
  openpose = []
  for j in range(18):
    openpose += [600.0 + j, 900.0 + 3 * j, 0.9 if j % 4 else 0.01]
  return {'images': [pw3d_image(1, 'downtown_walking_00', 'image_00000.jpg',
                                [1961.9, 1969.2], [540.0, 960.0]),
                     pw3d_image(2, 'downtown_walking_00', 'image_00001.jpg',
                                [1961.9, 1969.2], [540.0, 960.0]),
                     pw3d_image(3, 'courtyard_hug_00', 'image_00042.jpg',
                                [1970.5, 1965.0], [539.0, 959.5])],
          'annotations': [
              pw3d_ann(301, 1, [500.0, 700.0, 300.0, 900.0], 1, 'male', person_id=0,
                       openpose_result=openpose),
              pw3d_ann(302, 1, [100.0, 650.0, 280.0, 950.0], 2, 'female', nested_trans=True,
                       person_id=1),
              pw3d_ann(303, 2, [500.0, 700.0, 0.0, 900.0], 3, 'male', person_id=0),
              pw3d_ann(304, 3, [400.0, 600.0, 310.0, 920.0], 4, 'f', person_id=0),
          ]}


def test_pw3d_fields_round_trip(tmp_path):
  data = pw3d_data()
  path = write(tmp_path, '3DPW_train.json', data)
  root = tmp_path / 'imageFiles'
  result = pw3d.read(path, root)
  assert [s.ann_id for s in result.samples] == [301, 302, 304]
  assert dict(result.skipped) == {'tiny_box': 1}
  anns = {a['id']: a for a in data['annotations']}
  images = {i['id']: i for i in data['images']}
  for s in result.samples:
    ann = anns[s.ann_id]
    img = images[ann['image_id']]
    smpl = ann['smpl_param']
    pose = np.asarray(smpl['pose'], np.float32)
    assert s.dataset == '3dpw' and s.part == 'body' and s.gt_family == 'smpl'
    assert s.image_path == os.path.join(str(root), img['sequence'], img['file_name'])
    assert s.image_size == (1920, 1080) and s.image_id == img['id']
    assert s.bbox.tolist() == ann['bbox']
    np.testing.assert_allclose(s.focal, img['cam_param']['focal'], rtol=1e-6)
    np.testing.assert_allclose(s.princpt, img['cam_param']['princpt'], rtol=1e-6)
    assert sorted(s.gt_params) == ['betas', 'body_pose', 'global_orient', 'transl']
    np.testing.assert_array_equal(s.gt_params['global_orient'], pose[:3])
    np.testing.assert_array_equal(s.gt_params['body_pose'], pose[3:])
    assert s.gt_params['body_pose'].shape == (69,)
    np.testing.assert_array_equal(s.gt_params['betas'], np.float32(smpl['shape']))
    np.testing.assert_array_equal(s.gt_params['transl'],
                                  np.float32(smpl['trans']).reshape(3))
    assert s.joints_2d is None and s.joints_3d is None and s.joint_set == ''
  assert result.extras == {
      301: {'sequence': 'downtown_walking_00', 'person_id': 0},
      302: {'sequence': 'downtown_walking_00', 'person_id': 1},
      304: {'sequence': 'courtyard_hug_00', 'person_id': 0}}
  assert [s.gt_gender for s in result.samples] == ['male', 'female', 'female']
  assert '3 samples' in result.summary() and '1 tiny_box' in result.summary()


def test_pw3d_openpose_and_missing_images(tmp_path):
  data = pw3d_data()
  path = write(tmp_path, '3DPW_latest_train.json', data)
  result = pw3d.read(path, tmp_path, openpose=True)
  first = result.samples[0]
  flat = np.asarray(data['annotations'][0]['openpose_result'], np.float32).reshape(18, 3)
  assert first.joint_set == 'OPENPOSE_18' and first.joints_2d.shape == (18, 2)
  np.testing.assert_array_equal(first.joints_2d, flat[:, :2])
  assert first.joints_2d_valid.tolist() == [0.0 if j % 4 == 0 else 1.0 for j in range(18)]
  assert result.samples[1].joints_2d is None  # no detection in that record
  sequence = tmp_path / 'downtown_walking_00'
  sequence.mkdir()
  (sequence / 'image_00000.jpg').write_bytes(b'')
  checked = pw3d.read(path, tmp_path, check_images=True)
  assert [s.ann_id for s in checked.samples] == [301, 302]
  assert dict(checked.skipped) == {'tiny_box': 1, 'missing_image': 1}
  assert sorted(checked.extras) == [301, 302]


def _smpl(key, value):
  return lambda d: d['annotations'][0]['smpl_param'].__setitem__(key, value)


@pytest.mark.parametrize('mutate,record,field,options', [
    (_smpl('pose', [0.0] * 69), 'annotation 301', 'smpl_param.pose', {}),
    (_smpl('shape', None), 'annotation 301', 'smpl_param.shape', {}),
    (lambda d: d['annotations'][0]['smpl_param'].pop('trans'), 'annotation 301',
     'smpl_param.trans', {}),
    (_smpl('gender', 'x'), 'annotation 301', 'smpl_param.gender', {}),
    (_del('smpl_param'), 'annotation 301', 'smpl_param', {}),
    (_del('bbox', index=1), 'annotation 302', 'bbox', {}),
    (lambda d: d['images'][0]['cam_param'].pop('focal'), 'image 1', 'cam_param.focal', {}),
    (lambda d: d['images'][2]['cam_param'].__setitem__('princpt', [1.0]), 'image 3',
     'cam_param.princpt', {}),
    (_del('sequence', table='images'), 'image 1', 'sequence', {}),
    (_set('openpose_result', [1.0] * 53), 'annotation 301', 'openpose_result',
     {'openpose': True}),
])
def test_pw3d_malformed_records_name_file_record_and_field(tmp_path, mutate, record, field,
                                                           options):
  data = pw3d_data()
  mutate(data)
  path = write(tmp_path, '3DPW_train.json', data)
  with pytest.raises(AnnotationError) as e:
    pw3d.read(path, tmp_path, **options)
  message = str(e.value)
  assert path in message and record in message and field in message, message


# --- the fixtures are real COCO-style files --------------------------------------------------

@pytest.mark.parametrize('make', [coco_data, wholebody_data, pw3d_data])
def test_pycocotools_opens_the_fixtures(tmp_path, make):
  coco_api = pytest.importorskip('pycocotools.coco')
  data = make()
  path = write(tmp_path, 'fixture.json', data)
  db = coco_api.COCO(path)
  assert sorted(db.anns) == sorted(a['id'] for a in data['annotations'])
  assert sorted(db.imgs) == sorted(i['id'] for i in data['images'])
  for ann in data['annotations']:
    assert db.loadAnns(ann['id'])[0] == ann
    assert db.loadImgs(ann['image_id'])[0]['file_name']
  if 'categories' in data:
    person_ids = db.getAnnIds(catIds=[1], iscrowd=False)
    assert sorted(person_ids) == sorted(a['id'] for a in data['annotations']
                                        if not a['iscrowd'])
