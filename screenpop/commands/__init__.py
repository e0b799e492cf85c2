"""Sub-commands of ``screenpop``, one module each.

A module here defines ``register(subparsers)``, which adds its parser(s) and
sets ``func`` to a function taking the parsed args and returning an exit
code.  Raise :class:`screenpop.cli.UsageError` or ``ConfigError`` for
mistakes a user can fix: they print as one line and exit 2.
"""
