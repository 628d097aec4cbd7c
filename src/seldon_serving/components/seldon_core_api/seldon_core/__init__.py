"""Seldon Serving's stand-in for the user-facing API of seldon-core 1.18 (installed only when
the real package is not): `user_model`, `flask_utils`, `metrics`, `utils`, `proto`."""

__version__ = "1.18.2+seldon-serving"
