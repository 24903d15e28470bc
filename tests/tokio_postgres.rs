//! fleetdb through tokio-postgres: the extended protocol with typed parameters, binary
//! results, portals read a few rows at a time, transactions and SQLSTATE errors.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Fleetdb;

#[test]
fn tokio_postgres_client_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conninfo = format!("host=127.0.0.1 port={} user=fleetdb dbname=fleetdb", db.port);
        let (mut client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(
                "CREATE TABLE machines (machine_id TEXT PRIMARY KEY, capacity INT, active BOOLEAN);
                 CREATE DATASTORE readings (machine_id TEXT, vibration DOUBLE PRECISION)",
            )
            .await
            .unwrap();
        let insert = client.prepare("INSERT INTO machines VALUES ($1, $2, $3)").await.unwrap();
        for (id, cap, active) in [("M-1", Some(10i32), true), ("M-2", None, false), ("M-3", Some(30), true)] {
            assert_eq!(client.execute(&insert, &[&id, &cap, &active]).await.unwrap(), 1);
        }
        let t0 = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01 00:00:00 UTC
        for k in 0..5i64 {
            client
                .execute(
                    "INSERT INTO readings (time, machine_id, vibration) VALUES ($1, $2, $3)",
                    &[&(t0 + Duration::from_secs(10 * k as u64)), &"M-1", &(k as f64 * 0.5)],
                )
                .await
                .unwrap();
        }
        // Binary results of every common type.
        let rows = client
            .query(
                "SELECT machine_id, capacity, active, capacity::bigint * 2 FROM machines WHERE active = $1 ORDER BY 1",
                &[&true],
            )
            .await
            .unwrap();
        let got: Vec<(String, Option<i32>, bool, Option<i64>)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
        assert_eq!(got, vec![("M-1".into(), Some(10), true, Some(20)), ("M-3".into(), Some(30), true, Some(60))]);
        let row = client
            .query_one(
                "SELECT max(time), avg(vibration), count(*) FROM readings WHERE time >= $1 AND machine_id = $2",
                &[&(t0 + Duration::from_secs(10)), &"M-1"],
            )
            .await
            .unwrap();
        let (last, avg, n): (SystemTime, f64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(last, t0 + Duration::from_secs(40));
        assert_eq!((avg, n), (1.25, 4));
        // A portal read two rows at a time.
        let tx = client.transaction().await.unwrap();
        let stmt = tx.prepare("SELECT vibration FROM readings ORDER BY time").await.unwrap();
        let portal = tx.bind(&stmt, &[]).await.unwrap();
        let mut seen = Vec::new();
        loop {
            let chunk = tx.query_portal(&portal, 2).await.unwrap();
            assert!(chunk.len() <= 2);
            if chunk.is_empty() {
                break;
            }
            seen.extend(chunk.iter().map(|r| r.get::<_, f64>(0)));
        }
        assert_eq!(seen, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        tx.commit().await.unwrap();
        // bytea travels as raw bytes in binary format.
        let blob: Vec<u8> = client.query_one("SELECT $1::bytea", &[&vec![0u8, 1, 255]]).await.unwrap().get(0);
        assert_eq!(blob, vec![0u8, 1, 255]);
        // Errors carry their SQLSTATE.
        let e = client.query("SELECT 1 / 0", &[]).await.unwrap_err();
        assert_eq!(e.code().map(tokio_postgres::error::SqlState::code), Some("22012"));
        let e = client.query("SELECT * FROM nowhere", &[]).await.unwrap_err();
        assert_eq!(e.code().map(tokio_postgres::error::SqlState::code), Some("42P01"));
        let v: String = client.query_one("SELECT version()", &[]).await.unwrap().get(0);
        assert!(v.starts_with("PostgreSQL ") && v.contains("fleetdb"), "{v}");
    });
}
