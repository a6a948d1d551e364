"""Indicator normalisation: one canonical string per domain, address, URL, number, hash or name.

Rule 1: `normalise` is idempotent: `normalise(t, normalise(t, v)) == normalise(t, v)`. The store indexes
normalised values and every lookup normalises its query the same way, so equal indicators meet.
Rule 2: a value that cannot be normalised raises `SchemaError` with a message that names the value but
not the field; callers (protocol.kinds) prefix the field path.
Rule 3: pure: no DNS, no I/O, no locale. Only stdlib string, `ipaddress`, `unicodedata` and codec code.
Rule 4: IDNA is IDNA2008 / UTS-46 non-transitional in spirit, not the stdlib "idna" codec. That codec is
IDNA2003: it maps "faß.de" to "fass.de", a different domain from the one browsers resolve
("xn--fa-hia.de"). Naming the wrong domain in an enforcement lead is worse than refusing a rare one, so
non-ASCII labels are NFKC-mapped, lower-cased (not case-folded: that also turns ß into ss), restricted to
letters, marks, digits and hyphens, and punycoded. Anything else can still be given as its xn-- form.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

from protocol.errors import SchemaError

MAX_DOMAIN_LEN: Final = 253
MAX_DOMAIN_LABEL_LEN: Final = 63
MAX_EMAIL_LEN: Final = 254
MAX_LOCAL_PART_LEN: Final = 64  # octets, RFC 5321 §4.5.3.1.1
MAX_URL_LEN: Final = 4096
MIN_PHONE_DIGITS: Final = 6
MAX_PHONE_DIGITS: Final = 15  # E.164 §6.1
MAX_ASN: Final = 2**32 - 1
MAX_NAME_LEN: Final = 200
MIN_HASH_HEX: Final = 16
MAX_HASH_HEX: Final = 256
MAX_SHOWN: Final = 60  # characters of an offending value quoted in an error message

TERM_TYPES: Final = frozenset({"domain", "email", "ip", "url", "phone", "asn", "hash", "name", "payment"})
# Lead subject types spell two of the term types out; both spellings normalise the same way.
TERM_ALIASES: Final[Mapping[str, str]] = {"message-hash": "hash", "payment-account": "payment"}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# At least two labels, and the last one not all digits (RFC 3696 §2), so "192.0.2.1" is never a domain.
_DOMAIN_RE: Final = re.compile(rf"(?:{_LABEL}\.)+(?![0-9]+(?![a-z0-9-])){_LABEL}")
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
# Non-ASCII is allowed in local parts (RFC 6531); `_email` checks it is printable.
_LOCAL_RE: Final = re.compile(rf"(?:{_ATEXT}|[^\x00-\x7f])+(?:\.(?:{_ATEXT}|[^\x00-\x7f])+)*")
_SCHEME_RE: Final = re.compile(r"[a-z][a-z0-9+.-]*")
# urlsplit silently drops tabs and newlines (bpo-43882); refuse them and every other blank or control.
_URL_FORBIDDEN: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_BRACKETED_HOST: Final = re.compile(r"\[[0-9A-Fa-f:.]+\](?::[0-9]*)?")
_DEFAULT_PORTS: Final[Mapping[str, int]] = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_EMPTY_PATH_IS_SLASH: Final = frozenset({"http", "https", "ws", "wss"})  # RFC 3986 §6.2.3
_PHONE_SEPARATORS: Final = re.compile(r"[\s().-]")
_PHONE_RE: Final = re.compile(rf"\+[1-9][0-9]{{{MIN_PHONE_DIGITS - 1},{MAX_PHONE_DIGITS - 1}}}")
_ASN_RE: Final = re.compile(r"(?:asn?\s*)?([0-9]{1,10})", re.IGNORECASE)
_HASH_RE: Final = re.compile(r"(?:([a-z][a-z0-9-]{0,15}):)?([0-9a-f]+)")
_SHA2_BITS = (224, 256, 384, 512)
_HASH_ALIASES: Final[Mapping[str, str]] = {f"sha-{bits}": f"sha{bits}" for bits in (1, *_SHA2_BITS)}
_HASH_HEX_LEN: Final[Mapping[str, int]] = {
    "md5": 32,
    "sha1": 40,
    **{f"sha{bits}": bits // 4 for bits in _SHA2_BITS},
    **{f"sha3-{bits}": bits // 4 for bits in _SHA2_BITS},
}
_HASH_MAX_HEX: Final[Mapping[str, int]] = {"blake2b": 128, "blake2s": 64}  # variable-length digests
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Fast acceptance of values already in canonical form: every ingested record re-checks its indicators,
# and the general normalisers (ipaddress above all) cost microseconds each. A value these match is one
# its normaliser returns unchanged (tests/protocol/test_indicators.py checks this against the slow path);
# anything they do not match simply takes the slow path.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_CANONICAL: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_HEXTET = r"(?:0|[1-9a-f][0-9a-f]{0,3})"
_HEXTETS = rf"(?:{_HEXTET}(?::{_HEXTET})*)?"
_IPV6_SHAPE: Final = re.compile(rf"{_HEXTETS}(?:::{_HEXTETS})?")
_DOMAIN_PART = _DOMAIN_RE.pattern
_LOCAL_PART_LIMIT = rf"(?=[^@]{{1,{MAX_LOCAL_PART_LEN}}}@)"
_FAST: Final[Mapping[str, tuple[re.Pattern[str], int]]] = {
    "domain": (_DOMAIN_RE, MAX_DOMAIN_LEN),
    "email": (
        re.compile(rf"{_LOCAL_PART_LIMIT}{_ATEXT}+(?:\.{_ATEXT}+)*@{_DOMAIN_PART}"),
        MAX_EMAIL_LEN,
    ),
    "url": (
        # ASCII only, no userinfo or port, a path; query and fragment non-empty when present.
        re.compile(
            rf"(?:https?|ftp)://(?:{_DOMAIN_PART}|{_IPV4_CANONICAL.pattern})/[!\"$->@-~]*(?:\?[!\"$-~]+)?(?:#[!-~]+)?"
        ),
        MAX_URL_LEN,
    ),
    "phone": (_PHONE_RE, MAX_PHONE_DIGITS + 1),
    "asn": (re.compile(r"AS(?:0|[1-9][0-9]{0,8})"), 11),
    "hash": (
        re.compile(
            r"md5:[0-9a-f]{32}|sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}|blake2b:(?:[0-9a-f]{2}){8,64}"
        ),
        len("sha512:") + 128,
    ),
}


def show(value: object) -> str:
    """Quote a value for an error message: repr (so controls are escaped), cut to a readable length."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _invalid(value: str, what: str, why: str = "") -> SchemaError:
    return SchemaError(f"{show(value)} is not a valid {what}" + (f": {why}" if why else ""))


