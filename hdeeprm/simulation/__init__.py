"""The simulation: what Batsim does, in process.

- ``engine``: the SimPy event core (jobs, decisions, Batsim's grouping and clock), with
  ``simgrid_steps`` (SimGrid's step timing), ``kernels`` (numba helpers) and ``intervals``.
- ``resources``: the HDeepRM heterogeneity layer (cores, memory, bandwidth, p-states, energy).
- ``keys`` and ``policies``: job and core orderings, and the classic queue scheduler.
- ``objectives`` and ``metrics``: what a schedule costs; ``outputs``: Batsim's CSV files.
- ``replay``: re-simulating a recorded Batsim transcript.
- ``fastsim``: the compiled event loop, the same semantics for classic policies and HeteroEnv.

Imports only ``hdeeprm.common`` and ``hdeeprm.inputs``.
"""
