"""Message templates, merge fields, segment counting and the composer."""
