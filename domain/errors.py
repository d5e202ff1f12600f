"""The families of domain errors; each aggregate module defines its own subclasses.

The API maps these families (not the individual classes) to HTTP status codes in one place.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class NotFoundError(DomainError):
    """The thing asked for does not exist, or is not visible to the caller."""


class ForbiddenError(DomainError):
    """The caller may see the thing but may not do this to it."""


class ConflictError(DomainError):
    """The request clashes with the current state."""


class PreconditionFailedError(DomainError):
    """The caller's expectation of the current version does not hold."""


class InvalidError(DomainError):
    """The request itself is malformed; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
