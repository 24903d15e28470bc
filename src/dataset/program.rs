//! Program datasets (AWS container datasets, without containers): a local command turns the
//! input dataset's latest SUCCEEDED content into a new version.
//!
//! Each run gets a working directory `datasets/<name>/run-<id>/` holding `input.csv` (the
//! input content with a header line) and `params.json`:
//! `{"datasetName", "versionId", "scheduleTime", "inputFile", "outputFile", "variables": {…}}`
//! (AWS handed containers a similar `params` file). The command runs there through `sh -c`
//! with `FLEETDB_PARAMS`, `FLEETDB_INPUT` and `FLEETDB_OUTPUT` set to those paths, under the
//! dataset's `timeout` and `memory_limit`. It writes `output.csv` (a header line, then rows;
//! an empty field is NULL); its columns are typed from their values (bigint, double
//! precision, boolean, else text). The last 1 MiB of stdout and of stderr are kept as
//! `<id>.stdout` and `<id>.stderr` beside the version, readable with `dataset_logs`.

use std::path::{Path, PathBuf};

use super::Program;
use super::deliver::to_csv;
use crate::batch::{Batch, Bitmap, Column, Field, StrVec, Values};
use crate::query::copy::CopyFormat;
use crate::query::plan::OutCol;
use crate::query::types::SqlType;
use crate::util::process;
use crate::util::time::format_timestamp;

/// Bytes of each output stream kept.
const LOG_BYTES: usize = 1 << 20;

pub fn log_path(dir: &Path, version: u64, stream: &str) -> PathBuf {
    dir.join(format!("{version}.{stream}"))
}

/// Runs `p` for version `version` of dataset `name` (its files in `dir`) over `input`; the
/// error is the version's reason, as text.
pub(crate) fn run(
    p: &Program,
    name: &str,
    dir: &Path,
    version: u64,
    schedule_time: i64,
    input: (Vec<OutCol>, Batch),
) -> Result<(Vec<OutCol>, Batch), String> {
    let work = dir.join(format!("run-{version}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let result = run_in(p, name, dir, &work, version, schedule_time, input);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(
    p: &Program,
    name: &str,
    dir: &Path,
    work: &Path,
    version: u64,
    schedule_time: i64,
    (cols, batch): (Vec<OutCol>, Batch),
) -> Result<(Vec<OutCol>, Batch), String> {
    let abs = std::fs::canonicalize(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let (input, output, params) = (abs.join("input.csv"), abs.join("output.csv"), abs.join("params.json"));
    let write =
        |path: &Path, text: &str| std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()));
    write(&input, &to_csv(&cols, &batch))?;
    let json_str = |s: &str| {
        let mut o = String::new();
        crate::util::json::write_string(&mut o, s);
        o
    };
    write(
        &params,
        &format!(
            "{{\"datasetName\": {}, \"versionId\": \"{version}\", \"scheduleTime\": \"{}\", \"inputFile\": {}, \"outputFile\": {}, \"variables\": {}}}\n",
            json_str(name),
            format_timestamp(schedule_time),
            json_str(&input.to_string_lossy()),
            json_str(&output.to_string_lossy()),
            p.variables
        ),
    )?;
    let env = [
        ("FLEETDB_PARAMS", params.to_string_lossy().into_owned()),
        ("FLEETDB_INPUT", input.to_string_lossy().into_owned()),
        ("FLEETDB_OUTPUT", output.to_string_lossy().into_owned()),
    ];
    let spec = process::Spec {
        command: &p.command,
        stdin: b"",
        timeout: p.timeout,
        memory_limit: p.memory_limit,
        cwd: Some(&abs),
        env: &env,
    };
    let out = process::run(&spec).map_err(|e| e.to_string())?;
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let kept = &bytes[bytes.len().saturating_sub(LOG_BYTES)..];
        let _ = std::fs::write(log_path(dir, version, stream), kept);
    }
    out.check(p.timeout).map_err(|e| match (out.status, p.memory_limit) {
        (Some(s), Some(m)) if !s.success() => format!("{e} (memory_limit is {} MB)", m >> 20),
        _ => e.to_string(),
    })?;
    let text = std::fs::read(&output).map_err(|_| "the program wrote no output.csv (FLEETDB_OUTPUT)".to_string())?;
    parse_output_text(&text)
}

/// An output CSV as typed columns.
pub fn parse_output(text: &[u8]) -> crate::Result<(Vec<OutCol>, Batch)> {
    parse_output_text(text).map_err(crate::Error::Invalid)
}

fn parse_output_text(text: &[u8]) -> Result<(Vec<OutCol>, Batch), String> {
    let fmt = CopyFormat::Csv { delimiter: ',', null: String::new(), header: false, quote: '"' };
    let mut rows = crate::query::copy::parse(&fmt, text).map_err(|e| format!("output.csv: {}", e.message))?.into_iter();
    let header: Vec<String> = rows
        .next()
        .ok_or("output.csv is empty: a header line was expected")?
        .into_iter()
        .map(|h| h.unwrap_or_default().trim().to_string())
        .collect();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() || header[..i].contains(h) {
            return Err(format!("output.csv: column {} has an empty or repeated name", i + 1));
        }
    }
    let mut texts: Vec<(StrVec, Bitmap)> = header.iter().map(|_| (StrVec::default(), Bitmap::new_unset(0))).collect();
    for (n, row) in rows.enumerate() {
        if row.len() != header.len() {
            return Err(format!("output.csv line {}: {} fields, the header has {}", n + 2, row.len(), header.len()));
        }
        for (f, (vals, valid)) in row.into_iter().zip(texts.iter_mut()) {
            vals.push(f.as_deref().unwrap_or(""));
            valid.push(f.is_some());
        }
    }
    let mut cols = Vec::new();
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (name, (vals, valid)) in header.into_iter().zip(texts) {
        let text = Column::with_validity(Values::Text(vals), Some(valid));
        let ty = crate::query::types::infer_type(&text);
        let col = crate::query::expr::cast(&text, SqlType::Text, ty)
            .map_err(|e| format!("output.csv column {name}: {}", e.message))?;
        fields.push(Field::new(&name, col.data_type()));
        columns.push(col);
        cols.push(OutCol { name, ty });
    }
    Ok((cols, Batch { fields, columns }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_csv_becomes_typed_columns() {
        let (cols, b) = parse_output(b"machine,rul_hours,ok,note\nm1,12.5,true,\"a, b\"\nm2,,false,\n").unwrap();
        let types: Vec<_> = cols.iter().map(|c| c.ty.pg_name()).collect();
        assert_eq!(types, ["text", "double precision", "boolean", "text"]);
        assert_eq!(b.num_rows(), 2);
        assert!(!b.columns[1].is_valid(1) && !b.columns[3].is_valid(1));
        assert!(parse_output(b"").unwrap_err().to_string().contains("empty"));
        assert!(parse_output(b"a,a\n1,2\n").unwrap_err().to_string().contains("repeated"));
        assert!(parse_output(b"a,b\n1\n").unwrap_err().to_string().contains("line 2"));
        let (cols, b) = parse_output(b"x\n").unwrap();
        assert_eq!((cols.len(), b.num_rows()), (1, 0));
    }
}
