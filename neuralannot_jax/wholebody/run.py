"""A whole-body run: body (SMPL-X), hands (MANO) and face (FLAME) of one COCO-WholeBody set,
each annotated by its own experiment, merged per person into SMPL-X pseudo-GTs.

    python -m neuralannot_jax.main --config=configs/synthetic_wholebody.py

A whole-body config (`wholebody_config`) holds what the parts share (work directory, body
models, the dataset) and under `parts` one ordinary experiment config per part
(`experiment.default_config`: network, training and annotation settings). `run`:

  1. model files: `body_model.path`, or the stand-ins of SMPL-X, MANO and FLAME written
     into <workdir>/body_models;
  2. the dataset: the user's COCO-WholeBody files, or for `dataset.format = 'synthetic'`
     the synthetic whole-body set (`data.synthetic.wholebody`, GT SMPL-X) rendered once
     into <workdir>/data/wholebody;
  3. `experiment.run` on each part, in <workdir>/body, <workdir>/hand, <workdir>/face,
     all reading the same files through the 'coco_wholebody' reader with `parts` body /
     hand / face (hand crops of left hands are mirrored into right hands and back by the
     pipeline and `annotate`, as in the hand-only runs);
  4. `wholebody.merge_files` -> <workdir>/<merge.output>.json: the released `smplx_param`
     layout with `lhand_valid` / `rhand_valid` / `face_valid`, one entry per body;
  5. where GT SMPL-X exists (the synthetic set, or `dataset.gt_file`), per-part scores
     (`wholebody/evaluate.py`) -> <workdir>/evaluation.json.
"""

import json
import os
import time

from absl import logging
import jax
import ml_collections

import body_models
from neuralannot_jax import evaluate
from neuralannot_jax import experiment
from neuralannot_jax import export
from neuralannot_jax import two_stage_plan
from neuralannot_jax.wholebody import evaluate as wholebody_eval
from neuralannot_jax.wholebody import merge as wholebody

# part name -> (body-model family, the reader's `parts` option).
PARTS = {'body': ('smplx', ['body']), 'hand': ('mano', ['hand']), 'face': ('flame', ['face'])}


def wholebody_config():
  """The schema and defaults of a whole-body config (`configs/coco_wholebody.py`)."""
  c = ml_collections.ConfigDict()
  c.workdir = 'work_dir/wholebody'
  c.seed = 0
  c.progress = True
  # A folder in the smplx library's layout holding smplx/, mano/ and flame/ (models/smplx/
  # SMPLX_NEUTRAL.npz, models/mano/MANO_RIGHT.pkl + MANO_LEFT.pkl, models/flame/...).
  # Empty: the procedural stand-ins, written into <workdir>/body_models.
  c.body_model = ml_collections.ConfigDict()
  c.body_model.path = ''
  # Real data without `path`: the stand-ins anyway (see experiment.default_config).
  c.body_model.stand_in = False
  c.body_model.gender = 'neutral'
  c.dataset = ml_collections.ConfigDict()
  # 'coco_wholebody' (the user's files under root) or 'synthetic' (rendered here).
  c.dataset.format = 'coco_wholebody'
  c.dataset.root = ''
  # Reader options every part gets (annotation_file, image_dir, ...); each part adds its
  # `parts` and may add its own (parts.<name>.dataset.options, e.g. min_keypoints).
  c.dataset.options = {}
  c.dataset.max_samples = 0
  # GT SMPL-X in the released layout for the scores; empty: the synthetic set's, or none.
  c.dataset.gt_file = ''
  c.dataset.synthetic = ml_collections.ConfigDict()
  c.dataset.synthetic.kind = 'wholebody'
  c.dataset.synthetic.num_images = 1000
  c.dataset.synthetic.size = 288
  c.merge = ml_collections.ConfigDict()
  c.merge.output = 'pseudo_gt_smplx'
  c.parts = ml_collections.ConfigDict()
  for name, (family, _) in PARTS.items():
    part = experiment.default_config()
    part.body_model.family = family
    part.dataset.format = 'coco_wholebody'
    c.parts[name] = part
  return c


def is_wholebody(config):
  """True for a whole-body config (one with body, hand and face part configs)."""
  return 'parts' in config and all(name in config.parts for name in PARTS)