def _map_unicode(text: str) -> str:
    # NFKC maps full-width letters and dots; lower() keeps ß and ς as UTS-46 non-transitional does.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).lower())


def _ace_label(label: str) -> str:
    for char in label:
        if char != "-" and unicodedata.category(char)[0] not in "LMN":
            raise SchemaError(f"{show(char)} is not allowed in a domain name; give the xn-- form instead")
    return _punycode(label)


def _punycode(label: str) -> str:
    return "xn--" + label.encode("punycode").decode("ascii")


def _check_ace(label: str) -> None:
    """An xn-- label must be the one `_ace_label` would produce for some Unicode label."""
    try:
        unicode = codecs.decode(label[4:].encode("ascii"), "punycode")
    except (UnicodeError, ValueError) as exc:
        raise SchemaError(f"{show(label)} is not valid punycode") from exc
    # Only the mapping is checked here, not the character repertoire: the xn-- form is the way to name
    # a domain whose characters `_ace_label` refuses (emoji domains exist, and spammers use them).
    canonical = unicode.isprintable() and _map_unicode(unicode) == unicode and _punycode(unicode) == label
    if unicode.isascii() or not canonical:
        raise SchemaError(f"{show(label)} is not a canonical IDNA label")


def _domain(value: str) -> str:
    text = value.strip()
    # NFKC turns the full-width dots into "." or U+3002, which UTS-46 also treats as a separator.
    text = text.lower() if text.isascii() else _map_unicode(text).replace("\u3002", ".")
    if text.endswith("."):
        text = text[:-1]
    try:
        if not text.isascii():
            text = ".".join(label if label.isascii() else _ace_label(label) for label in text.split("."))
        if len(text) > MAX_DOMAIN_LEN or not _DOMAIN_RE.fullmatch(text):
            raise SchemaError(_why_not_domain(text))
        if "xn--" in text:
            for label in text.split("."):
                if label.startswith("xn--"):
                    _check_ace(label)
    except SchemaError as exc:
        raise _invalid(value, "domain", str(exc)) from None
    return text


