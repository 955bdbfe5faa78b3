"""The stroke room: refining a prompt's mask from strokes and example boxes.

:class:`StrokeRefiner` (made from an encoded image on first use, owning its caches) runs the
pixel stage (:mod:`.pixels`, :mod:`.classifier`, :mod:`.detail` for tiled images) and the
object stage (:mod:`.objects`, :mod:`.object_labels`); :class:`RefineOptions` are its settings.
"""

from .object_labels import RefineOptions
from .refiner import StrokeRefiner

__all__ = ["RefineOptions", "StrokeRefiner"]