def _path(value):
  return os.path.abspath(os.path.expanduser(value)) if value else ''


def _view(config, family):
  """An experiment-shaped config of the shared fields, for `experiment.prepare_body_model`."""
  view = experiment.default_config()
  view.workdir = _path(config.workdir)
  view.seed = config.seed
  view.progress = config.progress
  view.body_model.path = config.body_model.path
  view.body_model.stand_in = config.body_model.stand_in
  view.body_model.gender = config.body_model.gender
  view.body_model.family = family
  view.dataset.format = config.dataset.format
  return view


def prepare_models(config):
  """The model folder every part loads from: the configured one, or the stand-ins of the
  three families written into <workdir>/body_models (`experiment.prepare_body_model`)."""
  for family, _ in PARTS.values():
    root = experiment.prepare_body_model(_view(config, family))
  return root


# Where the synthetic whole-body set puts its files (`data.synthetic.wholebody`).
SYNTHETIC_OPTIONS = {'annotation_file': 'annotations/coco_wholebody_train.json',
                     'image_dir': 'images/train'}


def prepare_synthetic(config, model_root):
  """Render the synthetic whole-body set into <workdir>/data/wholebody unless it is there.

  Returns:
    (root folder, reader options, GT SMPL-X file).
  """
  # Imported here: rendering pulls in OpenCV and the renderer, which a run on the user's
  # files never needs.
  from neuralannot_jax.data.synthetic import wholebody as synthetic_wholebody  # pylint: disable=import-outside-toplevel
  from neuralannot_jax.data.synthetic import writers  # pylint: disable=import-outside-toplevel
  syn = config.dataset.synthetic
  if syn.kind != 'wholebody':
    raise ValueError(f"dataset.synthetic.kind {syn.kind!r}: a whole-body run renders the "
                     "'wholebody' kind")
  out = os.path.join(_path(config.workdir), 'data')
  root = os.path.join(out, syn.kind)
  done = os.path.join(root, '.complete')
  if not os.path.exists(done):
    writers.make_dataset(out, model_root, num_images=int(syn.num_images), size=int(syn.size),
                         seed=int(config.seed), kinds=(syn.kind,),
                         progress=bool(config.progress))
    export.write_json(done, {'num_images': int(syn.num_images), 'size': int(syn.size)})
  return root, dict(SYNTHETIC_OPTIONS), os.path.join(root, synthetic_wholebody.GT_FILE)


def prepare_data(config, model_root):
  """(root folder, shared reader options, GT SMPL-X file or '') of the configured set."""
  options = dict(config.dataset.options)
  gt_file = _path(config.dataset.gt_file)
  if config.dataset.format == 'synthetic':
    root, synthetic_options, gt = prepare_synthetic(config, model_root)
    return root, {**synthetic_options, **options}, gt_file or gt
  if config.dataset.format != 'coco_wholebody':
    raise ValueError(f"dataset.format {config.dataset.format!r}: a whole-body run reads "
                     "'coco_wholebody' files or renders 'synthetic' ones")
  if not config.dataset.root:
    raise ValueError('dataset.root is empty: give the COCO folder holding '
                     'annotations/coco_wholebody_train_v1.0.json and images/train2017/')
  return _path(config.dataset.root), options, gt_file


def part_config(config, name, model_root, root, options, gt_file):
  """The experiment config of one part: its own settings, the shared data and models.

  Its workdir is <workdir>/<name>; the body part alone gets the GT file (the hand and
  face parts are scored by `wholebody/evaluate.py`, against the same SMPL-X GT).
  """
  family, parts = PARTS[name]
  part = ml_collections.ConfigDict(config.parts[name].to_dict())
  if part.body_model.family != family:
    raise ValueError(f'parts.{name}.body_model.family is {part.body_model.family!r}; the '
                     f'{name} part is annotated with {family}')
  part.workdir = os.path.join(_path(config.workdir), name)
  part.progress = config.progress
  part.body_model.path = model_root
  part.body_model.gender = config.body_model.gender
  part.dataset.format = 'coco_wholebody'
  part.dataset.root = root
  part.dataset.options = {**options, **dict(part.dataset.options), 'parts': parts}
  part.dataset.max_samples = config.dataset.max_samples
  part.dataset.gt_file = gt_file if name == 'body' and gt_file else ''
  # The synthetic set's keypoints are SMPL-X's own joints (by name): no hip regressor.
  part.dataset.model_joints = (bool(part.dataset.model_joints)
                               or config.dataset.format == 'synthetic')
  return part


