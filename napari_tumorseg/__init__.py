"""napari-tumorseg: brain-tumour segmentation that adapts from a few corrections.

The package is layered (imports go one way only)::

    io, synth -> models -> inference -> adapt -> experiments -> cli
                                                  \\-> _qt (napari widgets)

Everything except ``_qt`` and the ``_reader``/``_writer``/``_sample_data``
adapters is free of Qt and napari.
"""

import os

# Idle OpenMP threads of torch sleep instead of spinning. libgomp reads this once, when torch
# is first imported, so it is set here, before any module of the package can import torch
# (it was set in ``models`` alone, and ``tumorseg bench-adapt`` imported torch first through
# ``adapt``). On a CPU shared with other work, spinning threads steal the cores the busy ones
# need: `tumorseg bench` on 2 busy cores took 13 s per volume with passive waiting and 58-65 s
# without; `tumorseg bench-adapt --threads 2` at load 4, 84 s (31 s of CPU) against 169 s
# (89 s of CPU). Idle, the cost is a few microseconds per parallel region. An explicit
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
