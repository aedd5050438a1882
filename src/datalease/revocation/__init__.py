"""Revocation: consent changes and platform events become per-agreement deletes and forget entries."""
