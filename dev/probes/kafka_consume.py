"""An independent Kafka consumer for tests (confluent-kafka, not Sluice's client): reads every
message of the given topics from the beginning and prints one JSON line per message
({topic, partition, offset, key, headers, value}), reading at least to each partition's high watermark, then stopping after --idle seconds
without a new message (or when --expect messages were read).

With --registry URL, keys and values are Avro in the Confluent wire format, decoded by
confluent-kafka's SchemaRegistryClient and AvroDeserializer (run it with the Python of
`dev/services avro-python`, which has those extras); each line then also has
value_schema_id, and values JSON cannot hold are written as text: decimals as their digits,
bytes as base64, dates and times in ISO 8601."""

import argparse
import base64
import datetime
import decimal
import json
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer, TopicPartition


def plain(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    raise TypeError(f"{type(v)} is not JSON")


def avro_decoder(url, auth):
    """key(msg), value(msg) decoders through the registry at `url`."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    conf = {"url": url}
    if auth:
        conf["basic.auth.user.info"] = auth
    registry = SchemaRegistryClient(conf)
    keys, values = AvroDeserializer(registry), AvroDeserializer(registry)

    def key(m):
        k = m.key()
        if not k or k[:1] != b"\0":  # a keyless table's text key is not Avro
            return k.decode("utf-8", "replace") if k is not None else None
        return keys(k, SerializationContext(m.topic(), MessageField.KEY))

    def value(m):
        v = m.value()
        return values(v, SerializationContext(m.topic(), MessageField.VALUE)) if v else None

    return key, value


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--config", action="append", default=[],
                    help="an extra client property, key=value (TLS settings, say)")
    ap.add_argument("--registry", help="decode Avro through this schema registry")
    ap.add_argument("--auth", default="", help="user:password for the registry")
    ap.add_argument("topics", nargs="+")
    a = ap.parse_args()
    if a.registry:
        key_of, value_of = avro_decoder(a.registry, a.auth)
    else:
        key_of = lambda m: m.key().decode("utf-8", "replace") if m.key() is not None else None
        value_of = lambda m: json.loads(m.value()) if m.value() else None
    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": "sluice-test-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    for kv in a.config:
        k, _, v = kv.partition("=")
        conf[k] = v
    c = Consumer(conf)
    md = c.list_topics(timeout=10)
    parts = []
    for t in a.topics:
        if t not in md.topics:
            print(f"topic {t} does not exist", file=sys.stderr)
            return 2
        for p in md.topics[t].partitions:
            parts.append(TopicPartition(t, p, 0))
    # Read at least up to each partition's high watermark (the first fetch from tansu can take
    # seconds), then until --idle seconds pass without a new message (watermarks may lag).
    targets = {}
    for tp in parts:
        _, high = c.get_watermark_offsets(tp, timeout=10)
        targets[(tp.topic, tp.partition)] = high
    reached = {k: v <= 0 for k, v in targets.items()}
    c.assign(parts)
    seen, last, started = 0, time.time(), time.time()
    while not (a.expect and seen >= a.expect):
        idle_for = time.time() - last
        if all(reached.values()) and idle_for >= a.idle:
            break
        # tansu can take tens of seconds to answer the first fetch of a topic written by many
        # producer sessions; once records flow, silence means the end.
        patience = 150 if seen == 0 else max(a.idle, 20)
        if not all(reached.values()) and idle_for >= patience:
            # Offsets may have gaps below a watermark: report, and let the caller's checks
            # (sequences, state) judge what was read.
            print(f"note: silent for {idle_for:.0f}s below the high watermarks {targets}", file=sys.stderr)
            break
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            print(f"consumer: {m.error()}", file=sys.stderr)
            continue
        last = time.time()
        seen += 1
        k = (m.topic(), m.partition())
        if m.offset() >= targets.get(k, 0) - 1:
            reached[k] = True
        headers = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        line = {
            "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
            "key": key_of(m), "headers": headers, "value": value_of(m),
        }
        if a.registry and m.value():
            line["value_schema_id"] = struct.unpack(">I", m.value()[1:5])[0]
        print(json.dumps(line, default=plain))
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
