"""The napari plugin: dock widget, sample data, reader and writer of napari-gem.

Modules, one job each: :mod:`.widget` (fields and buttons), :mod:`.controller`
(runs, layers, re-draw, export), :mod:`.runner` (the worker's generator),
:mod:`.planes` (what the model sees), :mod:`.layers` (output layers),
:mod:`.cache` (model and encodings kept between runs), :mod:`.download` (weights
with progress), :mod:`.settings`, :mod:`.samples`, :mod:`.reader`, :mod:`.writer`,
:mod:`.launch`. Importing this package imports neither Qt nor napari.
"""
