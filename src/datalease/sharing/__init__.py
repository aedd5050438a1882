"""Delivery to partners: the Delta Sharing protocol server — catalogue and history floor, released
transitions as a redacted change feed, signed file URLs, metering, purge. Reads Delta through
deltalake; knows no pages."""
