"""Read-only views: where a person's data went, compliance with the deletion SLA (and, later, the
public transparency report). Nothing here writes."""
