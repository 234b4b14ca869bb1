"""What a person looks at: the report page, mesh overlays, residual plots."""
