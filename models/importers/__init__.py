"""Readers for each dataset format; each returns a :class:`models.datasets.Dataset`."""
