"""API-key authentication: the interceptor every call passes, and the calling key.

Every call of SearchService, LibraryService and JobService carries metadata
``authorization: Bearer <key>``. No key, or an unknown or revoked one, is UNAUTHENTICATED;
a key whose scope is below the RPC's (``METHOD_SCOPES``: read < write < admin) or that
is limited to other collections is PERMISSION_DENIED. Health is always open; reflection
is open on loopback. Servicers that find a request's collection only by a lookup call
``require_collection`` / ``allowed_collections``, which read the key of the current call.
``tls_credentials`` gives the port its TLS (and mutual TLS) credentials.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb

from latent.catalog.keys import Scope, StoredKey, parse_key, scope_allows
from latent.errors import AssetSearchError, PermissionDenied, Unauthenticated
from service.handlers import service_name

if TYPE_CHECKING:
    from latent.settings import Settings

log = logging.getLogger(__name__)

MAX_MISSES = 10_000  # unknown key ids remembered between reloads (bounded: they are made up)


@dataclass(frozen=True)
class Principal:
    """The key a call was made with: its id, scope and the collections it may use."""

    key_id: str
    scope: Scope
    collections: frozenset[str] | None  # None: every collection
    default_collection: str

    def may_use(self, collection: str) -> bool:
        """Whether this key may use ``collection`` ("" is the server's default one)."""
        if self.collections is None:
            return True
        return (collection or self.default_collection) in self.collections

    def denied(self, collection: str) -> PermissionDenied:
        """The error of a call on a collection this key may not use."""
        allowed = ", ".join(sorted(self.collections or ())) or "none"
        return PermissionDenied(
            f"API key {self.key_id} may not use collection "
            f"{collection or self.default_collection!r} (it may use: {allowed})"
        )


_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "assetsearch_principal", default=None
)


def current_principal() -> Principal | None:
    """The key of the call this thread works on; None when auth is off or outside a call."""
    return _PRINCIPAL.get()


def allowed_collections() -> frozenset[str] | None:
    """The collections the current call's key may use; None means every collection."""
    principal = _PRINCIPAL.get()
    return None if principal is None else principal.collections


def require_collection(name: str) -> None:
    """Refuse the current call unless its key may use collection ``name``.

    A no-op when auth is off or no key is in context. An empty ``name`` is the
    server's default collection.

    Raises:
        PermissionDenied: the key is limited to other collections.
    """
    principal = _PRINCIPAL.get()
    if principal is not None and not principal.may_use(name):
        raise principal.denied(name)


# -- where calls may come from --------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether a bind address is loopback only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # another host name: it may resolve to anything
        return False


def auth_required(settings: Settings, host: str) -> bool:
    """Whether calls need an API key on a server bound to ``host``.

    ``settings.auth`` decides when set; unset, keys are required unless ``host`` is loopback.

    Raises:
        AssetSearchError: auth is off on a non-loopback address without ``settings.insecure``.
    """
    loopback = is_loopback(host)
    required = settings.auth == "required" or (settings.auth is None and not loopback)
    if not required and not loopback and not settings.insecure:
        raise AssetSearchError(
            f"refusing to serve on {host} with --auth off: anyone who can reach it could "
            "read and change the library. Bind 127.0.0.1, drop --auth off (API keys), "
            "or pass --insecure if the network is trusted"
        )
    return required


# -- the key table ----------------------------------------------------------------------


