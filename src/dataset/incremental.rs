//! Incremental refresh of SQL datasets that group by time buckets.
//!
//! A dataset whose query reads one datastore, groups by `date_trunc('second' | 'minute' |
//! 'hour' | 'day', time)` (also one of its output columns), and has no `now()`, ORDER BY,
//! LIMIT, DISTINCT or window functions computes each bucket from that bucket's rows alone.
//! The datastore's day partitions note the time range of every change (appends, deletes) under
//! a generation. So a refresh after the first recomputes only the buckets from the earliest to
//! the latest time changed since the previous version (through the same scan limit as a delta
//! window) and keeps the previous content's rows of every other bucket. The generations are
//! held in memory only: the first refresh after a restart is a full one.

use crate::query::ast;

/// What makes a query incremental: the datastore it reads and the output column that holds
/// the time bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    pub datastore: String,
    pub column: usize,
    /// The bucket's width in microseconds (a second, minute, hour or day).
    pub width: i64,
}

fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
}

/// The width of `date_trunc('<unit of a day or less>', time)`'s buckets.
fn day_bucket(e: &ast::Expr) -> Option<i64> {
    let ast::Expr::Function(f) = e else { return None };
    if !f.name.to_string().eq_ignore_ascii_case("date_trunc") || f.over.is_some() {
        return None;
    }
    let ast::FunctionArguments::List(l) = &f.args else { return None };
    let args: Vec<&ast::Expr> = l
        .args
        .iter()
        .filter_map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Some(x),
            _ => None,
        })
        .collect();
    let [unit, arg] = args[..] else { return None };
    let width = match unit {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(u) => match u.to_ascii_lowercase().as_str() {
                "second" => 1_000_000,
                "minute" => 60_000_000,
                "hour" => 3_600_000_000,
                "day" => 86_400_000_000,
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    let time_ok = match arg {
        ast::Expr::Identifier(i) => ident(i) == "time",
        ast::Expr::CompoundIdentifier(v) => v.last().is_some_and(|i| ident(i) == "time"),
        _ => false,
    };
    time_ok.then_some(width)
}

/// The query's buckets, if it can be refreshed incrementally.
pub fn buckets(query: &str) -> Option<Buckets> {
    let lower = query.to_ascii_lowercase();
    if ["now(", "current_", "random(", " over ", " over(", "localtime"].iter().any(|w| lower.contains(w)) {
        return None;
    }
    let q = crate::query::parse::parse_query(query).ok()?;
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let ast::SetExpr::Select(sel) = &*q.body else { return None };
    if sel.distinct.is_some() || sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
        return None;
    }
    let ast::TableFactor::Table { name, args: None, .. } = &sel.from[0].relation else { return None };
    let datastore = match &name.0[..] {
        [ast::ObjectNamePart::Identifier(i)] => ident(i),
        _ => return None,
    };
    let ast::GroupByExpr::Expressions(group, _) = &sel.group_by else { return None };
    let mut names = Vec::new();
    let mut column = None;
    for (i, item) in sel.projection.iter().enumerate() {
        let (e, alias) = match item {
            ast::SelectItem::UnnamedExpr(e) => (e, None),
            ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(ident(alias))),
            _ => return None,
        };
        names.push(alias.clone().unwrap_or_else(|| e.to_string()));
        if column.is_none()
            && let Some(w) = day_bucket(e)
        {
            let grouped = group.iter().any(|g| {
                g.to_string() == e.to_string()
                    || matches!(g, ast::Expr::Identifier(a) if Some(ident(a)) == alias)
                    || matches!(g, ast::Expr::Value(v) if matches!(&v.value, ast::Value::Number(n, _) if n.parse() == Ok(i + 1)))
            });
            if grouped {
                column = Some((i, w));
            }
        }
    }
    // Content rows are merged by column name.
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != names.len() {
        return None;
    }
    let (column, width) = column?;
    Some(Buckets { datastore, column, width })
}

/// The buckets to recompute, `[from, to)`, for changes in the time ranges `changed`
/// (inclusive); `None` when nothing changed.
pub fn span(changed: &[(i64, i64)], width: i64) -> Option<(i64, i64)> {
    let lo = changed.iter().map(|c| c.0).min()?;
    let hi = changed.iter().map(|c| c.1).max()?;
    Some((lo.div_euclid(width) * width, (hi.div_euclid(width) + 1) * width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_grouped_by_day_buckets_are_incremental() {
        let b = |q: &str| buckets(q).map(|b| (b.datastore, b.column));
        assert_eq!(
            buckets("SELECT date_trunc('minute', time) AS t, 1 AS one FROM d GROUP BY 1").unwrap().width,
            60_000_000
        );
        assert_eq!(
            b("SELECT machine_id, date_trunc('hour', time) AS hour, avg(v) FROM d GROUP BY machine_id, hour"),
            Some(("d".into(), 1))
        );
        assert_eq!(
            b("SELECT date_trunc('minute', time), count(*) AS n FROM d WHERE v > 0 GROUP BY 1"),
            Some(("d".into(), 0))
        );
        assert_eq!(
            b("SELECT date_trunc('day', d.time) AS day, max(v) AS m FROM d GROUP BY date_trunc('day', d.time)"),
            Some(("d".into(), 0))
        );
        for no in [
            "SELECT date_trunc('month', time) AS m, count(*) AS n FROM d GROUP BY 1",
            "SELECT date_trunc('hour', time) AS h, count(*) AS n FROM d WHERE time > now() - interval '1 day' GROUP BY 1",
            "SELECT date_trunc('hour', time) AS h, count(*) AS n FROM d GROUP BY 1 ORDER BY 1",
            "SELECT machine_id, avg(v) AS a FROM d GROUP BY machine_id",
            "SELECT date_trunc('hour', time) AS h, count(*) AS n FROM d JOIN e ON true GROUP BY 1",
            "SELECT date_trunc('hour', time) AS h, count(*) AS n, count(*) AS n FROM d GROUP BY 1",
        ] {
            assert_eq!(b(no), None, "{no}");
        }
        assert_eq!(span(&[(3_700, 3_800), (10, 20)], 1_000), Some((0, 4_000)));
        assert_eq!(span(&[(-1, -1)], 1_000), Some((-1_000, 0)));
        assert_eq!(span(&[], 1_000), None);
    }
}
