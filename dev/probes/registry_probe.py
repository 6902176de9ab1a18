"""Readiness probe of the schema registry, through the official client (confluent-kafka's
SchemaRegistryClient): registers a schema under a probe subject and reads it back by id."""

import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient


def main() -> int:
    c = SchemaRegistryClient({"url": sys.argv[1]})
    schema = Schema('{"type": "record", "name": "Probe", "fields": [{"name": "n", "type": "long"}]}', "AVRO")
    sid = c.register_schema("sluice-probe-value", schema)
    back = c.get_schema(sid)
    if '"Probe"' not in back.schema_str:
        print(f"schema {sid} came back as {back.schema_str}", file=sys.stderr)
        return 1
    print(f"schema registry ok: id {sid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
