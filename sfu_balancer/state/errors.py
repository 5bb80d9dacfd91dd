"""Errors of the state stores, importable without the optional redis package."""


class StoreUnavailable(Exception):
    """The configured store cannot be reached or used (the balancer exits non-zero)."""
