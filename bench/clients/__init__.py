"""The load generator's clients, one module per transport; `subscribe` connects a reader of either
streaming transport, `publishers` paces events, `polling` says how each server is polled.

Each subscriber hands `(seq, sent)` of every event to its `track.Sub`; the receive time is read once
per network read, not per event, so the hot path is: parse the frame, two comparisons, one append.
"""
