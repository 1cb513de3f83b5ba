//! The gateway's dependencies flow one way: `state.rs` builds `AppState` from parts (the store,
//! the session keys, the relay, the policies, ...), and no file those parts are made of imports
//! `AppState` back. Handlers and layers use `AppState`; the parts it holds never do. The Messages
//! API's data (`api/`), which the routes, upstreams, policies, spend and telemetry share, depends
//! on nothing but the config. And no two folders depend on each other through a circle of files.
//!
//! This reads the sources: each file's `crate::`, `super::`, `self::` and child-module paths
//! (outside comments and its `#[cfg(test)]` modules) name the files it depends on.

// An unreadable source tree should fail the test loudly.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Files (by path under `src/`) and the files each depends on.
type Deps = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `src/`, by path relative to it (`auth/token.rs`), with its code.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        let entries = std::fs::read_dir(dir).expect("the source folder is readable");
        for entry in entries {
            let path = entry.expect("a readable entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under the root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                out.insert(rel, code(&text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The code of a file: without its `#[cfg(test)]` modules, and without line comments (a `//`
/// after a space or at the start of a line, so `https://` in a string stays).
fn code(text: &str) -> String {
    let mut kept = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let is_mod = ["mod ", "pub mod ", "pub(crate) mod "]
            .iter()
            .any(|p| item.starts_with(p));
        let body = item
            .find(['{', ';'])
            .filter(|&i| is_mod && item[i..].starts_with('{'));
        match (is_mod, body) {
            (true, Some(open)) => rest = &item[block_end(item, open)..],
            // `mod tests;`: the declaration goes, the file it names is not read as a dependency.
            (true, None) => rest = item.find(';').map_or("", |i| &item[i + 1..]),
            (false, _) => rest = after,
        }
    }
    kept.push_str(rest);
    kept.lines()
        .map(|line| {
            let cut = line
                .match_indices("//")
                .find(|(i, _)| *i == 0 || line[..*i].ends_with(char::is_whitespace))
                .map_or(line.len(), |(i, _)| i);
            &line[..cut]
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The index just past the block that opens at `open` (a `{`), or the end of `text`. Braces in
/// string and character literals do not count.
fn block_end(text: &str, open: usize) -> usize {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            // A raw string: r"..." or r#"..."#, any number of hashes.
            b'r' if i + 1 < b.len() && matches!(b[i + 1], b'"' | b'#') && !ident_before(b, i) => {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) == Some(&b'"') {
                    let close = format!("\"{}", "#".repeat(hashes));
                    let from = i + 2 + hashes;
                    i = text[from..]
                        .find(&close)
                        .map_or(b.len(), |j| from + j + close.len());
                    continue;
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            // A character literal ('{', '\'', '\u{7b}'), not a lifetime ('a).
            b'\'' => {
                if b.get(i + 1) == Some(&b'\\') {
                    i = text[i + 2..].find('\'').map_or(b.len(), |j| i + 2 + j);
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 2;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The module path of a file: `auth/token.rs` → `[auth, token]`, `auth/mod.rs` → `[auth]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The file that defines the longest prefix of `path` (`[auth, token, Claims]` → `auth/token.rs`).
fn file_of(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    (1..=path.len()).rev().find_map(|n| {
        let stem = path[..n].join("/");
        [format!("{stem}.rs"), format!("{stem}/mod.rs")]
            .into_iter()
            .find(|f| files.contains_key(f))
    })
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths named by `text`, which starts right after `base::`: `a::b::C` gives `base+[a, b,
/// C]`, `{a, b::{c, D}}` gives one path per leaf.
fn expand(base: &[String], text: &str, out: &mut Vec<Vec<String>>) {
    let mut path = base.to_vec();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(&path, &group[start..i], out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&path, &group[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_owned());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    out.push(path);
}

/// The files `rel` depends on.
fn dependencies(files: &BTreeMap<String, String>, rel: &str, code: &str) -> BTreeSet<String> {
    let me = module_of(rel);
    // A file's own submodules may be named without `self::`; a private one is part of the file
    // (`store/mod.rs` declares `mod kv;`, whose `impl Store` adds to the store's methods).
    let mut children = Vec::new();
    let mut paths = Vec::new();
    for line in code.lines() {
        let line = line.trim();
        let (public, decl) = match line.strip_prefix("mod ") {
            Some(d) => (false, d),
            None => match line.split_once(" mod ") {
                Some((vis, d)) if vis.starts_with("pub") => (true, d),
                _ => continue,
            },
        };
        let Some(name) = decl.strip_suffix(';') else {
            continue;
        };
        if !public {
            let mut path = me.clone();
            path.push(name.to_owned());
            paths.push(path);
        }
        children.push(name.to_owned());
    }
    for (i, _) in code.match_indices("::") {
        let before = &code[..i];
        let word_start = before.rfind(|c: char| !is_ident(c)).map_or(0, |j| j + 1);
        // Only the first segment of a path: not preceded by another `::`.
        if before[..word_start].ends_with("::") {
            continue;
        }
        let word = &before[word_start..];
        let base: Vec<String> = match word {
            "crate" => Vec::new(),
            "self" => me.clone(),
            "super" => {
                let mut base = me.clone();
                base.pop();
                base
            }
            w if children.iter().any(|c| c == w) => {
                let mut base = me.clone();
                base.push(w.to_owned());
                base
            }
            _ => continue,
        };
        let mut rest = &code[i + 2..];
        let mut base = base;
        while let Some(next) = rest.strip_prefix("super::") {
            base.pop();
            rest = next;
        }
        expand(&base, rest, &mut paths);
    }
    paths
        .iter()
        .filter_map(|p| file_of(files, p))
        .filter(|f| f != rel)
        .collect()
}

/// Each source file and the files it depends on.
fn graph() -> Deps {
    let files = sources();
    files
        .iter()
        .map(|(rel, code)| (rel.clone(), dependencies(&files, rel, code)))
        .collect()
}

#[test]
fn no_part_of_the_state_imports_it_back() {
    let deps = graph();
    // Breadth first from state.rs, remembering how each file was reached.
    let mut reached: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from(["state.rs".to_owned()]);
    while let Some(file) = queue.pop_front() {
        for dep in deps.get(file.as_str()).into_iter().flatten() {
            if dep != "state.rs" && !reached.contains_key(dep) {
                reached.insert(dep.clone(), file.clone());
                queue.push_back(dep.clone());
            }
        }
    }
    assert!(
        reached.len() > 20,
        "state.rs is built from the store, the keys, the relay and more: the reader found only {:?}",
        reached.keys().collect::<Vec<_>>()
    );
    let back: Vec<String> = reached
        .keys()
        .filter(|f| deps[f.as_str()].contains("state.rs"))
        .map(|f| {
            let mut chain = vec![f.clone()];
            while let Some(from) = reached.get(chain.last().map_or("", String::as_str)) {
                chain.push(from.clone());
            }
            chain.join(" <- ")
        })
        .collect();
    assert!(
        back.is_empty(),
        "parts of AppState import it back:\n{}",
        back.join("\n")
    );
}

#[test]
fn the_messages_api_data_depends_on_the_config_alone() {
    let files = sources();
    let outside: Vec<String> = files
        .iter()
        .filter(|(rel, _)| rel.starts_with("api/"))
        .flat_map(|(rel, code)| {
            dependencies(&files, rel, code)
                .into_iter()
                .filter(|d| !d.starts_with("api/") && !d.starts_with("config/"))
                .map(move |d| format!("{rel} -> {d}"))
        })
        .collect();
    assert!(files.contains_key("api/body.rs"), "the reader found api/");
    assert!(outside.is_empty(), "{}", outside.join("\n"));
}

/// The strongly connected groups of `deps` (Tarjan's algorithm): files that reach each other.
fn circles(deps: &Deps) -> Vec<Vec<String>> {
    struct Walk<'a> {
        deps: &'a Deps,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: Vec<Vec<String>>,
    }
    fn visit(w: &mut Walk<'_>, v: &str) {
        let n = w.index.len();
        w.index.insert(v.to_owned(), n);
        w.low.insert(v.to_owned(), n);
        w.stack.push(v.to_owned());
        w.on_stack.insert(v.to_owned());
        for d in w.deps.get(v).into_iter().flatten() {
            if !w.index.contains_key(d) {
                visit(w, d);
                let low = w.low[v].min(w.low[d]);
                w.low.insert(v.to_owned(), low);
            } else if w.on_stack.contains(d) {
                let low = w.low[v].min(w.index[d]);
                w.low.insert(v.to_owned(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut group = Vec::new();
            while let Some(f) = w.stack.pop() {
                w.on_stack.remove(&f);
                let done = f == v;
                group.push(f);
                if done {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                w.found.push(group);
            }
        }
    }
    let mut w = Walk {
        deps,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in deps.keys() {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.found
}

/// The folder a file belongs to at the top (`auth/token.rs` → `auth`, `state.rs` → `state`).
fn folder(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs")
}

#[test]
fn no_circle_crosses_folders() {
    let deps = graph();
    let crossing: Vec<String> = circles(&deps)
        .into_iter()
        .filter(|group| group.iter().any(|f| folder(f) != folder(&group[0])))
        .map(|group| group.join(", "))
        .collect();
    assert!(
        crossing.is_empty(),
        "files of different folders depend on each other in a circle:\n{}",
        crossing.join("\n")
    );
}

#[test]
fn circles_are_found() {
    let deps: Deps = [
        ("a.rs", BTreeSet::from(["b/x.rs".to_owned()])),
        ("b/x.rs", BTreeSet::from(["b/y.rs".to_owned()])),
        (
            "b/y.rs",
            BTreeSet::from(["a.rs".to_owned(), "c.rs".to_owned()]),
        ),
        ("c.rs", BTreeSet::new()),
    ]
    .into_iter()
    .map(|(f, d)| (f.to_owned(), d))
    .collect();
    assert_eq!(
        circles(&deps),
        vec![vec![
            "a.rs".to_owned(),
            "b/x.rs".to_owned(),
            "b/y.rs".to_owned()
        ]]
    );
}

#[test]
fn the_reader_sees_grouped_nested_and_child_paths() {
    let files: BTreeMap<String, String> = [
        "a/mod.rs",
        "a/b.rs",
        "a/c.rs",
        "a/more.rs",
        "d.rs",
        "e/mod.rs",
        "e/f.rs",
        "g.rs",
        "h.rs",
    ]
    .into_iter()
    .map(|f| (f.to_owned(), String::new()))
    .collect();
    let src = code(
        "pub mod c;\nuse crate::{d::X, e::{f::{Y, Z}}};\nuse super::b::W; // crate::e::Q\nfn f() { c::go(\"https://crate::nothing\"); }\n#[cfg(test)]\nmod tests { const A: &str = \"{\"; const B: char = '{'; const C: &str = r#\"{\"#; fn l<'a>() {} use crate::h::x; }\n#[cfg(test)]\nmod more;\nfn g() { crate::g::go() }",
    );
    let found = dependencies(&files, "a/mod.rs", &src);
    assert_eq!(
        found,
        BTreeSet::from(["a/c.rs".into(), "d.rs".into(), "e/f.rs".into(), "g.rs".into()]),
        "`super::` from a/mod.rs is the crate root, which has no `b`; the tests' `h` does not count, the code after them does"
    );
    let found = dependencies(
        &files,
        "a/c.rs",
        &code("use super::b::W;\nuse super::super::d;"),
    );
    assert_eq!(found, BTreeSet::from(["a/b.rs".into(), "d.rs".into()]));
    let found = dependencies(&files, "e/mod.rs", &code("mod f;\npub mod g;"));
    assert_eq!(
        found,
        BTreeSet::from(["e/f.rs".into()]),
        "a private child is part of its parent"
    );
}
