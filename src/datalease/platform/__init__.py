"""The platform's own data: schemas, ingest into the source lake, curation, demo generator."""
