"""An independent Kafka consumer for tests (confluent-kafka, not Sluice's client): reads every
message of the given topics from the beginning and prints one JSON line per message
({topic, partition, offset, key, headers, value}), reading at least to each partition's high watermark, then stopping after --idle seconds
without a new message (or when --expect messages were read)."""

import argparse
import base64
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, TopicPartition


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--config", action="append", default=[],
                    help="an extra client property, key=value (TLS settings, say)")
    ap.add_argument("topics", nargs="+")
    a = ap.parse_args()
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
        print(json.dumps({
            "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
            "key": m.key().decode("utf-8", "replace") if m.key() is not None else None,
            "headers": headers,
            "value": json.loads(m.value()) if m.value() else None,
        }))
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
