"""attrs converters and validators of the models: each error names ``Class.field`` and the value
as it was given (:class:`~taxbridge.errors.InvalidFieldError`).

Scalar fields use ``attrs.Converter(..., takes_self=True, takes_field=True)``, which both converts
and checks, so the value reported is the caller's own. mypy's attrs plugin accepts only named
functions as converters, so under ``TYPE_CHECKING`` each converter is declared as one (taking
``Any``, returning the field's type). Structural checks (instances, sequences, enumerations) are
validators, which attrs hands the attribute and the instance.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from taxbridge.errors import InvalidFieldError
from taxbridge.money import LIMIT, to_decimal

Check = Callable[[Any, str, str], Any]
"""(value, owner class name, field name) -> the value to store; raises InvalidFieldError."""


def _owner(instance: object) -> str:
    return type(instance).__name__


Field: TypeAlias = "attrs.Attribute[Any]"


def _slow(check: Check, value: Any, instance: object, field: Field) -> Any:
    return check(value, _owner(instance), field.name)


# Every stage maps every line, so each converter tests the plain case inline (one call) and
# hands anything else to its full check, which converts it or raises naming the field.


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters no text field may hold (tab, CR and LF are whitespace, and allowed): a
NUL is refused by PostgreSQL and kept by SQLite, so the model refuses them for every store."""


def _plain(value: str) -> bool:
    """No control character (``isprintable`` first: it is true for nearly every value)."""
    return value.isprintable() or CONTROL.search(value) is None


def _text_c(value: str, instance: object, field: Field) -> Any:
    if value.__class__ is str and _plain(value):
        return value.strip()
    return _slow(_text, value, instance, field)


def _code_c(value: str, instance: object, field: Field) -> Any:
    if value.__class__ is str and _plain(value):
        return value.strip().upper()
    return _slow(_code, value, instance, field)


def _required_c(value: str, instance: object, field: Field) -> Any:
    if value.__class__ is str and _plain(value) and (stripped := value.strip()):
        return stripped
    return _slow(_required_text, value, instance, field)


def _optional_text_c(value: str | None, instance: object, field: Field) -> Any:
    if value is None:
        return None
    if value.__class__ is str and _plain(value):
        return value.strip() or None
    return _slow(_optional_text, value, instance, field)


def _money_c(value: Decimal | int | str, instance: object, field: Field) -> Any:
    if value.__class__ is Decimal and value.is_finite() and -LIMIT < value < LIMIT:
        return value
    return _slow(_money, value, instance, field)


def _optional_money_c(value: Decimal | int | str | None, instance: object, field: Field) -> Any:
    if value is None or (
        value.__class__ is Decimal and value.is_finite() and -LIMIT < value < LIMIT
    ):
        return value
    return _slow(_optional_money, value, instance, field)


def _non_negative_c(value: Decimal | int | str, instance: object, field: Field) -> Any:
    if value.__class__ is Decimal and value.is_finite() and 0 <= value < LIMIT:
        return value
    return _slow(_non_negative, value, instance, field)


def _date_c(value: dt.date | str, instance: object, field: Field) -> Any:
    if value.__class__ is dt.date:
        return value
    return _slow(_date, value, instance, field)


def _optional_date_c(value: dt.date | str | None, instance: object, field: Field) -> Any:
    if value is None or value.__class__ is dt.date:
        return value
    return _slow(_optional_date, value, instance, field)


def _flag_c(value: bool, instance: object, field: Field) -> Any:
    if value is True or value is False:
        return value
    return _slow(_flag, value, instance, field)


def _line_number_c(value: int, instance: object, field: Field) -> Any:
    if value.__class__ is int and value >= 1:
        return value
    return _slow(_line_number, value, instance, field)


def _subline_c(value: int, instance: object, field: Field) -> Any:
    if value.__class__ is int and value >= 0:
        return value
    return _slow(_subline, value, instance, field)


