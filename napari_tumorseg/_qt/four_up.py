"""All of a case's sequences at once: napari's grid mode, one cell per sequence, the segmentation over each.

napari's grid puts ``stride`` consecutive layers in each cell, so the layers
are ordered in pairs (image, labels), the first pair top left. The first
cell's labels layer is the editable Segmentation layer; the other cells get a
read-only labels layer that shares its array and is repainted whenever it is,
so a stroke or a prompt shows in all four cells. napari's own mouse and
cursor work in every cell (they share one set of world coordinates), and the
slider moves all four. Turning it off removes the shared overlays and shows
one sequence at a time again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import napari

    from .layers import PluginLayers

OVERLAY_PREFIX = "Segmentation on "


class FourUpView:
    """The grid of the case's image layers, each with the segmentation over it.

    Args:
        viewer: the napari viewer.
        layers: the plugin's layers (its images and Segmentation layer; the overlays join them).
    """

    def __init__(self, viewer: napari.Viewer, layers: PluginLayers) -> None:
        self.viewer, self.layers = viewer, layers
        self.enabled = False
        self._overlays: list[Any] = []
        self._source: Any = None

    def show(self, on: bool) -> None:
        """Turn the four-up view on or off (again after a new case opened: the layers are new)."""
        self._tear_down()
        self.enabled = bool(on)
        images = self.layers.image_layers()
        segmentation = self.layers.segmentation(create=False)
        grid = self.viewer.canvas.grid
        if not on or not images or segmentation is None:
            grid.enabled = False
            grid.stride = 1
            for index, image in enumerate(images):
                image.visible = index == 0
            if images:
                self.viewer.reset_view()
            return
        pairs = [(images[0], segmentation)]
        for image in images[1:]:
            overlay = self.viewer.add_labels(
                segmentation.data, name=f"{OVERLAY_PREFIX}{image.name}", scale=segmentation.scale,
                colormap=segmentation.colormap, opacity=segmentation.opacity, metadata=dict(segmentation.metadata),
            )
            overlay.editable = False
            self.layers.adopt(overlay)
            self._overlays.append(overlay)
            pairs.append((image, overlay))
        self._order([layer for pair in pairs for layer in pair])
        for image in images:
            image.visible = True
        segmentation.visible = True
        self._follow(segmentation)
        grid.stride = 2
        grid.shape = (2, 2) if len(pairs) == 4 else (-1, -1)
        grid.enabled = True
        self.viewer.reset_view()  # the camera framed one image; now it frames the grid of four
        self.viewer.layers.selection.active = segmentation

    def _order(self, wanted: list[Any]) -> None:
        """Put ``wanted`` at the bottom of the layer list, in that order (napari's grid fills cells from there)."""
        for target, layer in enumerate(wanted):
            source = self.viewer.layers.index(layer)
            if source != target:
                self.viewer.layers.move(source, target)

    def _follow(self, segmentation: Any) -> None:
        self._source = segmentation
        segmentation.events.set_data.connect(self._repaint)
        segmentation.events.paint.connect(self._repaint)
        segmentation.events.data.connect(self._replaced)

    def _repaint(self, event=None) -> None:
        for overlay in self._overlays:
            if overlay in self.viewer.layers:
                overlay.refresh()

    def _replaced(self, event=None) -> None:
        for overlay in self._overlays:
            if overlay in self.viewer.layers:
                overlay.data = self._source.data

    def _tear_down(self) -> None:
        if self._source is not None:
            for emitter, slot in ((self._source.events.set_data, self._repaint),
                                  (self._source.events.paint, self._repaint),
                                  (self._source.events.data, self._replaced)):
                emitter.disconnect(slot)
            self._source = None
        for overlay in self._overlays:
            self.layers.release(overlay)
        self._overlays.clear()
