"""Every error taxbridge raises, in one tree.

::

    ConfigError (ValueError)                 bad configuration; outside the root on purpose
    TaxBridgeError
    ├── InvalidFieldError (ValueError)       a model got a bad value: names field and value
    ├── InvalidTransition (ValueError)       an illegal final-tax-flag move
    ├── UnknownCompanyError (LookupError)    no engine company for an ERP company / item level 1
    ├── UnknownTransactionGroupError (LookupError)  a transaction group not defined (AV-NX2)
    ├── InvalidAddressError (ValueError)     a hard-error program met an invalid address
    ├── DocumentNotFoundError (LookupError)  no stored tax document with that code
    ├── LeaseLost                            a repost worker's claim ran out and was taken over
    ├── ConcurrentChange                     a document changed between a stage's read and write
    ├── AccountMissingError (LookupError)    no GL account (AV-GL) for a company and region
    ├── JournalError                         a journal cannot be generated or posted as asked
    ├── StoreError                           the store cannot be opened, read or written
    ├── EngineMismatch                       the store's documents were posted through other books
    ├── FileFormatError                      a file is not the CSV or XLSX its template asks for
    ├── CertificateNotFoundError (LookupError)  no certificate (or customer) with that id
    ├── NoCertificateService                 a certificate feature, and [certificates] service none
    ├── MailError                            the SMTP server could not be reached or refused
    └── BackendError                         a tax backend failed; carries backend, code, status
        ├── BackendUnavailable               timeout, connection, 429, 5xx    retryable, transient
        │   ├── MalformedResponse            the answer could not be read     retryable, transient
        │   ├── CircuitOpen                  failing fast after many failures retryable
        │   └── DeadlinePassed               the call's time budget is spent  retryable
        ├── AuthenticationFailed             credentials refused (401/403)    retryable
        ├── DocumentRejected (ValueError)    the engine refused the document: it needs a data fix
        ├── MissingAtEngine                  posted here, absent at the engine   retryable
        └── AlreadyCommitted                 the code is already committed at the engine

What may be tried again is a property of these classes alone: ``retryable`` (the unposted queue
tries the document again on its schedule; otherwise it waits for a fix) and ``transient`` (the
HTTP layer tries the same call again at once, within its budget). ``sent`` is per error: False
only when the request certainly never reached the engine.

A stage of :class:`~taxbridge.TaxBridge` never lets a ``BackendError`` escape: it degrades to the
offline table or flags the document U and queues it.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """The configuration is wrong; kept outside ``TaxBridgeError`` so nothing swallows it.

    ``key`` is the path of the bad value (``nexus[2].region`` in a file, ``NexusRegion.region``
    in code); ``field`` the attribute of the config class that refused it, if one did.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        key: str = "",
        value: Any = None,
        field: str = "",
    ):
        self.reason = message
        self.source = source
        self.key = key
        self.value = value
        self.field = field
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)

    @classmethod
    def refusing(
        cls, key: str, value: Any, reason: str, *, source: str = "", field: str = ""
    ) -> ConfigError:
        """The error for ``value`` at ``key``, shown as the config file would hold it (money
        and dates as their text): the one way every config check words a refusal."""
        return cls(f"{_shown(value)} {reason}", source=source, key=key, value=value, field=field)


def _shown(value: Any) -> str:
    """A value as a TOML file would hold it: money and dates as their text."""
    import datetime as dt
    from decimal import Decimal

    if isinstance(value, Decimal):
        return repr(str(value))
    if isinstance(value, dt.date):
        return repr(value.isoformat())
    return repr(value)


class TaxBridgeError(Exception):
    """Root of every error taxbridge raises at run time."""


class InvalidFieldError(TaxBridgeError, ValueError):
    """A value given to a model is not acceptable; the message names the field and the value."""

    def __init__(self, owner: str, field: str, value: Any, reason: str):
        self.owner = owner
        self.field = field
        self.value = value
        self.reason = reason
        shown = (
            f"{owner}.{field} {reason}" if value is None else f"{owner}.{field}: {value!r} {reason}"
        )
        super().__init__(shown)


def _flag_text(flag: object) -> str:
    """A flag as users know it: its letter (``U``), ``blank``, or ``none`` for no document."""
    return "none" if flag is None else str(flag)