class KeyCache:
    """The API keys a server checks calls against, reloaded every ``ttl`` seconds.

    A key the snapshot lacks is looked up once in the catalog (a key created a moment
    ago works at once); keys still unknown are remembered until the next reload, so
    made-up keys cost no query each.
    """

    def __init__(
        self,
        load: Callable[[], dict[str, StoredKey]],
        lookup: Callable[[str], StoredKey | None],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._lookup, self._ttl, self._clock = load, lookup, ttl, clock
        self._keys: dict[str, StoredKey] = {}
        self._misses: set[str] = set()
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def get(self, key_id: str) -> StoredKey | None:
        """The key with that ``key_id``, revoked or not; None when the catalog has none."""
        self._refresh()
        stored = self._keys.get(key_id)
        if stored is None and key_id not in self._misses:
            stored = self._lookup(key_id)
            with self._lock:
                if stored is not None:
                    self._keys = {**self._keys, key_id: stored}
                elif len(self._misses) < MAX_MISSES:
                    self._misses.add(key_id)
        return stored

    def _refresh(self) -> None:
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self._ttl:
            return
        if not self._lock.acquire(blocking=self._loaded_at is None):
            return  # another thread reloads; this call uses the table it has
        try:
            if self._loaded_at is not None and now - self._loaded_at < self._ttl:
                return
            try:
                self._keys = self._load()
            except Exception:  # noqa: BLE001 - keep serving on the table loaded last
                if self._loaded_at is None:
                    raise
                log.warning("cannot reload API keys; using the table of the last poll")
            self._misses = set()
            self._loaded_at = now
        finally:
            self._lock.release()


# -- which call needs what ------------------------------------------------------------

Message = Any
CollectionOf = Callable[[Message], str | None]
"""The collection a request names ("" for the default one), or None when it names none."""

SEARCH, LIBRARY, JOBS = (
    f"{pb.DESCRIPTOR.package}.{name}" for name in ("SearchService", "LibraryService", "JobService")
)
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})
REFLECTION_SERVICES = frozenset(
    {"grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)

METHOD_SCOPES: dict[str, Scope] = {
    f"/{SEARCH}/Search": "read",
    f"/{SEARCH}/GetAsset": "read",
    f"/{SEARCH}/ListCollections": "read",
    f"/{SEARCH}/Interpolate": "read",
    f"/{SEARCH}/Traverse": "read",
    f"/{SEARCH}/CreateDirection": "write",
    f"/{SEARCH}/ListDirections": "read",
    f"/{SEARCH}/GetDirection": "read",
    f"/{SEARCH}/DeleteDirection": "write",
    f"/{SEARCH}/Project": "read",
    f"/{SEARCH}/Variations": "read",
    f"/{SEARCH}/ImportVectors": "write",
    f"/{LIBRARY}/UpsertAsset": "write",
    f"/{LIBRARY}/DeleteAsset": "write",
    f"/{LIBRARY}/UpdateMetadata": "write",
    f"/{LIBRARY}/CreateCollection": "admin",
    f"/{LIBRARY}/DeleteCollection": "admin",
    f"/{JOBS}/StartIndexJob": "write",
    f"/{JOBS}/WatchIndexJob": "write",
    f"/{JOBS}/CancelIndexJob": "write",
    f"/{JOBS}/ResumeIndexJob": "write",
    f"/{JOBS}/ListIndexJobs": "write",
}
"""The scope each RPC needs. An RPC of the services that is missing here is refused."""


def _collection_field(message: Message) -> str | None:
    return str(message.collection)


def _by_uri(message: Message) -> str | None:
    # By asset id the collection is found by a lookup: the servicer calls require_collection.
    return None if message.asset_id else str(message.collection)


def _named(message: Message) -> str | None:
    return str(message.name) or None  # an empty name is the servicer's INVALID_ARGUMENT


def _filter_only(message: Message) -> str | None:
    # Empty lists every collection: the servicer keeps those allowed_collections() names.
    return str(message.collection) or None


def _upload_header(message: Message) -> str | None:
    return str(message.header.collection) if message.HasField("header") else None


COLLECTION_OF: dict[str, CollectionOf] = {
    f"/{LIBRARY}/UpsertAsset": _upload_header,
    f"/{LIBRARY}/DeleteAsset": _by_uri,
    f"/{LIBRARY}/UpdateMetadata": _by_uri,
    f"/{LIBRARY}/CreateCollection": _named,
    f"/{LIBRARY}/DeleteCollection": _named,
    f"/{JOBS}/ListIndexJobs": _filter_only,
}
"""Requests whose collection is not simply their ``collection`` field (empty: default)."""


@dataclass(frozen=True)
class MethodRule:
    """What one RPC needs: a scope (None: refused) and where its request names a collection."""

    scope: Scope | None
    collection_of: CollectionOf | None


def method_rules() -> dict[str, MethodRule]:
    """A rule for every RPC of the keyed services, from the proto's descriptors."""
    rules = {}
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            name = f"/{service.full_name}/{method.name}"
            collection_of = COLLECTION_OF.get(name)
            if collection_of is None and "collection" in method.input_type.fields_by_name:
                collection_of = _collection_field
            rules[name] = MethodRule(METHOD_SCOPES.get(name), collection_of)
    return rules


# -- the interceptor ------------------------------------------------------------------


def bearer_key(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The key of an ``authorization: Bearer KEY`` metadata entry; None when absent.

    Raises:
        Unauthenticated: an ``authorization`` entry that is not a Bearer token.
    """
    for name, value in metadata or ():
        if name.lower() != "authorization":
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization metadata must read 'Bearer <API key>'")
        return token.strip()
    return None


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks every call's API key, scope and collection; health stays open.

    Off until ``configure`` says which address the server binds. The check runs in the
    call's worker thread (never the server's polling thread: it may query the catalog),
    and the key is put in context for ``require_collection`` and ``allowed_collections``.
    """

    def __init__(self, keys: KeyCache, default_collection: str) -> None:
        self._keys = keys
        self._default = default_collection
        self._rules = method_rules()
        self.required = False
        self.reflection_open = True

    def configure(self, settings: Settings, host: str) -> None:
        """Set the mode for a server bound to ``host`` (see ``auth_required``).

        Raises:
            AssetSearchError: auth is off on a non-loopback address without --insecure.
        """
        self.required = auth_required(settings, host)
        self.reflection_open = not self.required or is_loopback(host)
        if self.required:
            log.info("API keys required on %s (reflection open: %s)", host, self.reflection_open)
        elif not is_loopback(host):
            log.warning("serving %s without API keys (--insecure): anyone may call", host)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method = handler_call_details.method
        service = service_name(method)
        if not self.required or service in OPEN_SERVICES:
            return continuation(handler_call_details)
        if service in REFLECTION_SERVICES:
            if self.reflection_open:
                return continuation(handler_call_details)
            rule = MethodRule("read", None)
        else:
            rule = self._rules.get(method, MethodRule(None, None))
        metadata = handler_call_details.invocation_metadata
        handler = continuation(handler_call_details)
        if handler is None:  # unknown method: a caller without a key learns nothing
            known = self._rules.get(method, rule if rule.scope else MethodRule("read", None))
            return grpc.stream_stream_rpc_method_handler(
                self._unimplemented(method, known, metadata)
            )
        return _wrapped(handler, _Check(self, method, rule, metadata))

    def _unimplemented(
        self, method: str, rule: MethodRule, metadata: Any
    ) -> Callable[..., Iterator[Any]]:
        def behavior(_requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            self.principal(method, rule, metadata, context)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"method {method} is not implemented")
            yield from ()

        return behavior

    def principal(
        self, method: str, rule: MethodRule, metadata: Any, context: grpc.ServicerContext
    ) -> Principal:
        """The caller's key, once it is known, unrevoked and of the rule's scope.

        Aborts the call with UNAUTHENTICATED or PERMISSION_DENIED otherwise.
        """
        try:
            return self._principal(method, rule, metadata)
        except (Unauthenticated, PermissionDenied) as exc:
            context.abort(exc.status, str(exc))
            raise  # abort raised already; this line is for the type checker
        except Exception:  # the catalog is unreachable: no key can be checked, none passes
            log.exception("cannot check the API key of %s", method)
            context.abort(
                grpc.StatusCode.UNAVAILABLE, "cannot check API keys now (catalog unreachable)"
            )
            raise

    def _principal(self, method: str, rule: MethodRule, metadata: Any) -> Principal:
        key = bearer_key(metadata)
        if key is None:
            raise Unauthenticated(
                f"{method} needs an API key: send metadata 'authorization: Bearer <key>' "
                "(--api-key or ASSETSEARCH_API_KEY; `assetsearch keys create` makes one)"
            )
        parsed = parse_key(key)
        if parsed is None:
            raise Unauthenticated("the API key is malformed: keys read ask_<key id>_<secret>")
        key_id, secret = parsed
        stored = self._keys.get(key_id)
        if stored is None or not stored.matches(secret):
            raise Unauthenticated(f"unknown API key {key_id} (see `assetsearch keys list`)")
        record = stored.record
        if record.revoked_at is not None:
            raise Unauthenticated(
                f"API key {key_id} was revoked at {record.revoked_at.isoformat(timespec='seconds')}"
            )
        if rule.scope is None:
            raise PermissionDenied(f"{method} has no scope defined; the server refuses it")
        if not scope_allows(record.scope, rule.scope):
            raise PermissionDenied(
                f"{method} needs an API key with scope {rule.scope!r}; "
                f"key {key_id} has scope {record.scope!r}"
            )
        return Principal(key_id, record.scope, record.collections, self._default)


class _Check:
    """The checks of one call: the key on arrival, then each request's collection."""

    def __init__(self, auth: AuthInterceptor, method: str, rule: MethodRule, metadata: Any) -> None:
        self.auth, self.method, self.rule, self.metadata = auth, method, rule, metadata
        self.principal: Principal | None = None

    def enter(self, context: grpc.ServicerContext) -> contextvars.Context:
        """Check the key; returns the context the handler runs in, with the key set."""
        self.principal = self.auth.principal(self.method, self.rule, self.metadata, context)
        ctx = contextvars.copy_context()
        ctx.run(_PRINCIPAL.set, self.principal)
        return ctx

    def request(self, message: Any, context: grpc.ServicerContext) -> Any:
        """The request, once its collection (if it names one) is allowed to the key."""
        collection = self.rule.collection_of(message) if self.rule.collection_of else None
        principal = self.principal
        if collection is not None and principal is not None and not principal.may_use(collection):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(principal.denied(collection)))
        return message

    def requests(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        """A client stream, each message checked as it arrives."""
        for message in requests:
            yield self.request(message, context)


def _responses(ctx: contextvars.Context, responses: Iterator[Any]) -> Iterator[Any]:
    """A server stream run in ``ctx`` step by step; closing it closes the handler's."""
    try:
        while True:
            try:
                item = ctx.run(next, responses)
            except StopIteration:
                return
            yield item
    finally:
        close = getattr(responses, "close", None)
        if close is not None:
            ctx.run(close)


def _wrapped(handler: grpc.RpcMethodHandler, check: _Check) -> grpc.RpcMethodHandler:
    """The handler with ``check`` run before it and on each request."""
    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        uu = handler.unary_unary

        def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
            ctx = check.enter(context)
            return ctx.run(uu, check.request(request, context), context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, des, ser)
    if handler.unary_stream:
        us = handler.unary_stream

        def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            ctx = check.enter(context)
            checked = check.request(request, context)
            yield from _responses(ctx, ctx.run(us, checked, context))

        return grpc.unary_stream_rpc_method_handler(unary_stream, des, ser)
    if handler.stream_unary:
        su = handler.stream_unary

        def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            ctx = check.enter(context)
            return ctx.run(su, check.requests(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, des, ser)
    ss = handler.stream_stream

    def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        ctx = check.enter(context)
        yield from _responses(ctx, ctx.run(ss, check.requests(requests, context), context))

    return grpc.stream_stream_rpc_method_handler(stream_stream, des, ser)


# -- TLS --------------------------------------------------------------------------------


def _read_pem(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AssetSearchError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def tls_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The server's TLS credentials; None when no certificate is configured (plain TCP).

    With ``tls_client_ca`` every client must present a certificate it signed (mutual TLS).

    Raises:
        AssetSearchError: a certificate without its key (or the other way round), a client
            CA without a certificate, or a file that cannot be read.
    """
    cert, key, client_ca = settings.tls_cert, settings.tls_key, settings.tls_client_ca
    if cert is None and key is None:
        if client_ca is not None:
            raise AssetSearchError("--tls-client-ca needs --tls-cert and --tls-key (TLS)")
        return None
    if cert is None or key is None:
        missing = "--tls-key" if key is None else "--tls-cert"
        raise AssetSearchError(f"TLS needs both --tls-cert and --tls-key; {missing} is missing")
    pair = (_read_pem(key, "TLS key"), _read_pem(cert, "TLS certificate"))
    roots = _read_pem(client_ca, "TLS client CA") if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=roots, require_client_auth=roots is not None
    )
