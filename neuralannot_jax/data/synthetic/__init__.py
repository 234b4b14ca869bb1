"""Synthetic datasets: rendered people, hands and faces with known model parameters, in
official file layouts.

    from neuralannot_jax.data import synthetic
    synthetic.make_dataset('data/synth', 'data/synth/body_models', num_images=2000)
    synthetic.make_dataset('data/synth', 'data/synth/body_models', kinds=('freihand', 'face'))
    image, mask, depth = synthetic.render.render(vertices, faces, focal, princpt, image)

Modules: `render` (numpy z-buffer rasteriser, reusable for overlays), `poses` (joint-limited
pose, shape and orientation samplers), `scenes` (cameras, backgrounds, occluders,
keypoints and joint sets), `writers` (COCO and Human3.6M files, GT for scoring, and
`make_dataset`), `hands` (FreiHAND-layout MANO hands), `faces` (COCO-WholeBody-layout
FLAME faces), `common` (atomic reproducible files, batched forward pass).
"""

from neuralannot_jax.data.synthetic import common
from neuralannot_jax.data.synthetic import faces
from neuralannot_jax.data.synthetic import hands
from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render
from neuralannot_jax.data.synthetic import scenes
from neuralannot_jax.data.synthetic import writers
from neuralannot_jax.data.synthetic.writers import DEFAULT_KINDS
from neuralannot_jax.data.synthetic.writers import KINDS
from neuralannot_jax.data.synthetic.writers import make_dataset

__all__ = ['DEFAULT_KINDS', 'KINDS', 'common', 'faces', 'hands', 'make_dataset', 'poses',
           'render', 'scenes', 'writers']