class InvalidTransition(TaxBridgeError, ValueError):
    """A final-tax-flag change that the flag table does not allow; the message shows flag
    letters and, with ``reason``, says what is allowed."""

    def __init__(
        self,
        current: object,
        target: object,
        *,
        code: str = "",
        action: str = "",
        reason: str = "",
    ):
        self.current = current
        self.target = target
        self.code = code
        self.action = action
        self.reason = reason
        doc = f"{code}: " if code else ""
        if reason:
            message = f"{doc}{action or 'change'} refused: {reason}"
        else:
            what = f"{action}: " if action else ""
            message = (
                f"{doc}{what}final tax flag {_flag_text(current)} -> {_flag_text(target)} "
                "is not allowed"
            )
        super().__init__(message)


class UnknownCompanyError(TaxBridgeError, LookupError):
    """The ERP company (and item level 1) has no engine company code in the company map."""

    def __init__(self, company: str, item_level1: str = ""):
        self.company = company
        self.item_level1 = item_level1
        level = f" / item_level1={item_level1!r}" if item_level1 else ""
        super().__init__(
            f"company: {company!r}{level} has no engine company code in the company map"
        )


class UnknownTransactionGroupError(TaxBridgeError, LookupError):
    """The document names a transaction group that BNADS/AV-NX2 does not define."""

    def __init__(self, group: str):
        self.group = group
        super().__init__(f"transaction_group: {group!r} is not defined in transaction_groups")


class InvalidAddressError(TaxBridgeError, ValueError):
    """Address validation failed in a program that allows no override (TMSCRM/AV-DFN3)."""

    def __init__(self, field: str, program: str, reason: str):
        self.field = field
        self.program = program
        self.reason = reason
        super().__init__(f"{field}: invalid address for program {program!r}: {reason}")


class DocumentNotFoundError(TaxBridgeError, LookupError):
    """No tax document with that code is stored."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(f"code: no tax document {code!r} is stored")


class LeaseLost(TaxBridgeError):
    """A repost worker's lease on a queue entry ran out and another worker took (or settled) it;
    its result is not written, since the other worker's lookup-first repost owns the entry."""

    def __init__(self, code: str, holder: str, current: str | None):
        self.code = code
        self.holder = holder
        self.current = current
        now = f"now held by {current!r}" if current else "no longer open"
        super().__init__(f"{code}: the lease of {holder!r} ran out; the entry is {now}")


class StoreError(TaxBridgeError):
    """The store failed: it cannot be opened or written, or a read or write of it failed.
    ``path`` names the store; ``busy`` says another process held it too long (the same call
    may pass later)."""

    def __init__(self, message: str, *, path: str = "", busy: bool = False):
        self.path = path
        self.busy = busy
        super().__init__(f"store {path}: {message}" if path else f"store: {message}")


class ConcurrentChange(TaxBridgeError):
    """A document changed between a stage reading it and writing it (another process or server
    wrote it meanwhile); nothing was written."""

    def __init__(self, code: str, expected: str, found: str):
        self.code = code
        self.expected = expected
        self.found = found
        super().__init__(
            f"{code}: changed while this stage ran (it read {expected}, it is now {found}); "
            "nothing was written"
        )


class EngineMismatch(TaxBridgeError):
    """The store's documents were posted through other books than this bridge's engine (another
    engine, environment or account): posting, reposting, voiding and reconciling are refused, so
    a document never lands in the wrong books. Reading still works."""

    def __init__(self, action: str, stored: str, configured: str):
        self.action = action
        self.stored = stored
        self.configured = configured
        super().__init__(
            f"{action} refused: this store's documents were posted through {stored!r}, and the "
            f"configured engine is {configured!r}; use the store's engine, or move the store "
            "to this one on purpose with 'taxbridge store use-engine'"
        )


class AccountMissingError(TaxBridgeError, LookupError):
    """The GL accounts (BNADS/AV-GL) name no account for a company and region with tax."""

    def __init__(self, company: str, region: str, what: str = "liability_account"):
        self.company = company
        self.region = region
        self.what = what
        super().__init__(
            f"gl_accounts: no {what} for company {company!r}, region {region!r}; "
            "add a [[gl_accounts]] entry for it"
        )


