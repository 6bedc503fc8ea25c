"""Opt-in and opt-out per phone and channel group, inherited down the tree."""
