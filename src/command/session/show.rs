//! SHOW, DESCRIBE, SAMPLE CHANNEL and TEST PIPELINE: what the session answers about objects.

use super::*;
use crate::batch::{Batch, Field};
use crate::command::parse::ObjectKind;
use crate::pipeline::Pipelines;
use crate::query::bind::type_of_oid;
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::{concat, run};
use crate::query::expr::scalars_to_column;
use crate::query::parse::parse_query;
use crate::query::plan::OutCol;
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;
use crate::util::time::{format_timestamp, now_micros};

impl Session {
    /// SHOW REPROCESSING: every reprocessing since the server started, with its progress.
    pub(super) fn show_reprocessing(&self) -> SqlResult<Outcome> {
        let rows = self
            .pipelines()?
            .reprocessings()
            .iter()
            .map(|j| {
                let p = j.progress();
                let pct = if p.messages_total == 0 {
                    if p.state == crate::pipeline::reprocess::JobState::Running { 0.0 } else { 100.0 }
                } else {
                    100.0 * p.messages_done as f64 / p.messages_total as f64
                };
                vec![
                    Some(j.id.to_string()),
                    Some(j.pipeline.clone()),
                    Some(p.state.name().to_string()),
                    Some(format!("{pct:.1}")),
                    Some(p.messages_done.to_string()),
                    Some(p.messages_total.to_string()),
                    Some(p.rows_deleted.to_string()),
                    Some(p.rows_written.to_string()),
                    j.from.map(format_timestamp),
                    j.to.map(format_timestamp),
                    Some(format_timestamp(j.started)),
                    p.ended.map(format_timestamp),
                    p.reason.clone(),
                ]
            })
            .collect();
        let (schema, batches) = text_batch(
            &[
                "id",
                "pipeline",
                "status",
                "progress_pct",
                "messages_done",
                "messages_total",
                "rows_deleted",
                "rows_written",
                "from",
                "to",
                "started",
                "ended",
                "reason",
            ],
            rows,
        );
        Ok(Outcome::Rows { schema, batches })
    }

    pub(super) fn show(&self, kind: ObjectKind) -> SqlResult<Outcome> {
        let e = &self.engine;
        if kind == ObjectKind::Dataset {
            let rows = self
                .datasets()?
                .statuses()
                .into_iter()
                .map(|s| {
                    let last = s.last.as_ref();
                    vec![
                        Some(s.def.name.clone()),
                        s.def.schedule.as_ref().map(|(t, _)| t.clone()),
                        Some(s.def.versions.map_or("unlimited".into(), |n| n.to_string())),
                        s.next_run.map(format_timestamp),
                        last.map(|v| v.id.to_string()),
                        last.map(|v| v.state.name().to_string()),
                        last.and_then(|v| v.completed.map(|c| format!("{:.3}", (c - v.created) as f64 / 1000.0))),
                        last.and_then(|v| (!v.reason.is_empty()).then(|| v.reason.clone())),
                    ]
                })
                .collect();
            let (schema, batches) = text_batch(
                &[
                    "name",
                    "schedule",
                    "versions",
                    "next_run",
                    "last_version",
                    "last_status",
                    "last_duration_ms",
                    "last_reason",
                ],
                rows,
            );
            return Ok(Outcome::Rows { schema, batches });
        }
        if kind == ObjectKind::Pipeline {
            let rows = self
                .pipelines()?
                .statuses()
                .into_iter()
                .map(|s| {
                    let c = &s.counters;
                    vec![
                        Some(s.def.name.clone()),
                        Some(s.def.channel.clone()),
                        Some(s.def.datastore.clone()),
                        Some(s.def.activities_text()),
                        Some(c.messages_in.to_string()),
                        Some(c.rows_out.to_string()),
                        Some(c.filtered.to_string()),
                        Some(c.errors.to_string()),
                        Some(s.lag_messages.to_string()),
                        Some(format!("{:.3}", s.lag_seconds)),
                        Some(match (&c.paused, &c.stalled) {
                            (Some(why), _) => format!("paused: {why}"),
                            (None, Some(e)) => format!("stalled: {e}"),
                            (None, None) => "running".into(),
                        }),
                    ]
                })
                .collect();
            let names = [
                "name",
                "channel",
                "datastore",
                "activities",
                "messages_in",
                "rows_out",
                "filtered",
                "errors",
                "lag_messages",
                "lag_seconds",
                "status",
            ];
            let (schema, batches) = text_batch(&names, rows);
            return Ok(Outcome::Rows { schema, batches });
        }
        let retention = |d: Option<u32>| Some(d.map_or("unlimited".to_string(), |d| format!("{d} days")));
        let (schema, batches) = match kind {
            ObjectKind::Channel => {
                let mut rows = Vec::new();
                for n in e.channel_names() {
                    let c = e.channel(&n)?;
                    let st = c.stats();
                    rows.push(vec![
                        Some(n),
                        retention(c.retention_days()),
                        Some(st.messages.to_string()),
                        Some(st.payload_bytes.to_string()),
                        st.last_received.map(format_timestamp),
                    ]);
                }
                text_batch(&["name", "retention", "messages", "bytes", "last_arrival"], rows)
            }
            ObjectKind::Datastore => {
                let mut rows = Vec::new();
                for n in e.datastore_names() {
                    let d = e.datastore(&n)?;
                    let snap = d.snapshot();
                    rows.push(vec![
                        Some(n),
                        retention(d.retention_days()),
                        Some(snap.num_rows().to_string()),
                        Some(d.disk_bytes().to_string()),
                        Some(d.partitions().len().to_string()),
                    ]);
                }
                text_batch(&["name", "retention", "rows", "disk_bytes", "partitions"], rows)
            }
            ObjectKind::Table => {
                let rows = e
                    .table_names()
                    .into_iter()
                    .map(|n| {
                        let rows = e.table(&n).map(|t| t.rows().num_rows()).unwrap_or(0);
                        vec![Some(n), Some(rows.to_string())]
                    })
                    .collect();
                text_batch(&["name", "rows"], rows)
            }
            other => return Err(SqlError::unsupported(format!("SHOW {}S", other.name().to_ascii_uppercase()))),
        };
        Ok(Outcome::Rows { schema, batches })
    }

