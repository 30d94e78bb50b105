"""The page's presentation: figures and helpers that app.py wires up. Not part of the library."""
