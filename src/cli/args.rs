//! A small argument parser: `--name value`, `--name=value`, boolean `--flag`, positionals.
//! Any unknown option is an error naming it (the binary exits 2).

use std::collections::BTreeMap;

pub struct Args {
    pub command: String,
    values: BTreeMap<String, String>,
    flags: Vec<String>,
    pub positionals: Vec<String>,
}

/// `spec`: options taking a value, and boolean flags, accepted by `command`.
pub fn parse(command: &str, argv: &[String], valued: &[&str], flags: &[&str]) -> Result<Args, String> {
    let mut a =
        Args { command: command.to_string(), values: BTreeMap::new(), flags: Vec::new(), positionals: Vec::new() };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--") else {
            a.positionals.push(arg.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if valued.contains(&name) {
            let v = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option '--{name}' of 'fleetdb {command}' needs a value"))?,
            };
            a.values.insert(name.to_string(), v);
        } else if flags.contains(&name) && inline.is_none() {
            a.flags.push(name.to_string());
        } else {
            return Err(format!("unknown option '--{name}' for 'fleetdb {command}' (see 'fleetdb --help')"));
        }
    }
    Ok(a)
}

impl Args {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
    /// A numeric option, or `default` when absent.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("option '--{name}' of 'fleetdb {}' wants a number, not '{v}'", self.command)),
        }
    }
}
