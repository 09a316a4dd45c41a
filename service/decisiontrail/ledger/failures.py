"""What the ledger can fail with. One tree; :mod:`decisiontrail.errors` maps it to HTTP."""

from __future__ import annotations


class LedgerError(Exception):
    """The ledger cannot do what was asked."""


class ConflictRetriesExhaustedError(LedgerError):
    """Other writers kept moving the head; the caller may retry later."""


class CommitOutcomeUnknownError(LedgerError):
    """A commit's outcome could not be learned (the store stayed unreachable): nothing is
    retried or answered as recorded or as not recorded."""


class InvalidTreeSizeError(LedgerError):
    """A tree size (or log index) the tenant's log does not have."""


class StoreCorruptedError(LedgerError):
    """The store holds something the ledger never wrote (a missing tile, a dangling index)."""


class IdempotencyKeyReusedError(LedgerError):
    """An Idempotency-Key already used with a different request body."""


class IdempotencyKeyInFlightError(LedgerError):
    """A request with the same Idempotency-Key is still being recorded."""


class LegalHoldError(LedgerError):
    """A legal hold is placed on the data subject."""


class TooManyStreamsError(LedgerError):
    """As many live streams are open as the service allows."""
