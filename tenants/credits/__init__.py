"""Prepaid credits: the append-only ledger, reservations, transfers, orders, prices."""
