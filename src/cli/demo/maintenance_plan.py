"""fleetdb demo: the maintenance planner, run by the program dataset maintenance_plan.

Reads the machine_rul dataset's content (a CSV), and writes one row per machine predicted to
fail within `alert_days`: when, how urgent, and which maintenance crew shift takes it. That
content is delivered over MQTT as the fleet's alerts. Standard library only.
"""
import csv
import json
import os
from datetime import datetime, timedelta, timezone

params = json.load(open(os.environ["FLEETDB_PARAMS"]))
alert_days = float(params["variables"]["alert_days"])
scheduled = datetime.fromisoformat(params["scheduleTime"].replace("Z", "+00:00"))

rows = []
with open(params["inputFile"], newline="") as f:
    for r in csv.DictReader(f):
        if not r["rul_hours"]:
            continue  # no upward trend: nothing to plan
        hours = float(r["rul_hours"])
        if hours > alert_days * 24:
            continue
        failure = scheduled + timedelta(hours=hours)
        priority = "urgent" if hours < 24 else "soon"
        # Crews work 8-hour shifts; the job goes to the last shift that ends before the failure.
        shift_start = failure - timedelta(hours=8)
        shift = shift_start.replace(minute=0, second=0, microsecond=0, hour=(shift_start.hour // 8) * 8)
        rows.append((hours, r["machine_id"], failure, priority, shift))

rows.sort()
with open(params["outputFile"], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["machine_id", "predicted_failure", "rul_hours", "priority", "crew_shift"])
    for hours, machine, failure, priority, shift in rows:
        w.writerow([machine, failure.isoformat(), round(hours, 1), priority, shift.isoformat()])
print(f"{len(rows)} machines need maintenance within {alert_days:g} days")
