"""Reports: usage roll-ups kept as messages change status, and the finance spend report."""
