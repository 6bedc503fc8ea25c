"""Messages: accepting sends, the outbox, status reports and inbound messages."""
