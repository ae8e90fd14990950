//! Policy documents under fuzz input: the JSON parsed and validated as `POST /v2/policies`
//! does, its stored form parsed again, and requests evaluated against it.

use tessera_domain::policy::{Decision, Effect, PermissionSet, PolicyDocument, parse_document_json};

/// Runs one input: `document 0xFF action 0xFF resource`.
pub fn fuzz_policy(data: &[u8]) {
    let [doc, action, resource] = crate::split_parts(data, 3)[..] else { unreachable!() };
    let (action, resource) = (String::from_utf8_lossy(action), String::from_utf8_lossy(resource));
    let Ok(json) = parse_document_json(&String::from_utf8_lossy(doc)) else { return };
    let Ok(doc) = PolicyDocument::from_json(json, "policy_document") else { return };

    // The stored form (normalised JSON) is read back by every node: it must give the same
    // document, or a policy would change meaning between the write and the next read.
    let stored = serde_json::to_string(&doc.to_json()).expect("a document serialises");
    let reread = parse_document_json(&stored).expect("the stored form parses");
    let reread = PolicyDocument::from_json(reread, "policy_document").expect("the stored form validates");
    assert_eq!(reread, doc, "stored form round trip");

    let set = PermissionSet::from_documents([&doc]);
    assert_eq!(set.evaluate(&action, &resource), reference(&doc, &action, &resource), "{action} on {resource}");
    // An explicit Deny wins over everything, even allow-all.
    let all = PolicyDocument::allow_all();
    let with_all = PermissionSet::from_documents([&all, &doc]);
    let decision = with_all.evaluate(&action, &resource);
    if set.evaluate(&action, &resource) == Decision::ExplicitDeny {
        assert_eq!(decision, Decision::ExplicitDeny, "deny must win over allow-all");
    } else {
        assert_eq!(decision, Decision::Allow, "allow-all allows what nothing denies");
    }
    for s in &doc.statements {
        for a in &s.actions {
            // A pattern matches the action it spells.
            assert!(a.matches(a.as_str()) || a.as_str().contains('*'), "{} does not match itself", a.as_str());
        }
    }
}

/// Deny-wins evaluation written out from the statements.
fn reference(doc: &PolicyDocument, action: &str, resource: &str) -> Decision {
    let covers = |e: Effect| {
        doc.statements
            .iter()
            .filter(|s| s.effect == e)
            .any(|s| s.actions.iter().any(|a| a.matches(action)) && s.resources.iter().any(|r| r.matches(resource)))
    };
    if covers(Effect::Deny) {
        Decision::ExplicitDeny
    } else if covers(Effect::Allow) {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}
