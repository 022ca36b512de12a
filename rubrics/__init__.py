"""Rubrics: the schema of a rubric, its check catalogue, loading and validation, built-in rubrics.

This package imports no other Viva room (see docs/ARCHITECTURE.md).
"""
