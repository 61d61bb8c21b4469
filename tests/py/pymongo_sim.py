"""pymongo against the mongomon simulator, driven by tests/sim_pymongo.rs.

Arguments: REPLSET_SEED SET_NAME MONGOS_ADDR. Connects in normal
(non-direct) mode from one seed, the way applications do, and prints one
JSON object with what pymongo saw; the Rust test asserts on it. Any
exception ends the script with a non-zero status and a traceback.
"""
import json
import sys
import time

import pymongo
from pymongo import MongoClient

seed, set_name, mongos = sys.argv[1], sys.argv[2], sys.argv[3]
out = {"pymongo": pymongo.version}

rs = MongoClient(f"mongodb://{seed}/?replicaSet={set_name}",
                 serverSelectionTimeoutMS=5000, connectTimeoutMS=2000)
# Server selection for a write finds the primary through SDAM, as with mongod.
hello = rs.admin.command("hello")
# pymongo checks each member on its own monitor thread: the first command
# can return before every member's first check. Wait (bounded) until it
# knows as many members as the primary lists, then report what it knows.
deadline = time.monotonic() + 10
while (len(rs.secondaries) + 1 < len(hello.get("hosts", []))
       and time.monotonic() < deadline):
    time.sleep(0.05)
out["primary"] = "%s:%d" % rs.primary
out["secondaries"] = sorted("%s:%d" % s for s in rs.secondaries)
out["hello_primary"] = hello.get("primary")
status = rs.admin.command("serverStatus")
out["server_status"] = {
    "uptime": status["uptime"],
    "connections_current": status["connections"]["current"],
    "opcounters_keys": sorted(status["opcounters"].keys()),
    "repl_set_name": status["repl"]["setName"],
    "has_wired_tiger": "wiredTiger" in status,
}
rsstatus = rs.admin.command("replSetGetStatus")
out["repl_set_get_status"] = {
    "set": rsstatus["set"],
    "members": [
        {"name": m["name"], "stateStr": m["stateStr"], "optime_ts": m["optime"]["ts"].time}
        for m in rsstatus["members"]
    ],
}
rs.close()

ms = MongoClient(f"mongodb://{mongos}/", serverSelectionTimeoutMS=5000)
shards = ms.admin.command("listShards")
out["list_shards"] = [{"_id": s["_id"], "host": s["host"]} for s in shards["shards"]]
out["mongos_msg"] = ms.admin.command("hello").get("msg")
ms.close()

print(json.dumps(out))
