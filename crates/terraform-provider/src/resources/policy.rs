//! `tessera_organization_policy`: a policy document (`/v2/policies`), written as Vultr's
//! provider writes it: a `document` block with `version` and `statement` blocks.

use async_trait::async_trait;
use serde_json::{Value as Json, json};
use tessera_api_types as wire;

use super::{id_of, state, text};
use crate::api::{Api, Result, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl, set};
use crate::schema::{BlockSpec, Nesting, computed, optional, optional_computed, required};
use crate::value::{Ty, Val};

pub struct Policy;

fn statement_spec() -> BlockSpec {
    BlockSpec::new(
        "One statement: an effect, the actions it covers and the resources they act on.",
        vec![
            required("effect", Ty::Str, "`Allow` or `Deny`."),
            required(
                "actions",
                Ty::list(Ty::Str),
                "Actions such as `iam.role.Read`; `*` matches one dotted level, a trailing `*` every deeper level.",
            ),
            required("resources", Ty::list(Ty::Str), "`*`, object ids, or prefixes ending in `*`."),
        ],
    )
}

fn document_spec() -> BlockSpec {
    BlockSpec::new(
        "The policy document.",
        vec![optional_computed(
            "version",
            Ty::Str,
            "The document's version string (the server's default when not set).",
        )],
    )
    .with_block("statement", Nesting::List, statement_spec())
}

fn spec() -> BlockSpec {
    BlockSpec::new(
        "A policy: statements allowing or denying actions on resources, attached to users, groups and roles.",
        vec![
            computed("id", Ty::Str, "The policy's id."),
            required("name", Ty::Str, "The policy's name (unique in the organization)."),
            optional("description", Ty::Str, "A description."),
            computed("is_system_policy", Ty::Bool, "Whether Tessera itself manages the policy (always false here)."),
            computed("date_created", Ty::Str, "When the policy was created (RFC 3339)."),
        ],
    )
    .with_block("document", Nesting::Single, document_spec())
}

/// The API's document JSON from the `document` block.
fn document_json(doc: &Val) -> Json {
    let statements: Vec<Json> = doc
        .get("statement")
        .as_list()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            json!({
                "Effect": s.get("effect").as_str().unwrap_or_default(),
                "Action": s.get("actions").as_strings().unwrap_or_default(),
                "Resource": s.get("resources").as_strings().unwrap_or_default(),
            })
        })
        .collect();
    let mut out = json!({ "Statement": statements });
    if let Some(v) = doc.get("version").as_str() {
        out["Version"] = Json::from(v);
    }
    out
}

fn strings_of(j: &Json) -> Vec<String> {
    match j {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => vec![],
    }
}

/// The `document` block from the API's document JSON.
fn document_val(j: &Json) -> Val {
    let statements = j["Statement"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    Val::Obj(
                        [
                            ("effect".to_owned(), Val::str(s["Effect"].as_str().unwrap_or_default())),
                            ("actions".to_owned(), Val::strings(strings_of(&s["Action"]))),
                            ("resources".to_owned(), Val::strings(strings_of(&s["Resource"]))),
                        ]
                        .into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Val::Obj(
        [("version".to_owned(), Val::opt_str(j["Version"].as_str())), ("statement".to_owned(), Val::List(statements))]
            .into(),
    )
}

fn to_state(p: &wire::PolicyView) -> Val {
    state(
        &spec(),
        vec![
            ("id", Val::str(&p.id)),
            ("name", Val::str(&p.name)),
            ("description", Val::str(&p.description)),
            ("document", document_val(&p.policy_document)),
            ("is_system_policy", Val::Bool(p.is_system_policy)),
            ("date_created", Val::str(&p.date_created)),
        ],
    )
}

fn input(planned: &Val) -> wire::PolicyInput {
    wire::PolicyInput {
        name: text(planned, "name"),
        description: text(planned, "description"),
        policy_document: document_json(planned.get("document")),
    }
}

/// Documents that mean the same: effects compare without case, a version compares only when
/// both sides have one.
fn same_document(a: &Val, b: &Val) -> bool {
    let (sa, sb) = (a.get("statement").as_list().unwrap_or_default(), b.get("statement").as_list().unwrap_or_default());
    let version_ok = match (a.get("version").as_str(), b.get("version").as_str()) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    version_ok && sa.len() == sb.len() && sa.iter().zip(sb).all(|(x, y)| {
        matches!((x.get("effect").as_str(), y.get("effect").as_str()), (Some(p), Some(q)) if p.eq_ignore_ascii_case(q))
            && x.get("actions").as_strings() == y.get("actions").as_strings()
            && x.get("resources").as_strings() == y.get("resources").as_strings()
    })
}

#[async_trait]
impl ResourceImpl for Policy {
    fn name(&self) -> &'static str {
        "organization_policy"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        let doc = config.get("document");
        if let Some(statements) = doc.get("statement").as_list() {
            if statements.is_empty() {
                d.error("document", "a policy document needs at least one statement block");
            }
            for s in statements {
                if let Some(e) = s.get("effect").as_str()
                    && !e.eq_ignore_ascii_case("allow")
                    && !e.eq_ignore_ascii_case("deny")
                {
                    d.error("document", format!("effect must be \"Allow\" or \"Deny\", found \"{e}\""));
                }
                for list in ["actions", "resources"] {
                    if s.get(list).as_list().is_some_and(<[Val]>::is_empty) {
                        d.error("document", format!("{list} must not be empty"));
                    }
                }
            }
        }
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        attr == "document" && same_document(a, b)
    }
    fn plan(&self, prior: Option<&Val>, config: &Val, planned: &mut Val) {
        // The version is the server's default when not configured: known after the create.
        if prior.is_none() && config.get("document").get("version").is_null() {
            let mut doc = planned.get("document").clone();
            set(&mut doc, "version", Val::Unknown);
            set(planned, "document", doc);
        }
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        Ok(to_state(&api.client.create_policy(&input(planned)).await?))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        let id = id_of(prior)?;
        Ok(found(api.client.get_policy(&id).await.map_err(Into::into))?.map(|p| to_state(&p)))
    }

    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        Ok(to_state(&api.client.update_policy(&id, &input(planned)).await?))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.delete_policy(&id_of(prior)?).await.map_err(Into::into))
    }
}
