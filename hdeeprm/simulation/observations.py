"""HeteroEnv's observation layout, declared once for both of its implementations: the
readable one (``hdeeprm.rl.env.ObservationBuilder``) and the compiled one
(``hdeeprm.simulation.fastsim.envk``), which must give the same vector bit for bit."""

from __future__ import annotations

import numpy as np

from hdeeprm.inputs.platform.model import POWER_FACTORS, THROTTLED_SPEED_FACTOR

#: Observation kinds; the compiled code knows them by their index here.
OBSERVATIONS = ("normal", "small", "minimal")
NORMAL, SMALL, MINIMAL = (OBSERVATIONS.index(kind) for kind in ("normal", "small", "minimal"))

#: Per core in a "normal" observation, by p-state: its share of full speed (idle cores do no
#: work: 0) and of full power (the platform model's power factors).
SPEED_FRACTION = np.array([1.0, THROTTLED_SPEED_FACTOR, 0.0, 0.0], dtype=np.float32)
POWER_FRACTION = np.array(POWER_FACTORS, dtype=np.float32)

#: The queue's statistics: these percentiles of each of the four requests, plus one.
PERCENTILES = (0, 25, 50, 75, 100)
QUEUE_FEATURES = 4 * len(PERCENTILES) + 1
