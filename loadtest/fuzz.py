"""Hostile requests generated from the proto descriptors: every field of a method's request message, nested messages
included, gets values of every kind a client in any language can put on the wire.

The wire bytes are built by hand (not through the Python message API), since Python's API refuses to build most of
what matters here:
- strings and bytes: empty, not UTF-8, NUL, right-to-left overrides and emoji, injection text, oversized up to the
  largest message gRPC accepts;
- numbers: the integer edges of the field's own encoding (varint, zigzag, fixed), NaN, infinities, huge values;
- enums: UNSPECIFIED, negative and unknown numbers;
- well-known types: Timestamp and Duration outside their ranges, wrappers around hostile values, google.type.Money
  with nanos out of range or signs that disagree;
- structure: repeated fields with thousands of elements, unknown fields of every wire type, known fields sent with
  the wrong wire type, groups nested past the parser's depth limit, truncated messages, and messages at and past
  gRPC's 4 MiB limit.

Each request records which fields got a hostile value, whether its bytes are malformed as a whole (then a rejection
may name the field `request`) and whether it is past the size limit (then gRPC itself answers RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import base64
import random
import re
import struct
from dataclasses import dataclass, field

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

# gRPC's default (and this project's, libs/grpc_server.py) largest request a server accepts.
MAX_MESSAGE = 4 * 1024 * 1024
MAX_REPEATED = 5_000
VALID_USERS = ("17850", "13047", "12583", "14688", "15311", "999999")  # known customers and one unknown
VALID_PRODUCTS = ("85123A", "71053", "84406B", "22423", "NOPE")
VALID_TEXT = ("lantern", "white metal lantern", "tea cup", "a", "christmas lights")
# google.protobuf.Timestamp and Duration ranges (their .proto files).
TS_MIN, TS_MAX = -62_135_596_800, 253_402_300_799
DURATION_MAX = 315_576_000_000

F = FieldDescriptor
VARINT_TYPES = {F.TYPE_INT32, F.TYPE_INT64, F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_BOOL, F.TYPE_ENUM}
ZIGZAG_TYPES = {F.TYPE_SINT32, F.TYPE_SINT64}
FIXED32_TYPES = {F.TYPE_FIXED32, F.TYPE_SFIXED32, F.TYPE_FLOAT}
FIXED64_TYPES = {F.TYPE_FIXED64, F.TYPE_SFIXED64, F.TYPE_DOUBLE}
INT_EDGES = (0, -1, 1, 7, 100, 101, 500, 501, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63), 2**64 - 1)
FLOAT_EDGES = (0.0, -0.0, -1.0, 1.5, float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 5e-324, 3.4e38)


@dataclass
class Hostile:
    """One generated request: wire bytes and what was hostile about it."""

    payload: bytes
    hostile_fields: list[str] = field(default_factory=list)
    user_ids: set[str] = field(default_factory=set)
    malformed: bool = False  # the bytes as a whole cannot be parsed (truncated, nested too deep)
    oversize: bool = False  # past MAX_MESSAGE: gRPC refuses it before any code of ours runs
    raw_strings: bool = True  # strings may be any bytes, not only UTF-8
    fill: float = 0.75  # the chance each field is set


FILL = 0.75  # the chance each field is set
FOCUSED_FILL = 0.2  # ... in a focused request, which also sets every REQUIRED field


# ------------------------------------------------------------------------------------------------------ wire
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negatives are ten-byte two's complement on the wire
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _zigzag(value: int) -> int:
    value = max(min(value, 2**63 - 1), -(2**63))
    return (value << 1) ^ (value >> 63)


# ------------------------------------------------------------------------------------------------------ values
def _signed_token_lookalike(rng: random.Random) -> str:
    body = rng.choice([b"[" * 50_000, b'{"v":"gnn_only"}', b"\xff\xfe", b"{}"])
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + rng.choice(["", ".", ".AAAA", "." + "A" * 22])


def hostile_string(rng: random.Random, name: str, long: bool = True, raw: bool = True) -> tuple[bytes, bool]:
    """(UTF-8 or raw bytes, whether the value is hostile) for a string field called `name`. `long` False: one of
    many elements, kept short and mostly UTF-8, or nearly every such request would fail to parse as a whole.
    `raw` False: UTF-8 only (one non-UTF-8 string makes the whole request unparseable, and such requests never reach
    the servicers' own checks)."""
    if not long and rng.random() < 0.97:
        raw = rng.choice([b"", b"x" * 70, "\u00e9\U0001f600".encode(), rng.choice(VALID_PRODUCTS).encode()])
        return raw, raw not in [p.encode() for p in VALID_PRODUCTS]
    valid = {"user_id": VALID_USERS, "product_id": VALID_PRODUCTS, "query": VALID_TEXT}.get(name)
    if valid and rng.random() < 0.35:
        return rng.choice(valid).encode(), False
    if name == "event_id" and rng.random() < 0.35:
        return f"e{rng.getrandbits(64):x}".encode(), False
    choice = rng.randrange(13)
    if not raw and choice in (1, 9):
        choice = 3
    if choice == 0:
        return b"", True
    if choice == 1:
        return b"\xff\xfe\xc3\x28" * rng.randint(1, 8), True  # not UTF-8
    if choice == 2:
        return ("x" * rng.choice([65, 257, 513, 4096, 100_000] if long else [65, 257])).encode(), True
    if choice == 3:
        return ("\u00e9\u202e\U0001f600" * rng.randint(1, 200)).encode(), True  # accents, RTL override, emoji
    if choice == 4:
        return b"\x00" * rng.randint(1, 64), True
    if choice == 5:
        return rng.choice(["17850.0", "-1", "1" * 17, "0" * 16, " 17850 ", "١٢٣"]).encode(), True
    if choice == 6:
        return _signed_token_lookalike(rng).encode(), True
    if choice == 7:
        return rng.choice(["' OR 1=1 --", "%s%n", "../../etc/passwd", "${jndi:ldap://x}"]).encode(), True
    if choice == 8:
        return " \t\n\r ".encode() * rng.randint(1, 100), True
    if choice == 9:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))), True  # random bytes
    if choice == 10:
        return ("\ud7ff" + "a" * rng.randint(0, 600)).encode(), True
    return rng.choice(VALID_TEXT).encode(), False


