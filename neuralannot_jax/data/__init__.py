"""Datasets: readers per annotation format, the common `Sample` record, joint sets, pipeline."""

from neuralannot_jax.data.sample import AnnotationError
from neuralannot_jax.data.sample import Sample
from neuralannot_jax.data.sample import make_sample
