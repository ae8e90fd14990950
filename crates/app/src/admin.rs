//! Operator work done on the server machine, outside the API: the way back in when every
//! administrator key is lost (`tessera admin create-key`).

use tessera_domain::audit::{ActorKind, AuditResult};
use tessera_domain::ids::ApiKeyId;
use tessera_domain::token::{TokenKind, mint};
use tessera_domain::user::{ApiKey, Email, UserStatus};
use tessera_store::audit as trail;

use crate::actions as act;
use crate::iam::RngRef;
use crate::{App, AppError, AppResult, CreatedApiKey, System};

impl App {
    /// Mints a new API key for the user with `email` (in `organization`, when the email is in
    /// several), as `by` ([`System::OPERATOR`]): whoever can open the database on the server
    /// machine is already trusted with everything it holds, so no caller is authorized. The
    /// key is stored as a digest like every other; its secret is in the answer only. One audit
    /// event, in the same transaction, says the operator made it.
    pub async fn create_operator_key(
        &self,
        by: System,
        email: &str,
        organization: Option<&str>,
        name: String,
    ) -> AppResult<CreatedApiKey> {
        let email = Email::parse(email)?;
        let mut found: Vec<_> = self
            .store
            .find_login(&email)
            .await?
            .into_iter()
            .map(|r| r.user)
            .filter(|u| organization.is_none_or(|o| u.org_id.to_string() == o))
            .collect();
        let user = match found.len() {
            0 => {
                let within = organization.map(|o| format!(" in organization {o}")).unwrap_or_default();
                return Err(AppError::NotFound(format!("no user has the email {}{within}", email.as_str())));
            }
            1 => found.remove(0),
            _ => {
                let orgs: Vec<String> = found.iter().map(|u| u.org_id.to_string()).collect();
                return Err(AppError::Conflict(format!(
                    "{} is a user of several organizations ({}); name one with --organization",
                    email.as_str(),
                    orgs.join(", ")
                )));
            }
        };
        if user.status != UserStatus::Active {
            return Err(AppError::Conflict(format!(
                "the user {} is disabled, so a key of theirs would not work; name an active administrator",
                email.as_str()
            )));
        }
        let token = self.with_rng(|r| mint(TokenKind::ApiKey, &mut RngRef(r)));
        let key = ApiKey {
            id: self.new_id(ApiKeyId::from_random),
            org_id: user.org_id,
            user_id: user.id,
            name,
            digest: token.digest,
            date_created: self.now(),
            date_expire: None,
        };
        let operator = crate::audit::Actor {
            kind: ActorKind::System,
            org: user.org_id,
            id: String::new(),
            email: String::new(),
            credential: String::new(),
        };
        let event =
            self.audit_event(operator, act::APIKEY_CREATE, "api_key", key.id, AuditResult::Success).with_reason(
                format!("the {by} created a key for {} ({}) on the server machine", user.id, user.email.as_str()),
            );
        trail::scope(event, self.store.create_api_key(&key)).await.0?;
        Ok(CreatedApiKey { key, secret: token.secret })
    }
}
