//! Datasets against the real server with psql: the DESIGN's dataset as written, refreshed and
//! read, then the server SIGKILLed and its content read again.

mod common;

use common::{Fleetdb, lines, ok};

#[test]
fn a_dataset_materializes_its_query_and_keeps_its_content_through_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(
            "CREATE DATASTORE factory_processed_datastore; \
             INSERT INTO factory_processed_datastore (time, machine_id, vibration) VALUES \
               (now() - interval '1 hour', 'M-1', 1.5), (now() - interval '2 hours', 'M-1', 2.5), \
               (now() - interval '3 days', 'M-1', 100), (now(), 'M-2', 4); \
             CREATE DATASET factory_health_dataset AS
               SELECT machine_id, AVG(vibration) AS avg_vibration_24hr
               FROM factory_processed_datastore
               WHERE time > NOW() - INTERVAL '1' DAY
               GROUP BY machine_id
               WITH (schedule = 'rate(1 hour)', versions = 10);",
        ),
        "setup",
    );
    assert_eq!(lines(&db, "REFRESH DATASET factory_health_dataset"), ["1|SUCCEEDED|2|NULL"]);
    let want = ["M-1|2", "M-2|4"];
    assert_eq!(lines(&db, "SELECT * FROM factory_health_dataset ORDER BY 1"), want);
    ok(
        db.psql("INSERT INTO factory_processed_datastore (time, machine_id, vibration) VALUES (now(), 'M-3', 7)"),
        "more",
    );
    assert_eq!(lines(&db, "REFRESH DATASET factory_health_dataset"), ["2|SUCCEEDED|3|NULL"]);
    let show = lines(&db, "SHOW DATASETS");
    assert!(show[0].starts_with("factory_health_dataset|rate(1 hour)|10|"), "{show:?}");
    assert!(show[0].contains("|2|SUCCEEDED|"), "{show:?}");
    db.kill();
    let db = Fleetdb::start(dir.path());
    assert_eq!(lines(&db, "SELECT count(*) FROM factory_health_dataset"), ["3"]);
    assert_eq!(lines(&db, "SELECT * FROM dataset_content('factory_health_dataset', '1') ORDER BY 1"), want);
    let contents = lines(&db, "SHOW DATASET CONTENTS factory_health_dataset");
    assert_eq!(contents.len(), 2);
    assert!(contents[0].starts_with("2|SUCCEEDED|") && contents[1].starts_with("1|SUCCEEDED|"), "{contents:?}");
}
