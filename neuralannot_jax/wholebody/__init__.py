"""Whole-body annotation: body, hands and face merged into SMPL-X."""
