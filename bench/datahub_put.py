"""The reference of bench/datahub-catchup: the official SDK (pydatahub) alone putting copies of
records Sluice wrote (same fields, same sizes) into the same topic of the same server, with
as many threads as the topic has shards, each putting batches of BATCH records to its own
shard in protobuf mode with LZ4 bodies, as Sluice's writers do.
Usage: datahub_put.py ENDPOINT PROJECT TOPIC COUNT BATCH
Prints `datahub_put: RATE records/s (SECONDS s)`."""

import sys
import threading
import time

from datahub import DataHub
from datahub.core import DatahubProtocolType
from datahub.models import BlobRecord, CursorType, RecordType, TupleRecord
from datahub.models.compress import CompressFormat

endpoint, project, topic = sys.argv[1:4]
count, batch = int(sys.argv[4]), int(sys.argv[5])


def client():
    return DataHub("sluice", "sluice-secret", endpoint, protocol_type=DatahubProtocolType.PB,
                   compress_format=CompressFormat.LZ4)


dh = client()
t = dh.get_topic(project, topic)
tuple_topic = t.record_type == RecordType.TUPLE
shards = [s.shard_id for s in dh.list_shard(project, topic).shards if str(s.state).endswith("ACTIVE")]
# Samples: up to 1000 of Sluice's own records (read in JSON mode, so NULLs stay NULL).
js = DataHub("sluice", "sluice-secret", endpoint, protocol_type=DatahubProtocolType.JSON)
cur = js.get_cursor(project, topic, shards[0], CursorType.OLDEST).cursor
if tuple_topic:
    got = js.get_tuple_records(project, topic, shards[0], t.record_schema, cur, 1000).records
    samples = [list(r.values) for r in got]
else:
    got = js.get_blob_records(project, topic, shards[0], cur, 1000).records
    samples = [(r.blob_data, dict(r.attributes or {})) for r in got]
if not samples:
    sys.exit("no records to copy in " + topic)


def make(i, shard):
    if tuple_topic:
        r = TupleRecord(schema=t.record_schema, values=samples[i % len(samples)])
    else:
        data, attrs = samples[i % len(samples)]
        r = BlobRecord(blob_data=data)
        for k, v in attrs.items():
            r.put_attribute(k, v)
    r.shard_id = shard
    return r


def worker(shard, n):
    c = client()
    done = 0
    while done < n:
        k = min(batch, n - done)
        res = c.put_records(project, topic, [make(done + j, shard) for j in range(k)])
        assert res.failed_record_count == 0, res
        done += k


per = count // len(shards)
threads = [threading.Thread(target=worker, args=(s, per)) for s in shards]
t0 = time.time()
for th in threads:
    th.start()
for th in threads:
    th.join()
secs = time.time() - t0
print("datahub_put: %.0f records/s (%.1fs)" % (per * len(shards) / secs, secs))