def _scalar(fd: FieldDescriptor, rng: random.Random, path: str, out: Hostile, long: bool = True) -> bytes:
    n = fd.number
    if fd.type in (F.TYPE_STRING, F.TYPE_BYTES):
        value, hostile = hostile_string(rng, fd.name, long, out.raw_strings)
        if hostile:
            out.hostile_fields.append(path)
        elif fd.name == "user_id":
            out.user_ids.add(value.decode())
        return _delimited(n, value)
    if fd.type == F.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        value = rng.choice(known) if rng.random() < 0.5 else rng.choice([-1, 99, 2**31 - 1, -(2**31)])
        if value not in known or value == 0:
            out.hostile_fields.append(path)
        return _tag(n, 0) + _varint(value)
    if fd.type == F.TYPE_BOOL:
        return _tag(n, 0) + _varint(rng.choice([0, 1, 2, 2**40]))  # any non-zero varint reads as true
    if fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        value = rng.choice(FLOAT_EDGES)
        out.hostile_fields.append(path)
        if fd.type == F.TYPE_DOUBLE:
            return _tag(n, 1) + struct.pack("<d", value)
        return _tag(n, 5) + struct.pack("<f", value if abs(value) < 3.4e38 else value * float("inf"))
    value = rng.choice(INT_EDGES)
    if value < 0 or value > 500:
        out.hostile_fields.append(path)
    if fd.type in ZIGZAG_TYPES:
        return _tag(n, 0) + _varint(_zigzag(value))
    if fd.type in FIXED32_TYPES:
        return _tag(n, 5) + struct.pack("<I", value & 0xFFFFFFFF)
    if fd.type in FIXED64_TYPES:
        return _tag(n, 1) + struct.pack("<Q", value & (2**64 - 1))
    return _tag(n, 0) + _varint(value)


def _seconds_nanos(rng: random.Random, low: int, high: int, same_sign: bool) -> tuple[int, int, bool]:
    seconds = rng.choice([0, 1_300_000_000, low, high, low - 1, high + 1, -(2**62), 2**62, -1])
    nanos = rng.choice([0, 1, 999_999_999, 10**9, -1, -(10**9), 2**31 - 1, -(2**31)])
    bad = not low <= seconds <= high or not -999_999_999 <= nanos <= 999_999_999
    bad = bad or (not same_sign and nanos < 0) or (same_sign and seconds * nanos < 0)
    return seconds, nanos, bad


