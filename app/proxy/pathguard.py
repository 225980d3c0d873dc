"""Client path tails: refuse traversal and encoding tricks, then build the downstream target.

Everything works on the RAW request path (`scope["raw_path"]`), because the decoded `path`
has already lost the difference between `/` and `%2f`. An encoded `/` (`%2F`, `%2f`) is read
as a segment separator before any check, because generated clients and Swagger UI
percent-encode the `{path}` of a wildcard operation (`chat%2Fhistory`): every check below then
sees the segments the downstream will see (`..%2Fx` is `../x`, refused; `%2Fx` starts with an
empty segment, refused; `%252F` is double encoding, refused). A tail that passes is put in
normal form (RFC 3986 §6.2.2): encoded separators written as `/`, encoded unreserved
characters decoded, other escapes in upper-case hex. Routes are matched, authorised and
limited on that form, and it is what the downstream receives, so Studio and the downstream
cannot read one path two ways (`%61dmin` is `admin` to both). The downstream target is the
service's base path plus the normalised tail: host, port and scheme never come from the client.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from app.proxy.errors import InvalidPath

# Bytes a tail may carry unencoded: visible ASCII except `\`, `#` and `?`. Controls, spaces and
# raw non-ASCII are refused rather than re-encoded: well-behaved clients percent-encode them.
_RAW_ALLOWED = bytes(b for b in range(0x21, 0x7F) if b not in b"\\#?")
# Bytes allowed after decoding: anything but controls (UTF-8 is fine once it was encoded).
_DECODED_ALLOWED = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
_DOT_SEGMENTS = frozenset((b".", b".."))
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_escape(match: re.Match[bytes]) -> bytes:
    byte = int(match[0][1:], 16)
    return bytes((byte,)) if byte in _UNRESERVED else match[0].upper()


def normal_form(raw: bytes) -> bytes:
    """`raw` with encoded unreserved characters decoded and other escapes in upper-case hex."""
    return _ESCAPE.sub(_normal_escape, raw) if b"%" in raw else raw


def validate_tail(tail: bytes) -> bytes:
    """Return `tail` (raw, without leading `/`) in normal form, or raise `InvalidPath`."""
    if not tail:
        return tail
    if b"%" in tail:  # no `%`, no copy: the common path allocates nothing here
        tail = tail.replace(b"%2F", b"/").replace(b"%2f", b"/")
    if tail[0] == 0x2F:  # `//` right after the service name: nothing legitimate needs it
        raise InvalidPath("Path has an empty first segment")
    if tail.translate(None, _RAW_ALLOWED):
        raise InvalidPath("Path contains a forbidden character")
    decoded = normal = tail
    if b"%" in tail:
        if _MALFORMED_ESCAPE.search(tail):
            raise InvalidPath("Path contains a malformed percent-escape")
        decoded = unquote_to_bytes(tail)
        if b"\\" in decoded:
            raise InvalidPath("Path contains an encoded '\\'")
        if decoded.translate(None, _DECODED_ALLOWED):
            raise InvalidPath("Path contains an encoded control character")
        if b"%" in decoded and _ESCAPE.search(decoded):
            raise InvalidPath("Path is double-encoded")
        normal = normal_form(tail)
    if b"." in decoded:
        for segment in decoded.split(b"/"):
            # `..;x` is `..` to Tomcat-style servers that strip path parameters.
            if segment.split(b";", 1)[0] in _DOT_SEGMENTS:
                raise InvalidPath("Path contains a '.' or '..' segment")
    return normal


def split_tail(raw_path: bytes, raw_prefix: bytes) -> bytes:
    """The raw part after `{prefix}/{service}/`; refuse a prefix that was itself encoded."""
    if not raw_path.startswith(raw_prefix):
        raise InvalidPath("Path prefix is encoded or malformed")
    return raw_path[len(raw_prefix) :]


def build_target(base_path: bytes, tail: bytes, query: bytes) -> bytes:
    """The request target sent downstream: base path, `/`, validated tail, raw query."""
    target = base_path + b"/" + tail
    return target + b"?" + query if query else target
