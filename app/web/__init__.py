"""The web layer: HTTP routes, the four transports and the pages. No business rules live here."""