class JournalError(TaxBridgeError):
    """A journal cannot be generated, regenerated or posted as asked (posted journals are
    locked; ranges of one company's journals may not overlap; an unknown journal); nothing
    was written."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"journal {key}: {reason}")


class FileFormatError(TaxBridgeError):
    """A file cannot be read or written as the template asks (not CSV or XLSX, no header row,
    openpyxl missing); ``path`` names it."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class BackendError(TaxBridgeError):
    """A tax backend failed.

    ``status`` is the HTTP status (None without one); ``error_code`` and ``number`` the engine's
    error name and number (AvaTax ``ErrorCodeId``); ``refers_to`` the field it names.
    """

    retryable = False
    """The same document may go through later without a fix: the queue retries it on schedule."""
    transient = False
    """The same call may go through in a moment: the HTTP layer retries it within its budget."""

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        code: str = "",
        status: int | None = None,
        error_code: str = "",
        refers_to: str = "",
        number: int | None = None,
        sent: bool = True,
    ):
        self.message = message
        self.backend = backend
        self.code = code
        self.status = status
        self.error_code = error_code
        self.refers_to = refers_to
        self.number = number
        self.sent = sent
        """False only when the request certainly never reached the engine (connection refused,
        circuit open, 429): then even a call that is not idempotent may be sent again, and a
        posting need not be looked up. Every other failure may have landed."""
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.error_code:
            number = f" {self.number}" if self.number is not None else ""
            parts.append(f"[{self.error_code}{number}]")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.refers_to:
            parts.append(f"refersTo={self.refers_to}")
        if self.code:
            parts.append(f"document={self.code}")
        if self.backend:
            parts.append(f"backend={self.backend}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, backend={self.backend!r}, "
            f"code={self.code!r}, status={self.status!r}, error_code={self.error_code!r}, "
            f"number={self.number!r}, refers_to={self.refers_to!r}, "
            f"retryable={self.retryable!r})"
        )


class BackendUnavailable(BackendError):
    """The engine could not be reached or answered 429/5xx; the same call may succeed later.

    ``retry_after`` is the wait in seconds the engine asked for (HTTP ``Retry-After``), if any.
    """

    retryable = True
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MalformedResponse(BackendUnavailable):
    """The engine answered, but not with what the contract promises (not JSON, fields missing).

    Retryable: for a posting the outcome is unknown, so the next attempt looks the code up first.
    """


class CircuitOpen(BackendUnavailable):
    """Not sent: the engine failed many calls in a row, so calls fail fast for a while and the
    run goes on (documents are queued) instead of waiting on every one. Not transient: trying
    again at once would only fail fast again."""

    transient = False


class DeadlinePassed(BackendUnavailable):
    """Not sent: the call's time budget (its deadline, timeouts included) was spent before
    this attempt could start. Not transient: the call is over."""

    transient = False


class AuthenticationFailed(BackendError):
    """The engine refused the credentials (401) or the permission (403).

    The document is fine, so a queued posting stays retryable: it goes through once the
    settings are fixed. The call itself is never retried.
    """

    retryable = True


class DocumentRejected(BackendError, ValueError):
    """The engine refused the document (bad address, unknown tax code): it needs a data fix.

    ``line`` is the document line the engine blamed (its ``Lines[...]`` reference, read by the
    backend that raised it), or None when it blamed the document as a whole.
    """

    def __init__(self, message: str, *, line: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.line = line


class AlreadyCommitted(BackendError):
    """The document code is already committed at the engine; look it up instead of re-posting."""


class MissingAtEngine(BackendError):
    """The engine does not have a document the store holds as posted (found by the engine
    reconciliation): it goes back to the queue, and the repost posts it."""

    retryable = True


class CertificateNotFoundError(TaxBridgeError, LookupError):
    """The certificate service has no certificate with that id (or no such customer)."""

    def __init__(self, what: str, value: str):
        self.what = what
        self.value = value
        super().__init__(f"no {what} {value!r} at the certificate service")


class NoCertificateService(TaxBridgeError):
    """A certificate feature was asked for, and ``[certificates] service`` is ``none``."""

    def __init__(self, action: str):
        self.action = action
        super().__init__(
            f"{action} needs a certificate service: set [certificates] service to "
            "'local' or 'avatax'"
        )


class MailError(TaxBridgeError):
    """The SMTP server could not be reached or refused the message: nothing was sent, and
    nothing is recorded as sent (the next run tries again)."""

    def __init__(self, message: str, *, recipient: str = ""):
        self.message = message
        self.recipient = recipient
        where = f" (to {recipient})" if recipient else ""
        super().__init__(f"{message}{where}")
