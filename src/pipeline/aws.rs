//! `fleetdb import-aws`: an AWS IoT Analytics pipeline (the JSON of a CreatePipeline request,
//! or of a describe-pipeline answer as the AWS CLI prints it) as the equivalent CREATE
//! PIPELINE statement. Activities run in the order their `next` links give, from the channel
//! activity to the datastore activity.

use crate::util::json::{self, Json, Node};

/// The statement, and what could not be carried over (each a sentence for the user).
#[derive(Debug)]
pub struct Translation {
    pub sql: String,
    pub left_out: Vec<String>,
}

pub(crate) fn member<'a>(n: &'a Node<'a>, key: &str) -> Option<&'a Node<'a>> {
    match &n.value {
        Json::Object(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

pub(crate) fn text<'a>(n: &'a Node<'a>, key: &str) -> Option<&'a str> {
    match &member(n, key)?.value {
        Json::String(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(crate) fn ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if plain { s.to_string() } else { format!("\"{}\"", s.replace('"', "\"\"")) }
}

/// An attribute path (`device.temp`) written back with each part quoted as needed.
fn path(s: &str) -> String {
    s.split('.').map(ident).collect::<Vec<_>>().join(".")
}

fn names(n: &Node<'_>, key: &str) -> Result<Vec<String>, String> {
    match member(n, key).map(|v| &v.value) {
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| match &i.value {
                Json::String(s) => Ok(path(s)),
                _ => Err(format!("\"{key}\" must list attribute names")),
            })
            .collect(),
        _ => Err(format!("\"{key}\" must be a list of attribute names")),
    }
}

/// Translates `doc`. `enrich_table` is the table deviceRegistryEnrich reads from.
pub fn translate(doc: &str, enrich_table: Option<&str>) -> crate::Result<Translation> {
    translate_text(doc, enrich_table).map_err(crate::Error::Invalid)
}

/// [`translate`], its error a reason as text.
fn translate_text(doc: &str, enrich_table: Option<&str>) -> std::result::Result<Translation, String> {
    let root = json::parse(doc).map_err(|e| format!("not JSON: {e}"))?;
    let (name, activities) = match member(&root, "pipeline") {
        Some(p) => (text(p, "name"), member(p, "activities")),
        None => (text(&root, "pipelineName"), member(&root, "pipelineActivities")),
    };
    let name = name.ok_or("no pipeline name (pipelineName, or pipeline.name)")?;
    let Some(Json::Array(items)) = activities.map(|a| &a.value) else {
        return Err("no activities (pipelineActivities, or pipeline.activities)".into());
    };
    // Each activity is {"<kind>": {"name": …, "next": …, …}}.
    let mut acts: Vec<(&str, &Node<'_>)> = Vec::new();
    for item in items {
        match &item.value {
            Json::Object(m) if m.len() == 1 => acts.push((&m[0].0, &m[0].1)),
            _ => return Err("each activity is an object with one kind, as {\"filter\": {…}}".into()),
        }
    }
    let mut current = acts.iter().find(|(k, _)| *k == "channel").ok_or("no channel activity")?;
    let channel = text(current.1, "channelName").ok_or("the channel activity has no channelName")?;
    let mut sql = format!("CREATE PIPELINE {} FROM CHANNEL {}", ident(name), ident(channel));
    let mut left_out = Vec::new();
    let mut datastore = None;
    for _ in 0..=acts.len() {
        let Some(next) = text(current.1, "next") else { break };
        current = acts
            .iter()
            .find(|(_, a)| text(a, "name") == Some(next))
            .ok_or_else(|| format!("no activity is named \"{next}\""))?;
        let (kind, a) = *current;
        let label = text(a, "name").unwrap_or(kind);
        let clause = match kind {
            "filter" => Some(format!("FILTER {}", text(a, "filter").ok_or("a filter activity needs \"filter\"")?)),
            "math" => Some(format!(
                "MATH {} = {}",
                ident(text(a, "attribute").ok_or("a math activity needs \"attribute\"")?),
                text(a, "math").ok_or("a math activity needs \"math\"")?
            )),
            "addAttributes" => {
                let Some(Json::Object(m)) = member(a, "attributes").map(|v| &v.value) else {
                    return Err("addAttributes needs \"attributes\": {\"from\": \"to\"}".into());
                };
                let pairs: Vec<String> = m
                    .iter()
                    .filter_map(|(from, to)| match &to.value {
                        Json::String(to) => Some(format!("{} AS {}", path(from), ident(to))),
                        _ => None,
                    })
                    .collect();
                Some(format!("ADD ATTRIBUTES ({})", pairs.join(", ")))
            }
            "removeAttributes" => Some(format!("REMOVE ATTRIBUTES ({})", names(a, "attributes")?.join(", "))),
            "selectAttributes" => Some(format!("SELECT ATTRIBUTES ({})", names(a, "attributes")?.join(", "))),
            "deviceRegistryEnrich" => {
                let thing = text(a, "thingName").ok_or("deviceRegistryEnrich needs \"thingName\"")?;
                match enrich_table {
                    Some(t) => Some(format!("ENRICH FROM {} ON {}", ident(t), ident(thing))),
                    None => {
                        left_out.push(format!(
                            "activity \"{label}\" (deviceRegistryEnrich): name the table holding the device registry with --enrich-table"
                        ));
                        None
                    }
                }
            }
            "lambda" => {
                let function = text(a, "lambdaName").unwrap_or("");
                let batch = match member(a, "batchSize").map(|v| &v.value) {
                    Some(Json::Number(n)) => n.to_string(),
                    _ => super::LAMBDA_BATCH.to_string(),
                };
                left_out.push(format!(
                    "activity \"{label}\" (lambda {function}): LAMBDA runs a local program; replace '{function}' with the command that does its work"
                ));
                Some(format!("LAMBDA {} WITH (batch_size = {batch})", quote(function)))
            }
            "datastore" => {
                datastore = Some(text(a, "datastoreName").ok_or("the datastore activity has no datastoreName")?);
                None
            }
            other => {
                left_out.push(format!("activity \"{label}\" ({other}) has no fleetdb equivalent yet; it is left out"));
                None
            }
        };
        if let Some(c) = clause {
            sql.push_str("\n  ");
            sql.push_str(&c);
        }
    }
    let datastore = datastore.ok_or("the activities never reach a datastore activity")?;
    sql.push_str(&format!("\n  INTO DATASTORE {};", ident(datastore)));
    Ok(Translation { sql, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_pipelines_become_create_pipeline_statements_that_parse() {
        let create = include_str!("../../tests/fixtures/aws/create-pipeline.json");
        let t = translate(create, Some("machines")).unwrap();
        assert_eq!(
            t.sql,
            "CREATE PIPELINE factory_pipeline FROM CHANNEL factory_sensor_channel\n  FILTER vibration > 0\n  \
             MATH temperature_f = (temperature * 9 / 5) + 32\n  ENRICH FROM machines ON machine_id\n  \
             REMOVE ATTRIBUTES (debug_flags, fw_build)\n  INTO DATASTORE factory_processed_datastore;"
        );
        assert!(t.left_out.is_empty());
        assert_eq!(crate::pipeline::grammar::definition(&t.sql).unwrap().name, "factory_pipeline");
        let without = translate(create, None).unwrap();
        assert!(without.left_out[0].contains("--enrich-table"), "{:?}", without.left_out);
        let describe = include_str!("../../tests/fixtures/aws/describe-pipeline.json");
        let t = translate(describe, None).unwrap();
        assert!(t.sql.starts_with("CREATE PIPELINE line_pipeline FROM CHANNEL line_channel\n  SELECT ATTRIBUTES (device.id, device.temp, ts, power)\n  ADD ATTRIBUTES (id AS machine_id, temp AS temperature)\n  MATH power_w = power * 1000\n  LAMBDA 'normalize_units' WITH (batch_size = 50)"), "{}", t.sql);
        assert_eq!(t.left_out.len(), 2, "{:?}", t.left_out);
        assert!(t.left_out[0].contains("deviceShadowEnrich"));
        assert!(crate::pipeline::grammar::definition(&t.sql).is_ok());
        assert!(translate("{\"pipelineName\": \"p\"}", None).unwrap_err().to_string().contains("no activities"));
    }
}
