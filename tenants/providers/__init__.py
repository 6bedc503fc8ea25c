"""Provider integrations, their field catalogue, channel routing and callbacks."""
