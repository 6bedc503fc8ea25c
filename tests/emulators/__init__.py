"""Local emulators of the SMS providers the portal talks to (see each module)."""
