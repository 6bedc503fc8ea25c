"""One controller per resource: pages and their HTMX fragments."""
