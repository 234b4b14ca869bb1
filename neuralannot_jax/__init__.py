"""NeuralAnnot in JAX: a neural annotator of 3D pseudo-GT body-model parameters.

Run it with `python -m neuralannot_jax.main --config=configs/<experiment>.py`.
The body models it fits live in the separate, standalone `body_models` package.
"""
