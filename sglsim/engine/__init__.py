"""Discrete-event engine."""

from .events import PRIORITY_ARRIVAL, PRIORITY_STEP, PRIORITY_TRANSFER, EventQueue

__all__ = ["EventQueue", "PRIORITY_ARRIVAL", "PRIORITY_STEP", "PRIORITY_TRANSFER"]
