//! The order of rows in a datastore file: by series key, then time (see storage-format.md),
//! for flushes, compactions and bulk loads alike.

use std::sync::Arc;

use crate::batch::{Batch, Values, dictionary};

/// Sorts rows by (series key, time), stable so equal keys keep arrival order; `key` is the
/// series key column (text), if there is one. Returns the rows and the key's name (empty for
/// none).
pub(super) fn sorted(batch: &Batch, key: Option<String>) -> (Batch, String) {
    let n = batch.num_rows();
    let times: &[i64] = match batch.column("time").map(|c| &c.values) {
        Some(Values::Timestamp(t)) => t,
        _ => &[],
    };
    let by_time = |idx: &mut [u32]| {
        // Rows mostly arrive in time order: sorted already is checked first.
        if !idx.windows(2).all(|w| times[w[0] as usize] <= times[w[1] as usize]) {
            idx.sort_by_key(|&i| times[i as usize]);
        }
    };
    // The key column in sorted order, made from its dictionary (each key's value once,
    // then a code per row) rather than gathered a string at a time.
    let mut sorted_key: Option<(usize, crate::batch::Column)> = None;
    let idx: Vec<u32> = match key.as_deref().and_then(|k| batch.column_index(k).map(|i| (i, &batch.columns[i]))) {
        Some((key_at, c)) => {
            let Values::Text(v) = &c.values else { unreachable!("sort key is text") };
            let (distinct, dict_codes) = dictionary(v, usize::MAX).expect("no limit");
            // A counting sort by key (stable: arrival order within a key), then each key's
            // rows by time (stable too): the same order as a stable sort by (key, time).
            let code = |i: usize| if c.is_valid(i) { dict_codes[i] as usize + 1 } else { 0 };
            let mut start = vec![0usize; distinct.len() + 2];
            for i in 0..n {
                start[code(i) + 1] += 1;
            }
            for k in 1..start.len() {
                start[k] += start[k - 1];
            }
            let mut at = start.clone();
            let mut idx = vec![0u32; n];
            for i in 0..n {
                let k = code(i);
                idx[at[k]] = i as u32;
                at[k] += 1;
            }
            for w in start.windows(2) {
                by_time(&mut idx[w[0]..w[1]]);
            }
            // Code 0 is NULL (first), code k > 0 the dictionary's value k - 1.
            let nulls = start[1];
            if !distinct.is_empty() {
                let mut dict =
                    crate::batch::StrVec::with_capacity(distinct.len(), distinct.iter().map(|s| s.len()).sum());
                for s in &distinct {
                    dict.push(s);
                }
                let mut codes = Vec::with_capacity(n);
                codes.resize(nulls, 0u32);
                for k in 1..start.len() - 1 {
                    codes.resize(start[k + 1], (k - 1) as u32);
                }
                let validity = (nulls > 0).then(|| {
                    let mut b = crate::batch::Bitmap::default();
                    b.push_n(nulls, false);
                    b.push_n(n - nulls, true);
                    b
                });
                if let Some(v) = crate::batch::StrVec::coded(Arc::new(dict), codes) {
                    sorted_key = Some((key_at, crate::batch::Column::with_validity(Values::Text(v), validity)));
                }
            }
            idx
        }
        None => {
            let mut idx: Vec<u32> = (0..n as u32).collect();
            by_time(&mut idx);
            idx
        }
    };
    let columns = batch
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| match &sorted_key {
            Some((at, k)) if *at == i => k.clone(),
            _ => c.take(&idx),
        })
        .collect();
    (Batch { fields: batch.fields.clone(), columns }, key.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Column, DataType, Field, StrVec};

    /// Rows sorted by (series key, time), NULL keys first: the key column (made from its
    /// dictionary) and the other columns (gathered) stay row for row together.
    #[test]
    fn sorted_rows_keep_their_key_and_values_together() {
        let keys = [Some("b"), None, Some("a"), Some(""), Some("b"), None, Some("a")];
        let times = [5i64, 4, 3, 2, 1, 0, 9];
        let mut kv = StrVec::default();
        let mut valid = crate::batch::Bitmap::default();
        for k in keys {
            kv.push(k.unwrap_or(""));
            valid.push(k.is_some());
        }
        let batch = Batch {
            fields: vec![Field::new("time", DataType::Timestamp), Field::new("k", DataType::Text)],
            columns: vec![
                Column::new(Values::Timestamp(times.to_vec())),
                Column::with_validity(Values::Text(kv), Some(valid)),
            ],
        };
        let (out, key) = sorted(&batch, Some("k".into()));
        assert_eq!(key, "k");
        let got: Vec<(Option<String>, i64)> = (0..out.num_rows())
            .map(|r| {
                let Values::Timestamp(t) = &out.columns[0].values else { panic!("time") };
                let Values::Text(k) = &out.columns[1].values else { panic!("key") };
                (out.columns[1].is_valid(r).then(|| k.get(r).to_string()), t[r])
            })
            .collect();
        let want: Vec<(Option<String>, i64)> = vec![
            (None, 0),
            (None, 4),
            (Some("".into()), 2),
            (Some("a".into()), 3),
            (Some("a".into()), 9),
            (Some("b".into()), 1),
            (Some("b".into()), 5),
        ];
        assert_eq!(got, want);
    }
}
