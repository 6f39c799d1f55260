"""napari dock widgets and the viewer launcher: thin, they call the core, never the reverse."""
