//! The architecture as the README states it, checked against the code: the layer order, no
//! circle between folders, each crate only in the modules named for it, and the invariants
//! that a reading of the source can check (where `unsafe`, printing and fsync may appear,
//! which modules never read the wall clock).
//!
//! The rules are read from the README's Architecture section (the fenced `layers`, `crates`
//! and `rules` blocks), so the README cannot drift from the code without this test failing.
//! Imports are read as text: `crate::x` (and `fleetdb::x` in the binary), `super::` resolved
//! from the file's place, grouped `use crate::{a, b}`. Comments and `#[cfg(test)]` modules are
//! left out: unit tests may drive any layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A fenced block of the README's Architecture section, by its info string.
fn readme_block(info: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let arch = readme.split("\n## Architecture").nth(1).expect("the README has an Architecture section");
    let arch = arch.split("\n## ").next().unwrap_or(arch);
    let open = format!("```{info}\n");
    let start =
        arch.find(&open).unwrap_or_else(|| panic!("the Architecture section has a ```{info} block")) + open.len();
    let end = arch[start..].find("```").expect("the block is closed") + start;
    arch[start..end]
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Every `.rs` file under `src/`, as paths relative to `src/`.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(base).expect("under src").to_path_buf());
            }
        }
    }
    let base = Path::new(ROOT).join("src");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

/// The file's code without comments, string contents and `#[cfg(test)]` items: what the
/// library builds. Strings are blanked so that text like "crate::x" in a message is not an
/// import; line structure is kept for error messages.
fn code_of(text: &str) -> String {
    // A file of unit tests (`#![cfg(test)]`, declared by `#[cfg(test)] mod tests;`) is all test.
    if text.lines().any(|l| l.trim() == "#![cfg(test)]") {
        return String::new();
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) && !prev_is_ident(b, i) {
            // A raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + close.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' && is_char_literal(b, i) {
            // A character literal such as '"' or '\''; lifetimes ('a) are left alone.
            let mut j = i + 1;
            if b.get(j) == Some(&b'\\') {
                j += 1;
            }
            j += 1;
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            let ch = text[i..].chars().next().expect("a char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    drop_test_items(&out)
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn is_char_literal(b: &[u8], i: usize) -> bool {
    match (b.get(i + 1), b.get(i + 2), b.get(i + 3)) {
        (Some(b'\\'), _, _) => true,
        (Some(_), Some(b'\''), _) => true,
        // A multi-byte character: its bytes, then the closing quote.
        (Some(&c), _, _) if c >= 0x80 => b[i + 1..].iter().take(5).skip(1).any(|&x| x == b'\''),
        _ => false,
    }
}

/// Blanks each item marked `#[cfg(test)]` (a `mod tests { … }` or a single item).
fn drop_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at the `;` or the brace that closes its first `{`, whichever first.
        let b = item.as_bytes();
        let (mut depth, mut end) = (0i32, item.len());
        for (k, &c) in b.iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
        }
        out.extend(item[..end].chars().filter(|&c| c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level module a source file belongs to (`query` for `query/plan.rs`, `error` for
/// `error.rs`); the binary's files (`main.rs`, `cli/`) are `main`.
fn module_of(file: &Path) -> String {
    let first = file.components().next().expect("a component").as_os_str().to_string_lossy().to_string();
    let m = first.trim_end_matches(".rs").to_string();
    if m == "cli" { "main".into() } else { m }
}

/// The first name of each entry of a `use` group (`{a, b::{c, d}}` after its `{`: a, b).
fn group_heads(group: &str) -> Vec<String> {
    let (mut depth, mut entry, mut names) = (0, String::new(), Vec::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => names.push(std::mem::take(&mut entry)),
            _ if depth == 0 => entry.push(c),
            _ => {}
        }
    }
    names.push(entry);
    names.iter().map(|e| e.trim().chars().take_while(|&c| c.is_alphanumeric() || c == '_').collect()).collect()
}

/// The top-level modules `file`'s code imports, with the line of the first use of each.
fn imports(file: &Path, code: &str) -> BTreeMap<String, usize> {
    let own = module_of(file);
    let binary = own == "main";
    let prefixes: &[&str] = if binary { &["fleetdb::", "crate::"] } else { &["crate::"] };
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut out = BTreeMap::new();
    for prefix in prefixes {
        let mut from = 0;
        while let Some(found) = code[from..].find(prefix) {
            let at = from + found;
            from = at + prefix.len();
            if code[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[from..];
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                group_heads(group)
            } else {
                vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
            };
            for name in names.into_iter().filter(|n| !n.is_empty() && n != "self") {
                // In the binary, `crate::` is the binary itself (main and cli); a name the
                // crate root re-exports (`crate::Error`) belongs to the module it comes from.
                let target = if binary && *prefix == "crate::" {
                    "main".to_string()
                } else {
                    root_exports().get(&name).cloned().unwrap_or(name)
                };
                out.entry(target).or_insert_with(|| line_of(at));
            }
        }
    }
    // A top-level file's `super::` is the crate root, a way around the rules above: refused.
    if file.components().count() == 1 && code.contains("super::") && own != "lib" && own != "main" {
        out.insert("<super:: from a top-level file>".into(), 0);
    }
    out.remove(&own);
    out
}

/// The names `lib.rs` re-exports (`pub use error::{Error, Result};`), with their module.
fn root_exports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).expect("lib.rs");
    let mut out = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.trim().strip_prefix("pub use ")) {
        let (module, names) = line.trim_end_matches(';').split_once("::").unwrap_or((line, ""));
        for n in names.trim_start_matches('{').trim_end_matches('}').split(',') {
            out.insert(n.trim().to_string(), module.trim().to_string());
        }
    }
    out
}

struct Layers {
    /// Module → its layer's rank (0 = the bottom).
    rank: BTreeMap<String, usize>,
}

fn layers() -> Layers {
    let lines = readme_block("layers");
    let n = lines.len();
    let mut rank = BTreeMap::new();
    // Written top first: the first line is the highest layer.
    for (i, l) in lines.iter().enumerate() {
        for m in l.split_whitespace() {
            assert!(rank.insert(m.to_string(), n - 1 - i).is_none(), "{m} is listed twice in the layers block");
        }
    }
    Layers { rank }
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("src").join(file)).expect("read a source file")
}

