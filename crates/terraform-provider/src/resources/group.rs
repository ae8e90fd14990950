//! `tessera_group`: a group of users (`/v2/groups`), with its members when they are managed.

use std::collections::BTreeSet;

use async_trait::async_trait;
use tessera_api_types as wire;

use super::{id_of, opt_strings, state, text};
use crate::api::{Api, Result, all_pages, found, gone_is_fine};
use crate::engine::ResourceImpl;
use crate::schema::{BlockSpec, computed, optional, optional_computed, required};
use crate::value::{Ty, Val};

pub struct Group;

fn spec() -> BlockSpec {
    BlockSpec::new(
        "A group of users. Policies attached to a group apply to its members, and a role trust can name a group.",
        vec![
            computed("id", Ty::Str, "The group's id."),
            required("name", Ty::Str, "The group's name (`display_name` in the API)."),
            optional("description", Ty::Str, "A description."),
            optional_computed(
                "members",
                Ty::set(Ty::Str),
                "The ids of the group's users. When set, Terraform makes the membership exactly this set (`[]` empties it); when not set, membership is left alone and reported.",
            ),
            computed("date_created", Ty::Str, "When the group was created (RFC 3339)."),
        ],
    )
}

async fn members(api: &Api, group: &str) -> Result<Vec<String>> {
    let users =
        all_pages(|p| async move { api.client.list_group_members(group, &p).await.map(|l| (l.members, l.meta)) })
            .await?;
    Ok(users.into_iter().map(|u| u.id).collect())
}

async fn set_members(api: &Api, group: &str, want: &[String]) -> Result<()> {
    let have: BTreeSet<String> = members(api, group).await?.into_iter().collect();
    let want: BTreeSet<String> = want.iter().cloned().collect();
    for u in want.difference(&have) {
        api.client
            .add_group_member(group, u)
            .await
            .map_err(|e| crate::api::Error::from(e).ctx(&format!("adding member {u}")))?;
    }
    for u in have.difference(&want) {
        gone_is_fine(api.client.remove_group_member(group, u).await.map_err(Into::into))
            .map_err(|e| e.ctx(&format!("removing member {u}")))?;
    }
    Ok(())
}

async fn load(api: &Api, id: &str) -> Result<Option<Val>> {
    let Some(g) = found(api.client.get_group(id).await.map_err(Into::into))? else { return Ok(None) };
    let m = members(api, id).await?;
    Ok(Some(state(
        &spec(),
        vec![
            ("id", Val::str(&g.id)),
            ("name", Val::str(&g.display_name)),
            ("description", Val::str(&g.description)),
            ("members", Val::strings(m)),
            ("date_created", Val::str(&g.date_created)),
        ],
    )))
}

fn input(planned: &Val) -> wire::GroupInput {
    wire::GroupInput { display_name: text(planned, "name"), description: text(planned, "description") }
}

#[async_trait]
impl ResourceImpl for Group {
    fn name(&self) -> &'static str {
        "group"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let g = api.client.create_group(&input(planned)).await?;
        if let Some(want) = opt_strings(planned, "members")
            && let Err(e) = set_members(api, &g.id, &want).await
        {
            // Leave nothing half made: the group goes again.
            let _ = api.client.delete_group(&g.id).await;
            return Err(e);
        }
        load(api, &g.id).await?.ok_or_else(|| crate::api::Error::new("the new group disappeared"))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        load(api, &id_of(prior)?).await
    }

    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        if planned.get("name") != prior.get("name") || planned.get("description") != prior.get("description") {
            api.client.update_group(&id, &input(planned)).await?;
        }
        if planned.get("members") != prior.get("members")
            && let Some(want) = opt_strings(planned, "members")
        {
            set_members(api, &id, &want).await?;
        }
        load(api, &id).await?.ok_or_else(|| crate::api::Error::new("the group disappeared").at("id"))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.delete_group(&id_of(prior)?).await.map_err(Into::into))
    }
}
