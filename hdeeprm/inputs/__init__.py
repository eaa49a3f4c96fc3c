"""Inputs: platforms (``hdeeprm.inputs.platform``) and workloads (``hdeeprm.inputs.workload``).

Reading, validating and converting what a user describes; nothing here simulates.
"""
