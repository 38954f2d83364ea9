"""Choosing configurations over the symbolic metrics (objectives, constraints, search)."""
