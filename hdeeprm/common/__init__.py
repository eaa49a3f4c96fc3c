"""Foundation used by every layer: the error hierarchy and one-line error reporting, strict JSON
reading, seeding, the worker engines that run independent tasks in parallel, and the progress
bar of long runs.

Imports nothing else from hdeeprm.
"""
