"""Images/s of synthetic-set generation and of the input pipeline, on this machine.

    python tools/benchmark_pipeline.py                      # 512 images, 256 px crops
    python tools/benchmark_pipeline.py --num_images 2000 --workers 0,2,4 --write BENCHMARKS.md

Generates a synthetic COCO-layout set (stand-in SMPL), reads it with the COCO reader, and
times the Loader: training mode (shuffle + augmentation) and annotation mode (in order,
padded), for several decode/warp thread counts. One pass each after a warm-up batch.

--write replaces this tool's block in the file (between `<!-- benchmark_pipeline:begin -->`
and `<!-- benchmark_pipeline:end -->`, tools/markdown_block.py; appended if absent).
"""

import argparse
import os
import platform
import tempfile
import time

from body_models import synthetic as synthetic_models
from neuralannot_jax.data import coco
from neuralannot_jax.data import joint_sets
from neuralannot_jax.data import pipeline
from neuralannot_jax.data import synthetic

import markdown_block  # tools/, beside this script


def time_loader(samples, batch_size, train, workers, out_size):
  """Images per second of one pass over `samples` (after one warm-up batch)."""
  loader = pipeline.Loader(samples, batch_size, train=train, out_size=out_size,
                           num_workers=workers, num_devices=1,
                           flip_pairs=joint_sets.get('COCO_17').flip_pairs)
  batches = iter(loader)
  next(batches)
  start, images = time.perf_counter(), 0
  for batch, _ in batches:
    images += int(batch['mask'].sum())
  return images / max(time.perf_counter() - start, 1e-9)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--num_images', type=int, default=512, help='images to generate')
  parser.add_argument('--image_size', type=int, default=128, help='generated image side')
  parser.add_argument('--out_size', type=int, default=256, help='crop side (paper: 256)')
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--workers', default='0,2,4', help='comma-separated thread counts')
  parser.add_argument('--write', help="update this tool's block in this Markdown file")
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    models = os.path.join(tmp, 'body_models')
    synthetic_models.write_model('smpl', models)
    summary = synthetic.make_dataset(tmp, models, num_images=args.num_images,
                                     size=args.image_size, kinds=('coco',), progress=False)
    gen_rate = args.num_images / summary['seconds']
    print(f'generation: {args.num_images} images of {args.image_size} px in '
          f'{summary["seconds"]:.1f} s = {gen_rate:.1f} images/s', flush=True)
    result = coco.read(os.path.join(tmp, 'coco', 'annotations', 'person_keypoints_train.json'),
                       os.path.join(tmp, 'coco', 'images', 'train'))
    rows = []
    for workers in [int(w) for w in args.workers.split(',')]:
      train = time_loader(result.samples, args.batch_size, True, workers, args.out_size)
      annotate = time_loader(result.samples, args.batch_size, False, workers, args.out_size)
      rows.append((workers, train, annotate))
      print(f'pipeline, {workers} workers: train {train:.0f} images/s, annotate '
            f'{annotate:.0f} images/s ({args.out_size} px crops)', flush=True)

  if args.write:
    lines = [
        f'## Synthetic data and input pipeline, {time.strftime("%Y-%m-%d")}', '',
        f'Command: `python tools/benchmark_pipeline.py --num_images {args.num_images} '
        f'--workers {args.workers}`  ',
        f'Machine: {platform.machine()}, {os.cpu_count()} cores. Generation (stand-in SMPL, '
        f'z-buffer rasteriser, {args.image_size} px): {gen_rate:.1f} images/s. Pipeline: '
        f'JPEG decode, {args.out_size} px crop, batch {args.batch_size}; train adds '
        'augmentation (scale, rotation, colour, flip).', '',
        '| decode/warp threads | train (images/s) | annotate (images/s) |',
        '|---:|---:|---:|',
    ] + [f'| {w} | {t:.0f} | {a:.0f} |' for w, t, a in rows]
    markdown_block.write_block(args.write, 'benchmark_pipeline', '\n'.join(lines))
    print(f'updated the benchmark_pipeline block in {args.write}')


if __name__ == '__main__':
  main()
