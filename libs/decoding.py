"""Which string fields of an unparseable request are not UTF-8, named as a caller writes them (`products[3].title`).

protobuf refuses a whole message when one string field is not UTF-8 and does not say which. A string and a bytes
field are the same on the wire, so the request is parsed again as a mirror of its type whose string fields are bytes,
and each of those is checked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message


def _files(file: object) -> Iterator[object]:
    """The file and everything it imports, dependencies first, each once."""
    seen: set[str] = set()

    def walk(f: object) -> Iterator[object]:
        if f.name in seen:
            return
        seen.add(f.name)
        for dep in f.dependencies:
            yield from walk(dep)
        yield f

    yield from walk(file)


def _strings_to_bytes(messages: object) -> None:
    for m in messages:
        for f in m.field:
            # A map's key cannot be bytes: a non-UTF-8 key stays unnamed (the caller sees `request`).
            if f.type == FieldDescriptor.TYPE_STRING and not (m.options.map_entry and f.name == "key"):
                f.type = FieldDescriptor.TYPE_BYTES
                if f.label != FieldDescriptor.LABEL_REPEATED and not (m.options.map_entry or f.HasField("oneof_index")):
                    # Every occurrence of a singular string is checked, not only the last one that parsing keeps
                    # (protobuf checks each). Members of a oneof stay singular: a repeated field cannot be one.
                    f.label = FieldDescriptor.LABEL_REPEATED
        _strings_to_bytes(m.nested_type)


@functools.cache
def _mirror(descriptor: Descriptor) -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    for file in _files(descriptor.file):
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        _strings_to_bytes(proto.message_type)
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(descriptor.full_name))


def _bad(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _walk(msg: Message, original: Descriptor, prefix: str) -> Iterator[str]:
    for field, value in msg.ListFields():
        of = original.fields_by_name[field.name]
        at = f"{prefix}{field.name}"
        if of.message_type is not None and of.message_type.GetOptions().map_entry:
            value_field = of.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.type == FieldDescriptor.TYPE_STRING and _bad(item):
                    yield f"{at}[{key!r}]"
                elif value_field.message_type is not None:
                    yield from _walk(item, value_field.message_type, f"{at}[{key!r}].")
            continue
        if of.type == FieldDescriptor.TYPE_STRING and not of.is_repeated and field.is_repeated:  # see _strings_to_bytes
            if any(_bad(item) for item in value):
                yield at
            continue
        items = list(value) if of.is_repeated else [value]
        for i, item in enumerate(items):
            here = f"{at}[{i}]" if of.is_repeated else at
            if of.type == FieldDescriptor.TYPE_STRING and _bad(item):
                yield here
            elif of.message_type is not None:
                yield from _walk(item, of.message_type, f"{here}.")


def non_utf8_fields(message_cls: type[Message], raw: bytes) -> list[str]:
    """Paths of the string fields in `raw` that are not UTF-8; [] when it fails to parse for another reason."""
    descriptor = message_cls.DESCRIPTOR
    try:
        mirrored = _mirror(descriptor).FromString(raw)
    except DecodeError:
        return []
    return list(_walk(mirrored, descriptor, ""))
