"""Product features written against the bus and the store, never against a transport."""
