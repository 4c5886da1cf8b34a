"""geowarn: monitoring and early warning of geological hazards and the environment.

The package is organised by capability (``admin``, ``inventory``, ``io``, ``auth``, ``api``,
``demo``); each capability keeps its domain logic free of I/O and wraps it in storage and HTTP
adapters.
"""

__version__ = "0.1.0"