def _well_known(desc: Descriptor, rng: random.Random, path: str, out: Hostile) -> bytes | None:
    """Hostile values of the well-known types (and google.type.Money) whose rules a generic walk rarely breaks."""
    name = desc.full_name
    if name == "google.protobuf.Timestamp":
        seconds, nanos, bad = _seconds_nanos(rng, TS_MIN, TS_MAX, same_sign=False)
    elif name == "google.protobuf.Duration":
        seconds, nanos, bad = _seconds_nanos(rng, -DURATION_MAX, DURATION_MAX, same_sign=True)
    elif name == "google.type.Money":
        currency = rng.choice([b"GBP", b"EUR", b"", b"gbp", b"GBPX", b"12"] + [b"\xff\xfe"] * out.raw_strings)
        units = rng.choice([0, 1, 3, -1, 2**63 - 1, -(2**63), 10**15])
        nanos = rng.choice([0, 500_000_000, 999_999_999, 10**9, -1, -(10**9), 2**31 - 1])
        if currency != b"GBP" or units < 0 or nanos < 0 or nanos > 999_999_999 or units > 10**9:
            out.hostile_fields.append(path)
        return _delimited(1, currency) + _tag(2, 0) + _varint(units) + _tag(3, 0) + _varint(nanos)
    else:
        return None
    if bad:
        out.hostile_fields.append(path)
    return _tag(1, 0) + _varint(seconds) + _tag(2, 0) + _varint(nanos)


def _message(desc: Descriptor, rng: random.Random, path: str, out: Hostile, depth: int) -> bytes:
    if rng.random() < 0.6 and (special := _well_known(desc, rng, path, out)) is not None:
        return special
    chunks = []
    for fd in desc.fields:
        if rng.random() >= out.fill and not (out.fill < FILL and _required(fd)):
            continue  # unset: required fields missing are hostile too
        sub = f"{path}.{fd.name}" if path else fd.name
        count = 1
        if fd.is_repeated:
            count = rng.choice([0, 1, 2, 5, rng.randint(1, 40), 600, MAX_REPEATED]) if depth == 0 else rng.randint(0, 3)
        if fd.is_repeated and fd.type in VARINT_TYPES and count and rng.random() < 0.3:
            values = [
                rng.choice(INT_EDGES) if fd.type != F.TYPE_ENUM else rng.choice([0, 1, 99, -1]) for _ in range(count)
            ]
            out.hostile_fields.append(sub)
            chunks.append(_delimited(fd.number, b"".join(_varint(v) for v in values)))  # packed encoding
            continue
        for i in range(count):
            at = f"{sub}[{i}]" if fd.is_repeated else sub
            if fd.type == F.TYPE_MESSAGE:
                if count > 50:  # many elements: keep each small, so most such requests stay receivable
                    body = _small_message(fd.message_type, rng, at, out)
                else:
                    body = _message(fd.message_type, rng, at, out, depth + 1)
                chunks.append(_delimited(fd.number, body))
            else:
                chunks.append(_scalar(fd, rng, at, out, long=count <= 5))
    rng.shuffle(chunks)  # field order on the wire is free; parsers must not depend on it
    return b"".join(chunks)


def _small_message(desc: Descriptor, rng: random.Random, path: str, out: Hostile) -> bytes:
    chunks = []
    for fd in desc.fields:
        if fd.type == F.TYPE_STRING:
            raw = rng.choice([b"", b"x" * 70, rng.choice(VALID_PRODUCTS).encode()]) if rng.random() < 0.995 else b"\xff"
            out.hostile_fields.append(f"{path}.{fd.name}")
            chunks.append(_delimited(fd.number, raw))
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------------------ structure
def _unknown_fields(desc: Descriptor, rng: random.Random) -> bytes:
    """Fields this build does not know (a newer client's), of every valid wire type; parsers keep or skip them."""
    known = {f.number for f in desc.fields}
    chunks = []
    for _ in range(rng.randint(1, 6)):
        number = rng.choice([n for n in (15, 99, 1000, 19_999, 536_870_911) if n not in known])
        wire_type = rng.choice([0, 1, 2, 5])
        body = {
            0: _varint(rng.choice(INT_EDGES)),
            1: struct.pack("<d", rng.choice(FLOAT_EDGES)),
            2: _varint(n := rng.choice([0, 3, 1000])) + bytes(rng.getrandbits(8) for _ in range(n)),
            5: struct.pack("<f", 1.5),
        }[wire_type]
        chunks.append(_tag(number, wire_type) + body)
    return b"".join(chunks)


