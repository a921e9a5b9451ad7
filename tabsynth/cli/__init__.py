"""`tabsynth` command line. Each module adds its commands to the one group; explicit imports, no discovery."""

from tabsynth.cli import inspect_cmds, model_cmds, release_cmds, review_cmds  # noqa: F401  (registers commands)
from tabsynth.cli.app import cli, main

__all__ = ["cli", "main"]
