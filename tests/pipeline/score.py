# A LAMBDA program for the pipeline tests: reads a JSON array of messages on stdin, adds a
# score to each, and drops the ones marked "drop".
import json
import sys

messages = json.load(sys.stdin)
out = []
for m in messages:
    if m.get("drop"):
        continue
    m["score"] = m.get("vibration", 0) * 10
    out.append(m)
json.dump(out, sys.stdout)
