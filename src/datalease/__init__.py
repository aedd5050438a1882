"""datalease: license a social platform's user data to AI partners, honestly and fast."""

__version__ = "0.1.0"
