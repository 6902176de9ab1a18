"""An independent reader of Avro messages (confluent-kafka's Consumer, SchemaRegistryClient and
AvroDeserializer, not Sluice's code): reads every message of a topic from the beginning,
decodes key and value through the registry, and prints one JSON line per message
({partition, offset, key, value, value_schema_id}); values JSON cannot hold are written as
text: decimals as their digits, bytes as base64, dates and times in ISO 8601."""

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
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def plain(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    raise TypeError(f"{type(v)} is not JSON")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--auth", default="", help="user:password for the registry")
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("topic")
    a = ap.parse_args()
    conf = {"url": a.registry}
    if a.auth:
        conf["basic.auth.user.info"] = a.auth
    registry = SchemaRegistryClient(conf)
    values = AvroDeserializer(registry)
    keys = AvroDeserializer(registry)
    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": "sluice-avro-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    md = c.list_topics(a.topic, timeout=10)
    if a.topic not in md.topics or md.topics[a.topic].error is not None:
        print(f"topic {a.topic} does not exist", file=sys.stderr)
        return 2
    parts = [TopicPartition(a.topic, p, 0) for p in md.topics[a.topic].partitions]
    high = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    reached = {p: h <= 0 for p, h in high.items()}
    c.assign(parts)
    last = time.time()
    while True:
        idle = time.time() - last
        if all(reached.values()) and idle >= a.idle:
            break
        if idle >= 120:
            print(f"note: silent for {idle:.0f}s below the high watermarks {high}", file=sys.stderr)
            break
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            print(f"consumer: {m.error()}", file=sys.stderr)
            continue
        last = time.time()
        if m.offset() >= high.get(m.partition(), 0) - 1:
            reached[m.partition()] = True
        raw = m.value()
        ctx_v = SerializationContext(m.topic(), MessageField.VALUE)
        ctx_k = SerializationContext(m.topic(), MessageField.KEY)
        key = m.key()
        try:
            decoded_key = keys(key, ctx_k) if key and key[:1] == b"\0" else (key.decode() if key else None)
        except Exception as e:  # a key that is not Avro (a keyless table's text key)
            decoded_key = f"not Avro: {e}"
        print(json.dumps({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": decoded_key,
            "value": values(raw, ctx_v) if raw is not None else None,
            "value_schema_id": struct.unpack(">I", raw[1:5])[0] if raw else None,
        }, default=plain))
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
