"""Numbers, sender IDs and the keywords claimed on numbers."""
