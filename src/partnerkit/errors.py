class PartnerError(Exception):
    """An error for the person running partnerkit: names the input and what was expected."""
