//! The README's commands, taken from its code blocks: the test runs what a user copies.

/// The `sh` code blocks under the README heading `## <section>` (up to the next `## `).
pub fn blocks(section: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let heading = format!("## {section}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README.md has no section `## {section}`"));
    let body = &readme[start + heading.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut out = Vec::new();
    let mut rest = body;
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

/// The first command of `section` that starts with `prefix`, split into words (the README's
/// install commands use no quotes).
pub fn command(section: &str, prefix: &str) -> Vec<String> {
    blocks(section)
        .iter()
        .flat_map(|b| commands(b))
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("README.md `## {section}` has no command starting `{prefix}`"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}
