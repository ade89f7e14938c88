"""Procedural synthetic scene generators."""
