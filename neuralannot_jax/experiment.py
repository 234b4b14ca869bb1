"""One experiment, stage by stage: data -> train -> annotate -> evaluate.

`main.py` is the command line; this module holds the config schema (`default_config`,
which every `configs/*.py` starts from) and the stages, each a function of the config
that reads and writes the work directory, so a stage can be skipped or re-run alone:

  data      the samples: the dataset's files read once into a tfds array_record build
            (`data.builders`), or for `dataset.format = 'synthetic'` a synthetic set
            rendered first (known GT, official layouts) into <workdir>/data.
  train     `train.train`: resumes from <workdir>/train/checkpoints.
  annotate  the trained network over the same samples -> <workdir>/<annotate.output>.json
            (released NeuralAnnot layout) and .npz; skipped when its record says it was
            made from the latest checkpoint (or `annotate.step`'s).
  evaluate  where GT exists (`dataset.gt_file`, or GT parameters the reader attached):
            MPJPE / PA-MPJPE on the dataset's joints (as the paper scores), MPVPE /
            PA-MPVPE on the mesh -> <workdir>/evaluation.json (another annotate.output X:
            evaluation_X.json).
  report    <workdir>/report/index.html: overlays of the worst and best samples, the
            training loss curve, the scores (`report.write_report`).
"""

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time

from absl import logging
import jax
import ml_collections

import numpy as np

from body_models.synthetic import h36m_regressor
from neuralannot_jax import annotate as annotate_lib
from neuralannot_jax import checkpoints
from neuralannot_jax import export
from neuralannot_jax import shards
from neuralannot_jax import train as train_lib
from neuralannot_jax import two_stage
from neuralannot_jax import two_stage_plan
from neuralannot_jax import world_frame
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import views
from neuralannot_jax.fitting import annotator as fitting_annotator
from neuralannot_jax.method import decode
from neuralannot_jax.runtime import distributed

STAGES = ('train', 'annotate', 'evaluate', 'report')
# Formats whose releases hold world-frame parameters per frame (`world_frame.write_mocap`).
MOCAP_RELEASES = ('h36m', 'mpi_inf_3dhp')


