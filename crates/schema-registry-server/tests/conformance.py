"""The official client (confluent-kafka's SchemaRegistryClient, AvroSerializer and
AvroDeserializer, unmodified) drives the registry through the calls producers, consumers and
operators make; prints `ok ...` per group of checks. Usage: conformance.py URL PREFIX
[--after-restart]."""

import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext


def record(fields):
    return json.dumps({"type": "record", "name": "Row", "namespace": "conf", "fields": fields})


V1 = record([{"name": "id", "type": "long"}, {"name": "amt", "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}}])
V2 = record([{"name": "id", "type": "long"}, {"name": "amt", "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}},
             {"name": "note", "type": ["null", "string"], "default": None}])
BAD = record([{"name": "id", "type": "long"}, {"name": "must", "type": "int"}])


def refused(code, call):
    try:
        call()
    except SchemaRegistryError as e:
        assert e.error_code == code, f"error code {e.error_code}, wanted {code}: {e}"
        return
    raise AssertionError(f"no error {code}")


def main() -> int:
    url, prefix = sys.argv[1], sys.argv[2]
    c = SchemaRegistryClient({"url": url})
    s, s2 = f"{prefix}-value", f"{prefix}-other-value"
    if "--after-restart" in sys.argv:
        # Everything registered before the restart is still there, under the same ids.
        latest = c.get_latest_version(s)
        assert latest.version == 2, latest.version
        assert json.loads(c.get_schema(latest.schema_id).schema_str) == json.loads(V2)
        print("ok kept across a restart")
        return 0

    id1 = c.register_schema(s, Schema(V1, "AVRO"))
    assert c.register_schema(s, Schema(V1, "AVRO")) == id1
    assert c.register_schema(s2, Schema(V1, "AVRO")) == id1, "one id per schema"
    assert json.loads(c.get_schema(id1).schema_str) == json.loads(V1)
    print("ok register and ids")

    latest = c.get_latest_version(s)
    assert (latest.version, latest.schema_id) == (1, id1)
    assert c.get_versions(s) == [1]
    assert c.lookup_schema(s, Schema(V1, "AVRO")).version == 1
    assert s in c.get_subjects()
    refused(40401, lambda: c.get_versions(f"{prefix}-nothing"))
    refused(40403, lambda: c.get_schema(999999))
    print("ok versions, lookup, subjects, not found")

    assert c.get_compatibility() == "BACKWARD"
    assert c.test_compatibility(s, Schema(V2, "AVRO")) is True
    assert c.test_compatibility(s, Schema(BAD, "AVRO")) is False
    refused(409, lambda: c.register_schema(s, Schema(BAD, "AVRO")))
    id2 = c.register_schema(s, Schema(V2, "AVRO"))
    assert id2 != id1 and c.get_versions(s) == [1, 2]
    c.set_compatibility(s2, "NONE")
    assert c.get_compatibility(s2) == "NONE"
    assert c.register_schema(s2, Schema(BAD, "AVRO")) > 0
    refused(42203, lambda: c.set_compatibility(s2, "SOMETIMES"))
    print("ok compatibility")

    # A new client: this one cached the latest version it was told of (version 1).
    fresh = SchemaRegistryClient({"url": url})
    ser = AvroSerializer(fresh, V2, conf={"auto.register.schemas": False, "use.latest.version": True})
    de = AvroDeserializer(fresh)
    ctx = SerializationContext(prefix, MessageField.VALUE)
    from decimal import Decimal
    row = {"id": 7, "amt": Decimal("12.50"), "note": "x"}
    data = ser(row, ctx)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == id2, (data[:8], id1, id2)
    assert de(data, ctx) == row
    print("ok serializer and deserializer")

    assert c.delete_subject(s2) == [1, 2]
    refused(40401, lambda: c.get_versions(s2))
    print("ok delete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