    pub(super) fn describe_object(&self, kind: Option<ObjectKind>, name: &str) -> SqlResult<Outcome> {
        let e = &self.engine;
        let want = |k: ObjectKind| kind.is_none_or(|x| x == k);
        if want(ObjectKind::Dataset)
            && let Some(s) = self.datasets()?.statuses().into_iter().find(|s| s.def.name == name)
        {
            let rows = vec![
                vec![Some("kind".into()), Some("dataset".into())],
                vec![Some("definition".into()), Some(s.def.to_sql())],
            ];
            let (schema, batches) = text_batch(&["property", "value"], rows);
            return Ok(Outcome::Rows { schema, batches });
        }
        let (schema, batches) = if want(ObjectKind::Channel) && e.channel(name).is_ok() {
            let c = e.channel(name)?;
            let st = c.stats();
            let rows = vec![
                vec![Some("kind".into()), Some("channel".into())],
                vec![
                    Some("retention".into()),
                    Some(c.retention_days().map_or("unlimited".into(), |d| format!("{d} days"))),
                ],
                vec![Some("messages".into()), Some(st.messages.to_string())],
                vec![Some("bytes".into()), Some(st.payload_bytes.to_string())],
                vec![Some("disk_bytes".into()), Some(st.disk_bytes.to_string())],
                vec![Some("first_arrival".into()), st.first_received.map(format_timestamp)],
                vec![Some("last_arrival".into()), st.last_received.map(format_timestamp)],
                vec![Some("next_offset".into()), Some(st.next_offset.to_string())],
            ];
            text_batch(&["property", "value"], rows)
        } else if want(ObjectKind::Datastore) && e.datastore(name).is_ok() {
            let d = e.datastore(name)?;
            let mut rows: Vec<Vec<Option<String>>> = d
                .schema()
                .iter()
                .filter(|f| !crate::pipeline::is_lineage(&f.name))
                .map(|f| vec![Some(f.name.clone()), Some(SqlType::of_storage(f.data_type).pg_name().to_string())])
                .collect();
            rows.push(vec![Some("__dt".into()), Some("date".into())]);
            text_batch(&["column", "type"], rows)
        } else if want(ObjectKind::Table) && e.table(name).is_ok() {
            let t = e.table(name)?.schema();
            let rows = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    vec![
                        Some(c.name.clone()),
                        Some(type_of_oid(c.type_tag, c.data_type).pg_name().to_string()),
                        Some(if c.not_null { "not null".into() } else { String::new() }),
                        Some(if t.key.contains(&i) { "primary key".into() } else { String::new() }),
                        c.default.clone(),
                    ]
                })
                .collect();
            text_batch(&["column", "type", "nullable", "key", "default"], rows)
        } else if want(ObjectKind::Pipeline)
            && let Some(def) = self.pipelines()?.definition(name)
        {
            let rows = vec![
                vec![Some("kind".into()), Some("pipeline".into())],
                vec![Some("channel".into()), Some(def.channel.clone())],
                vec![Some("datastore".into()), Some(def.datastore.clone())],
                vec![Some("activities".into()), Some(def.activities_text())],
                vec![Some("timestamp".into()), def.timestamp.clone()],
                vec![Some("timestamp_format".into()), Some(def.timestamp_format.name().into())],
                vec![Some("definition".into()), Some(def.to_sql())],
            ];
            text_batch(&["property", "value"], rows)
        } else {
            // DESCRIBE PIPELINE nosuch names the kind asked for, as DROP does; a bare DESCRIBE
            // looked for any relation.
            use crate::error::Object;
            let missing = match kind {
                None => return Err(SqlError::undefined_relation(name)),
                Some(ObjectKind::Channel) => Object::Channel,
                Some(ObjectKind::Datastore) => Object::Datastore,
                Some(ObjectKind::Table) => Object::Table,
                Some(ObjectKind::Pipeline) => Object::Pipeline,
                Some(ObjectKind::Dataset) => Object::Dataset,
                Some(ObjectKind::Route) => Object::Route,
            };
            return Err(crate::Error::not_found(missing, name).into());
        };
        Ok(Outcome::Rows { schema, batches })
    }

    /// SAMPLE CHANNEL: up to `limit` messages (10 by default, as SampleChannelData) spread
    /// evenly over those that arrived in [from, to) (all time by default), oldest first.
    pub(super) fn sample_channel(
        &mut self,
        name: &str,
        limit: Option<u64>,
        from: &Option<String>,
        to: &Option<String>,
    ) -> SqlResult<Outcome> {
        if self.engine.channel(name).is_err() {
            return Err(SqlError::new("42704", format!("channel \"{name}\" does not exist")));
        }
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut sql = format!("SELECT __received_at, __message_id, __topic, payload FROM {name}");
        if let (Some(f), Some(t)) = (from, to) {
            sql.push_str(&format!(
                " WHERE __received_at >= {}::timestamptz AND __received_at < {}::timestamptz",
                quote(f),
                quote(t)
            ));
        }
        let (plan, schema) = self.binder(&[]).bind_query(&*parse_query(&sql)?)?;
        let all = concat(run(&plan)?, &schema);
        let n = all.num_rows();
        let want = limit.unwrap_or(10) as usize;
        let pick: Vec<u32> =
            if n <= want { (0..n as u32).collect() } else { (0..want).map(|i| (i * n / want) as u32).collect() };
        Ok(Outcome::Rows { batches: vec![all.take(&pick)], schema })
    }

    /// TEST PIPELINE: each activity's output for up to 10 messages, nothing stored.
    pub(super) fn test_pipeline(&self, name: &str, messages: &str) -> SqlResult<Outcome> {
        let def = self
            .pipelines()?
            .definition(name)
            .ok_or_else(|| SqlError::new("42704", format!("pipeline \"{name}\" does not exist")))?;
        let doc = crate::util::json::parse(messages)
            .map_err(|e| SqlError::new("22P02", format!("TEST PIPELINE takes a JSON array of messages: {e}")))?;
        let crate::util::json::Json::Array(items) = &doc.value else {
            return Err(SqlError::new("22023", "TEST PIPELINE takes a JSON array of messages"));
        };
        if items.is_empty() || items.len() > 10 {
            return Err(SqlError::new("22023", format!("TEST PIPELINE takes 1 to 10 messages, not {}", items.len())));
        }
        let mut msgs = crate::channel::Messages::default();
        for (i, m) in items.iter().enumerate() {
            msgs.push(now_micros(), &i.to_string(), "", m.text.as_bytes());
        }
        let (steps, failures) = Pipelines::trace(&self.engine, &def, &msgs);
        let mut rows = Vec::new();
        for (k, b) in steps.iter().enumerate() {
            let label = if k == 0 { "input".to_string() } else { def.activities[k - 1].to_string() };
            for i in 0..b.num_rows() {
                rows.push(vec![
                    Some(k.to_string()),
                    Some(label.clone()),
                    Some(crate::pipeline::decode::row_json(b, i)),
                    None,
                ]);
            }
        }
        for f in failures {
            let message = String::from_utf8_lossy(msgs.payloads.get(f.message)).to_string();
            rows.push(vec![None, Some(f.activity), Some(message), Some(f.reason)]);
        }
        let (schema, batches) = text_batch(&["step", "activity", "message", "error"], rows);
        Ok(Outcome::Rows { schema, batches })
    }
}

pub(super) fn text_batch(names: &[&str], rows: Vec<Vec<Option<String>>>) -> (Vec<OutCol>, Vec<Batch>) {
    let schema: Vec<OutCol> = names.iter().map(|n| OutCol { name: n.to_string(), ty: SqlType::Text }).collect();
    let mut columns = Vec::new();
    for c in 0..names.len() {
        let vals: Vec<Scalar> = rows.iter().map(|r| r[c].clone().map(Scalar::Text).unwrap_or(Scalar::Null)).collect();
        columns.push(scalars_to_column(&vals, SqlType::Text).expect("text column"));
    }
    let fields = names.iter().map(|n| Field::new(n, crate::batch::DataType::Text)).collect();
    (schema, vec![Batch { fields, columns }])
}
