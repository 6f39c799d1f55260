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
# (89 s of CPU). An explicit setting wins.
#
# But sleeping at once (libgomp's spin count is 0 under PASSIVE) makes every parallel region
# wake its threads through the kernel, and adaptation runs thousands of small ones. A short spin
# of 1000 rounds (microseconds) before sleeping catches the next region: on 2 idle cores of an
# EPYC VM `bench-adapt` took 10.9 s against 16.2 s at spin 0, and beside two busy processes
# 23.2 s against 31.1 s (medians of 3, interleaved). 10000 rounds was as fast idle but, beside
# busy processes, doubled the time in 3 runs of 5 (2026-12-02, docs/results/openmp-spin).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

__version__ = "0.1.0"