def merge(config, model_root, files):
  """`wholebody.merge_files` of the parts' pseudo-GT files -> (out file, counts)."""
  smplx_model = body_models.load(model_root, 'smplx', gender=config.body_model.gender)
  out = os.path.join(_path(config.workdir), config.merge.output + '.json')
  return wholebody.merge_files(files['body'], files['hand'], files['face'], out,
                               smplx_model, mano_models=evaluate.load_models(model_root,
                                                                             'mano'))


def run(config):
  """Annotate, merge and score; returns a summary dict (printed by `main`)."""
  start = time.perf_counter()
  workdir = _path(config.workdir)
  os.makedirs(workdir, exist_ok=True)
  model_root = prepare_models(config)
  root, options, gt_file = prepare_data(config, model_root)
  summary = {'workdir': workdir, 'parts': {}, 'devices': jax.device_count(),
             'platform': jax.devices()[0].platform}
  files = {}
  parts = {name: part_config(config, name, model_root, root, options, gt_file)
           for name in PARTS}
  for part in parts.values():
    if two_stage_plan.wanted(part):
      two_stage_plan.stage_configs(part)   # a part it refuses is refused before hours of work
  for name, part in parts.items():
    logging.info('whole body: the %s part (%s) in %s', name, part.body_model.family,
                 part.workdir)
    t0 = time.perf_counter()
    result = experiment.run(part)
    result['seconds'] = time.perf_counter() - t0
    summary['parts'][name] = result
    files[name] = os.path.join(part.workdir, part.annotate.output + '.json')
  # Process 0 writes the parts' files (`experiment.run`), so it alone merges them.
  if jax.process_index() == 0:
    for name, path in files.items():
      if not os.path.exists(path):
        raise FileNotFoundError(f'{path}: the {name} part wrote no pseudo-GTs; run its '
                                f'annotate stage (parts.{name}.stages)')
    out, counts = merge(config, model_root, files)
    summary.update(pseudo_gt_smplx=out, merged=counts)
    if gt_file:
      scores = wholebody_eval.score(gt_file, model_root, body_file=files['body'],
                                    hand_file=files['hand'], face_file=files['face'],
                                    merged_file=out, gender=config.body_model.gender)
      export.write_json(os.path.join(workdir, 'evaluation.json'), scores)
      summary['evaluation'] = scores
  summary['seconds'] = time.perf_counter() - start
  return summary


def format_summary(summary):
  """The closing lines of a whole-body run."""
  lines = [f'work directory: {summary["workdir"]}']
  for name, part in summary['parts'].items():
    rate = part.get('train_images_per_s')
    lines.append(f'  {name}: {part["samples"]} samples ({part["joint_set"]}), '
                 f'{part["seconds"]:.0f} s' + (f', train {rate:.1f} images/s' if rate else ''))
  if summary.get('pseudo_gt_smplx'):
    c = summary['merged']
    lines.append(f'whole-body SMPL-X: {summary["pseudo_gt_smplx"]} ({c["persons"]} persons; '
                 f'hands right {c["rhand"]}, left {c["lhand"]}; faces {c["face"]})')
  if summary.get('evaluation'):
    lines.append(wholebody_eval.format_scores(summary['evaluation']))
  lines.append(f'done in {summary["seconds"]:.0f} s')
  return '\n'.join(lines)


def write_summary(summary):
  """<workdir>/summary.json (atomic)."""
  export.write_json(os.path.join(summary['workdir'], 'summary.json'),
                    json.loads(json.dumps(summary, default=str)))


__all__ = ['PARTS', 'SYNTHETIC_OPTIONS', 'wholebody_config', 'is_wholebody', 'prepare_models',
           'prepare_synthetic', 'prepare_data', 'part_config', 'merge', 'run',
           'format_summary', 'write_summary']
