"""Rich messages: WhatsApp templates, the customer service window, RCS cards."""
