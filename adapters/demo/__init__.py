"""The demo business systems: three separate databases (sales, billing,
support) with the untidy data real companies have, and their seed.

``seed_demo`` fills them (``ensure_seeded`` only when they are not there
yet), ``demo_sources`` gives the matching ``[[sources]]`` settings for any
DSNs (``config/demo.toml`` carries the SQLite ones).
"""
from adapters.demo.queries import DEFAULT_DSNS, SYSTEMS, demo_sources
from adapters.demo.seed import SeedError, SeedExists, SeedProgress, SeedResult, ensure_seeded, seed_demo

__all__ = ["DEFAULT_DSNS", "SYSTEMS", "SeedError", "SeedExists", "SeedProgress", "SeedResult", "demo_sources",
           "ensure_seeded", "seed_demo"]
