"""Reinforcement learning: the Gymnasium environment (``env``), the agent API (``agent``), the
algorithms (``agents``), training (``train``), experiments (``experiment``) and grids (``sweep``).

Imports downwards only: simulation, backends, inputs, common.
"""
