//! The documentation's links and the commands it names, against the repository: every
//! relative link in README.md, docs/*.md and the chart's README points at an existing file,
//! every `#anchor` at a heading of its page (GitHub's slugs), every `make <target>` at a
//! Makefile target and every `cargo bench --bench` / `test --test` / `run --example` at a
//! bench, test or example of the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::tools::{files_with_ext, read, root};

/// The documentation pages, relative to the repository root.
fn pages() -> Vec<String> {
    let mut out = vec!["README.md".to_string()];
    for path in files_with_ext(&root().join("docs"), "md") {
        let name = path.file_name().expect("file name").to_string_lossy();
        out.push(format!("docs/{name}"));
    }
    out.push("charts/fine-grained-monitor-operator/README.md".to_string());
    out
}

/// A page split into its prose (paragraphs, fenced code removed) and its fenced code blocks.
struct Parts {
    /// Paragraphs outside code fences: (first line number, text).
    paragraphs: Vec<(usize, String)>,
    /// Lines inside code fences: (line number, text).
    code_lines: Vec<(usize, String)>,
    /// Headings outside code fences: the text after the `#`s.
    headings: Vec<String>,
}

fn split(text: &str) -> Parts {
    let mut parts = Parts {
        paragraphs: Vec::new(),
        code_lines: Vec::new(),
        headings: Vec::new(),
    };
    let mut fence: Option<&str> = None;
    let mut paragraph: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                parts.paragraphs.extend(paragraph.take());
                fence = Some(m);
                continue;
            }
            (Some(open), Some(m)) if open == m => {
                fence = None;
                continue;
            }
            (Some(_), _) => {
                parts.code_lines.push((number, line.to_string()));
                continue;
            }
            (None, None) => {}
        }
        if line.trim().is_empty() {
            parts.paragraphs.extend(paragraph.take());
            continue;
        }
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            parts.paragraphs.extend(paragraph.take());
            let heading = trimmed[hashes..].trim().trim_end_matches('#').trim();
            parts.headings.push(heading.to_string());
            parts.paragraphs.push((number, heading.to_string()));
            continue;
        }
        match &mut paragraph {
            Some((_, text)) => {
                text.push('\n');
                text.push_str(line);
            }
            None => paragraph = Some((number, line.to_string())),
        }
    }
    parts.paragraphs.extend(paragraph);
    parts
}

/// A paragraph's inline code spans, and the paragraph with them blanked out.
fn code_spans(paragraph: &str) -> (Vec<String>, String) {
    let mut spans = Vec::new();
    let mut prose = String::new();
    let mut rest = paragraph;
    while let Some(open) = rest.find('`') {
        let ticks = rest[open..].chars().take_while(|c| *c == '`').count();
        let delimiter = &rest[open..open + ticks];
        let after = &rest[open + ticks..];
        let Some(close) = after.find(delimiter) else {
            break;
        };
        prose.push_str(&rest[..open]);
        prose.push_str(" code ");
        spans.push(after[..close].trim().to_string());
        rest = &after[close + ticks..];
    }
    prose.push_str(rest);
    (spans, prose)
}

