//! `tessera_organization_role`: a role (`/v2/roles`) and, when managed, the policies attached
//! to it.

use std::collections::BTreeSet;

use async_trait::async_trait;
use tessera_api_types as wire;

use super::{id_of, opt_strings, state, text};
use crate::api::{Api, Error, Result, all_pages, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl};
use crate::schema::{BlockSpec, computed, optional, optional_computed, required};
use crate::value::{Ty, Val};

pub struct Role;

fn spec() -> BlockSpec {
    BlockSpec::new(
        "A role: a set of policies that users trusted by the role can assume for a time.",
        vec![
            computed("id", Ty::Str, "The role's id."),
            required("name", Ty::Str, "The role's name (unique in the organization)."),
            optional("description", Ty::Str, "A description."),
            required(
                "type",
                Ty::Str,
                "`assumable` (users assume it through a trust) or `assignable` (`role_type` in the API).",
            ),
            optional_computed(
                "max_session_duration",
                Ty::Num,
                "The longest session, in seconds: 900 to 43200 (3600 when not set).",
            ),
            optional_computed(
                "policies",
                Ty::set(Ty::Str),
                "The ids of the policies attached to the role. When set, Terraform makes the attachments exactly this set (`[]` detaches all); when not set, they are left alone and reported.",
            ),
            computed("date_created", Ty::Str, "When the role was created (RFC 3339)."),
        ],
    )
}

async fn policies(api: &Api, role: &str) -> Result<Vec<String>> {
    let list =
        all_pages(|p| async move { api.client.list_role_policies(role, &p).await.map(|l| (l.policies, l.meta)) })
            .await?;
    Ok(list.into_iter().map(|p| p.id).collect())
}

async fn set_policies(api: &Api, role: &str, want: &[String]) -> Result<()> {
    let have: BTreeSet<String> = policies(api, role).await?.into_iter().collect();
    let want: BTreeSet<String> = want.iter().cloned().collect();
    for p in want.difference(&have) {
        api.client
            .attach_policy_to_role(role, p)
            .await
            .map_err(|e| Error::from(e).ctx(&format!("attaching policy {p}")).at("policies"))?;
    }
    for p in have.difference(&want) {
        gone_is_fine(api.client.detach_policy_from_role(role, p).await.map_err(Into::into))
            .map_err(|e| e.ctx(&format!("detaching policy {p}")).at("policies"))?;
    }
    Ok(())
}

async fn load(api: &Api, id: &str) -> Result<Option<Val>> {
    let Some(r) = found(api.client.get_role(id).await.map_err(Into::into))? else { return Ok(None) };
    let attached = policies(api, id).await?;
    Ok(Some(state(
        &spec(),
        vec![
            ("id", Val::str(&r.id)),
            ("name", Val::str(&r.name)),
            ("description", Val::str(&r.description)),
            ("type", Val::str(&r.role_type)),
            ("max_session_duration", Val::num(r.max_session_duration as f64)),
            ("policies", Val::strings(attached)),
            ("date_created", Val::str(&r.date_created)),
        ],
    )))
}

fn input(planned: &Val) -> wire::RoleInput {
    wire::RoleInput {
        name: text(planned, "name"),
        description: text(planned, "description"),
        role_type: text(planned, "type"),
        max_session_duration: planned.get("max_session_duration").as_i64(),
    }
}

#[async_trait]
impl ResourceImpl for Role {
    fn name(&self) -> &'static str {
        "organization_role"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        if let Some(t) = config.get("type").as_str()
            && t != "assumable"
            && t != "assignable"
        {
            d.error("type", format!("type must be \"assumable\" or \"assignable\", found \"{t}\""));
        }
        if let Some(n) = config.get("max_session_duration").as_f64()
            && !(900.0..=43_200.0).contains(&n)
        {
            d.error("max_session_duration", "max_session_duration must be 900 to 43200 seconds");
        }
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let r = api.client.create_role(&input(planned)).await?;
        if let Some(want) = opt_strings(planned, "policies")
            && let Err(e) = set_policies(api, &r.id, &want).await
        {
            let _ = api.client.delete_role(&r.id).await;
            return Err(e);
        }
        load(api, &r.id).await?.ok_or_else(|| Error::new("the new role disappeared"))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        load(api, &id_of(prior)?).await
    }

    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        if ["name", "description", "type", "max_session_duration"].iter().any(|n| planned.get(n) != prior.get(n)) {
            api.client.update_role(&id, &input(planned)).await?;
        }
        if planned.get("policies") != prior.get("policies")
            && let Some(want) = opt_strings(planned, "policies")
        {
            set_policies(api, &id, &want).await?;
        }
        load(api, &id).await?.ok_or_else(|| Error::new("the role disappeared").at("id"))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.delete_role(&id_of(prior)?).await.map_err(Into::into))
    }
}
