"""Routers that pick a server for each request."""

from .router import ROUTERS, Router, make_router

__all__ = ["ROUTERS", "Router", "make_router"]
