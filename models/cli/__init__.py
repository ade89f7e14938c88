"""`fieldline model ...`: one module per verb group, assembled in :mod:`models.cli.app`."""
