"""JSON API routes and the streaming transports."""
