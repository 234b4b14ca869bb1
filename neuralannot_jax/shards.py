"""Annotation shards: each process's share of an annotation pass, written, checked, merged.

A pass over a set runs on every process at once, each over its contiguous share
(`distributed.share`), and writes its annotations to a shard file with what they were
made from. A killed or repeated run reuses the shards that are still current, and process 0
merges them into the released-layout file (`annotate_in_shards`).
"""

import json
import os
import re
import time

from absl import logging
import jax
import numpy as np

from neuralannot_jax import annotate
from neuralannot_jax import export
from neuralannot_jax.runtime import distributed


def shard_path(output, process_index, process_count):
  """`<output>.shard-00001-of-00004.npz`: the annotations of one process."""
  return f'{output}.shard-{process_index:05d}-of-{process_count:05d}.npz'


def _plain(value, what):
  """A json-safe copy of an ann_id / parent_id (int or str), or ValueError naming it."""
  if isinstance(value, np.generic):
    value = value.item()
  if value is not None and not isinstance(value, (int, str)):
    raise ValueError(f'annotation shards: {what} {value!r} is a {type(value).__name__}; '
                     'ids must be int or str to be written')
  return value


def write_shard(path, annotations, *, made_from, start, stop, num_samples, skipped,
                seconds):
  """Write one process's annotations, atomically, with what they were made from.

  Args:
    path: `shard_path(...)`.
    annotations: {ann_id: annotate.Annotation} of samples start .. stop-1, in order.
    made_from: json dict naming the model (e.g. {'step': 2000}); a shard is reused only
      when it matches (`read_shard`).
    start, stop, num_samples: the share and the size of the whole set.
    skipped: ann_ids of the share's samples whose image could not be read.
    seconds: time the share took.
  Layout: 'meta' (a json string) and per annotation row: 'focal', 'princpt' (n, 2) and
  'param.<smplx name>' (n, D).
  """
  ids = list(annotations)
  anns = [annotations[a] for a in ids]
  meta = {'made_from': made_from, 'start': int(start), 'stop': int(stop),
          'num_samples': int(num_samples), 'seconds': float(seconds),
          'ann_ids': [_plain(a, 'ann_id') for a in ids],
          'skipped': [_plain(a, 'ann_id') for a in skipped],
          'parent_ids': [_plain(a.parent_id, 'parent_id') for a in anns],
          'families': [a.family for a in anns], 'hand_sides': [a.hand_side for a in anns],
          'cameras': [a.camera for a in anns], 'qualities': [a.quality for a in anns]}
  arrays = {'meta': np.array(json.dumps(meta))}
  if anns:
    arrays['focal'] = np.stack([a.focal for a in anns])
    arrays['princpt'] = np.stack([a.princpt for a in anns])
    for name in anns[0].params:
      arrays[f'param.{name}'] = np.stack([a.params[name] for a in anns])
  with export.atomic_open(path, 'wb') as f:
    np.savez(f, **arrays)
  return path


def read_shard(path):
  """(meta dict, {ann_id: annotate.Annotation}) of a `write_shard` file."""
  with np.load(path) as data:
    meta = json.loads(str(data['meta']))
    arrays = {k: data[k] for k in data.files if k != 'meta'}
  names = [k[len('param.'):] for k in arrays if k.startswith('param.')]
  annotations = {}
  qualities = meta.get('qualities') or [None] * len(meta['ann_ids'])
  for i, ann_id in enumerate(meta['ann_ids']):
    annotations[ann_id] = annotate.Annotation(
        params={n: arrays[f'param.{n}'][i] for n in names}, focal=arrays['focal'][i],
        princpt=arrays['princpt'][i], family=meta['families'][i],
        hand_side=meta['hand_sides'][i], parent_id=meta['parent_ids'][i],
        camera=meta['cameras'][i], quality=qualities[i])
  return meta, annotations


def read_meta(path):
  """The header of the shard at `path` (its arrays are not read)."""
  with np.load(path) as data:
    return json.loads(str(data['meta']))


def shard_is_current(path, made_from, start, stop, num_samples):
  """Whether the shard at `path` holds exactly this share made from `made_from` (a run
  killed after writing it resumes there). Reads only its header."""
  if not os.path.exists(path):
    return False
  try:
    meta = read_meta(path)
  except (OSError, ValueError, KeyError) as e:
    logging.warning('annotation shard %s is unreadable (%s); annotating its share again',
                    path, e)
    return False
  return (meta.get('made_from') == made_from
          and (meta.get('start'), meta.get('stop'), meta.get('num_samples'))
          == (start, stop, num_samples))


def made_now(metas):
  """{'samples': annotations, 'seconds': the slowest share's time} of the shards this run
  made (their headers, `metas`), or None when it made none: a resumed merge of shards an
  earlier run wrote annotated nothing, and has no annotation rate."""
  if not metas:
    return None
  return {'samples': sum(len(m['ann_ids']) for m in metas),
          'seconds': max(float(m['seconds']) for m in metas)}


def images_per_s(made):
  """Annotation rate of `made_now`'s record: its samples over the slowest share's time (the
  processes annotate side by side); None when nothing was annotated in this run."""
  if made is None:
    return None
  return made['samples'] / max(made['seconds'], 1e-9)


