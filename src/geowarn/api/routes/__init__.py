"""Route modules, one per resource; ``app.py`` includes them under ``/api``."""
