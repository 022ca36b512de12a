"""Sandboxes: running code Viva does not trust. An abstract Sandbox with few methods, backends registered by
name (Docker here), base-image building, and (next) the LLM gateway a sandboxed app talks to.

May import `llm`; nothing else of Viva's.
"""