def _wrong_wire_type(desc: Descriptor, rng: random.Random) -> bytes:
    """A known field sent with another wire type than its own (a client built from an incompatible proto)."""
    fd = rng.choice(desc.fields)
    if fd.type in (F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_MESSAGE):
        return _tag(fd.number, 0) + _varint(rng.choice(INT_EDGES))
    return _delimited(fd.number, b"\xff" * rng.randint(0, 9))


def _deep_groups(rng: random.Random) -> bytes:
    """Groups of an unknown field nested past protobuf's recursion limit (100)."""
    depth = rng.choice([101, 200, 5_000])
    return _tag(9_999, 3) * depth + _tag(9_999, 4) * depth


def _at_size(desc: Descriptor, rng: random.Random, payload: bytes, size: int, out: Hostile) -> bytes:
    """`payload` grown to `size` bytes by one more string field (a non-repeated one read last wins), else an unknown
    field: requests at, and just past, the largest gRPC accepts."""
    strings = [f for f in desc.fields if f.type == F.TYPE_STRING]
    fd = rng.choice(strings) if strings and rng.random() < 0.7 else None
    number = fd.number if fd is not None else 19_998
    head = len(payload) + len(_tag(number, 2)) + 5  # a 5-byte length prefix covers up to 2**35
    fill = max(size - head, 0)
    if fd is not None:
        out.hostile_fields.append(f"{fd.name}[0]" if fd.is_repeated else fd.name)
    return payload + _tag(number, 2) + _padded_varint(fill) + b"y" * fill


def _padded_varint(value: int, width: int = 5) -> bytes:
    """`value` as a varint of exactly `width` bytes (continuation bits on zero groups are valid protobuf)."""
    out = bytearray()
    for i in range(width):
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if i < width - 1 else 0))
    return bytes(out)


def _required(fd: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in fd.GetOptions().Extensions[field_behavior_pb2.field_behavior]


def hostile_request(desc: Descriptor, rng: random.Random) -> Hostile:
    # A third of the requests are focused: required fields set, each optional one rarely. With every field set at
    # FILL, a request with many optional fields is almost never valid as a whole, and the code past validation
    # (ranking, paging, explaining) would go unfuzzed.
    out = Hostile(b"", raw_strings=rng.random() < 0.15, fill=FILL if rng.random() < 2 / 3 else FOCUSED_FILL)
    payload = _message(desc, rng, "", out, 0)
    shape = rng.random()
    if shape < 0.08:
        payload += _unknown_fields(desc, rng)
    elif shape < 0.12 and desc.fields:
        payload += _wrong_wire_type(desc, rng)
        out.malformed = True  # a parser may refuse it (upb skips it as unknown; others may not)
    elif shape < 0.15:
        payload += _deep_groups(rng)
        out.malformed = True
    elif shape < 0.18 and payload:
        payload = payload[: rng.randrange(len(payload))]
        out.malformed = True
    elif shape < 0.21:
        payload = _at_size(desc, rng, payload, MAX_MESSAGE + rng.choice([1, 4096]), out)
    elif shape < 0.24:
        payload = _at_size(desc, rng, payload, MAX_MESSAGE - rng.choice([0, 64, 4096]), out)
    out.payload = payload
    out.oversize = len(payload) > MAX_MESSAGE
    return out


# ------------------------------------------------------------------------------------------------------ judging
_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\[\d+\])?$")


def names_a_field(desc: Descriptor, path: str) -> bool:
    """Whether a BadRequest field path (`events[3].event_time`) names a field of `desc`, nested ones included."""
    current: Descriptor | None = desc
    for part in path.split("."):
        match = _PATH_PART.match(part)
        if current is None or match is None or match.group(1) not in current.fields_by_name:
            return False
        fd = current.fields_by_name[match.group(1)]
        if match.group(2) and not fd.is_repeated:
            return False
        current = fd.message_type
    return True
