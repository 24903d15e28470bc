//! `fleetdb import-aws` for datasets: an AWS IoT Analytics CreateDataset request (or a
//! describe-dataset answer, `{"dataset": {…}}`) as the equivalent CREATE DATASET statement.
//!
//! A query action keeps its SQL (Presto's `from_unixtime` is understood) and its deltaTime
//! filter; a container action becomes a program dataset whose command the user supplies
//! (fleetdb runs no containers), its dataset variable the INPUT, its other variables the
//! `variables`, and its compute type a memory limit. Schedule and dataset triggers, version and
//! retention settings and the late-data rule carry over; S3 delivery becomes delivery to a
//! file under the data directory (`s3/<bucket>/<key>`, same key template).

use crate::pipeline::aws::{Translation, ident, member, quote, text};
use crate::util::json::{self, Json, Node};

fn items<'a>(n: &'a Node<'a>, key: &str) -> &'a [Node<'a>] {
    match member(n, key).map(|v| &v.value) {
        Some(Json::Array(a)) => a,
        _ => &[],
    }
}

/// Whether `doc` describes a dataset (rather than a pipeline).
pub fn is_dataset(doc: &str) -> bool {
    json::parse(doc).is_ok_and(|root| member(&root, "datasetName").is_some() || member(&root, "dataset").is_some())
}

/// Translates a dataset document.
pub fn translate(doc: &str) -> crate::Result<Translation> {
    translate_text(doc).map_err(crate::Error::Invalid)
}

