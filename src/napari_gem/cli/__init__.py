"""The ``napari-gem`` command line: launch napari, batch-segment, evaluate, benchmark."""
