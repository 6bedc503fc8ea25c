"""Domain layer: Piccolo tables and the services that own the product's rules."""

import os

# Piccolo looks its engine up through this module (migrations, tables without db=). The one
# environment access outside tenants/settings.py: Piccolo itself reads PICCOLO_CONF, so the
# default must be in the environment before any table is imported, not in our settings.
os.environ.setdefault("PICCOLO_CONF", "tenants.piccolo_conf")
