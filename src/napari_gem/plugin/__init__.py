"""The napari plugin: dock widget, sample data, reader and writer of napari-gem.

Modules, one job each: :mod:`.widget` (fields and buttons), :mod:`.session` (the
latest run, caches and signals, without Qt), :mod:`.controller` (runs to layers),
:mod:`.redraw` and :mod:`.exporting` (services), :mod:`.runner` (the worker's generator),
:mod:`.planes` (what the model sees), :mod:`.layers` (output layers),
:mod:`.cache` (model and encodings kept between runs), :mod:`.download` (weights
with progress), :mod:`.settings`, :mod:`.samples`, :mod:`.reader`, :mod:`.writer`,
:mod:`.launch`. Importing this package imports neither Qt nor napari.
"""
