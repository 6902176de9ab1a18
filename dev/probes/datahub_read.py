"""Every record of a DataHub topic, read with the official SDK (pydatahub, JSON protocol so
that NULL and "" stay apart), shard by shard in shard-id order (a split or merged shard's
children have higher ids, so a key's records come in the order they were put), each from its
oldest record to its last. Prints one JSON object per record:
  {"shard": "0", "sequence": 0, "system_time": ms, "attributes": {...},
   "fields": {"name": "text" | null, ...}  (TUPLE)  or  "blob": "<base64>"  (BLOB)}
Usage: datahub_read.py ENDPOINT PROJECT TOPIC"""

import base64
import json
import os
import sys

from datahub import DataHub
from datahub.core import DatahubProtocolType
from datahub.models import CursorType, RecordType

endpoint, project, topic = sys.argv[1:4]
dh = DataHub(
    os.environ.get("SLUICE_DATAHUB_ACCESS_ID", "sluice"),
    os.environ.get("SLUICE_DATAHUB_ACCESS_KEY", "sluice-secret"),
    endpoint,
    protocol_type=DatahubProtocolType.JSON,
)
t = dh.get_topic(project, topic)
tuple_topic = t.record_type == RecordType.TUPLE
names = [f.name for f in t.record_schema.field_list] if tuple_topic else []
shards = sorted(dh.list_shard(project, topic).shards, key=lambda s: int(s.shard_id))
out = sys.stdout
for s in shards:
    cursor = dh.get_cursor(project, topic, s.shard_id, CursorType.OLDEST).cursor
    while True:
        if tuple_topic:
            r = dh.get_tuple_records(project, topic, s.shard_id, t.record_schema, cursor, 1000)
        else:
            r = dh.get_blob_records(project, topic, s.shard_id, cursor, 1000)
        for rec in r.records:
            line = {
                "shard": s.shard_id,
                "sequence": rec.sequence,
                "system_time": rec.system_time,
                "attributes": rec.attributes or {},
            }
            if tuple_topic:
                vals = list(rec.values)
                line["fields"] = {n: (None if v is None else str(v)) for n, v in zip(names, vals)}
            else:
                line["blob"] = base64.b64encode(rec.blob_data).decode()
            out.write(json.dumps(line) + "\n")
        if r.record_count == 0:
            break
        cursor = r.next_cursor
