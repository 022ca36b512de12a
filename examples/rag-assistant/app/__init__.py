"""A small retrieval-augmented assistant over a folder of Markdown notes."""
