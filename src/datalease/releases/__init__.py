"""Releases: compiled plans run by an engine over the curated lake, written as Delta tables."""
