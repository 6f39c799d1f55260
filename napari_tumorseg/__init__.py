"""napari-tumorseg: brain-tumour segmentation that adapts from a few corrections.

The package is layered (imports go one way only)::

    io, synth -> models -> inference -> adapt -> experiments -> cli
                                                  \\-> _qt (napari widgets)

Everything except ``_qt`` and the ``_reader``/``_writer``/``_sample_data``
adapters is free of Qt and napari.
"""

__version__ = "0.1.0"
