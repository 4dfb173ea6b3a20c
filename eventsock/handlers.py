"""The handler registry shared by Server and Client, and the Namespace base class.

A handler's signature is checked when it is registered, so a handler that can never
receive its event is an error at import time. At dispatch, the number of arguments that
arrived is compared with the bounds computed here; a handler is never retried after a
``TypeError``.
"""

from __future__ import annotations

import collections.abc
import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final, TypeVar, overload

from .convert import Converter, Mismatch, converter_for, describe, encoder_for
from .exceptions import InvalidArguments, InvalidHandler, RemoteError
from .packets import STREAM_EVENTS

__all__ = ["CATCH_ALL", "Handler", "HandlerRegistry", "Namespace"]

logger = logging.getLogger("eventsock")

F = TypeVar("F", bound=Callable[..., Any])

#: The event name of a catch-all handler, called for events with no handler of their own.
CATCH_ALL: Final = "*"

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered function with what its signature accepts after the fixed leading
    parameters (the session on the server, the event name for catch-alls), and, for a
    typed handler, how its arguments are converted and its result encoded."""

    func: Callable[..., Any]
    is_async: bool
    min_args: int
    max_args: int | None  # None: takes *args
    #: (name, annotation, converter) per positional parameter after the leading ones;
    #: None when no parameter is annotated with anything to check
    params: tuple[tuple[str, Any, Converter | None], ...] | None = None
    #: the converter of each extra argument taken by an annotated ``*args``
    rest: tuple[str, Any, Converter | None] | None = None
    #: turns the return value into msgpack-ready data (dataclasses, models), or None
    encode: Callable[[Any], Any] | None = None
    #: the largest message (bytes) the event is accepted in, or None
    max_payload: int | None = None
    #: how many calls of this async handler may run at once, or None
    concurrency: int | None = None
    #: the credit granted to streams passed as arguments (uploads), or None (default)
    window: int | None = None
    #: the positions of the parameters annotated ``AsyncIterator[...]``: the ones that
    #: take a stream passed as an argument (an upload)
    uploads: tuple[int, ...] = ()

    def convert(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The event's arguments converted to the handler's annotations.

        Raises:
            InvalidArguments: an argument does not fit its annotation.
        """
        params = self.params or ()
        out = list(args)
        for index, value in enumerate(args):
            if index < len(params):
                name, annotation, convert = params[index]
            elif self.rest is not None:
                name, annotation, convert = self.rest
            else:
                break
            if convert is None:
                continue
            try:
                out[index] = convert(value)
            except Mismatch as exc:
                raise InvalidArguments(
                    f"argument {name!r}{exc.path}: {exc.reason}",
                    data={
                        "argument": name,
                        "path": exc.path,
                        "expected": describe(annotation),
                        "reason": exc.reason,
                    },
                ) from None
        return tuple(out)

    def accepts(self, count: int) -> bool:
        """Whether ``count`` event arguments fit the signature."""
        return self.min_args <= count and (self.max_args is None or count <= self.max_args)

    def describe(self) -> str:
        """The accepted argument count in words, for error messages."""
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.max_args == self.min_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


