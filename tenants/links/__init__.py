"""Tracked short links: URLs in sent messages replaced by codes, and their clicks."""
