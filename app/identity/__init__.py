"""Who is asking, and what they may do: API keys, sessions, tickets, channel policy, limits."""
