"""Errors answered to calls: the error object on the wire, both ways (no I/O here).

A call answered with an error is an ordinary ACK whose only argument is a map with the
single key ``"$error"``::

    {"$error": {"code": "not_found", "message": "no user 7", "data": {"id": 7}}}

``code`` and ``message`` are strings; ``data`` is present only when there is some. A
successful ack is exactly the handler's return value, so plain Socket.IO clients see no
change, and any of them can tell an error by that shape. A handler whose return value
has that very shape would be mistaken for an error, so eventsock refuses to send one
(the caller gets an ``internal_error``).
"""

from __future__ import annotations

import traceback
from typing import Any, Final

from .exceptions import (
    InternalError,
    InvalidArguments,
    RateLimited,
    RemoteError,
    TooManyCalls,
    UnknownEvent,
)

__all__ = ["ERROR_KEY", "error_args", "is_error_object", "raise_for_error"]

#: The key of an error object.
ERROR_KEY: Final = "$error"

_BY_CODE: Final[dict[str, type[RemoteError]]] = {
    cls.default_code: cls
    for cls in (InvalidArguments, UnknownEvent, InternalError, RateLimited, TooManyCalls)
}


def is_error_object(value: Any) -> bool:
    """Whether ``value`` has the shape of an error object."""
    if type(value) is not dict or len(value) != 1:
        return False
    error = value.get(ERROR_KEY)
    return (
        type(error) is dict and type(error.get("code")) is str and type(error.get("message")) is str
    )


def error_args(exc: Exception, *, debug: bool = False) -> tuple[dict[str, Any]]:
    """The ack arguments that answer a call with ``exc``.

    A :class:`RemoteError` travels as it is; any other exception becomes an
    ``internal_error`` whose message says nothing of it, unless ``debug`` (then its
    type, message and traceback go along).
    """
    if isinstance(exc, RemoteError):
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.data is not None:
            error["data"] = exc.data
    elif debug:
        error = {
            "code": InternalError.default_code,
            "message": f"{type(exc).__name__}: {exc}",
            "data": {"traceback": "".join(traceback.format_exception(exc))},
        }
    else:
        error = {"code": InternalError.default_code, "message": "internal error"}
    return ({ERROR_KEY: error},)


def raise_for_error(args: tuple[Any, ...]) -> None:
    """Raise the :class:`RemoteError` an ack's arguments carry, if they carry one."""
    if len(args) == 1 and is_error_object(args[0]):
        error = args[0][ERROR_KEY]
        code = error["code"]
        cls = _BY_CODE.get(code, RemoteError)
        raise cls(error["message"], code=code, data=error.get("data"))
