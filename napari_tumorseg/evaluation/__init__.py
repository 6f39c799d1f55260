"""Judge segmenters on a set of cases, real or synthetic, with or without reference masks.

- :mod:`.scoring`: one model's labels on one case: Dice/HD95 where the
  reference has the region, volumes (ml) and connected components always.
- :mod:`.summary`: every model's results and their honest summary.
- :mod:`.run`: the generator behind ``tumorseg evaluate``.
- :mod:`.figures`: representative slices with the predictions overlaid.
- :mod:`.report`: the command's text.
- :mod:`.realdata`: where the development set of real cases lives.

Layer: above ``inference`` and ``training`` (it reuses the latter's
``without_modalities``), below ``cli``. Heavy imports stay inside functions.
"""
