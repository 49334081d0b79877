"""Training loops and the `python -m training.train` pipeline (see training.train.pipeline).

OMP_WAIT_POLICY=PASSIVE is set before torch loads: on this shared 2-core machine, busy-waiting OpenMP threads made
a training step ~15x slower whenever another process was using a core (measured 3.7 s vs 0.25 s per batch).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
