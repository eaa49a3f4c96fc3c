"""Backends run the same schedulers, environment and agents on different simulators.

A backend is a *simulator*: an object with the decision interface of
:class:`hdeeprm.simulation.engine.Engine` (see :class:`Simulator`). The scheduler-side state (the
queue, the heterogeneity layer, observations and rewards) lives in Python above it, so the
embedded engine and real Batsim (which calls the scheduler through ZeroMQ) are
interchangeable below it.
"""

from hdeeprm.backends.base import BACKENDS, Simulator, make_simulator

__all__ = ["BACKENDS", "Simulator", "make_simulator"]
