"""Grading reports: the versioned report model and its JSON, Markdown and HTML renderings."""
