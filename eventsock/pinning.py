"""Certificate pinning: pins as values, the public key read out of a certificate, and
the TLS context that checks the pins during the handshake (no I/O here).

A pin is the SHA-256 digest of either the server certificate's public key (its
DER-encoded SubjectPublicKeyInfo, as HPKP and OkHttp pin) or the whole certificate (its
DER bytes, as ``openssl x509 -fingerprint -sha256`` and browsers show). Written as text:

* ``"sha256/<base64 of the 32 bytes>"``: a public-key pin (the OkHttp / HPKP form);
* 64 hex digits, bare or in colon-separated pairs (``"AB:CD:..."``): a certificate pin.

Only the server's own (leaf) certificate is compared: Python 3.11 does not show the rest
of the chain. A public-key pin survives a certificate renewed with the same key; a
certificate pin does not.

The check runs inside ``do_handshake()`` of the TLS object that asyncio (and uvloop)
drive, right after OpenSSL finishes the handshake and before the transport reports the
connection made, so an impostor never receives a byte of the HTTP request (which may
carry tokens). The user's ``ssl.SSLContext`` is not modified: :func:`pinned_context`
wraps it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from .exceptions import CertificatePinMismatch

__all__ = ["Pin", "PinSource", "pinned_context", "pins_from", "public_key_of", "verify"]

#: What a pin is the digest of.
PinTarget = Literal["public_key", "certificate"]

_PUBLIC_KEY_PREFIX: Final = "sha256/"
_HEX_PIN: Final = re.compile(r"[0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}")
_PEM: Final = re.compile(
    r"-----BEGIN (CERTIFICATE|PUBLIC KEY)-----([A-Za-z0-9+/=\s]*?)-----END \1-----"
)
# X509_V_ERR_APPLICATION_VERIFICATION: OpenSSL's code for "the application refused it".
_APPLICATION_VERIFICATION: Final = 50

# DER tags (universal class, single byte).
_INTEGER: Final = 0x02
_BIT_STRING: Final = 0x03
_SEQUENCE: Final = 0x30
_VERSION: Final = 0xA0  # [0] EXPLICIT, constructed


@dataclass(frozen=True, slots=True)
class Pin:
    """One pin: the SHA-256 digest of a server's public key or of its certificate.

    Make one from its text with :meth:`parse`, or from the certificate with :meth:`of`;
    ``str(pin)`` is its text.

    Attributes:
        target: ``"public_key"`` (the certificate's SubjectPublicKeyInfo) or
            ``"certificate"`` (the whole certificate, DER).
        sha256: the 32-byte digest.
    """

    target: PinTarget
    sha256: bytes

    def __post_init__(self) -> None:
        if self.target not in ("public_key", "certificate"):
            raise ValueError(f'target must be "public_key" or "certificate", not {self.target!r}')
        if type(self.sha256) is not bytes or len(self.sha256) != 32:
            raise ValueError("sha256 must be the 32 bytes of a SHA-256 digest")

    @classmethod
    def parse(cls, text: str) -> Pin:
        """The pin ``text`` writes: ``"sha256/<base64>"`` for a public key, 64 hex
        digits (colons between pairs allowed) for a certificate.

        Raises:
            ValueError: ``text`` is neither.
        """
        if type(text) is not str:
            raise TypeError(f"a pin is a str or a Pin, not {type(text).__name__}")
        text = text.strip()
        if text.startswith(_PUBLIC_KEY_PREFIX):
            encoded = text[len(_PUBLIC_KEY_PREFIX) :]
            try:
                digest = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                digest = b""
            if len(digest) == 32:
                return cls("public_key", digest)
            raise ValueError(
                f"not a public-key pin: {text!r} (after 'sha256/' comes the base64 of a "
                "32-byte SHA-256 digest, 44 characters)"
            )
        if _HEX_PIN.fullmatch(text):
            return cls("certificate", bytes.fromhex(text.replace(":", "")))
        raise ValueError(
            f"not a pin: {text!r} (expected 'sha256/<base64>' for a public key, or 64 hex "
            "digits, colons allowed, for a certificate)"
        )

    @classmethod
    def of(cls, certificate: str | bytes, *, target: PinTarget = "public_key") -> Pin:
        """The pin of a certificate, given as PEM (``str`` or ``bytes``) or DER bytes;
        of the first certificate when a PEM file holds a chain. A PEM ``PUBLIC KEY``
        gives its public-key pin (``target="public_key"`` only).

        Raises:
            ValueError: no certificate could be read, or a public key was given for a
                certificate pin.
        """
        if target not in ("public_key", "certificate"):
            raise ValueError(f'target must be "public_key" or "certificate", not {target!r}')
        label, der = _read_certificate_or_key(certificate)
        if label == "PUBLIC KEY":
            if target != "public_key":
                raise ValueError("a public key has no certificate pin: give the certificate")
            _check_public_key(der, 0, len(der))
            return cls("public_key", hashlib.sha256(der).digest())
        if target == "public_key":
            return cls("public_key", hashlib.sha256(public_key_of(der)).digest())
        public_key_of(der)  # a certificate pin of garbage would silently never match
        return cls("certificate", hashlib.sha256(der).digest())

    def __str__(self) -> str:
        if self.target == "public_key":
            return _PUBLIC_KEY_PREFIX + base64.b64encode(self.sha256).decode()
        return self.sha256.hex(":").upper()


#: A pin, its text, or several of either (the server may match any one of them).
PinSource = Pin | str | Iterable[Pin | str] | None


def pins_from(source: PinSource) -> tuple[Pin, ...]:
    """The pins ``Client.connect(pin=...)`` was given, parsed and deduplicated.

    Raises:
        ValueError: a pin's text is malformed, or an empty collection was given (which
            would pin nothing while looking as if it pinned).
        TypeError: something that is neither a pin nor its text.
    """
    if source is None:
        return ()
    items: Iterable[Any] = (source,) if isinstance(source, str | Pin) else source
    if isinstance(source, bytes | bytearray) or not isinstance(items, Iterable):
        raise TypeError(f"pin must be a Pin, a str or several of them, not {type(source).__name__}")
    pins = tuple(
        dict.fromkeys(item if isinstance(item, Pin) else Pin.parse(item) for item in items)
    )
    if not pins:
        raise ValueError("pin is empty: give at least one pin, or None to pin nothing")
    return pins


def _read_certificate_or_key(data: str | bytes) -> tuple[str, bytes]:
    """``("CERTIFICATE" | "PUBLIC KEY", DER)`` from PEM text or DER bytes."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.lstrip()[:11] != b"-----BEGIN ":
            return "CERTIFICATE", raw
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("a PEM certificate must be ASCII text") from None
    elif isinstance(data, str):
        text = data
    else:
        raise TypeError(f"a certificate is PEM (str or bytes) or DER bytes, not {type(data)}")
    found = _PEM.search(text)
    if found is None:
        raise ValueError(
            "no '-----BEGIN CERTIFICATE-----' (or PUBLIC KEY) block in the PEM text given"
        )
    try:
        der = base64.b64decode("".join(found.group(2).split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the PEM block is not valid base64: {exc}") from None
    return found.group(1), der


# -- reading DER -----------------------------------------------------------------------


def _element(der: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """The content span ``(start, stop)`` of the DER element at ``pos``, which must have
    ``tag`` and end by ``end``.

    Raises:
        ValueError: it does not, or its length is not in DER's single, minimal form.
    """
    if end - pos < 2:
        raise ValueError(f"not a certificate: truncated before its {what}")
    if der[pos] != tag:
        raise ValueError(
            f"not a certificate: expected its {what} (tag 0x{tag:02x}), found tag 0x{der[pos]:02x}"
        )
    first = der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise ValueError(f"not DER: an indefinite length in its {what}")
        if count > 4:  # 4 GiB: far beyond any certificate
            raise ValueError(f"not a certificate: the length of its {what} is too large")
        if end - pos < count:
            raise ValueError(f"not a certificate: truncated in the length of its {what}")
        length = int.from_bytes(der[pos : pos + count], "big")
        if der[pos] == 0 or length < 0x80:
            raise ValueError(f"not DER: the length of its {what} is not minimal")
        pos += count
    if length > end - pos:
        raise ValueError(f"not a certificate: its {what} runs past its end")
    return pos, pos + length


def _check_public_key(der: bytes, pos: int, end: int) -> int:
    """Check the SubjectPublicKeyInfo at ``pos`` (algorithm, then key bits, nothing
    more); returns where it ends."""
    start, stop = _element(der, pos, end, _SEQUENCE, "subjectPublicKeyInfo")
    _, after = _element(der, start, stop, _SEQUENCE, "public key algorithm")
    _, after = _element(der, after, stop, _BIT_STRING, "public key")
    if after != stop:
        raise ValueError("not a certificate: bytes after the public key")
    return stop


def public_key_of(certificate: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo (header included) of a DER X.509 certificate.

    A bounded walk of the few elements in front of it (``tbsCertificate``: optional
    version, serial number, signature algorithm, issuer, validity, subject), each
    checked for its tag and a DER length that fits; the rest of the certificate is
    checked for its outline (signature algorithm and value, nothing after).

    Raises:
        ValueError: the bytes are not a DER certificate.
    """
    der = bytes(certificate)
    end = len(der)
    outer, outer_end = _element(der, 0, end, _SEQUENCE, "outer sequence")
    if outer_end != end:
        raise ValueError("not a certificate: bytes after its end")
    tbs, tbs_end = _element(der, outer, outer_end, _SEQUENCE, "tbsCertificate")
    pos = tbs
    if pos < tbs_end and der[pos] == _VERSION:
        _, pos = _element(der, pos, tbs_end, _VERSION, "version")
    _, pos = _element(der, pos, tbs_end, _INTEGER, "serial number")
    for what in ("signature algorithm", "issuer", "validity", "subject"):
        _, pos = _element(der, pos, tbs_end, _SEQUENCE, what)
    key_end = _check_public_key(der, pos, tbs_end)
    _, after = _element(der, tbs_end, outer_end, _SEQUENCE, "signatureAlgorithm")
    _, after = _element(der, after, outer_end, _BIT_STRING, "signatureValue")
    if after != outer_end:
        raise ValueError("not a certificate: bytes after its signature")
    return der[pos:key_end]


# -- checking --------------------------------------------------------------------------


def verify(
    pins: tuple[Pin, ...], certificate: bytes | None, host: str | None
) -> CertificatePinMismatch | None:
    """``None`` if the DER ``certificate`` matches one of ``pins``, else the error that
    says what was expected and what was seen."""
    if certificate is None:
        return CertificatePinMismatch(
            f"{host} sent no certificate to check the pins against",
            expected=tuple(map(str, pins)),
            certificate="",
            public_key="",
        )
    seen_certificate = Pin("certificate", hashlib.sha256(certificate).digest())
    try:
        key = public_key_of(certificate)
    except ValueError as exc:
        seen_key: Pin | None = None
        unreadable = f" (its public key could not be read: {exc})"
    else:
        seen_key = Pin("public_key", hashlib.sha256(key).digest())
        unreadable = ""
    if seen_certificate in pins or (seen_key is not None and seen_key in pins):
        return None
    expected = tuple(map(str, pins))
    key_text = str(seen_key) if seen_key is not None else ""
    return CertificatePinMismatch(
        f"the certificate of {host} matches none of the pins: expected "
        f"{' or '.join(expected)}; it has public key {key_text or '?'} and certificate "
        f"{seen_certificate}{unreadable}",
        expected=expected,
        certificate=str(seen_certificate),
        public_key=key_text,
    )


class PinVerificationError(ssl.SSLCertVerificationError):
    """The handshake's certificate matched no pin; ``mismatch`` is the error to raise
    (an ``ssl`` error, so that asyncio and uvloop treat it as any failed verification)."""

    def __init__(self, mismatch: CertificatePinMismatch) -> None:
        super().__init__(str(mismatch))
        self.mismatch = mismatch
        self.verify_code = _APPLICATION_VERIFICATION
        self.verify_message = str(mismatch)


class _PinnedObject:
    """The TLS object of one connection: the wrapped context's own, with the pins
    checked when its handshake completes. Everything else is forwarded to it."""

    def __init__(self, inner: ssl.SSLObject, pins: tuple[Pin, ...]) -> None:
        self._inner = inner
        self._pins = pins

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def do_handshake(self) -> None:
        self._inner.do_handshake()  # raises SSLWantReadError until it completes
        mismatch = verify(
            self._pins,
            self._inner.getpeercert(binary_form=True),
            self._inner.server_hostname,
        )
        if mismatch is not None:
            raise PinVerificationError(mismatch)


class _PinnedContext(ssl.SSLContext):
    """A client context that delegates each connection to ``inner`` and checks the pins.

    Only ``wrap_bio`` (what asyncio and uvloop use) is pinned; ``wrap_socket`` is
    refused rather than left unpinned. Its own settings are unused: read ``inner``'s.
    """

    inner: ssl.SSLContext
    pins: tuple[Pin, ...]

    def __new__(cls, inner: ssl.SSLContext, pins: tuple[Pin, ...]) -> _PinnedContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, inner: ssl.SSLContext, pins: tuple[Pin, ...]) -> None:
        self.inner = inner
        self.pins = pins

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if server_side:
            raise ValueError("a pinned context is for clients only")
        inner = self.inner.wrap_bio(incoming, outgoing, False, server_hostname, session)
        return cast(ssl.SSLObject, _PinnedObject(inner, self.pins))

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        raise NotImplementedError("a pinned context works only with asyncio (wrap_bio)")


def pinned_context(context: ssl.SSLContext | bool | None, pins: tuple[Pin, ...]) -> ssl.SSLContext:
    """A client context that checks ``pins`` during each handshake, on top of:

    * ``None`` or ``True``: the default verification (trusted CAs, host name);
    * an ``ssl.SSLContext``: that context's own verification (it is not modified);
    * ``False``: no other verification: the pins are the only trust, which is how to
      trust a self-signed certificate.
    """
    if not pins:
        raise ValueError("pinned_context needs at least one pin")
    if isinstance(context, ssl.SSLContext):
        inner = context
    elif context is None or context is True or context is False:
        inner = ssl.create_default_context()
        if context is False:
            inner.check_hostname = False
            inner.verify_mode = ssl.CERT_NONE
        inner.set_alpn_protocols(["http/1.1"])  # as aiohttp's own contexts do
    else:
        raise TypeError(f"ssl must be an ssl.SSLContext, a bool or None, not {type(context)}")
    return _PinnedContext(inner, pins)
