"""Real Batsim as a backend: file export, protocol messages, transport, process, simulator.

Needs the ``batsim`` extra (pyzmq) and the ``batsim`` executable (Batsim 4) for real runs.
"""

from hdeeprm.backends.batsim.export import platform_xml, workload_json, write_platform_xml, write_workload_json
from hdeeprm.backends.batsim.process import BatsimProcess, find_batsim
from hdeeprm.backends.batsim.simulator import BatsimInputs, BatsimSimulator, ProcessLauncher

__all__ = ["BatsimInputs", "BatsimProcess", "BatsimSimulator", "ProcessLauncher", "find_batsim",
           "platform_xml", "workload_json", "write_platform_xml", "write_workload_json"]
