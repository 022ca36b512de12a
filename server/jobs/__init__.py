"""Grading jobs: the durable queue (queue.py) and the in-process worker (worker.py)."""