/// [`translate`], its error a reason as text.
fn translate_text(doc: &str) -> std::result::Result<Translation, String> {
    let parsed = json::parse(doc).map_err(|e| format!("not JSON: {e}"))?;
    let root = member(&parsed, "dataset").unwrap_or(&parsed);
    let name = text(root, "datasetName").or_else(|| text(root, "name")).ok_or("no datasetName (or dataset.name)")?;
    let mut left_out = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let actions = items(root, "actions");
    let action = actions.first().ok_or("no actions: a dataset has one query or container action")?;
    if actions.len() > 1 {
        left_out.push(format!("{} actions: only the first is carried over", actions.len()));
    }
    let body = if let Some(q) = member(action, "queryAction") {
        let sql = text(q, "sqlQuery").ok_or("the query action has no sqlQuery")?;
        for f in items(q, "filters") {
            let Some(d) = member(f, "deltaTime") else { continue };
            let expr = text(d, "timeExpression").ok_or("deltaTime needs timeExpression")?;
            options.push(format!("delta_time = {}", quote(expr)));
            if let Some(Json::Number(n)) = member(d, "offsetSeconds").map(|v| &v.value) {
                options.push(format!("delta_offset = '{n} seconds'"));
            }
        }
        sql.trim().trim_end_matches(';').to_string()
    } else if let Some(c) = member(action, "containerAction") {
        let image = text(c, "image").unwrap_or("(no image)");
        left_out.push(format!(
            "container image {image}: fleetdb runs programs, not containers; replace the PROGRAM command with the command that runs the model (it reads FLEETDB_PARAMS, see README § Datasets)"
        ));
        let mut input = None;
        let mut vars = Vec::new();
        for v in items(c, "variables") {
            let Some(vname) = text(v, "name") else { continue };
            if let Some(d) = member(v, "datasetContentVersionValue") {
                match (input, text(d, "datasetName")) {
                    (None, Some(ds)) => input = Some(ds),
                    _ => left_out.push(format!("variable {vname}: a program dataset reads one input dataset")),
                }
            } else if let Some(Json::Number(n)) = member(v, "doubleValue").map(|x| &x.value) {
                vars.push(format!("{} = {n}", ident(vname)));
            } else if let Some(s) = text(v, "stringValue") {
                vars.push(format!("{} = {}", ident(vname), quote(s)));
            } else if member(v, "outputFileUriValue").is_some() {
                // The program writes its output to params.json's outputFile.
            } else {
                left_out.push(format!(
                    "variable {vname}: only double, string, dataset and output file variables carry over"
                ));
            }
        }
        if !vars.is_empty() {
            options.push(format!("variables = ({})", vars.join(", ")));
        }
        if let Some(r) = member(c, "resourceConfiguration") {
            // AWS's compute types: ACU_1 is 4 GB of memory, ACU_2 16 GB.
            match text(r, "computeType") {
                Some("ACU_1") => options.push("memory_limit = '4 GB'".into()),
                Some("ACU_2") => options.push("memory_limit = '16 GB'".into()),
                _ => {}
            }
        }
        let input = input.ok_or("the container action has no datasetContentVersionValue variable (its input)")?;
        format!(
            "PROGRAM {} INPUT {}",
            quote(&format!("echo 'replace with the command that runs {image}' >&2; exit 1")),
            ident(input)
        )
    } else {
        return Err("the action is neither a queryAction nor a containerAction".into());
    };
    for t in items(root, "triggers") {
        if let Some(e) = member(t, "schedule").and_then(|s| text(s, "expression")) {
            options.push(format!("schedule = {}", quote(e)));
        } else if let Some(d) = member(t, "dataset").and_then(|s| text(s, "name")) {
            options.push(format!("trigger = {}", quote(d)));
        }
    }
    if let Some(v) = member(root, "versioningConfiguration") {
        match (member(v, "unlimited").map(|x| &x.value), member(v, "maxVersions").map(|x| &x.value)) {
            (Some(Json::Bool(true)), _) => options.push("versions = 'unlimited'".into()),
            (_, Some(Json::Number(n))) => options.push(format!("versions = {n}")),
            _ => {}
        }
    }
    if let Some(r) = member(root, "retentionPeriod") {
        match (member(r, "unlimited").map(|x| &x.value), member(r, "numberOfDays").map(|x| &x.value)) {
            (Some(Json::Bool(true)), _) => {}
            (_, Some(Json::Number(n))) => options.push(format!("retention = '{n} days'")),
            _ => {}
        }
    }
    for rule in items(root, "lateDataRules") {
        let timeout = member(rule, "ruleConfiguration")
            .and_then(|c| member(c, "deltaTimeSessionWindowConfiguration"))
            .and_then(|w| member(w, "timeoutInMinutes"));
        if let Some(Json::Number(n)) = timeout.map(|t| &t.value) {
            options.push(format!("late_data_timeout = '{n} minutes'"));
        }
    }
    let mut deliver = String::new();
    for rule in items(root, "contentDeliveryRules") {
        let Some(dest) = member(rule, "destination") else { continue };
        if let Some(s3) = member(dest, "s3DestinationConfiguration") {
            let (bucket, key) = (text(s3, "bucket").unwrap_or("bucket"), text(s3, "key").unwrap_or("content.csv"));
            deliver += &format!("\n  DELIVER TO FILE {}", quote(&format!("s3/{bucket}/{key}")));
        } else if member(dest, "iotEventsDestinationConfiguration").is_some() {
            left_out.push(
                "an IoT Events delivery: deliver alerts with DELIVER TO MQTT 'topic' (or WEBHOOK) instead".into(),
            );
        }
    }
    let with = if options.is_empty() { String::new() } else { format!("\n  WITH ({})", options.join(", ")) };
    let sql = format!("CREATE DATASET {} AS {body}{with}{deliver};", ident(name));
    Ok(Translation { sql, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_requests_translate_to_statements_that_parse() {
        let query = include_str!("../../tests/fixtures/aws/create-dataset.json");
        assert!(is_dataset(query));
        let t = translate(query).unwrap();
        assert!(t.left_out.is_empty(), "{:?}", t.left_out);
        assert!(t.sql.contains("delta_time = 'from_unixtime(ts / 1000)', delta_offset = '-180 seconds'"), "{}", t.sql);
        assert!(
            t.sql.contains(
                "schedule = 'cron(0 * * * ? *)', versions = 10, retention = '30 days', late_data_timeout = '15 minutes'"
            ),
            "{}",
            t.sql
        );
        assert!(t.sql.contains(
            "DELIVER TO FILE 's3/factory-exports/health/!{iotanalytics:scheduleTime}/!{iotanalytics:versionId}.csv'"
        ));
        let container = include_str!("../../tests/fixtures/aws/create-container-dataset.json");
        let t = translate(container).unwrap();
        assert_eq!(t.left_out.len(), 1, "{:?}", t.left_out);
        assert!(t.sql.contains("INPUT factory_health_dataset"), "{}", t.sql);
        assert!(t.sql.contains("variables = (threshold = 11.5, model = 'linear'), memory_limit = '4 GB', trigger = 'factory_health_dataset'"), "{}", t.sql);
        for sql in [translate(query).unwrap().sql, t.sql] {
            crate::dataset::grammar::definition(&sql).unwrap_or_else(|e| panic!("{sql}: {}", e.message));
        }
        assert!(!is_dataset(include_str!("../../tests/fixtures/aws/create-pipeline.json")));
    }
}