/// Link targets of prose (`[text](target)` and `![alt](target)`), without titles.
fn link_targets(prose: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in prose.match_indices("](") {
        let rest = &prose[i + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = rest[..end].trim();
        let target = target.split_once(" \"").map_or(target, |(t, _)| t);
        out.push(target.trim_matches(|c| c == '<' || c == '>').to_string());
    }
    out
}

/// GitHub's anchor of a heading: inline links reduced to their text, lowercase, spaces to
/// `-`, punctuation other than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for heading in split(text).headings {
        let base = slug(&heading);
        let count = seen.entry(base.clone()).or_insert(0);
        out.insert(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

/// `a/b/../c` as `a/c`; None when it climbs out of the repository.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[test]
fn github_slugs() {
    assert_eq!(slug("Reach a node's viewer"), "reach-a-nodes-viewer");
    assert_eq!(
        slug("Prometheus endpoint (agent)"),
        "prometheus-endpoint-agent"
    );
    assert_eq!(
        slug("The real node (`tests/real_node.rs`, `make cluster`)"),
        "the-real-node-testsreal_noders-make-cluster"
    );
    assert_eq!(slug("index.json"), "indexjson");
    assert_eq!(slug("See [the API](api.md) here"), "see-the-api-here");
    let twice = anchors("# A\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n");
    assert_eq!(
        twice.into_iter().collect::<Vec<_>>(),
        ["a", "notes", "notes-1"]
    );
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut problems = Vec::new();
    let (mut files, mut with_anchor) = (0, 0);
    for page in pages() {
        let text = read(&page);
        let dir = Path::new(&page).parent().unwrap_or(Path::new(""));
        for (line, paragraph) in split(&text).paragraphs {
            let (_, prose) = code_spans(&paragraph);
            for target in link_targets(&prose) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    Some(PathBuf::from(&page))
                } else {
                    normalise(&dir.join(path))
                };
                let Some(file) = file else {
                    problems.push(format!("{page}:{line}: `{target}` leaves the repository"));
                    continue;
                };
                if !root().join(&file).exists() {
                    problems.push(format!(
                        "{page}:{line}: `{target}`: {} does not exist",
                        file.display()
                    ));
                    continue;
                }
                files += 1;
                let Some(anchor) = anchor else { continue };
                with_anchor += 1;
                if file.extension().is_none_or(|e| e != "md") {
                    problems.push(format!(
                        "{page}:{line}: `{target}`: an anchor into a file that is not Markdown"
                    ));
                    continue;
                }
                let known = anchors(&read(&file.to_string_lossy()));
                if !known.contains(anchor) {
                    problems.push(format!(
                        "{page}:{line}: `{target}`: {} has no heading with anchor #{anchor} \
                         (its anchors: {})",
                        file.display(),
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links in the documentation:\n{}",
        problems.join("\n")
    );
    assert!(
        files > 50 && with_anchor > 10,
        "only {files} links ({with_anchor} with an anchor) found: is the link parser broken?"
    );
}

/// Every piece of code a page shows: inline code spans and the lines of fenced blocks, with
/// the line where each starts.
fn code_texts(page: &str) -> Vec<(usize, String)> {
    let parts = split(&read(page));
    let mut out = parts.code_lines;
    for (line, paragraph) in parts.paragraphs {
        out.extend(code_spans(&paragraph).0.into_iter().map(|s| (line, s)));
    }
    out
}

/// The word after each `word` in a piece of code (`make test` -> `test`), without trailing
/// punctuation; placeholders (`<name>`), flags and variables are left out.
fn names_after(code: &str, word: &str) -> Vec<String> {
    let tokens: Vec<&str> = code.split_whitespace().collect();
    tokens
        .windows(2)
        .filter(|w| w[0] == word)
        .map(|w| {
            w[1].trim_end_matches([')', ',', ';', '.', ':', '`'])
                .to_string()
        })
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .collect()
}

/// The Makefile's targets.
fn make_targets() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in read("Makefile").lines() {
        if line.starts_with(['\t', ' ', '#', '.']) {
            continue;
        }
        let Some((names, rest)) = line.split_once(':') else {
            continue;
        };
        if rest.starts_with('=') || names.contains('=') {
            continue;
        }
        out.extend(names.split_whitespace().map(str::to_string));
    }
    out
}

/// Cargo's targets of a kind: `[[test]]` / `[[bench]]` / `[[example]]` names in Cargo.toml,
/// plus what Cargo finds by itself in `dir` (`x.rs` and `x/main.rs`).
fn cargo_targets(section: &str, dir: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let header = format!("[[{section}]]");
    let mut inside = false;
    for line in read("Cargo.toml").lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if inside && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().trim_start_matches('=').trim();
            out.insert(value.trim_matches('"').to_string());
        }
    }
    let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        if path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").is_file() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn every_make_target_and_cargo_target_named_in_the_docs_exists() {
    let make = make_targets();
    assert!(
        make.contains("test") && make.contains("chart-readme"),
        "Makefile targets not found: {make:?}"
    );
    let kinds = [
        ("--bench", "bench", cargo_targets("bench", "benches")),
        ("--test", "test", cargo_targets("test", "tests")),
        ("--example", "example", cargo_targets("example", "examples")),
    ];
    let mut problems = Vec::new();
    let (mut make_seen, mut cargo_seen) = (0, 0);
    for page in pages() {
        for (line, code) in code_texts(&page) {
            for target in names_after(&code, "make") {
                make_seen += 1;
                if !make.contains(&target) {
                    problems.push(format!(
                        "{page}:{line}: `make {target}`: no such target in the Makefile"
                    ));
                }
            }
            if !code.split_whitespace().any(|w| w == "cargo") {
                continue;
            }
            for (flag, kind, known) in &kinds {
                for name in names_after(&code, flag) {
                    cargo_seen += 1;
                    if !known.contains(&name) {
                        problems.push(format!(
                            "{page}:{line}: `{flag} {name}`: no {kind} named {name} \
                             (Cargo.toml's [[{kind}]] sections and the crate's files: {})",
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the documentation names commands that do not exist:\n{}",
        problems.join("\n")
    );
    assert!(
        make_seen >= 5 && cargo_seen >= 5,
        "only {make_seen} make and {cargo_seen} cargo targets found: is the parser broken?"
    );
}
