"""Pins and the DER walk that finds a certificate's public key (no network here).

Certificates come from trustme; ``cryptography`` (trustme's own dependency) and the
``openssl`` command line are the independent oracles for what the public key and the
fingerprints are.
"""

from __future__ import annotations

import base64
import hashlib
import random
import shutil
import ssl
import subprocess

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import eventsock
from eventsock import CertificatePinMismatch, Pin
from eventsock.pinning import pinned_context, pins_from, public_key_of, verify

pytestmark = pytest.mark.timeout(30)


def leaf(key_type: trustme.KeyType = trustme.KeyType.ECDSA) -> tuple[bytes, bytes]:
    """(PEM, DER) of a fresh server certificate."""
    pem = trustme.CA(key_type=key_type).issue_cert("127.0.0.1").cert_chain_pems[0].bytes()
    return pem, ssl.PEM_cert_to_DER_cert(pem.decode())


def spki_of(der: bytes) -> bytes:
    """The oracle: cryptography's SubjectPublicKeyInfo of a certificate."""
    return (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# -- a tiny DER writer, for certificates shaped on purpose -----------------------------


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


SPKI = seq(seq(tlv(0x06, b"\x2a\x86\x48\xce\x3d\x02\x01")), tlv(0x03, b"\x00" + b"\x04" * 65))


def certificate(
    *, version: bool = True, key: bytes = SPKI, name_size: int = 4, trailer: bytes = b""
) -> bytes:
    tbs = seq(
        *([tlv(0xA0, tlv(0x02, b"\x02"))] if version else []),
        tlv(0x02, b"\x01"),  # serial number
        seq(tlv(0x06, b"\x2a")),  # signature algorithm
        seq(tlv(0x0C, b"i" * name_size)),  # issuer
        seq(tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z")),  # validity
        seq(tlv(0x0C, b"s" * name_size)),  # subject
        key,
        tlv(0xA3, seq()),  # extensions: not read
    )
    return seq(tbs, seq(tlv(0x06, b"\x2a")), tlv(0x03, b"\x00sig"), trailer)


# -- the DER walk ----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [trustme.KeyType.ECDSA, trustme.KeyType.RSA])
def test_public_key_of_a_real_certificate_is_its_subject_public_key_info(
    key_type: trustme.KeyType,
) -> None:
    _, der = leaf(key_type)
    assert public_key_of(der) == spki_of(der)


def test_public_key_of_shaped_certificates() -> None:
    assert public_key_of(certificate()) == SPKI
    assert public_key_of(certificate(version=False)) == SPKI  # a v1 certificate
    # long-form lengths, one and two bytes
    assert public_key_of(certificate(name_size=200)) == SPKI
    assert public_key_of(certificate(name_size=70_000)) == SPKI


@pytest.mark.parametrize(
    ("der", "words"),
    [
        (b"", "truncated"),
        (b"\x30", "truncated"),
        (b"\x31\x00", "expected its outer sequence"),
        (b"\x30\x80" + certificate()[2:], "indefinite length"),
        (b"\x30\x81\x05" + b"\x00" * 5, "not minimal"),
        (b"\x30\x82\x00\x05" + b"\x00" * 5, "not minimal"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "too large"),
        (b"\x30\x83\x01\x00", "truncated in the length"),
        (b"\x30\x05\x00", "runs past its end"),
        (certificate() + b"\x00", "bytes after its end"),
        (seq(seq(tlv(0x02, b"\x01"))), "truncated before its signature algorithm"),
        (seq(tlv(0x02, b"\x01")), "expected its tbsCertificate"),
        (certificate(key=seq(seq(), tlv(0x03, b"\x00"), tlv(0x05, b""))), "after the public key"),
        (certificate(key=seq(seq())), "truncated before its public key"),
        (certificate(key=tlv(0x03, b"\x00")), "expected its subjectPublicKeyInfo"),
        (bytes([0x30, 0x03, 0x1F, 0x01, 0x00]), "expected its tbsCertificate"),
    ],
)
def test_malformed_certificates_are_refused_with_a_reason(der: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        public_key_of(der)


def test_bytes_after_the_signature_are_refused() -> None:
    with pytest.raises(ValueError, match="after its signature"):
        public_key_of(certificate(trailer=tlv(0x05, b"")))


def test_every_truncation_and_every_byte_change_is_a_value_error_or_a_slice() -> None:
    _, der = leaf()
    for end in range(len(der)):
        with pytest.raises(ValueError, match="not a certificate"):
            public_key_of(der[:end])
    rng = random.Random(8)
    for pos in range(len(der)):
        for value in (0x00, 0xFF, der[pos] ^ (1 << rng.randrange(8))):
            mutated = bytearray(der)
            mutated[pos] = value
            try:
                found = public_key_of(bytes(mutated))
            except ValueError:
                continue
            assert found in bytes(mutated)  # never a slice of something else


# -- pins as text ----------------------------------------------------------------------


def test_the_two_text_forms_and_back() -> None:
    digest = bytes(range(32))
    key = Pin.parse("sha256/" + base64.b64encode(digest).decode())
    assert key == Pin("public_key", digest)
    assert str(key) == "sha256/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    colons = ":".join(f"{b:02X}" for b in digest)
    assert Pin.parse(colons) == Pin("certificate", digest)
    assert Pin.parse(digest.hex()) == Pin("certificate", digest)
    assert Pin.parse(colons.lower()) == Pin("certificate", digest)
    assert Pin.parse(f"  {colons}\n") == Pin("certificate", digest)
    assert str(Pin("certificate", digest)) == colons
    assert Pin.parse(str(key)) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256/",
        "sha256/AAEC",  # too short
        "sha256/" + base64.b64encode(bytes(33)).decode(),  # too long
        "sha256/" + "!" * 44,
        "sha1/" + base64.b64encode(bytes(20)).decode(),
        "ab" * 31,  # 62 hex digits
        "ab" * 33,
        "AB:CD" + ":AB" * 29,  # one pair short
        "AB:" * 31 + "ABC",
        "zz" * 32,
    ],
)
def test_malformed_pin_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a (public-key )?pin"):
        Pin.parse(text)


def test_pin_values_check_themselves() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Pin("public_key", b"short")
    with pytest.raises(ValueError, match="target"):
        Pin("key", bytes(32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Pin.parse(b"sha256/abc")  # type: ignore[arg-type]


def test_pins_from_every_accepted_shape() -> None:
    a, b = Pin("public_key", bytes(32)), Pin("certificate", bytes(32))
    assert pins_from(None) == ()
    assert pins_from(a) == (a,)
    assert pins_from(str(a)) == (a,)
    assert pins_from([str(a), b, a]) == (a, b)  # deduplicated, in order
    assert pins_from(iter([b])) == (b,)
    with pytest.raises(ValueError, match="empty"):
        pins_from([])
    with pytest.raises(TypeError):
        pins_from(b"sha256/...")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pins_from(42)  # type: ignore[arg-type]


# -- pins of certificates --------------------------------------------------------------


def test_pin_of_pem_der_and_chains_against_cryptography() -> None:
    pem, der = leaf()
    cert = x509.load_der_x509_certificate(der)
    key_pin = Pin("public_key", hashlib.sha256(spki_of(der)).digest())
    cert_pin = Pin("certificate", cert.fingerprint(hashes.SHA256()))
    for given in (pem, pem.decode(), der):
        assert Pin.of(given) == key_pin
        assert Pin.of(given, target="certificate") == cert_pin
    # a chain file: the first certificate is the server's
    chain = pem + trustme.CA().cert_pem.bytes()
    assert Pin.of(chain) == key_pin
    # text around the block, as `openssl x509 -text` writes
    assert Pin.of("Certificate:\n    Data: ...\n" + pem.decode()) == key_pin
    public_key_pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert Pin.of(public_key_pem) == key_pin


def test_pins_agree_with_the_openssl_command_line() -> None:
    """The commands the security page gives print the same pins."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command is needed"
    pem, _ = leaf(trustme.KeyType.RSA)

    def run(*args: str, data: bytes) -> bytes:
        return subprocess.run(
            [openssl, *args], input=data, capture_output=True, check=True, timeout=10
        ).stdout

    public_key = run("x509", "-pubkey", "-noout", data=pem)
    spki = run("pkey", "-pubin", "-outform", "der", data=public_key)
    digest = run("dgst", "-sha256", "-binary", data=spki)
    assert "sha256/" + base64.b64encode(digest).decode() == str(Pin.of(pem))
    fingerprint = run("x509", "-noout", "-fingerprint", "-sha256", data=pem).decode()
    assert fingerprint.strip().split("=", 1)[1] == str(Pin.of(pem, target="certificate"))


def test_pin_of_refuses_what_is_not_a_certificate() -> None:
    pem, der = leaf()
    with pytest.raises(ValueError, match="BEGIN CERTIFICATE"):
        Pin.of("no PEM here")
    with pytest.raises(ValueError, match="BEGIN CERTIFICATE"):
        Pin.of(pem.replace(b"-----END CERTIFICATE-----", b""))
    with pytest.raises(ValueError, match="base64"):
        Pin.of("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="ASCII"):
        Pin.of(b"-----BEGIN CERTIFICATE-----\n\xff\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="not a certificate"):
        Pin.of(der[:-1])
    with pytest.raises(ValueError, match="not a certificate"):
        Pin.of(b"garbage", target="certificate")  # would never match: refused
    with pytest.raises(ValueError, match="target"):
        Pin.of(pem, target="key")  # type: ignore[arg-type]
    public_key_pem = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="no certificate pin"):
        Pin.of(public_key_pem, target="certificate")
    with pytest.raises(TypeError):
        Pin.of(42)  # type: ignore[arg-type]


# -- checking --------------------------------------------------------------------------


def test_verify_accepts_either_pin_and_describes_a_mismatch() -> None:
    _, der = leaf()
    key_pin, cert_pin = Pin.of(der), Pin.of(der, target="certificate")
    other = Pin.of(leaf()[1])
    assert verify((key_pin,), der, "example.org") is None
    assert verify((other, cert_pin), der, "example.org") is None
    mismatch = verify((other,), der, "example.org")
    assert isinstance(mismatch, CertificatePinMismatch)
    assert isinstance(mismatch, eventsock.ConnectionFailed)
    assert mismatch.expected == (str(other),)
    assert mismatch.public_key == str(key_pin)
    assert mismatch.certificate == str(cert_pin)
    assert str(mismatch) == (
        f"the certificate of example.org matches none of the pins: expected {other}; "
        f"it has public key {key_pin} and certificate {cert_pin}"
    )


def test_verify_without_a_certificate_or_with_an_unreadable_key() -> None:
    pin = Pin("public_key", bytes(32))
    missing = verify((pin,), None, "h")
    assert missing is not None
    assert "sent no certificate" in str(missing)
    assert missing.certificate == missing.public_key == ""
    odd = verify((pin,), b"\x30\x00", "h")  # a key our walk cannot read: refused
    assert odd is not None
    assert odd.public_key == ""
    assert "could not be read" in str(odd)
    # a certificate pin still matches such a certificate
    odd_pin = Pin("certificate", hashlib.sha256(b"\x30\x00").digest())
    assert verify((odd_pin,), b"\x30\x00", "h") is None


def test_pinned_context_wraps_and_never_changes_the_given_context() -> None:
    pin = Pin("public_key", bytes(32))
    given = ssl.create_default_context()
    before = (given.verify_mode, given.check_hostname, given.sslobject_class)
    wrapped = pinned_context(given, (pin,))
    assert isinstance(wrapped, ssl.SSLContext)
    assert wrapped is not given
    assert (given.verify_mode, given.check_hostname, given.sslobject_class) == before
    with pytest.raises(NotImplementedError):
        wrapped.wrap_socket(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clients only"):
        wrapped.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    with pytest.raises(ValueError, match="at least one pin"):
        pinned_context(None, ())
    with pytest.raises(TypeError):
        pinned_context("yes", (pin,))  # type: ignore[arg-type]
