"""Who may do what: users, memberships, roles, teams, overrides, keys, sessions."""
