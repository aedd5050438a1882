"""JSON API: the platform's (events) and the partners' (forget list, acknowledgements)."""