def default_config():
  """The schema and defaults every experiment config starts from (the paper's settings).

  Paths may use ~; relative paths are relative to the current directory.
  """
  c = ml_collections.ConfigDict()
  c.workdir = 'work_dir/experiment'
  c.seed = 0
  # Comma-separated subset of STAGES, run in that order.
  c.stages = 'train,annotate,evaluate,report'
  c.progress = True

  # Body model: a file or a folder in the smplx library's layout (models/smpl/SMPL_NEUTRAL.pkl,
  # ...). Empty: on the synthetic sets, the procedural stand-ins are generated into
  # <workdir>/body_models; on a real dataset that is an error unless `stand_in` is set.
  c.body_model = ml_collections.ConfigDict()
  c.body_model.family = 'smpl'
  c.body_model.path = ''
  # Real datasets only: annotate with the stand-in although it is no real body model (to try
  # the pipeline on one's files; the pseudo-GTs are then of no use to anyone).
  c.body_model.stand_in = False
  c.body_model.gender = 'neutral'
  c.body_model.num_betas = 10

  c.dataset = ml_collections.ConfigDict()
  # A `data.builders.FORMATS` name ('coco', 'coco_wholebody', 'pw3d', 'h36m', 'mpi_inf_3dhp',
  # 'freihand', 'interhand') or 'synthetic'.
  c.dataset.format = 'coco'
  # The dataset's own files (tfds manual_dir; see builders.LAYOUTS for what goes where).
  c.dataset.root = ''
  # Reader options (json data), e.g. {'parts': ['body'], 'min_keypoints': 6}.
  c.dataset.options = {}
  # Where the tfds build is cached; empty: <workdir>/tfds.
  c.dataset.data_dir = ''
  # Use only the first N samples (0: all), e.g. for a quick trial run.
  c.dataset.max_samples = 0
  # GT in the released pseudo-GT layout, for the evaluate stage; empty: the GT parameters the
  # reader attached to the samples (3DPW, FreiHAND, fits shipped with Human3.6M), if any.
  c.dataset.gt_file = ''
  # The dataset's joints are the body model's own (a set rendered from it, as the synthetic
  # whole-body set's parts are): matched by name, no `model.regressor` needed. Not true of
  # real captures (Human3.6M, MPI-INF-3DHP, COCO): on those the run warns.
  c.dataset.model_joints = False
  # Defects added to the GT joints the annotators see, seeded (`data.views.NoisyJoints`):
  # Gaussian noise (std per coordinate: 2D in pixels, 3D in mm), the probability of a
  # left/right swap in a sample's 2D joints, and of each labelled joint going missing.
  # Real annotations' defects simulated on a synthetic set, for comparing annotators
  # (tools/compare_annotators.py). The evaluation GT stays clean.
  c.dataset.joint_noise = ml_collections.ConfigDict(
      {'px': 0.0, 'mm': 0.0, 'swap': 0.0, 'drop': 0.0})
  # format = 'synthetic': what to render (`data.synthetic.writers.make_dataset`).
  c.dataset.synthetic = ml_collections.ConfigDict()
  c.dataset.synthetic.kind = 'h36m'
  c.dataset.synthetic.num_images = 1000
  c.dataset.synthetic.size = 128

  c.model = ml_collections.ConfigDict()
  # 'mocap' (GT 3D joints: 6D rotations, 3D joint input) or 'wild' (GT 2D only: VPoser latent).
  c.model.mode = 'wild'
  c.model.depth = 50
  c.model.crop_size = 256
  # Converted torchvision ImageNet weights (tools/convert_torchvision_resnet.py); empty:
  # the backbone starts from scratch.
  c.model.backbone_weights = ''
  # VPoser v2 weights (tools/convert_vposer.py) for 'wild' SMPL / SMPL-X; empty: a prior
  # trained on the synthetic pose sampler, cached as <workdir>/pose_prior.npz.
  c.model.vposer_path = ''
  # That prior's training (`pose_prior.load_or_train`): ~1 minute on a 2-core CPU.
  c.model.pose_prior = ml_collections.ConfigDict()
  c.model.pose_prior.num_poses = 20000
  c.model.pose_prior.num_steps = 2000
  c.model.pose_prior.hidden = 512
  # Vertex regressor .npy for the dataset's joints: (T, V), or (2, V) for the COCO hips.
  # Required on Human3.6M, MPI-INF-3DHP and COCO bodies, whose joints are not the model's
  # (the run stops naming the file: J_regressor_h36m_correct.npy, ...; see docs/your_data.md).
  c.model.regressor = ''
  c.model.compute_dtype = 'float32'

  c.train = ml_collections.ConfigDict()
  # Global batch (all devices, all processes): the paper's 192.
  c.train.batch_size = 192
  c.train.lr = 1e-4
  # Steps at which the learning rate drops x10 (the paper drops it once, on convergence).
  c.train.lr_boundaries = (8000,)
  c.train.num_steps = 10000
  c.train.adam_eps = 1e-8
  # MoCap mode: before the first step, train the joint encoder and head on the GT 3D joints
  # alone, the image feature held at zero (`train.warm_start_joints`): seconds on a GPU,
  # and on a CPU budget most of what the network learns. 0 steps: off.
  c.train.warm_start = ml_collections.ConfigDict()
  c.train.warm_start.steps = 4000
  c.train.warm_start.batch_size = 128
  c.train.warm_start.lr = 1e-3
  c.train.augment = True
  # In-the-wild bodies: the 2D term scores the nearer of each body and its facing twin
  # (front and back seen with left and right swapped), so the network need not tell from
  # the image which way a person faces; annotation's facing check (annotate.check_facing)
  # then turns each body by the 2D joints' left/right labels. False: the plain 2D term.
  c.train.either_facing = True
  c.train.checkpoint_every = 1000
  c.train.max_to_keep = 2
  c.train.log_every = 20
  c.train.num_workers = 4
  # Two-stage training (the paper's Table 7): a released-layout pseudo-GT file of this
  # dataset (stage one: ours or --config.annotator=smplify) whose parameters supervise the
  # network with an L1 on rotations and shape, beside the joint terms. Empty: off.
  c.train.two_stage = ml_collections.ConfigDict()
  c.train.two_stage.init = ''
  # Its weights (the comparison's; `two_stage.DEFAULT_WEIGHTS` says why).
  c.train.two_stage.rot_weight = two_stage.DEFAULT_WEIGHTS['param_rot']
  c.train.two_stage.betas_weight = two_stage.DEFAULT_WEIGHTS['param_betas']
  # Stage two's starting network: a finished run's work directory (stage one's, or its
  # train/ folder); its latest network starts this run, with a fresh optimizer and no warm
  # start. Empty: from scratch (or model.backbone_weights), as the paper trains stage two.
  c.train.two_stage.init_weights = ''
  # One command, both stages (`two_stage_plan`): > 0 trains stage one (train.num_steps) in
  # <workdir>/stage_one, refines its annotation per sample, then trains this many more steps
  # in <workdir> on it (init / init_weights set to stage one's) and annotates. 0: one stage.
  c.train.two_stage.steps = 0

  c.annotate = ml_collections.ConfigDict()
  c.annotate.batch_size = 64
  # Output name in the work directory: <output>.json and <output>.npz.
  c.annotate.output = 'pseudo_gt'
  # The checkpoint to annotate with (its step); 0: the latest. Earlier ones are kept by
  # train.checkpoint_every / train.max_to_keep (e.g. for a learning curve).
  c.annotate.step = 0
  # BatchNorm statistics recomputed under the annotating weights on this many batches of
  # the set, cropped as annotation crops them (`annotate.recalibrate_batch_norm`); 0 keeps
  # the running averages of training, which trail the weights.
  c.annotate.batch_norm_batches = 16
  # In-the-wild bodies: turn a body that faces the wrong way by the GT 2D joints' left/right
  # labels (its facing twin fits them better; `facing.choose`). False: the network's facing.
  c.annotate.check_facing = True
  # Hands from 2D joints: mirror a hand's tilt in depth where the mirrored hand's fingers
  # bend less far backwards (2D joints cannot tell the two apart;
  # `finger_prior.choose_palm`). The fitter's 'fitting.check_palm' does the same to its fits
  # and the hand refinement's twin start. False: as predicted.
  c.annotate.check_palm = True

  # 'neuralannot' (train the network, annotate with it), 'smplify': the per-sample
  # SMPLify-X style baseline (`fitting`), fitted to the same samples, written alike; it has
  # no train stage. Same mode switch: 'mocap' fits GT 3D joints, 'wild' GT 2D joints.
  # 'neuralannot_refine': the network's prediction, then a short per-sample fit started
  # from it, to the GT 3D joints where a sample has them (kept near the prediction:
  # fitting.refine_steps / refine_lr), else to its 2D joints, trying it turned around too
  # (`fitting.annotator.refine_batch`): bodies with the fitter's own stages and VPoser
  # prior (steps_per_stage, lr_2d), hands kept near the prediction (refine_steps /
  # refine_lr); and the 2D fit's sigma_px, reference_crop, try_flip.
  c.annotator = 'neuralannot'
  c.fitting = ml_collections.ConfigDict()
  c.fitting.batch_size = 32
  c.fitting.steps_3d = 800
  c.fitting.lr_3d = 0.1
  c.fitting.steps_per_stage = 100
  c.fitting.lr_2d = 0.02
  # The 2D fit measures residuals in pixels of a crop of this side, whatever the network's
  # crop: SMPLify-X's weights were set for people several hundred pixels tall. 0: per
  # family (`fitting.annotator.REFERENCE_CROP`: 1024 for bodies, 256 for hands).
  c.fitting.reference_crop = 0
  # Geman-McClure scale in those pixels (SMPLify-X's 100).
  c.fitting.sigma_px = 100.0
  c.fitting.try_flip = True
  c.fitting.refine_steps = 200
  c.fitting.refine_lr = 0.01
  # Hands from 2D joints: the palm check on each fit (as `annotate.check_palm`).
  c.fitting.check_palm = True
  return c


