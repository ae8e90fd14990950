//! Every JSON example in the documentation parses: a reader pastes them as request bodies,
//! and a `//` comment or a trailing comma there is a 400 they cannot explain.

use std::path::{Path, PathBuf};

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The ```` ```json ```` fences of `markdown`: (line of the fence, body).
fn json_fences(markdown: &str) -> Vec<(usize, String)> {
    let mut fences = vec![];
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else { continue };
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        if info.split_whitespace().next() == Some("json") {
            fences.push((n + 1, body));
        }
    }
    fences
}

fn bad_fences(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    json_fences(&text)
        .into_iter()
        .filter_map(|(line, body)| {
            serde_json::from_str::<serde_json::Value>(&body)
                .err()
                .map(|e| format!("{}:{line}: {e}\n{body}", path.display()))
        })
        .collect()
}

#[test]
fn every_json_example_in_the_docs_parses() {
    let docs = documents();
    let fences: usize = docs.iter().map(|d| json_fences(&std::fs::read_to_string(d).unwrap()).len()).sum();
    assert!(fences >= 5, "found only {fences} JSON examples in {docs:?}");
    let bad: Vec<String> = docs.iter().flat_map(|d| bad_fences(d)).collect();
    assert!(bad.is_empty(), "JSON examples that do not parse:\n{}", bad.join("\n"));
}

#[test]
fn a_comment_in_a_json_example_is_caught() {
    let doc = "text\n\n```json\n{\"role_id\": \"R\",  // a comment\n \"x\": 1}\n```\n";
    let fences = json_fences(doc);
    assert_eq!(fences.len(), 1);
    assert!(serde_json::from_str::<serde_json::Value>(&fences[0].1).is_err());
}
