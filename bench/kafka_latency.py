"""Helpers of bench/kafka-latency.

  pace RATE SECONDS TABLE   print INSERT statements at RATE per second for SECONDS (each row
                            stamps the server's clock in microseconds at insert time)
  measure BOOTSTRAP TOPIC N read N row messages (OMS format) and print latency percentiles:
                            consumer receipt time minus the row's server stamp
"""

import sys
import time


def pace(rate: float, seconds: float, table: str) -> None:
    interval = 1.0 / rate
    start = time.time()
    n = 0
    out = sys.stdout
    while True:
        now = time.time()
        if now - start >= seconds:
            break
        due = int((now - start) / interval)
        while n <= due:
            out.write(f"INSERT INTO {table} (sent_us) VALUES (CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED));\n")
            n += 1
        out.flush()
        time.sleep(0.002)
    print(f"paced {n} inserts", file=sys.stderr)


def measure(bootstrap: str, topic: str, want: int) -> None:
    import json
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 5})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    lat, sent = [], []
    deadline = time.time() + 300
    last = time.time()
    while len(lat) < want and time.time() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            # The pacer may round its count down: 5 s of silence after rows ends the run.
            if lat and time.time() - last > 5:
                break
            continue
        last = time.time()
        got_us = time.time() * 1e6
        v = json.loads(m.value())
        post = v.get("postStruct") or {}
        if v.get("recordType") == "INSERT" and post.get("sent_us"):
            lat.append((got_us - int(post["sent_us"])) / 1000.0)
            sent.append(int(post["sent_us"]))
    lat.sort()
    if not lat:
        print("no row messages read", file=sys.stderr)
        sys.exit(1)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    span = (max(sent) - min(sent)) / 1e6 if len(sent) > 1 else 0
    achieved = len(sent) / span if span else 0
    print(f"rows: {len(lat)} of {want}; source rate achieved: {achieved:.0f} rows/s")
    print(f"kafka_latency_p50: {pick(0.50):.1f} ms")
    print(f"kafka_latency_p99: {pick(0.99):.1f} ms")


if __name__ == "__main__":
    if sys.argv[1] == "pace":
        pace(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))