def merge_shards(output, process_count, made_from, num_samples):
  """Read every process's shard and check that they cover the set exactly once.

  Args:
    output: the output path without extension; shards are `shard_path(output, p, n)`.
    process_count: n.
    made_from: what every shard must have been made from.
    num_samples: N; the shards' shares must tile 0 .. N-1.
  Returns:
    ({ann_id: Annotation} in sample order, [skipped ann_ids], [shard paths]).
  Raises:
    ValueError naming the shard when one is missing, stale, overlaps or leaves a gap, or
    when an ann_id appears twice (outputs are keyed by it).
  """
  merged, skipped, paths, seen, expected_start = {}, [], [], {}, 0
  for p in range(process_count):
    path = shard_path(output, p, process_count)
    if not os.path.exists(path):
      raise ValueError(f'merge: {path} is missing: process {p} did not finish its share')
    meta, annotations = read_shard(path)
    if meta['made_from'] != made_from:
      raise ValueError(f'merge: {path} was made from {meta["made_from"]}, not {made_from}')
    if meta['num_samples'] != num_samples or meta['start'] != expected_start:
      raise ValueError(f'merge: {path} holds samples {meta["start"]} .. {meta["stop"] - 1} '
                       f'of {meta["num_samples"]}; expected a share starting at '
                       f'{expected_start} of {num_samples}')
    ids = meta['ann_ids'] + meta['skipped']
    if len(ids) != meta['stop'] - meta['start']:
      raise ValueError(f'merge: {path} has {len(ids)} annotated or skipped samples for a '
                       f'share of {meta["stop"] - meta["start"]}')
    for ann_id in ids:
      if ann_id in seen:
        raise ValueError(f'merge: ann_id {ann_id!r} appears in {seen[ann_id]} and in {path}; '
                         'outputs are keyed by it, each must appear once')
      seen[ann_id] = path
    merged.update(annotations)
    skipped += meta['skipped']
    paths.append(path)
    expected_start = meta['stop']
  if expected_start != num_samples:
    raise ValueError(f'merge: the shards end at sample {expected_start} of {num_samples}')
  return merged, skipped, paths


def annotate_in_shards(annotate_share, output, made_from, num_samples, prepare=None):
  """Annotate this process's share (or reuse its shard), then merge on process 0.

  Args:
    annotate_share: () -> ({ann_id: Annotation}, [skipped ann_ids]) of this process's share
      (`distributed.share(num_samples)`, which `pipeline.Loader(train=False)` walks).
    output: output path without extension; the shard goes to `shard_path(output, p, n)`.
    made_from: json dict naming the model; a shard made from it is reused, not redone.
    num_samples: the size of the whole set.
    prepare: () -> None, run by every process before annotating when any shard is to be
      made: work all processes must take part in, such as restoring the checkpoint (orbax
      restores collectively), even those whose own shard is already done.
  Returns:
    on process 0, (annotations of the whole set in sample order, skipped ann_ids,
    `made_now` of the shards annotated by this call: None when every one was reused); None
    on the other processes. Every process returns after all shards are written.
  """
  made_from = json.loads(json.dumps(made_from))  # as the shards store it (tuples: lists)
  p, n = jax.process_index(), jax.process_count()
  start, stop = distributed.share(num_samples, p, n)
  path = shard_path(output, p, n)
  # Every process reads every shard's header, so all take the same decision on `prepare`;
  # the barrier keeps any shard from being written before all have looked.
  current = [shard_is_current(shard_path(output, q, n), made_from,
                              *distributed.share(num_samples, q, n), num_samples)
             for q in range(n)]
  distributed.barrier(f'annotation shards of {os.path.basename(output)} checked')
  if not all(current) and prepare is not None:
    prepare()
  if current[p]:
    logging.info('annotate: %s holds samples %d .. %d made from %s; reused', path, start,
                 stop - 1, made_from)
  else:
    t0 = time.perf_counter()
    annotations, skipped = annotate_share()
    write_shard(path, annotations, made_from=made_from, start=start, stop=stop,
                num_samples=num_samples, skipped=skipped, seconds=time.perf_counter() - t0)
  distributed.barrier(f'annotation shards of {os.path.basename(output)}')
  if p != 0:
    return None
  annotations, skipped, _ = merge_shards(output, n, made_from, num_samples)
  # Shards current before this call were annotated by an earlier run: not timed here.
  fresh = [read_meta(shard_path(output, q, n)) for q in range(n) if not current[q]]
  return annotations, skipped, made_now(fresh)


def shard_files(output):
  """Every shard file of `output`, whatever the process count that wrote it."""
  folder, base = os.path.split(output)
  pattern = re.compile(re.escape(base) + r'\.shard-\d{5}-of-\d{5}\.npz$')
  return [os.path.join(folder, n) for n in sorted(os.listdir(folder or '.'))
          if pattern.match(n)]


__all__ = ['shard_path', 'write_shard', 'read_shard', 'read_meta', 'shard_is_current',
           'made_now', 'images_per_s', 'merge_shards', 'annotate_in_shards', 'shard_files']
