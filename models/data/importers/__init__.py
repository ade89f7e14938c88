"""Readers for each dataset format; each returns a :class:`models.data.datasets.Dataset`."""
