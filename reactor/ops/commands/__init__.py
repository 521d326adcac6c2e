"""Subcommands of ``reactor`` kept in modules of their own.

Each module exposes ``register(subparsers)``, which adds its parser to ``reactor``'s and sets
its command function as the parser's ``run`` default; :mod:`reactor.entrypoints.cli` calls it.
"""
