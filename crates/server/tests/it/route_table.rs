//! The router is built from the route table alone: a route added with `.route(` anywhere
//! else would escape the authorization matrix, so this check refuses it.

use std::path::Path;

#[test]
fn routes_are_added_only_from_the_route_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = vec![];
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                // The console's pages (`ui::pages()`) are HTML outside the API; each page
                // authorizes through the app's use cases, like the API's handlers.
                let allowed = path.ends_with("lib.rs")
                    && (line.contains("router.route(entry.spec.path, entry.handler)")
                        || line.contains("router.route(page.path, page.handler)"));
                if (line.contains(".route(") || line.contains(".nest(") || line.contains(".merge(")) && !allowed {
                    offenders.push(format!(
                        "{}:{}: {}",
                        path.strip_prefix(&src).unwrap().display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "routes must come from routes::table():\n{}", offenders.join("\n"));
}

#[test]
fn the_table_names_each_route_once_with_a_known_method() {
    let table = tessera_server::route_table();
    let mut seen = std::collections::HashSet::new();
    for r in &table {
        assert!(["GET", "POST", "PUT", "PATCH", "DELETE", "ANY"].contains(&r.method), "{r:?}");
        assert!(seen.insert((r.method, r.path)), "listed twice: {r:?}");
    }
    assert!(table.len() >= 80, "the table lists {} routes", table.len());
}
