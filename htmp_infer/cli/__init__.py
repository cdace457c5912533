"""The command line, ``htmp-infer``: thin subcommands over the public API.

Every subcommand validates its arguments and outputs before any work, reports bad
input in one line with exit status 2, and writes atomically.
"""

from htmp_infer.cli.app import main

__all__ = ["main"]
