//! `tessera_user`: a user of the organization (`/v2/users`).

use async_trait::async_trait;
use tessera_api_types as wire;

use super::{id_of, opt_text, state, text};
use crate::api::{Api, Result, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl};
use crate::schema::{BlockSpec, computed, optional, required};
use crate::value::{Ty, Val};

pub struct User;

fn spec() -> BlockSpec {
    BlockSpec::new(
        "A user of the organization.",
        vec![
            computed("id", Ty::Str, "The user's id."),
            required("email", Ty::Str, "The user's email address (stored in lower case)."),
            optional("first_name", Ty::Str, "The user's first name."),
            optional("last_name", Ty::Str, "The user's last name."),
            optional(
                "password",
                Ty::Str,
                "The password for signing in (8–256 characters). The API never returns it, so a change made outside Terraform is not seen; removing it from the configuration leaves the current password in place.",
            )
            .sensitive(),
            computed("name", Ty::Str, "`first_name last_name`."),
            computed("status", Ty::Str, "`active` or `disabled`."),
            computed("date_created", Ty::Str, "When the user was created (RFC 3339)."),
        ],
    )
}

fn to_state(u: &wire::UserView, password: Val) -> Val {
    state(
        &spec(),
        vec![
            ("id", Val::str(&u.id)),
            ("email", Val::str(&u.email)),
            ("first_name", Val::str(&u.first_name)),
            ("last_name", Val::str(&u.last_name)),
            ("password", password),
            ("name", Val::str(&u.name)),
            ("status", Val::str(&u.status)),
            ("date_created", Val::str(&u.date_created)),
        ],
    )
}

#[async_trait]
impl ResourceImpl for User {
    fn name(&self) -> &'static str {
        "user"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        if let Some(p) = config.get("password").as_str()
            && !(8..=256).contains(&p.chars().count())
        {
            d.error("password", "password must be 8 to 256 characters long");
        }
    }
    fn volatile(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        match (attr, a.as_str(), b.as_str()) {
            ("email", Some(x), Some(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
            _ => false,
        }
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let body = wire::UserCreate {
            email: text(planned, "email"),
            first_name: text(planned, "first_name"),
            last_name: text(planned, "last_name"),
            password: opt_text(planned, "password"),
        };
        let u = api.client.create_user(&body).await?;
        Ok(to_state(&u, planned.get("password").clone()))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        let id = id_of(prior)?;
        Ok(found(api.client.get_user(&id).await.map_err(Into::into))?
            .map(|u| to_state(&u, prior.get("password").clone())))
    }

    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        let changed = |n: &str| planned.get(n) != prior.get(n);
        let body = wire::UserUpdate {
            email: changed("email").then(|| text(planned, "email")),
            first_name: changed("first_name").then(|| text(planned, "first_name")),
            last_name: changed("last_name").then(|| text(planned, "last_name")),
            status: None,
            password: if changed("password") { opt_text(planned, "password") } else { None },
        };
        let u = api.client.update_user(&id, &body).await?;
        Ok(to_state(&u, planned.get("password").clone()))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.delete_user(&id_of(prior)?).await.map_err(Into::into))
    }
}
