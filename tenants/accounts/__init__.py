"""The account tree: accounts, their materialized paths, moves and suspension."""