def _why_not_domain(text: str) -> str:
    # Only on the error path: a specific reason is worth a few extra checks.
    if _is_ip(text):
        return "it is an IP address"
    if len(text) > MAX_DOMAIN_LEN:
        return f"longer than {MAX_DOMAIN_LEN} characters"
    labels = text.split(".")
    if len(labels) < 2:
        return "a domain needs at least two labels"
    for label in labels:
        if not label:
            return "empty label"
        if len(label) > MAX_DOMAIN_LABEL_LEN:
            return f"label longer than {MAX_DOMAIN_LABEL_LEN} characters"
    if labels[-1].isdigit():
        return "the top-level label is all digits"
    return "labels are letters, digits and inner hyphens"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _email(value: str) -> str:
    text = value.strip()
    local, at, domain = text.rpartition("@")
    # Local parts are case-sensitive in RFC 5321, but no mailbox provider of note treats them so, and
    # "Bob@x" and "bob@x" must meet in a lookup. Lower-case, not case-fold: case-folding rewrites ß.
    local = local.lower()
    if not local.isascii():
        local = unicodedata.normalize("NFC", local)
        if not local.isprintable():
            raise _invalid(value, "email address", "the local part has an invisible character")
    if not at or not _LOCAL_RE.fullmatch(local) or len(local.encode("utf-8")) > MAX_LOCAL_PART_LEN:
        raise _invalid(value, "email address")
    try:
        domain = _domain(domain)
    except SchemaError as exc:
        raise _invalid(value, "email address", f"domain {exc}") from None
    result = f"{local}@{domain}"
    if len(result) > MAX_EMAIL_LEN:
        raise _invalid(value, "email address", f"longer than {MAX_EMAIL_LEN} characters")
    return result


