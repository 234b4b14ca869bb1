"""Process-level plumbing: processes and meshes, host memory, metrics logs."""
