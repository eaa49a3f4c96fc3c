"""Backends run the same schedulers and agents on different simulators.

Today the embedded engine (:mod:`hdeeprm.core.engine`) is driven directly; the backend
interface shared with the real-Batsim backend (ZeroMQ protocol) lands with that backend.
"""
