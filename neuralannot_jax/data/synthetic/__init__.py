"""Synthetic datasets: rendered people with known SMPL parameters, in official file layouts.

    from neuralannot_jax.data import synthetic
    synthetic.make_dataset('data/synth', 'data/synth/body_models', num_images=2000)
    image, mask, depth = synthetic.render.render(vertices, faces, focal, princpt, image)

Modules: `render` (numpy z-buffer rasteriser, reusable for overlays), `poses` (joint-limited
pose, shape and orientation samplers), `scenes` (cameras, backgrounds, occluders,
keypoints and joint sets), `writers` (COCO and Human3.6M files, GT for scoring).
"""

from neuralannot_jax.data.synthetic import poses
from neuralannot_jax.data.synthetic import render
from neuralannot_jax.data.synthetic import scenes
from neuralannot_jax.data.synthetic import writers
from neuralannot_jax.data.synthetic.writers import KINDS
from neuralannot_jax.data.synthetic.writers import make_dataset

__all__ = ['KINDS', 'make_dataset', 'poses', 'render', 'scenes', 'writers']
