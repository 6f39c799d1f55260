"""Keep Python's own pauses out of the moments the radiologist is watching.

Two things froze the viewer for 200-400 ms while a job ran, measured with
``tumorseg bench-gui`` and a stack sampler:

* **Full garbage collections.** A napari + torch process holds millions of
  long-lived objects; every generation-2 collection walks all of them with
  the GIL held, on whichever thread triggered it (the GUI thread or the
  worker, which then blocks the GUI thread too). ``settle_heap`` collects
  once and then *freezes* the survivors (``gc.freeze``), so later
  collections only walk what was made since. It runs when a case opens, a
  moment the user already expects to wait; it first unfreezes, so the
  previous case's garbage is still collected (nothing leaks across cases).
* **torch's lazy imports.** The first optimizer a process builds imports
  ``torch._dynamo`` (about a second of import work under the GIL). Doing it
  when the dock is built moves that second out of the first "Adapt model".
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect everything collectable now, then exempt the survivors from later full collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def warm_up_torch() -> None:
    """Import what torch would otherwise import on the first adaptation step."""
    from ..adapt.training import warm_up_optimizers

    warm_up_optimizers()