def load_config(path, overrides=None):
  """`get_config()` of a config file (configs/*.py) with `overrides` applied.

  Args:
    path: the config file.
    overrides: {'dotted.field': value}, like --config.dotted.field=value on the command line.
  """
  import importlib.util  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {path}: no such file')
  spec = importlib.util.spec_from_file_location(
      '_config_' + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ValueError(f'config file {path}: defines no get_config()')
  config = module.get_config()
  for key, value in (overrides or {}).items():
    *parents, name = key.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    if name not in node:
      raise KeyError(f'config file {path}: no field {key!r} to override')
    node[name] = value
  return config


# ----------------------------------------------------------------------------- helpers


def stages(config):
  """The configured stages, checked, in STAGES order."""
  names = [s.strip() for s in str(config.stages).split(',') if s.strip()]
  unknown = sorted(set(names) - set(STAGES))
  if unknown:
    raise ValueError(f'config.stages: unknown stages {unknown}; choose from {STAGES}')
  return [s for s in STAGES if s in names]


def _path(value):
  return os.path.abspath(os.path.expanduser(value)) if value else ''


def _per_process(batch_size, what):
  n = jax.process_count()
  if batch_size % n:
    raise ValueError(f'{what} {batch_size} is not divisible by the {n} processes')
  per_process = batch_size // n
  if per_process % jax.local_device_count():
    raise ValueError(f'{what} {batch_size}: {per_process} per process is not a multiple of '
                     f'the {jax.local_device_count()} local devices')
  return per_process


# Written last into a stand-in model folder: without it the folder is incomplete (a run
# stopped while writing it) and is written again.
STAND_IN_COMPLETE = '.complete'
STAND_IN_FILES = {
    'smpl': 'smpl/SMPL_NEUTRAL.pkl (or SMPL_MALE.pkl / SMPL_FEMALE.pkl)',
    'smplx': 'smplx/SMPLX_NEUTRAL.npz (or .pkl)',
    'mano': 'mano/MANO_RIGHT.pkl and mano/MANO_LEFT.pkl',
    'flame': 'flame/FLAME_NEUTRAL.pkl (or generic_model.pkl) and flame/flame_static_embedding.pkl',
}


def prepare_body_model(config):
  """Path of the body model: the configured one, or stand-ins generated into the workdir.

  Raises:
    ValueError: no `body_model.path` on a real dataset (unless `body_model.stand_in`): the
      stand-in is no real body model, and files written for it would be of no use.
  """
  if config.body_model.path:
    return _path(config.body_model.path)
  family = config.body_model.family
  if config.dataset.format != 'synthetic':
    if not config.body_model.stand_in:
      raise ValueError(
          f'body_model.path is empty: give the folder of the official {family} files '
          f'(--config.body_model.path=~/models holding {STAND_IN_FILES[family]}). The '
          'procedural stand-in is no real body model; to try the pipeline with it anyway, '
          'set --config.body_model.stand_in=True.')
  out = os.path.join(_path(config.workdir), 'body_models')
  if not os.path.exists(os.path.join(out, family, STAND_IN_COMPLETE)):
    logging.info('no body model given: writing the procedural stand-in to %s', out)
    write_stand_in(family, out, seed=config.seed)
  return out


def stand_in_warnings(config, tconfig):
  """Loud warnings for a real dataset annotated without a licensed file the method expects:
  the stand-in body model (`body_model.stand_in`), the pose prior a stand-in (the VPoser
  latent of the in-the-wild body head) or the backbone from scratch. [] on the synthetic sets, where both are the intended setting."""
  if config.dataset.format == 'synthetic':
    return []
  out = []
  if not config.body_model.path:
    out.append(f'body_model.stand_in: the {config.body_model.family} model is the procedural '
               'stand-in, NOT a real body model: these pseudo-GTs are of no use beyond '
               'trying the pipeline')
  if tconfig.vposer_path and not config.model.vposer_path:
    out.append('model.vposer_path is empty: the body pose prior is a stand-in trained on '
               'the synthetic pose sampler, not VPoser (tools/convert_vposer.py converts '
               'the official weights); the in-the-wild poses follow that sampler\'s limits')
  if not config.model.backbone_weights and annotator_name(config) != 'smplify':
    out.append('model.backbone_weights is empty: the ResNet starts from scratch, not from '
               'ImageNet (tools/convert_torchvision_resnet.py converts torchvision\'s '
               'weights); expect much worse pseudo-GTs')
  return out


def write_stand_in(family, out, seed):
  """Write the stand-in `family` into <out>/<family> all at once: generated into a temporary
  folder beside it and moved into place, so an interrupted run leaves no half folder."""
  from body_models import synthetic  # pylint: disable=import-outside-toplevel
  os.makedirs(out, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix=f'.{family}-', dir=out)
  try:
    synthetic.write_model(family, scratch, seed=seed)
    with open(os.path.join(scratch, family, STAND_IN_COMPLETE), 'w', encoding='utf-8') as f:
      f.write('stand-in body model files, written completely\n')
    target = os.path.join(out, family)
    if os.path.exists(target):          # incomplete: from a run stopped while writing it
      shutil.rmtree(target)
    os.replace(os.path.join(scratch, family), target)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


# The Human3.6M regressor given to the annotator on the synthetic Human3.6M-style set (the
# counterpart of J_regressor_h36m_correct.npy, built from the body model's own geometry).
SYNTHETIC_H36M_REGRESSOR = 'J_regressor_h36m_synthetic.npy'


def synthetic_regressor(config, body_model):
  """On the synthetic Human3.6M-style set without `model.regressor`: the path of a Human3.6M
  regressor for `body_model`, written into <workdir>/body_models once, else ''.

  Without one the mapping would pair SMPL's pelvis, hips and neck with Human3.6M's joints
  of the same names and leave the head top unsupervised.
  """
  if (config.dataset.format != 'synthetic' or config.dataset.synthetic.kind != 'h36m'
      or config.model.regressor):
    return ''
  path = os.path.join(_path(config.workdir), 'body_models', SYNTHETIC_H36M_REGRESSOR)
  if not os.path.exists(path):
    from neuralannot_jax.data.synthetic import common  # pylint: disable=import-outside-toplevel
    common.write_npy(path, h36m_regressor.for_model(body_model))
    logging.info('synthetic h36m: Human3.6M joints from the regressor %s', path)
  return path


def check_joints(config, joint_set):
  """On a real dataset, stop unless `model.regressor` gives the joints that are not the
  model's (`joint_sets.check_regressor`); warn where `dataset.model_joints` waives that."""
  family = config.body_model.family
  if config.dataset.format == 'synthetic':
    return
  if not config.dataset.model_joints:
    joint_sets.check_regressor(family, joint_set, _path(config.model.regressor) or None)
  elif joint_sets.required_regressor_joints(family, joint_set) and not config.model.regressor:
    logging.warning('dataset.model_joints: %s joints matched to the %s model\'s by name; right '
                    'only for a set made from the model, not for real captures', joint_set,
                    family)


def load_body_model(config, path=None):
  """The configured body model. In-the-wild hands are MANO PCA coefficients, so SMPL-X and
  MANO are then loaded with the head's number of PCA components. SMPL-X and FLAME come
  with their face contour, so that a jaw line in the joint set is supervised."""
  from neuralannot_jax import evaluate  # pylint: disable=import-outside-toplevel
  path = prepare_body_model(config) if path is None else path
  family = config.body_model.family
  pca = {}
  if config.model.mode == 'wild' and family in ('smplx', 'mano'):
    pca = {'use_pca': True,
           'num_pca_comps': decode.HeadSpec(family, 'wild').num_hand_comps}
  return evaluate.load_with_face_contour(path, family, gender=config.body_model.gender,
                                         num_betas=config.body_model.num_betas, **pca)


# ----------------------------------------------------------------------------- data


def _synthetic_subjects(h36m_root):
  folder = os.path.join(h36m_root, 'annotations')
  return sorted(int(m.group(1)) for m in
                (re.match(r'Human36M_subject(\d+)_data\.json$', n) for n in os.listdir(folder))
                if m)


# Synthetic kinds: (reader format, family rendered, reader options, GT for the evaluate stage).
# GT: 'gt_smpl.json' (released layout), 'samples' (the reader attaches it), or
# 'gt_flame.json' (smplx names, keyed by the face's person id).
SYNTHETIC_KINDS = {
    'coco': ('coco', 'smpl', {'annotation_file': 'annotations/person_keypoints_train.json',
                              'image_dir': 'images/train'}, 'gt_smpl.json'),
    'h36m': ('h36m', 'smpl', None, 'gt_smpl.json'),
    'freihand': ('freihand', 'mano', {}, 'samples'),
    'face': ('coco_wholebody', 'flame',
             {'annotation_file': 'annotations/coco_wholebody_train.json',
              'image_dir': 'images/train', 'parts': ['face']},
             'gt_flame.json'),
}


def prepare_synthetic(config, body_model_path):
  """Render the synthetic set into <workdir>/data unless it is there.

  Returns:
    (reader format, manual_dir, reader options, GT) of the kind rendered; GT is a
    released-layout file, a {ann_id: params} dict, or '' (the samples carry it).
  """
  from neuralannot_jax.data.synthetic import writers  # pylint: disable=import-outside-toplevel
  syn = config.dataset.synthetic
  if syn.kind not in SYNTHETIC_KINDS:
    raise ValueError(f'dataset.synthetic.kind {syn.kind!r}: choose one of '
                     f'{sorted(SYNTHETIC_KINDS)}')
  fmt, family, options, gt = SYNTHETIC_KINDS[syn.kind]
  if config.body_model.family != family:
    raise ValueError(f'dataset.synthetic.kind {syn.kind!r} renders {family} people: set '
                     f'--config.body_model.family={family}')
  out = os.path.join(_path(config.workdir), 'data')
  root = os.path.join(out, syn.kind)
  rendered = {'num_images': int(syn.num_images), 'size': int(syn.size), 'seed': int(config.seed)}
  marker = os.path.join(root, '.complete')
  if not os.path.exists(marker):
    writers.make_dataset(out, body_model_path, num_images=int(syn.num_images),
                         size=int(syn.size), seed=int(config.seed), kinds=(syn.kind,),
                         progress=bool(config.progress))
    export.write_json(marker, rendered)
  else:
    # The set (and its tfds build) is reused: it must be the one the config asks for.
    found = {**rendered, **_read_json(marker)}
    if found != rendered:
      raise ValueError(f'{root} holds a synthetic set rendered with {found}, but the config '
                       f'asks for {rendered}: use another --workdir, or delete {out} and '
                       f'{os.path.join(_path(config.workdir), "tfds")}')
  if options is None:
    options = {'subjects': _synthetic_subjects(root)}
  if gt == 'samples':
    gt = ''
  elif gt == 'gt_flame.json':
    gt = _synthetic_face_gt(os.path.join(root, gt))
  else:
    gt = os.path.join(root, gt)
  return fmt, root, options, gt


def _synthetic_face_gt(path):
  """gt_flame.json ({person id: {'flame_param': smplx names}}) -> {face ann_id: params}."""
  with open(path, encoding='utf-8') as f:
    gt = json.load(f)
  return {f'{k}_face': {n: np.asarray(v, np.float32) for n, v in e['flame_param'].items()}
          for k, e in gt.items()}


def load_samples(config, body_model_path):
  """The configured dataset: (samples, a lazy sequence; GT file or ''; reader format)."""
  from neuralannot_jax.data import builders  # pylint: disable=import-outside-toplevel
  fmt, root = config.dataset.format, _path(config.dataset.root)
  options = dict(config.dataset.options)
  gt_file = _path(config.dataset.gt_file)
  if fmt == 'synthetic':
    fmt, root, synthetic_options, synthetic_gt = prepare_synthetic(config, body_model_path)
    options = {**synthetic_options, **options}
    gt_file = gt_file or synthetic_gt
  elif not root:
    raise ValueError(f'dataset.root is empty: give the folder of the {fmt} files '
                     f'(--config.dataset.root=...); what goes there:\n{builders.LAYOUTS}')
  data_dir = _path(config.dataset.data_dir) or os.path.join(_path(config.workdir), 'tfds')
  source = builders.open_source(builders.make_config(fmt, **options), data_dir, root)
  if config.dataset.max_samples:
    source = views.Prefix(source, int(config.dataset.max_samples))
  noise = config.dataset.joint_noise
  if noise.px or noise.mm or noise.swap or noise.drop:
    source = views.NoisyJoints(source, px=float(noise.px), mm=float(noise.mm),
                               swap=float(noise.swap), drop=float(noise.drop),
                               seed=int(config.seed))
  if len(source) == 0:
    raise ValueError(f'{fmt} at {root}: the reader found no usable samples')
  return source, gt_file, fmt


# ----------------------------------------------------------------------------- stages


def train_config(config, joint_set):
  """The train.TrainConfig of an experiment config."""
  m, t = config.model, config.train
  return train_lib.TrainConfig(
      model_path='', family=config.body_model.family, mode=m.mode, joint_set=joint_set,
      regressor=_path(m.regressor) or None, vposer_path=_path(m.vposer_path) or None,
      depth=int(m.depth), backbone_weights=_path(m.backbone_weights) or None,
      crop_size=int(m.crop_size), batch_size=_per_process(int(t.batch_size), 'train.batch_size'),
      lr=float(t.lr), lr_boundaries=tuple(int(b) for b in t.lr_boundaries),
      adam_eps=float(t.adam_eps), num_steps=int(t.num_steps), seed=int(config.seed),
      warm_start_steps=int(t.warm_start.steps), warm_start_batch=int(t.warm_start.batch_size),
      warm_start_lr=float(t.warm_start.lr),
      augment=bool(t.augment), compute_dtype=m.compute_dtype,
      checkpoint_every=int(t.checkpoint_every), max_to_keep=int(t.max_to_keep),
      log_every=int(t.log_every), num_workers=int(t.num_workers),
      initial_pseudo_gt=_path(t.two_stage.init) or None, either_facing=bool(t.either_facing),
      param_weights={'param_rot': float(t.two_stage.rot_weight),
                     'param_betas': float(t.two_stage.betas_weight)},
      init_weights=stage_one_train_dir(t.two_stage.init_weights),
      progress=bool(config.progress) and jax.process_index() == 0)


def stage_one_train_dir(path):
  """train.two_stage.init_weights as train.py takes it: an experiment's work directory
  means its train/ folder (where `run` trains); None when empty."""
  path = _path(path)
  if path and os.path.isdir(os.path.join(path, 'train', 'checkpoints')):
    return os.path.join(path, 'train')
  return path or None


def vposer_path(config, tconfig):
  """The VPoser weights file when the head predicts a latent ('wild' SMPL / SMPL-X), else None.

  Without `model.vposer_path`, a prior of VPoser's architecture is trained on the synthetic
  pose sampler once and cached as <workdir>/pose_prior.npz (`pose_prior.load_or_train`).
  """
  if not any(s.kind == decode.VPOSER for s in train_lib.head_spec(tconfig).slots):
    return None
  if tconfig.vposer_path:
    return tconfig.vposer_path
  from neuralannot_jax.models import pose_prior  # pylint: disable=import-outside-toplevel
  path = os.path.join(_path(config.workdir), 'pose_prior.npz')
  prior = config.model.pose_prior
  pose_prior.load_or_train(path, num_poses=int(prior.num_poses), num_steps=int(prior.num_steps),
                           hidden=int(prior.hidden), seed=int(config.seed),
                           progress=bool(config.progress))
  return path


def restore_model(tconfig, train_dir, mesh, step=0):
  """The trained annotator from <train_dir>/checkpoints, and its step.

  step: the checkpoint's step (`annotate.step`); 0: the latest.
  """
  model, optimizer = train_lib.create_train_state(tconfig, mesh)
  manager = checkpoints.checkpoint_manager(train_dir, tconfig)
  try:
    if step:
      kept = sorted(manager.all_steps())
      if step not in kept:
        raise ValueError(f'annotate.step {step}: no such checkpoint in '
                         f'{os.path.join(train_dir, "checkpoints")} (kept: {kept}; '
                         'train.checkpoint_every and train.max_to_keep choose which are kept)')
      checkpoints.restore(manager, tconfig, mesh, model, optimizer, step)
    else:
      step = checkpoints.restore_latest(manager, tconfig, mesh, model, optimizer)
  finally:
    manager.close()
  if step == 0:
    raise FileNotFoundError(f'no checkpoint in {os.path.join(train_dir, "checkpoints")}: run '
                            'the train stage first (--config.stages=train,annotate,...)')
  return model, step


ANNOTATORS = ('neuralannot', 'smplify', 'neuralannot_refine')


def annotator_name(config):
  name = str(config.get('annotator', 'neuralannot'))
  if name not in ANNOTATORS:
    raise ValueError(f'config.annotator {name!r}: choose one of {ANNOTATORS}')
  return name


def fitting_settings(config):
  """The `fitting.annotator.Settings` of `config.fitting`."""
  f = config.fitting
  return fitting_annotator.Settings(
      steps_3d=int(f.steps_3d), lr_3d=float(f.lr_3d), steps_per_stage=int(f.steps_per_stage),
      lr_2d=float(f.lr_2d), sigma_px=float(f.sigma_px),
      reference_crop=int(f.reference_crop), try_flip=bool(f.try_flip),
      refine_steps=int(f.refine_steps), refine_lr=float(f.refine_lr),
      check_palm=bool(f.check_palm))


def latest_step(tconfig, train_dir):
  manager = checkpoints.checkpoint_manager(train_dir, tconfig)
  try:
    return manager.latest_step() or 0
  finally:
    manager.close()


def run(config):
  """Run the configured stages; returns a summary dict (also printed by `main`).

  With `train.two_stage.steps` > 0, stage one first (`two_stage_plan`): its summary is
  the returned one's 'stage_one'.
  """
  if two_stage_plan.wanted(config):
    one, two = two_stage_plan.stage_configs(config)
    stage_two_train = os.path.join(_path(two.workdir), 'train')
    two_stage_plan.check_stage_two(stage_two_train)    # before hours of stage one
    first = run(one)
    two_stage_plan.check_stage_two(stage_two_train, two_stage_plan.stamp(
        os.path.join(_path(one.workdir), one.annotate.output + '.record.json')),
                                   record=jax.process_index() == 0)
    if jax.process_index() == 0:
      for source, target in two_stage_plan.shared_files(one, two):
        link(source, target)
    distributed.barrier('stage_one')
    summary = run(two)
    summary['stage_one'] = first
    summary['seconds'] += first['seconds']
    return summary
  workdir = _path(config.workdir)
  os.makedirs(workdir, exist_ok=True)
  todo = stages(config)
  if annotator_name(config) != 'neuralannot' and config.body_model.family == 'flame':
    raise ValueError(f'config.annotator {annotator_name(config)}: the fitter fits SMPL, SMPL-X '
                     'and MANO; FLAME faces are annotated by the neural annotator only '
                     '(--config.annotator=neuralannot)')
  if ('train' in todo and annotator_name(config) != 'smplify'
      and int(config.train.num_steps) <= 0):
    raise ValueError(f'train.num_steps is {config.train.num_steps}: the train stage needs at '
                     'least one step (pseudo-GTs from an untrained network are no annotation)')
  summary = {'workdir': workdir, 'stages': todo, 'annotator': annotator_name(config),
             'devices': jax.device_count(),
             'platform': jax.devices()[0].platform}
  start = time.perf_counter()
  # Process 0 generates what is missing (stand-in body model, synthetic set, tfds build, pose
  # prior) while the other processes wait; they then find it in place: one writer per file.
  if jax.process_index() != 0:
    distributed.barrier('prepare')
  model_path = prepare_body_model(config)
  body_model = load_body_model(config, model_path)
  regressor = synthetic_regressor(config, body_model)
  if regressor:
    config.model.regressor = regressor
  samples, gt_file, fmt = load_samples(config, model_path)
  joint_set = samples[0].joint_set
  check_joints(config, joint_set)
  summary.update(samples=len(samples), joint_set=joint_set, body_model=repr(body_model))
  tconfig = train_config(config, joint_set)
  tconfig.num_landmarks = body_model.num_landmarks
  tconfig.vposer_path = vposer_path(config, tconfig)
  warnings = stand_in_warnings(config, tconfig)
  for warning in warnings:
    logging.warning('%s', warning)
  if warnings:
    summary['warnings'] = warnings
  if jax.process_index() == 0:
    distributed.barrier('prepare')
  train_dir = os.path.join(workdir, 'train')
  mesh = train_lib.make_mesh()
  model = None

  smplify = annotator_name(config) == 'smplify'
  if 'train' in todo and smplify:
    logging.info('annotator smplify: per-sample fitting, nothing to train')
  elif 'train' in todo:
    t0 = time.perf_counter()
    model, _ = train_lib.train(tconfig, samples, train_dir, mesh=mesh, body_model=body_model)
    summary['train_seconds'] = time.perf_counter() - t0
    summary['train_images_per_s'] = _last_rate(os.path.join(train_dir, 'metrics.jsonl'))

  output = os.path.join(workdir, config.annotate.output)
  record_path = output + '.record.json'
  if 'annotate' in todo:
    # What the annotation is made from: the latest checkpoint, or the fitter's settings.
    if smplify:
      made_from = {'annotator': 'smplify',
                   'settings': dataclasses.asdict(fitting_settings(config))}
    else:
      made_from = {'step': int(config.annotate.step) or latest_step(tconfig, train_dir),
                   'batch_norm_batches': int(config.annotate.batch_norm_batches),
                   'check_facing': bool(config.annotate.check_facing)}
      trained_on = two_stage_plan.recorded_stamp(train_dir)
      if trained_on:    # a one-command stage two: which annotation of stage one it learned
        made_from['trained_on'] = trained_on
      if annotate_lib.palm_applies(train_lib.head_spec(tconfig)):
        made_from['check_palm'] = bool(config.annotate.check_palm)
      if annotator_name(config) == 'neuralannot_refine':
        settings = fitting_settings(config)
        made_from['refine'] = {'steps': settings.refine_steps, 'lr': settings.refine_lr,
                               'sigma_px': settings.sigma_px,
                               'reference_crop': settings.reference_crop,
                               'try_flip': settings.try_flip,
                               # Bodies from 2D: the fitter's stages from the network.
                               'steps_per_stage': settings.steps_per_stage,
                               'lr_2d': settings.lr_2d, 'bodies_2d': 'staged_vposer'}
    # ... and of which samples: a trial run's (dataset.max_samples) is no annotation of the set.
    made_from['covers'] = samples_record(config, samples)
    record = _read_json(record_path)
    if (record is not None and all(record.get(k) == v for k, v in made_from.items())
        and os.path.exists(output + '.json')):
      logging.info('annotate: %s.json is from %s; kept', output, made_from)
      summary.update(annotate_images_per_s=record.get('images_per_s'),
                     skipped_images=record.get('skipped', 0))
    else:
      t0 = time.perf_counter()
      progress = bool(config.progress) and jax.process_index() == 0

      def restore():
        """The trained network, unless this run trained it (every process restores)."""
        nonlocal model
        if not smplify and model is None:
          model, _ = restore_model(tconfig, train_dir, mesh, int(config.annotate.step))

      def annotate_share():
        """This process's share (all of it on one process): annotations, skipped ann_ids."""
        if smplify:
          annotations, loader, _ = fitting_annotator.annotate(
              body_model, samples, train_lib.make_step_spec(tconfig).mapping,
              mode=config.model.mode, crop_size=int(config.model.crop_size),
              batch_size=int(config.fitting.batch_size), settings=fitting_settings(config),
              vposer_params=train_lib.load_vposer(tconfig),
              num_workers=int(config.train.num_workers), progress=progress)
        else:
          step_spec = train_lib.make_step_spec(tconfig)
          vposer_params = train_lib.load_vposer(tconfig)
          refine = None
          if annotator_name(config) == 'neuralannot_refine':
            refine = functools.partial(
                fitting_annotator.refine_batch, body_model, step_spec.mapping,
                root=step_spec.root, settings=fitting_settings(config),
                crop_size=int(config.model.crop_size), focal=step_spec.spec.focal,
                vposer_params=vposer_params)
          # Each process on its own devices (a local mesh): inference needs no collectives.
          annotations, loader = annotate_lib.annotate(
              model, body_model, samples, step_spec,
              batch_size=_per_process(int(config.annotate.batch_size), 'annotate.batch_size'),
              vposer_params=vposer_params,
              num_workers=int(config.train.num_workers), progress=progress, refine=refine,
              batch_norm_batches=int(config.annotate.batch_norm_batches),
              batch_norm_batch_size=int(config.annotate.batch_size),
              check_facing=bool(config.annotate.check_facing),
              check_palm=bool(config.annotate.check_palm))
        return annotations, [samples[i].ann_id for i in sorted(loader.skipped)]

      # Every process writes its share as a shard (reused by a resumed run); process 0
      # merges them once all are written.
      merged = shards.annotate_in_shards(annotate_share, output, made_from, len(samples),
                                              prepare=restore)
      seconds = time.perf_counter() - t0
      if merged is not None:
        annotations, skipped, made = merged
        # None when every shard came from an earlier run: this run annotated nothing.
        rate = shards.images_per_s(made)
        annotate_lib.write(annotations, workdir, config.annotate.output)
        if fmt in MOCAP_RELEASES and config.body_model.family in ('smpl', 'smplx'):
          extras = samples.extras()
          paths, left_out, merged_as, frames = world_frame.write_mocap(
              annotations, extras, body_model, config.body_model.family, fmt,
              os.path.join(workdir, 'mocap'))
          summary['mocap_files'] = paths
          # What a user of the world-frame files gets in each camera: scored like the
          # camera-frame file (issue 16, item 10: merged bodies stood far from every view).
          annotate_lib.write(world_frame.in_cameras(frames, annotations, extras, body_model),
                             os.path.join(workdir, 'mocap'), in_cameras_name(config))
          logging.info('annotate: world-frame bodies per frame: %s', merged_as)
          if left_out:
            logging.warning('annotate: %d annotations without camera or frame left out of '
                            'the world-frame files', left_out)
        export.write_json(record_path, {
            **made_from, 'samples': len(annotations), 'skipped': len(skipped),
            'processes': jax.process_count(), 'seconds': seconds, 'images_per_s': rate})
        # The merged files and their record are written: the shards are redundant now.
        for path in shards.shard_files(output):
          os.remove(path)
        summary['annotate_images_per_s'] = rate
        summary['annotated'] = len(annotations)
        summary['skipped_images'] = len(skipped)
    summary['pseudo_gt'] = output + '.json'

  if 'evaluate' in todo and jax.process_index() == 0:
    result = evaluate_stage(config, model_path, output + '.json', gt_file, samples, joint_set,
                            out_name=evaluation_name(config))
    if result is not None:
      summary['evaluation'] = {k: v for k, v in result.items() if k != 'per_sample'}
      summary['evaluation_file'] = evaluation_name(config)
    in_cameras = os.path.join(workdir, 'mocap', in_cameras_name(config) + '.json')
    if result is not None and os.path.exists(in_cameras):
      world = evaluate_stage(config, model_path, in_cameras, gt_file, samples, joint_set,
                             out_name=evaluation_name(config, world_frame=True))
      summary['evaluation_world_frame'] = {k: v for k, v in world.items()
                                           if k != 'per_sample'}
      summary['evaluation_world_frame_file'] = evaluation_name(config, world_frame=True)
  if 'report' in todo and jax.process_index() == 0:
    from neuralannot_jax.report import page as report  # pylint: disable=import-outside-toplevel
    evaluation_file = os.path.join(workdir, evaluation_name(config))
    summary['report'] = report.write_report(
        workdir, samples, output + '.json',
        evaluation_file if os.path.exists(evaluation_file) else None,
        os.path.join(train_dir, 'metrics.jsonl'), model_path, config.body_model.family,
        regressor=_path(config.model.regressor) or None, warnings=warnings)
  summary['seconds'] = time.perf_counter() - start
  return summary


def link(source, target):
  """Makes `target` a relative link to `source` where `source` exists and `target` does not
  (a link left pointing nowhere is replaced): what one run made, another reads."""
  if not os.path.exists(source):
    return
  if os.path.islink(target) and not os.path.exists(target):
    os.remove(target)
  if os.path.lexists(target):
    return
  os.makedirs(os.path.dirname(target), exist_ok=True)
  os.symlink(os.path.relpath(source, os.path.dirname(target)), target)


def samples_record(config, samples):
  """What an annotation covers: the number of samples, a digest of their ann_ids (in order),
  and the noise added to their GT joints (the MoCap network reads the 3D joints)."""
  ids = '\n'.join(str(samples[i].ann_id) for i in range(len(samples)))
  return {'count': len(samples), 'ann_ids_sha1': hashlib.sha1(ids.encode()).hexdigest(),
          'joint_noise': config.dataset.joint_noise.to_dict()}


def evaluation_name(config, world_frame=False):
  """The scores' file name in the work directory: evaluation.json for the default output,
  evaluation_<output>.json for another (a refinement or an earlier checkpoint annotated
  beside it must not overwrite the network's scores); world-frame files: _world_frame."""
  output = config.annotate.output
  stem = 'evaluation' if output == 'pseudo_gt' else f'evaluation_{output}'
  return f'{stem}_world_frame.json' if world_frame else f'{stem}.json'


def in_cameras_name(config):
  """The name (in <workdir>/mocap, without .json) of the world-frame bodies moved back into
  each camera (`world_frame.in_cameras`)."""
  return f'{config.annotate.output}_world_frame_in_cameras'


def evaluate_stage(config, model_path, pred_file, gt_file, samples, joint_set,
                   out_name='evaluation.json'):
  """Scores of the pseudo-GTs against GT (also written to <workdir>/`out_name`), or None
  where the dataset has none."""
  from neuralannot_jax import evaluate  # pylint: disable=import-outside-toplevel
  if not os.path.exists(pred_file):
    raise FileNotFoundError(f'{pred_file}: no pseudo-GTs to evaluate; run the annotate stage')
  family = config.body_model.family
  options = dict(gender=config.body_model.gender, joint_set=joint_set,
                 regressor=_path(config.model.regressor) or None)
  if gt_file and not isinstance(gt_file, dict):
    result = evaluate.evaluate_files(pred_file, gt_file, family, model_path, **options)
  else:
    gt = gt_file or evaluate.gt_from_samples(samples)
    if not gt:
      logging.info('evaluate: %s has no GT parameters; nothing to score', config.dataset.format)
      return None
    result = evaluate.evaluate_entries(evaluate.load_entries(pred_file, family), gt, family,
                                       model_path, **options)
  out = os.path.join(_path(config.workdir), out_name)
  export.write_json(out, result)
  return result


def _read_json(path):
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _last_rate(metrics_path):
  """images/s of the last line of metrics.jsonl, or None."""
  if not os.path.exists(metrics_path):
    return None
  with open(metrics_path, encoding='utf-8') as f:
    lines = [line for line in f if line.strip()]
  return json.loads(lines[-1]).get('images_per_s') if lines else None


__all__ = ['STAGES', 'default_config', 'load_config', 'stages', 'prepare_body_model',
           'load_body_model', 'prepare_synthetic', 'load_samples', 'train_config', 'vposer_path',
           'restore_model', 'evaluation_name', 'run']