def make_handler(
    func: Callable[..., Any],
    *,
    leading: int,
    what: str,
    typed: bool = False,
    stream: bool = False,
) -> Handler:
    """Check ``func``'s signature and compute its argument bounds.

    Args:
        func: the user's function (sync or async).
        leading: how many positional parameters come before the event's arguments.
        what: how to name the handler in an error, for example ``"server handler 'chat'"``.
        typed: whether to build conversion plans from the annotations (event
            handlers; lifecycle handlers take what the protocol gives them).
        stream: whether ``func`` is a stream's async generator function.

    Raises:
        InvalidHandler: ``func`` is not callable, or cannot take the leading parameters,
            or has required keyword-only parameters.
    """
    if not callable(func):
        raise InvalidHandler(f"{what}: {func!r} is not callable")
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise InvalidHandler(f"{what}: cannot read the signature of {func!r}") from exc
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    required_kw = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    name = getattr(func, "__qualname__", repr(func))
    if required_kw:
        raise InvalidHandler(
            f"{what}: {name} has required keyword-only parameters {required_kw}; "
            "event arguments are passed positionally"
        )
    if len(positional) < leading and not var_positional:
        raise InvalidHandler(
            f"{what}: {name} must take at least {leading} positional parameter(s)"
            + (" (the session first)" if leading else "")
        )
    required = sum(1 for p in positional if p.default is inspect.Parameter.empty)
    max_args = None if var_positional else len(positional) - leading
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - objects with an async __call__
    )
    if inspect.isasyncgenfunction(func) != stream:
        raise InvalidHandler(
            f"{what}: {name} is an async generator, not a handler (register it as a stream)"
            if not stream
            else f"{what}: {name} must be an async generator function (with yield)"
        )
    handler = Handler(func, is_async, max(0, required - leading), max_args)
    if not typed:
        return handler
    # Conversion plans, built once here: at dispatch only the converters run. Only
    # the annotations of the event's parameters and of the result are read, so the
    # leading ones (the session) may name anything.
    star = next((p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    wanted = [p.name for p in positional[leading:]] + ([star.name] if star else []) + ["return"]
    hints = _hints(func, wanted, what)
    plan = []
    try:
        for param in positional[leading:]:
            annotation = hints.get(param.name, Any)
            plan.append((param.name, annotation, converter_for(annotation)))
        rest = None
        if star is not None and star.name in hints:
            rest = (star.name, hints[star.name], converter_for(hints[star.name]))
        encode = encoder_for(hints["return"]) if "return" in hints else None
    except TypeError as exc:
        raise InvalidHandler(f"{what}: {name}: {exc}") from None
    if all(convert is None for _, _, convert in plan) and (rest is None or rest[2] is None):
        return replace(handler, encode=encode) if encode is not None else handler
    uploads = tuple(
        index
        for index, (_, annotation, _) in enumerate(plan)
        if typing.get_origin(annotation) in _STREAM_ORIGINS
    )
    return replace(handler, params=tuple(plan), rest=rest, encode=encode, uploads=uploads)


# the annotations of a parameter that takes an upload
_STREAM_ORIGINS: Final = (collections.abc.AsyncIterator, collections.abc.AsyncIterable)


def _as_args(result: Any, kind: str) -> tuple[Any, ...]:
    if type(result) is tuple:
        return result
    if type(result) is list:
        return tuple(result)
    raise TypeError(
        f"{kind} middleware must return the arguments as a tuple or list (or None),"
        f" not {type(result).__name__}"
    )


def _with_options(
    handler: Handler,
    what: str,
    max_payload: int | None,
    concurrency: int | None,
    window: int | None,
) -> Handler:
    if max_payload is not None and (type(max_payload) is not int or max_payload < 1):
        raise InvalidHandler(f"{what}: max_payload must be a positive integer of bytes")
    if window is not None and (type(window) is not int or not 1 <= window <= 1 << 20):
        raise InvalidHandler(f"{what}: window must be an integer from 1 to 2**20")
    if concurrency is None:
        return replace(handler, max_payload=max_payload, window=window)
    if type(concurrency) is not int or concurrency < 1:
        raise InvalidHandler(f"{what}: concurrency must be a positive integer")
    if not handler.is_async:
        raise InvalidHandler(
            f"{what}: concurrency applies to async handlers (a sync one runs one at a time)"
        )
    return replace(handler, max_payload=max_payload, concurrency=concurrency, window=window)


def _hints(func: Callable[..., Any], names: list[str], what: str) -> dict[str, Any]:
    """The annotations of ``names`` among ``func``'s, string annotations resolved.

    One that cannot be resolved (a name imported only under ``TYPE_CHECKING``, or
    inside a function) is left out with a warning: its parameter is passed as it
    arrives, as if unannotated.
    """
    target = inspect.unwrap(func)
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(target, "__call__", target)  # noqa: B004 - callable objects
    raw = getattr(target, "__annotations__", None) or {}
    wanted = {name: raw[name] for name in names if name in raw}
    if not wanted:
        return {}
    try:
        return typing.get_type_hints(_Annotated(wanted), _globals_of(target))
    except Exception:  # noqa: S110 - resolved one by one below, to say which one fails
        pass
    resolved = {}
    for name, annotation in wanted.items():
        try:
            resolved[name] = typing.get_type_hints(
                _Annotated({name: annotation}), _globals_of(target)
            )[name]
        except Exception as exc:  # NameError for a name it cannot see, ...
            logger.warning(
                "%s: the annotation of %r (%r) cannot be resolved (%s): it is not checked",
                what,
                name,
                annotation,
                exc,
            )
    return resolved


class _Annotated:
    """Something with just these annotations, for typing.get_type_hints."""

    def __init__(self, annotations: dict[str, Any]) -> None:
        self.__annotations__ = annotations


def _globals_of(func: Any) -> dict[str, Any]:
    target = getattr(func, "__func__", func)  # a bound method's function
    namespace = getattr(target, "__globals__", None)
    return namespace if isinstance(namespace, dict) else {}


class Namespace:
    """Base class for class-based namespaces.

    Methods named ``on_<event>`` handle ``<event>``; ``on_connect`` and
    ``on_disconnect`` handle the lifecycle. Register an instance with
    ``server.register(...)`` or ``client.register(...)``.

    Example:
        ```python
        class Chat(eventsock.Namespace):
            async def on_message(self, session, text):
                await self.emit("message", text, to="lobby")

        server.register(Chat("/chat"))
        ```
    """

    def __init__(self, namespace: str = "/") -> None:
        self.namespace = namespace
        self._owner: Any = None

    @property
    def owner(self) -> Any:
        """The Server or Client this namespace is registered with."""
        if self._owner is None:
            raise RuntimeError(f"namespace {self.namespace!r} is not registered yet")
        return self._owner

    async def emit(self, event: str, *args: Any, **options: Any) -> None:
        """``owner.emit`` with this namespace as the default."""
        options.setdefault("namespace", self.namespace)
        await self.owner.emit(event, *args, **options)

    async def call(self, event: str, *args: Any, **options: Any) -> Any:
        """``owner.call`` with this namespace as the default."""
        options.setdefault("namespace", self.namespace)
        return await self.owner.call(event, *args, **options)

    def handlers(self) -> dict[str, Callable[..., Any]]:
        """The ``on_<event>`` methods of this instance, by event name."""
        found: dict[str, Callable[..., Any]] = {}
        for attr in dir(type(self)):
            if attr.startswith("on_") and len(attr) > 3:
                method = getattr(self, attr)
                if callable(method):
                    found[attr[3:]] = method
        return found


# (leading parameters, the most extra parameters the lifecycle handler may require)
_Shape = tuple[int, int]


class HandlerRegistry:
    """Decorators and lookup shared by Server and Client.

    Subclasses say how many leading parameters each kind of handler takes.
    """

    _role: ClassVar[str] = "handler"
    #: event handlers: leading parameters before the event's arguments
    _event_leading: ClassVar[int] = 0
    #: lifecycle events and how many parameters their handlers get: (leading, optional)
    _lifecycle: ClassVar[dict[str, _Shape]] = {}

    #: what error handlers take before the event name: (exc, session) on the server
    _error_leading: ClassVar[int] = 1

    def __init__(self) -> None:
        self._handlers: dict[str, dict[str, Handler]] = {}
        # (namespace or None for all, handler), in registration order
        self._error_handlers: list[tuple[str | None, Callable[..., Any]]] = []
        self._incoming: list[tuple[str | None, Callable[..., Any]]] = []
        self._streams: dict[str, dict[str, Handler]] = {}
        self._outgoing: list[tuple[str | None, Callable[..., Any]]] = []

    def incoming(
        self, middleware: F | None = None, *, namespace: str | None = None
    ) -> F | Callable[[F], F]:
        """Register event middleware for what arrives: ``middleware(session, event,
        args)`` on the server, ``middleware(event, args)`` on the client, called in
        registration order for every event on ``namespace`` (all without one), before
        its handler is looked up.

        It returns the arguments to pass on (a tuple or list, to transform them) or
        ``None`` to leave them as they are, and rejects the event by raising: a
        :class:`~eventsock.RemoteError` is the caller's answer, anything else an
        ``internal_error``, as if the handler had raised it. It runs inline for every
        event, so it must be a plain function, and quick.

        Raises:
            InvalidHandler: it is async or cannot take those arguments.
        """
        return self._middleware_decorator(
            middleware, namespace, self._incoming, self._event_leading + 2, "incoming middleware"
        )

    def outgoing(
        self, middleware: F | None = None, *, namespace: str | None = None
    ) -> F | Callable[[F], F]:
        """Register event middleware for what is sent: ``middleware(event, args,
        namespace)``, called in registration order for every ``emit`` and ``call``
        this side makes on ``namespace`` (all without one), before the event is
        encoded. It returns the arguments to send (a tuple or list) or ``None`` to
        leave them; what it raises, ``emit``/``call`` raise, and nothing is sent.

        Raises:
            InvalidHandler: it is async or cannot take those arguments.
        """
        return self._middleware_decorator(
            middleware, namespace, self._outgoing, 3, "outgoing middleware"
        )

    def _middleware_decorator(
        self,
        middleware: F | None,
        namespace: str | None,
        into: list[tuple[str | None, Callable[..., Any]]],
        takes: int,
        kind: str,
    ) -> F | Callable[[F], F]:
        """Check a hook that runs inline (a plain function taking ``takes`` arguments)
        and add it to ``into`` for ``namespace`` (all when ``None``)."""

        def decorate(func: F) -> F:
            what = f"{self._role} {kind}"
            checked = make_handler(func, leading=takes, what=what)
            if checked.is_async:
                raise InvalidHandler(f"{what}: {func!r} must be a plain function, not async")
            if checked.min_args > 0:
                raise InvalidHandler(f"{what}: {func!r} requires more parameters than it gets")
            if namespace is not None and not namespace.startswith("/"):
                raise InvalidHandler(f"namespace must start with '/', not {namespace!r}")
            into.append((namespace, func))
            return func

        if middleware is not None:
            return decorate(middleware)
        return decorate

    def _apply_incoming(
        self, namespace: str, event: str, args: tuple[Any, ...], leading: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        for ns, func in self._incoming:
            if ns is None or ns == namespace:
                result = func(*leading, event, args)
                if result is not None:
                    args = _as_args(result, "incoming")
        return args

    def _apply_outgoing(self, event: str, args: tuple[Any, ...], namespace: str) -> tuple[Any, ...]:
        """``args`` as the outgoing middleware leave them (what they raise propagates)."""
        for ns, func in self._outgoing:
            if ns is None or ns == namespace:
                result = func(event, args, namespace)
                if result is not None:
                    args = _as_args(result, "outgoing")
        return args

    def stream_handler(self, name: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Register a stream: an async generator function whose items the peer iterates
        with ``stream(name, ...)`` (``server.stream`` is this on the server; on the
        client, ``client.stream`` iterates the server's and this registers its own).
        It takes the same leading parameters and typed arguments as an event handler;
        see :mod:`eventsock.streams` for the wire.

        Raises:
            InvalidHandler: it is not an async generator function, or its signature or
                annotations do not fit.
        """

        def decorate(func: F) -> F:
            if not isinstance(name, str) or not name or name in STREAM_EVENTS:
                raise InvalidHandler(f"stream name must be a non-empty string, not {name!r}")
            what = f"{self._role} stream {name!r} on {namespace!r}"
            handler = make_handler(
                func, leading=self._event_leading, what=what, typed=True, stream=True
            )
            self._streams.setdefault(namespace, {})[name] = handler
            return func

        return decorate

    def _namespaces(self) -> set[str]:
        """The namespaces with handlers registered: event, lifecycle or stream ones."""
        return self._handlers.keys() | self._streams.keys()

    def _stream_handler(self, namespace: str, name: str) -> Handler | None:
        streams = self._streams.get(namespace)
        return None if streams is None else streams.get(name)

    def on_error(
        self, handler: F | None = None, *, namespace: str | None = None
    ) -> F | Callable[[F], F]:
        """Register an error handler: called with the exception, the session (on the
        server) and the event name whenever an event handler raises, for
        ``namespace`` or, without one, for all of them; the namespace's own run first.

        It runs inline and must be a plain function. To change what the caller is
        answered, return (or raise) a :class:`~eventsock.RemoteError`; the first one
        given is sent instead of the original error. What else it returns is ignored,
        and what else it raises is logged.

        Raises:
            InvalidHandler: the handler is async or cannot take those arguments.
        """

        return self._middleware_decorator(
            handler, namespace, self._error_handlers, self._error_leading + 2, "error handler"
        )

    def _handle_error(
        self, exc: Exception, namespace: str, event: str, *leading: Any
    ) -> Exception | None:
        """Run the error handlers for ``exc``; the RemoteError one of them gave, if any."""
        if not self._error_handlers:
            return None
        ordered = [f for ns, f in self._error_handlers if ns == namespace] + [
            f for ns, f in self._error_handlers if ns is None
        ]
        for func in ordered:
            try:
                result = func(exc, *leading, event)
            except RemoteError as replacement:
                return replacement
            except Exception:
                logger.exception("error handler %r raised", func)
                continue
            if isinstance(result, RemoteError):
                return result
        return None

    @overload
    def on(
        self,
        event: str,
        handler: F,
        *,
        namespace: str = "/",
        max_payload: int | None = None,
        concurrency: int | None = None,
        window: int | None = None,
    ) -> F: ...

    @overload
    def on(
        self,
        event: str,
        handler: None = None,
        *,
        namespace: str = "/",
        max_payload: int | None = None,
        concurrency: int | None = None,
        window: int | None = None,
    ) -> Callable[[F], F]: ...

    def on(
        self,
        event: str,
        handler: F | None = None,
        *,
        namespace: str = "/",
        max_payload: int | None = None,
        concurrency: int | None = None,
        window: int | None = None,
    ) -> F | Callable[[F], F]:
        """Register a handler for ``event`` on ``namespace``, as a decorator or directly.

        ``"*"`` registers a catch-all for events that have no handler of their own.

        Args:
            max_payload: the largest message, in bytes, this event is accepted in; a
                larger one is refused (a ``payload_too_large`` error answer) without
                calling the handler.
            concurrency: how many calls of this (async) handler may run at once, on
                the whole server or client; more wait their turn, in arrival order.
            window: the credit granted to each stream the caller passes as an argument
                (an upload): how many of its items may be in flight; 16 by default.

        Raises:
            InvalidHandler: the handler's signature cannot receive the event, or an
                option does not fit it.
        """

        def decorate(func: F) -> F:
            self._add(
                namespace,
                event,
                func,
                max_payload=max_payload,
                concurrency=concurrency,
                window=window,
            )
            return func

        if handler is not None:
            return decorate(handler)
        return decorate

    @overload
    def event(self, handler: F, *, namespace: str = "/") -> F: ...

    @overload
    def event(self, handler: None = None, *, namespace: str = "/") -> Callable[[F], F]: ...

    def event(self, handler: F | None = None, *, namespace: str = "/") -> F | Callable[[F], F]:
        """Register a handler named after the function: ``@server.event`` on
        ``async def chat(...)`` handles ``"chat"``."""

        def decorate(func: F) -> F:
            name = getattr(func, "__name__", None)
            if not isinstance(name, str):
                raise InvalidHandler(f"{func!r} has no __name__ to take the event name from")
            self._add(namespace, name, func)
            return func

        if handler is not None:
            return decorate(handler)
        return decorate

    def register(self, namespace: Namespace) -> None:
        """Register a class-based namespace's ``on_<event>`` methods.

        Raises:
            InvalidHandler: one of its methods has a signature that cannot receive its event.
        """
        if not isinstance(namespace, Namespace):
            raise InvalidHandler(f"{namespace!r} is not an eventsock.Namespace instance")
        for event, method in namespace.handlers().items():
            self._add(namespace.namespace, event, method)
        namespace._owner = self

    def _add(
        self,
        namespace: str,
        event: str,
        func: Callable[..., Any],
        *,
        max_payload: int | None = None,
        concurrency: int | None = None,
        window: int | None = None,
    ) -> None:
        if not isinstance(event, str) or not event:
            raise InvalidHandler(f"event name must be a non-empty string, not {event!r}")
        if not isinstance(namespace, str) or not namespace.startswith("/"):
            raise InvalidHandler(f"namespace must be a string starting with '/', not {namespace!r}")
        what = f"{self._role} handler {event!r} on {namespace!r}"
        if event in STREAM_EVENTS:
            raise InvalidHandler(f"{what}: {event!r} is reserved for streams")
        if event in self._lifecycle:
            leading, optional = self._lifecycle[event]
            handler = make_handler(func, leading=leading, what=what)
            if handler.min_args > optional:
                raise InvalidHandler(
                    f"{what}: takes {leading} parameter(s)"
                    + (f" and optionally {optional} more" if optional else "")
                    + f", but {getattr(func, '__qualname__', func)} requires more"
                )
        elif event == CATCH_ALL:
            handler = make_handler(func, leading=self._event_leading + 1, what=what, typed=True)
        else:
            handler = make_handler(func, leading=self._event_leading, what=what, typed=True)
        if max_payload is not None or concurrency is not None or window is not None:
            if event in self._lifecycle:
                raise InvalidHandler(f"{what}: lifecycle handlers take no per-event options")
            handler = _with_options(handler, what, max_payload, concurrency, window)
        self._handlers.setdefault(namespace, {})[event] = handler

    def lookup(self, namespace: str, event: str) -> tuple[Handler | None, bool]:
        """The handler for an event and whether it is the catch-all."""
        handlers = self._handlers.get(namespace)
        if handlers is None:
            return None, False
        # Lifecycle handlers never answer an EVENT of the same name sent by a peer, and
        # an event named "*" is not the catch-all's own: it gets the name like any other.
        handler = None if event in self._lifecycle or event == CATCH_ALL else handlers.get(event)
        if handler is not None:
            return handler, False
        return handlers.get(CATCH_ALL), True

    def _lifecycle_handler(self, namespace: str, event: str) -> Handler | None:
        handlers = self._handlers.get(namespace)
        return None if handlers is None else handlers.get(event)