def _ip(value: str) -> str:
    text = value.strip()
    if "%" in text:
        raise _invalid(value, "IP address", "zone ids are local to one host")
    try:
        if "/" not in text:
            address = ipaddress.ip_address(text)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(address)
        network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _invalid(value, "IP address or network") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    # A full-length prefix is one address; give it one spelling.
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _url_host(value: str, host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            return _domain(host)
        except SchemaError as exc:
            raise _invalid(value, "URL", f"host {exc}") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            return f"[{address}]"
        address = address.ipv4_mapped
    return str(address)


def _url(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_URL_LEN:
        raise _invalid(value, "URL", f"longer than {MAX_URL_LEN} characters")
    if _URL_FORBIDDEN.search(text):
        raise _invalid(value, "URL", "blanks and control characters must be percent-encoded")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _invalid(value, "URL", str(exc)) from None
    scheme, host = parts.scheme, parts.hostname  # both lower-cased by urlsplit
    if not _SCHEME_RE.fullmatch(scheme) or not text[len(scheme) :].startswith("://") or not host:
        raise _invalid(value, "URL", "it needs a scheme and a host, like https://example.com/")
    if "%" in host:
        raise _invalid(value, "URL", "zone ids are local to one host")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    # urlsplit ignores whatever follows "]" in "[::1]x"; a host must be all there is.
    if hostport.startswith("[") and not _BRACKETED_HOST.fullmatch(hostport):
        raise _invalid(value, "URL", f"bad host {show(hostport)}")
    netloc = userinfo + at + _url_host(value, host)
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = parts.path or ("/" if scheme in _EMPTY_PATH_IS_SLASH else "")
    result = f"{scheme}://{netloc}{path}"
    if parts.query:
        result += "?" + parts.query
    if parts.fragment:
        result += "#" + parts.fragment
    return result


def _phone(value: str) -> str:
    # "+31 (0)70 ..." writes the national trunk prefix in brackets; it is not part of the E.164 number.
    text = _PHONE_SEPARATORS.sub("", value.strip().replace("(0)", ""))
    if not _PHONE_RE.fullmatch(text):
        raise _invalid(
            value,
            "phone number",
            f"write + and the country code, then {MIN_PHONE_DIGITS}-{MAX_PHONE_DIGITS} digits in all",
        )
    return text


def _asn(value: str) -> str:
    match = _ASN_RE.fullmatch(value.strip())
    if match is None or int(match[1]) > MAX_ASN:
        raise _invalid(value, "AS number")
    return f"AS{int(match[1])}"


def _hash(value: str) -> str:
    match = _HASH_RE.fullmatch(value.strip().lower())
    if match is None:
        raise _invalid(value, "hash", "hex digits with an optional 'algorithm:' prefix")
    algorithm, digest = match[1], match[2]
    algorithm = _HASH_ALIASES.get(algorithm, algorithm) if algorithm else None
    expected = _HASH_HEX_LEN.get(algorithm) if algorithm else None
    longest = _HASH_MAX_HEX.get(algorithm or "", MAX_HASH_HEX)
    if expected is not None:
        if len(digest) != expected:
            raise _invalid(value, "hash", f"{algorithm} has {expected} hex digits, not {len(digest)}")
    elif len(digest) % 2 or not MIN_HASH_HEX <= len(digest) <= longest:
        raise _invalid(value, "hash", f"an even number of {MIN_HASH_HEX}-{longest} hex digits")
    return f"{algorithm}:{digest}" if algorithm else digest


def _fold(value: str, joiner: str, what: str) -> str:
    text = joiner.join(value.split())
    if not text or len(text) > MAX_NAME_LEN or _CONTROL_RE.search(text):
        raise _invalid(value, what, f"1-{MAX_NAME_LEN} printable characters")
    # NFKC and case folding can each undo the other's work on rare characters; iterate to a fixed point.
    for _ in range(4):
        folded = joiner.join(unicodedata.normalize("NFKC", text).casefold().split())
        if folded == text:
            break
        text = folded
    return text


def _name(value: str) -> str:
    return _fold(value, " ", "name")


def _payment(value: str) -> str:
    # Account numbers are grouped for reading only ("NL91 ABNA 0417 ..."); the blanks carry nothing.
    return _fold(value, "", "payment account")


_NORMALISERS: Final[Mapping[str, Callable[[str], str]]] = {
    "domain": _domain,
    "email": _email,
    "ip": _ip,
    "url": _url,
    "phone": _phone,
    "asn": _asn,
    "hash": _hash,
    "name": _name,
    "payment": _payment,
}


def _is_canonical_ipv6(text: str) -> bool:
    """True only for an address as `_ip` prints it: RFC 5952 form, and not IPv4-mapped."""
    if len(text) > 39 or not _IPV6_SHAPE.fullmatch(text):
        return False
    head, gap, tail = text.partition("::")
    if not gap:
        return text.count(":") == 7 and ":0:0:" not in f":{text}:"
    # "::" stands for the first longest run of two or more zero hextets (RFC 5952 §4.2): all of the run,
    # so no zero next to it; no run as long before it; none longer after it.
    head, tail = f":{head}:", f":{tail}:"
    width = 10 - head.count(":") - tail.count(":") + (head == "::") + (tail == "::")
    if width < 2 or head.endswith(":0:") or tail.startswith(":0:"):
        return False
    if ":0" * width + ":" in head or ":0" * (width + 1) + ":" in tail:
        return False
    return not (head == "::" and tail.startswith(":ffff:") and tail.count(":") == 4)


def _fast_check(pattern: re.Pattern[str], longest: int) -> Callable[[str], bool]:
    fullmatch = pattern.fullmatch
    return lambda value: len(value) <= longest and fullmatch(value) is not None and "xn--" not in value


def _is_canonical_ip(value: str) -> bool:
    return _IPV4_CANONICAL.fullmatch(value) is not None or (":" in value and _is_canonical_ipv6(value))


_FAST_CHECKS: Final[Mapping[str, Callable[[str], bool]]] = {
    **{term_type: _fast_check(*fast) for term_type, fast in _FAST.items()},
    "ip": _is_canonical_ip,
}


def _never(value: str) -> bool:
    return False


def _normaliser(term_type: str) -> tuple[str, Callable[[str], str]]:
    canonical_type = TERM_ALIASES.get(term_type, term_type)
    normaliser = _NORMALISERS.get(canonical_type)
    if normaliser is None:
        raise SchemaError(f"unknown indicator type {show(term_type)}; known: {', '.join(sorted(TERM_TYPES))}")
    return canonical_type, normaliser


def normalise(term_type: str, value: str) -> str:
    """Return the canonical form of an indicator of `term_type`, or raise SchemaError."""
    canonical_type, normaliser = _normaliser(term_type)
    if not isinstance(value, str):
        raise SchemaError(f"{show(value)} is not text")
    fast = _FAST_CHECKS.get(canonical_type)
    if fast is not None and fast(value):
        return value
    return normaliser(value)


def is_canonical(term_type: str, value: str) -> bool:
    """Whether `value` is a valid indicator already in canonical form (what parsers require)."""
    return canonical_check(term_type)(value)


def canonical_check(term_type: str) -> Callable[[str], bool]:
    """`is_canonical` for one term type, looked up once: parsers call it for every indicator."""
    canonical_type, normaliser = _normaliser(term_type)
    fast = _FAST_CHECKS.get(canonical_type, _never)

    def check(value: str) -> bool:
        if fast(value):
            return True
        try:
            return normaliser(value) == value
        except SchemaError:
            return False

    return check


def url_host(url: str) -> tuple[str, str]:
    """The host of a normalised URL as a (term type, value) pair: ("domain", ...) or ("ip", ...)."""
    host = urlsplit(url).hostname or ""
    return ("ip", host) if _is_ip(host) else ("domain", host)


def guess_term_type(value: str) -> str | None:
    """Recognise what a bare query string is: ip, url, email, asn, phone, hash or domain, else None.

    Names and payment accounts cannot be told from free text, so they are never guessed. A bare number is
    not guessed either: it could be an AS number, a phone number without its +, or an account.
    """
    text = value.strip()
    if "://" in text:
        candidates: tuple[str, ...] = ("url",)
    elif "@" in text:
        candidates = ("email",)
    elif text[:1] == "+":
        candidates = ("phone",)
    elif text[:2].lower() == "as" and text[2:].strip()[:1].isdigit():
        candidates = ("asn",)
    else:
        candidates = ("ip", "hash", "domain")
    for candidate in candidates:
        if candidate == "hash" and text.isdigit():
            continue
        try:
            _NORMALISERS[candidate](text)
        except SchemaError:
            continue
        return candidate
    return None
