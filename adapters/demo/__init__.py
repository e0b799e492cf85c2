"""The demo business systems: three separate databases (sales, billing,
support) with the untidy data real companies have, and their seed.

``seed_demo`` fills them, ``demo_sources`` gives the matching ``[[sources]]``
settings for any DSNs (``config/demo.toml`` carries the SQLite ones).
"""
from adapters.demo.queries import DEFAULT_DSNS, SYSTEMS, demo_sources
from adapters.demo.seed import SeedError, SeedProgress, SeedResult, seed_demo

__all__ = ["DEFAULT_DSNS", "SYSTEMS", "SeedError", "SeedProgress", "SeedResult", "demo_sources", "seed_demo"]
