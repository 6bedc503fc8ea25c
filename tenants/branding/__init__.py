"""White-label branding per account, inherited down the tree, and logo files."""
