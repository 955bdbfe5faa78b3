"""The widget's panels, each a small group of fields with one job; ``widget.py`` assembles them."""
