//! The JSON operators and functions (`->`, `->>`, `#>`, `#>>`, `json_typeof`).

use super::{Func, parse_text_array};
use crate::batch::{Bitmap, Column, StrVec, Values};
use crate::query::error::{SqlError, SqlResult};
use crate::query::types::SqlType;

/// The JSON operators and functions, row by row over the document column: each document is
/// parsed once per call, and the result is a slice of its text (no re-serialization).
pub(super) fn json_call(f: Func, cols: &[Column], tys: &[SqlType], n: usize) -> SqlResult<Column> {
    use crate::util::json;
    let docs = crate::query::scalar::text_of(&cols[0], tys[0]);
    // The path: one key/index argument per step (`->`, extract_path) or a text array literal
    // (`#>`), per row since arguments may be columns.
    let step_texts: Vec<std::borrow::Cow<'_, StrVec>> =
        cols[1..].iter().zip(&tys[1..]).map(|(c, t)| crate::query::scalar::text_of(c, *t)).collect();
    let mut out = StrVec::with_capacity(n, 0);
    let mut valid = Bitmap::new_set(n);
    let mut path: Vec<String> = Vec::new();
    for i in 0..n {
        let mut result: Option<String> = None;
        let args_valid = cols.iter().all(|c| c.is_valid(i));
        if args_valid {
            let text = docs.get(i);
            let doc = json::parse(text).map_err(|e| {
                SqlError::new("22P02", format!("invalid input syntax for type json: {e}"))
                    .with_hint(format!("The document is invalid near byte {}.", e.offset))
            })?;
            path.clear();
            match f {
                Func::JsonPath | Func::JsonPathText if cols.len() == 2 && tys[1].is_text() => {
                    path.extend(parse_text_array(step_texts[0].get(i))?);
                }
                Func::JsonTypeof => {}
                _ => path.extend(step_texts.iter().map(|s| s.get(i).to_string())),
            }
            let mut node = Some(&doc);
            for (k, step) in path.iter().enumerate() {
                let by_index = matches!(f, Func::JsonGet | Func::JsonGetText) && tys[1 + k].is_integer();
                node = node.and_then(|nd| match &nd.value {
                    json::Json::Array(_) if by_index || f == Func::JsonPath || f == Func::JsonPathText => {
                        step.trim().parse::<i64>().ok().and_then(|ix| nd.index(ix))
                    }
                    json::Json::Object(_) if !by_index => nd.get(step),
                    _ => None,
                });
            }
            result = match (f, node) {
                (_, None) => None,
                (Func::JsonTypeof, Some(nd)) => Some(nd.type_name().to_string()),
                (Func::JsonGetText | Func::JsonPathText, Some(nd)) => nd.as_text().map(|t| t.into_owned()),
                (_, Some(nd)) => Some(nd.text.to_string()),
            };
        }
        match result {
            Some(t) => out.push(&t),
            None => {
                out.push("");
                valid.set(i, false);
            }
        }
    }
    Ok(Column::with_validity(Values::Text(out), Some(valid)))
}
