"""Checks: small functions from facts to a Score with its explanation and evidence."""
