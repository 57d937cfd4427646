//! The documentation's commands, taken from its code blocks: the test runs what a user copies.
//! A section lives in README.md or in one of the docs/*.md pages.

use std::path::{Path, PathBuf};

/// README.md, then the docs/*.md pages (sorted).
fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("list docs/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    let mut out = vec![root.join("README.md")];
    out.extend(docs);
    out
}

/// The body of the section under the heading `## <section>` (up to the next `## `) of the one
/// page that has it; a section found on no page, or on more than one, fails the test.
fn section(section: &str) -> String {
    let heading = format!("## {section}\n");
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|e| panic!("read {}: {e}", page.display()));
        let start = if text.starts_with(&heading) {
            Some(0)
        } else {
            text.find(&format!("\n{heading}")).map(|i| i + 1)
        };
        if let Some(start) = start {
            let body = &text[start + heading.len()..];
            let body = &body[..body.find("\n## ").unwrap_or(body.len())];
            found.push((page, body.to_string()));
        }
    }
    let names: Vec<String> = found.iter().map(|(p, _)| p.display().to_string()).collect();
    match found.len() {
        1 => found.remove(0).1,
        0 => panic!("no section `## {section}` in README.md or docs/*.md"),
        _ => panic!("section `## {section}` is in more than one page: {names:?}"),
    }
}

/// The `sh` code blocks under the heading `## <section>` of README.md or a docs/*.md page.
pub fn blocks(section_title: &str) -> Vec<String> {
    let body = section(section_title);
    let mut out = Vec::new();
    let mut rest = body.as_str();
    while let Some(open) = rest.find("```sh\n") {
        let after = &rest[open + 6..];
        let close = after.find("```").expect("closed code block");
        out.push(after[..close].to_string());
        rest = &after[close + 3..];
    }
    out
}

/// The commands of a block: continuation lines joined, comments and blank lines dropped.
pub fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = line.split(" # ").next().unwrap_or("").trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part.trim());
            current.push(' ');
        } else {
            current.push_str(line.trim());
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The first command of `section` that starts with `prefix`, split into words (the documented
/// install commands use no quotes).
pub fn command(section: &str, prefix: &str) -> Vec<String> {
    blocks(section)
        .iter()
        .flat_map(|b| commands(b))
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("section `## {section}` has no command starting `{prefix}`"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}
