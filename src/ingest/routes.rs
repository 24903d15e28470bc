//! MQTT routes (`CREATE ROUTE r FROM MQTT 'filter' INTO CHANNEL c WITH (…)`), what AWS IoT
//! Core rules did: a topic filter whose messages go to a channel. Kept in the data directory's
//! `routes` file (storage-format.md § "Routes"), rewritten whole and atomically on each change.

use std::path::Path;

use crate::error::{Error, Result};
use crate::util::bytes::{ByteReader, PutBytes};

pub(crate) const FILE_NAME: &str = "routes";
const MAGIC: [u8; 8] = *b"FLEETRTE";
const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    /// The MQTT topic filter (`+` and `#` wildcards), without any `$share/` prefix.
    pub filter: String,
    pub channel: String,
    /// 0 or 1. QoS 1 messages are acknowledged to the broker once durable.
    pub qos: u8,
    /// A payload that is a JSON array becomes one message per element.
    pub batch_mode: bool,
    /// Subscribe as `$share/<group>/<filter>`: nodes of one group split the messages.
    pub shared_group: Option<String>,
}

impl Route {
    /// What is sent to the broker in SUBSCRIBE.
    pub fn subscription(&self) -> String {
        match &self.shared_group {
            Some(g) => format!("$share/{g}/{}", self.filter),
            None => self.filter.clone(),
        }
    }
}

/// Checks a topic filter: non-empty, `+` and `#` only as whole levels, `#` only last.
pub(crate) fn validate_filter(filter: &str) -> crate::Result<()> {
    validate_filter_text(filter).map_err(crate::Error::Invalid)
}

/// [`validate_filter`], its error a reason as text.
fn validate_filter_text(filter: &str) -> std::result::Result<(), String> {
    if filter.is_empty() || filter.len() > 65535 || filter.contains('\0') {
        return Err("a topic filter is 1 to 65535 bytes without NUL".into());
    }
    if filter.starts_with("$share/") {
        return Err("give the plain filter and the group as shared_group = '…'".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i != levels.len() - 1) {
            return Err(format!("'#' must be a whole last level in \"{filter}\""));
        }
        if l.contains('+') && *l != "+" {
            return Err(format!("'+' must be a whole level in \"{filter}\""));
        }
    }
    Ok(())
}

/// Whether `topic` matches `filter` (MQTT 3.1.1 § 4.7: wildcards do not match topics that
/// start with `$` at their first level).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

pub(crate) fn save(dir: &Path, routes: &[Route]) -> Result<()> {
    let mut b = Vec::new();
    b.put_u32(routes.len() as u32);
    for r in routes {
        b.put_str16(&r.name);
        b.put_str16(&r.filter);
        b.put_str16(&r.channel);
        b.put_u8(r.qos);
        b.put_u8(r.batch_mode as u8);
        b.put_str16(r.shared_group.as_deref().unwrap_or(""));
    }
    crate::util::recfile::write(&dir.join(FILE_NAME), &MAGIC, VERSION, &b)
}

/// The routes in `dir` (none if the file does not exist).
pub(crate) fn load(dir: &Path) -> Result<Vec<Route>> {
    let path = dir.join(FILE_NAME);
    let Some(body) = crate::util::recfile::read(&path, &MAGIC, VERSION, "routes file")? else {
        return Ok(Vec::new());
    };
    decode(&body).ok_or_else(|| Error::corrupt(&path, "routes file"))
}

/// Decodes a routes file's body.
fn decode(body: &[u8]) -> Option<Vec<Route>> {
    let mut r = ByteReader::new(body);
    let n = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let name = r.str16()?.to_string();
        let filter = r.str16()?.to_string();
        let channel = r.str16()?.to_string();
        let qos = r.u8()?;
        let batch_mode = r.u8()? != 0;
        let group = r.str16()?;
        out.push(Route {
            name,
            filter,
            channel,
            qos,
            batch_mode,
            shared_group: (!group.is_empty()).then(|| group.to_string()),
        });
    }
    r.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_mqtt() {
        for (f, t, want) in [
            ("iot/factory/#", "iot/factory/m1/temp", true),
            ("iot/factory/#", "iot/factory", true),
            ("iot/+/temp", "iot/m1/temp", true),
            ("iot/+/temp", "iot/m1/x/temp", false),
            ("iot/+", "iot/m1/temp", false),
            ("#", "anything/at/all", true),
            ("#", "$SYS/broker", false),
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("+/+", "a/", true),
        ] {
            assert_eq!(matches(f, t), want, "{f} {t}");
        }
        assert!(validate_filter("iot/#").is_ok() && validate_filter("+/x/+").is_ok());
        for bad in ["", "a/#/b", "a#", "a/b+", "$share/g/a"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let routes = vec![
            Route {
                name: "r".into(),
                filter: "iot/#".into(),
                channel: "c".into(),
                qos: 1,
                batch_mode: true,
                shared_group: Some("g".into()),
            },
            Route {
                name: "s".into(),
                filter: "a/+".into(),
                channel: "d".into(),
                qos: 0,
                batch_mode: false,
                shared_group: None,
            },
        ];
        save(dir.path(), &routes).unwrap();
        assert_eq!(load(dir.path()).unwrap(), routes);
        let path = dir.path().join(FILE_NAME);
        let mut b = std::fs::read(&path).unwrap();
        b[14] ^= 4;
        std::fs::write(&path, b).unwrap();
        assert!(matches!(load(dir.path()), Err(Error::Corrupt { .. })));
    }
}
