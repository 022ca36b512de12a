"""The LLM judge: grades rubric leaves no mechanical check can decide (is the README clear, are trade-offs
explained). The model must cite `path:line` for every claim; code verifies each citation, drops what it cannot
verify, and computes the score from what remains — the model's say-so is never the score."""
