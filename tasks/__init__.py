"""Background work: Dramatiq broker setup, thin actors, provider gateways, simulator."""
