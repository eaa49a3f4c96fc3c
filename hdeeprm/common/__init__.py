"""Foundation used by every layer: the error hierarchy and one-line error reporting, strict JSON
reading, seeding, and the worker engines that run independent tasks in parallel.

Imports nothing else from hdeeprm.
"""
