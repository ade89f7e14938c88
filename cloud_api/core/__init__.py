"""Core pieces of the cloud API: configuration."""
