"""Contacts, tags, lists, CSV imports."""