def _texts(value: Any, owner: str, name: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else as_tuple(value)
    if not isinstance(items, tuple):
        raise InvalidFieldError(owner, name, value, "must be a string or a sequence of strings")
    kept: dict[str, None] = {}
    for index, item in enumerate(items):
        stripped = _text(item, owner, f"{name}[{index}]")
        if stripped:
            kept[stripped] = None
    return tuple(kept)


def _texts_c(value: str | Iterable[str], instance: object, field: Field) -> Any:
    return _slow(_texts, value, instance, field)


def _converter(convert: Callable[[Any, object, Field], Any]) -> Any:
    return attrs.Converter(convert, takes_self=True, takes_field=True)


def _text(value: Any, owner: str, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(owner, name, value, "must be a string")
    found = CONTROL.search(value)
    if found is not None:
        raise InvalidFieldError(
            owner, name, value, f"holds a control character ({found.group()!r})"
        )
    return value.strip()


def _code(value: Any, owner: str, name: str) -> str:
    return _text(value, owner, name).upper()


def _required_text(value: Any, owner: str, name: str) -> str:
    text = _text(value, owner, name)
    if not text:
        raise InvalidFieldError(owner, name, value, "must not be empty")
    return text


def _optional_text(value: Any, owner: str, name: str) -> str | None:
    if value is None:
        return None
    return _text(value, owner, name) or None


def _money(value: Any, owner: str, name: str) -> Decimal:
    return to_decimal(value, owner, name)


def _optional_money(value: Any, owner: str, name: str) -> Decimal | None:
    return None if value is None else _money(value, owner, name)


def _non_negative(value: Any, owner: str, name: str) -> Decimal:
    number = _money(value, owner, name)
    if number < 0:
        raise InvalidFieldError(owner, name, value, "must not be negative")
    return number


def _date(value: Any, owner: str, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)  # a str; anything else raises TypeError
    except (TypeError, ValueError):
        raise InvalidFieldError(owner, name, value, "is not a date (YYYY-MM-DD)") from None


def _optional_date(value: Any, owner: str, name: str) -> dt.date | None:
    return None if value is None else _date(value, owner, name)


def _flag(value: Any, owner: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidFieldError(owner, name, value, "must be True or False")
    return value


def _whole(value: Any, owner: str, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(owner, name, value, "must be an int")
    if value < minimum:
        raise InvalidFieldError(owner, name, value, f"must be >= {minimum}")
    return value


def _line_number(value: Any, owner: str, name: str) -> int:
    return _whole(value, owner, name, 1)


def _subline(value: Any, owner: str, name: str) -> int:
    return _whole(value, owner, name, 0)


if TYPE_CHECKING:

    def text(value: str) -> str:
        """A string, stripped."""

    def code(value: str) -> str:
        """A code: a string, stripped and upper-cased (``pa`` is ``PA``)."""

    def required_text(value: str) -> str:
        """A string, stripped, not empty."""

    def optional_text(value: str | None) -> str | None:
        """A string, stripped; blank is None."""

    def texts(value: str | Iterable[str]) -> tuple[str, ...]:
        """One string or a sequence of them: each stripped; blanks and repeats dropped, the
        order kept."""

    def money(value: Decimal | int | str) -> Decimal:
        """An exact number: Decimal, int or numeric string (never a float)."""

    def optional_money(value: Decimal | int | str | None) -> Decimal | None:
        """Money or None."""

    def non_negative(value: Decimal | int | str) -> Decimal:
        """Money that is not negative."""

    def date(value: dt.date | str) -> dt.date:
        """A date, or a ``YYYY-MM-DD`` string."""

    def optional_date(value: dt.date | str | None) -> dt.date | None:
        """A date or None."""

    def flag(value: bool) -> bool:
        """True or False (nothing truthy)."""

    def line_number(value: int) -> int:
        """A whole number >= 1."""

    def subline(value: int) -> int:
        """A whole number >= 0."""

else:
    text = _converter(_text_c)
    code = _converter(_code_c)
    required_text = _converter(_required_c)
    optional_text = _converter(_optional_text_c)
    texts = _converter(_texts_c)
    money = _converter(_money_c)
    optional_money = _converter(_optional_money_c)
    non_negative = _converter(_non_negative_c)
    date = _converter(_date_c)
    optional_date = _converter(_optional_date_c)
    flag = _converter(_flag_c)
    line_number = _converter(_line_number_c)
    subline = _converter(_subline_c)


def as_tuple(value: Any) -> tuple[Any, ...]:
    """A sequence as a tuple; anything else unchanged, for :func:`tuple_of` to refuse."""
    if isinstance(value, tuple):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
        return tuple(value)
    return value  # type: ignore[no-any-return]


def instance_of(kind: type[Any], *, optional: bool = False) -> Callable[..., None]:
    """A validator: the value is a ``kind`` (or None, when ``optional``)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, kind):
            reason = "is missing" if value is None else f"is not a {kind.__name__}"
            raise InvalidFieldError(_owner(instance), attribute.name, value, reason)

    return check


def tuple_of(kind: type[Any], *, min_items: int = 0) -> Callable[..., None]:
    """A validator: a tuple of ``kind`` items, at least ``min_items`` of them."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        owner, name = _owner(instance), attribute.name
        if not isinstance(value, tuple):
            raise InvalidFieldError(owner, name, value, "must be a sequence")
        for index, item in enumerate(value):
            if not isinstance(item, kind):
                raise InvalidFieldError(
                    owner, f"{name}[{index}]", item, f"is not a {kind.__name__}"
                )
        if len(value) < min_items:
            raise InvalidFieldError(owner, name, value, f"needs at least {min_items} item(s)")

    return check


def enum_member(kind: type[enum.Enum], value: Any) -> Any:
    """For a converter: the member of ``kind`` from itself or its value; anything else
    unchanged, for :func:`member_of` to refuse."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        return value


def member_of(kind: type[enum.Enum]) -> Callable[..., None]:
    """A validator: a member of ``kind``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            allowed = ", ".join(repr(member.value) for member in kind)
            raise InvalidFieldError(
                _owner(instance), attribute.name, value, f"is not one of {allowed}"
            )

    return check
