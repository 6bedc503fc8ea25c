"""Domain layer: Piccolo tables and the services that own the product's rules."""

import os

# Piccolo looks its engine up through this module (migrations, tables without db=).
os.environ.setdefault("PICCOLO_CONF", "tenants.piccolo_conf")
