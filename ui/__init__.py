"""Templates and static files (data only)."""
