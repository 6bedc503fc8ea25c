"""The audit trail: who changed what, in which account, before and after."""
