"""FieldLine: the wire contract, shared config loading and the ``fieldline`` command line."""

__version__ = "0.1.0"