#[test]
fn every_import_goes_down_the_layers() {
    let layers = layers();
    let mut wrong = Vec::new();
    for file in sources() {
        let own = module_of(&file);
        if own == "lib" {
            continue;
        }
        let Some(&mine) = layers.rank.get(&own) else {
            wrong.push(format!("src/{}: module {own} is not in the README's layers block", file.display()));
            continue;
        };
        for (target, line) in imports(&file, &code_of(&read(&file))) {
            match layers.rank.get(&target) {
                None => wrong
                    .push(format!("src/{}:{line}: imports {target}, which is not in the layers block", file.display())),
                Some(&theirs) if theirs >= mine => wrong.push(format!(
                    "src/{}:{line}: {own} imports {target}, {}",
                    file.display(),
                    if theirs == mine { "a peer on the same layer" } else { "a layer above it" }
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the README's layer order:\n{}", wrong.join("\n"));
}

#[test]
fn no_circle_between_folders() {
    // The graph of top-level modules, built from the code alone (not from the layer list).
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources() {
        let own = module_of(&file);
        if own == "lib" {
            continue;
        }
        let edges = imports(&file, &code_of(&read(&file)));
        graph.entry(own).or_default().extend(edges.into_keys());
    }
    let found = circles(&graph);
    assert!(found.is_empty(), "circles between folders:\n{}", found.join("\n"));
}

/// The circles of a directed graph, each as `a -> b -> … -> a` (one per back edge of a
/// depth-first search).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
        found: &mut Vec<String>,
    ) {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for t in graph.get(m).into_iter().flatten() {
            match state.get(t.as_str()).copied().unwrap_or(0) {
                0 => visit(t, graph, state, path, found),
                1 => {
                    let from = path.iter().position(|p| p == t).unwrap_or(0);
                    found.push(format!("{} -> {t}", path[from..].join(" -> ")));
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
    }
    let (mut state, mut found) = (BTreeMap::new(), Vec::new());
    for m in graph.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            visit(m, graph, &mut state, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// The module a library source file is (`query::exec::topn` for `query/exec/topn.rs`,
/// `query` for `query/mod.rs`).
fn module_path(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> =
        file.with_extension("").components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The modules `code` (of module `me`) names through `crate::…`, `super::…` or `self::…`
/// paths, each cut to the longest path that is one of `modules`; its own ancestors (whose
/// items it sees as its namespace) and itself left out.
fn module_refs(me: &[String], code: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = BTreeSet::new();
    let mut add = |path: Vec<String>| {
        let Some(k) = (1..=path.len()).rev().find(|&k| modules.contains(&path[..k])) else { return };
        let target = path[..k].to_vec();
        if !me.starts_with(&target) {
            out.insert(target);
        }
    };
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let head = ["crate::", "super::", "self::"].into_iter().find(|h| rest.starts_with(h));
        let prev_ident = code[..at].chars().last().is_some_and(|c| ident(c) || c == ':');
        let Some(head) = head.filter(|_| !prev_ident) else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut base: Vec<String> = match head {
            "crate::" => Vec::new(),
            "self::" => me.to_vec(),
            _ => me[..me.len().saturating_sub(1)].to_vec(),
        };
        let mut tail = &rest[head.len()..];
        while let Some(t) = tail.strip_prefix("super::") {
            base.pop();
            tail = t;
        }
        // Segments up to a group, a name that is not a path, or the end.
        let mut path = base.clone();
        loop {
            let seg: String = tail.chars().take_while(|&c| ident(c)).collect();
            if seg.is_empty() {
                break;
            }
            tail = &tail[seg.len()..];
            path.push(seg);
            match tail.strip_prefix("::") {
                Some(t) => tail = t,
                None => break,
            }
        }
        if let Some(group) = tail.strip_prefix('{') {
            for first in group_heads(group) {
                let mut p = path.clone();
                if !first.is_empty() && first != "self" {
                    p.push(first);
                }
                add(p);
            }
        } else {
            add(path);
        }
        at += head.len();
    }
    out
}

#[test]
fn no_circle_between_files() {
    // Every module of the library (a file, or a folder's `mod.rs`), and the modules each one's
    // code names: a module may use its ancestors' items (its namespace) and its own children,
    // but no two files may need each other, directly or round a longer loop.
    let files: Vec<PathBuf> =
        sources().into_iter().filter(|f| !matches!(module_of(f).as_str(), "main" | "lib")).collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let me = module_path(file);
        let refs = module_refs(&me, &code_of(&read(file)), &modules);
        graph.entry(me.join("::")).or_default().extend(refs.into_iter().map(|m| m.join("::")));
    }
    assert!(graph.len() > 100, "the library's modules were not found: {}", graph.len());
    assert!(
        graph["query::bind::expr"].contains("query::exec"),
        "the reader misses an import: {:?}",
        graph["query::bind::expr"]
    );
    let found = circles(&graph);
    assert!(found.is_empty(), "circles between files:\n{}", found.join("\n"));
}

/// Whether `file` (relative to `src/`) is one of `places` (files, or folders ending in `/`).
fn within(file: &Path, places: &[&str]) -> bool {
    let f = file.to_string_lossy().replace('\\', "/");
    places.iter().any(|p| if p.ends_with('/') { f.starts_with(p) } else { f == *p })
}

/// Each `name: places` line of a README block.
fn entries(info: &str) -> Vec<(String, Vec<String>)> {
    readme_block(info)
        .iter()
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("```{info} line without a colon: {l}"));
            (k.trim().to_string(), v.split_whitespace().map(str::to_string).collect())
        })
        .collect()
}

/// Lines of `code` where `pattern` appears as a whole: not inside a longer name (a pattern
/// starting with `.` is a method, after any receiver; one ending in punctuation, as `println!`
/// or `now_micros(`, may be followed by anything).
fn lines_with(code: &str, pattern: &str) -> Vec<usize> {
    code.lines()
        .enumerate()
        .filter(|(_, l)| {
            let mut s = *l;
            while let Some(at) = s.find(pattern) {
                let before = s[..at].chars().last();
                let after = s[at + pattern.len()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let starts = pattern.starts_with('.') || !word(before);
                if starts && (!word(after) || pattern.ends_with(|c: char| !c.is_alphanumeric())) {
                    return true;
                }
                s = &s[at + pattern.len()..];
            }
            false
        })
        .map(|(n, _)| n + 1)
        .collect()
}

#[test]
fn each_crate_only_where_the_readme_names_it() {
    let crates = entries("crates");
    assert!(!crates.is_empty(), "the crates block lists crates");
    let mut wrong = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for file in sources() {
        let code = code_of(&read(&file));
        for (name, places) in &crates {
            let places: Vec<&str> = places.iter().map(String::as_str).collect();
            let hits = lines_with(&code, &format!("{name}::"));
            if !hits.is_empty() {
                used.insert(name.clone());
            }
            if !within(&file, &places) {
                for line in hits {
                    wrong.push(format!(
                        "src/{}:{line}: uses {name}, allowed only in {}",
                        file.display(),
                        places.join(" ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "crates used outside the modules the README names:\n{}", wrong.join("\n"));
    // A crate the block names but nothing uses: the block has drifted.
    for (name, _) in &crates {
        assert!(used.contains(name), "the crates block names {name}, which no source file uses");
    }
}

#[test]
fn the_readme_invariants_hold_in_the_code() {
    // Each rule: a pattern, and whether the places listed are the only ones allowed it or the
    // ones that must never have it.
    let patterns: BTreeMap<&str, (&[&str], bool)> = BTreeMap::from([
        ("unsafe", (&["unsafe"][..], true)),
        ("print", (&["println!", "eprintln!", "print!", "eprint!", "dbg!"][..], true)),
        ("fsync", (&[".sync_all(", ".sync_data("][..], true)),
        ("wall clock", (&["SystemTime::now", "now_micros(", "now_secs("][..], false)),
    ]);
    let rules = entries("rules");
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    let files = sources();
    for (rule, places) in &rules {
        let (only, rest) = places.split_first().map(|(f, r)| (f.as_str(), r)).unwrap_or(("", &[]));
        let Some(&(pats, only_rule)) = patterns.get(rule.as_str()) else {
            panic!("the rules block has a rule this test does not know: {rule}")
        };
        assert_eq!(only, if only_rule { "only" } else { "never" }, "rule {rule}: `{rule}: only …` or `never …`");
        seen.insert(rule.as_str());
        let places: Vec<&str> = rest.iter().map(String::as_str).collect();
        for file in &files {
            let code = code_of(&read(file));
            let inside = within(file, &places);
            for p in pats {
                let hits = lines_with(&code, p);
                if hits.is_empty() || (only_rule && inside) || (!only_rule && !inside) {
                    continue;
                }
                for line in hits {
                    wrong.push(format!("src/{}:{line}: {p} breaks the rule `{rule}`", file.display()));
                }
            }
        }
    }
    for rule in patterns.keys() {
        assert!(seen.contains(rule), "the rules block does not state the rule `{rule}`");
    }
    assert!(wrong.is_empty(), "the README's invariants do not hold:\n{}", wrong.join("\n"));
}

#[test]
fn the_reader_sees_what_it_must() {
    // The checks above are only as good as the reading: it must find imports in grouped and
    // plain forms, and ignore comments, strings and unit tests.
    let code = code_of(
        "use crate::{batch::Batch, util::time};\n\
         // use crate::server::x;\n\
         let s = \"crate::dataset::y\";\n\
         fn f() { crate::engine::Engine::open(); }\n\
         #[cfg(test)]\nmod tests { use crate::command::Session; }\n\
         let c = '\"'; use crate::wal::Wal;\n\
         use crate::{\n    datastore::{file, reader},\n    table,\n};\n",
    );
    let got: Vec<String> = imports(Path::new("query/plan.rs"), &code).into_keys().collect();
    assert_eq!(got, ["batch", "datastore", "engine", "table", "util", "wal"]);
    assert_eq!(lines_with("x.sync_all()?;\nfsync_all()", ".sync_all("), vec![1]);
    assert_eq!(lines_with("eprintln!(x);\nprintln!(y)", "println!"), vec![2]);
    assert_eq!(lines_with("let unsafe_ok = 1;\nunsafe { x }", "unsafe"), vec![2]);
}
