//! The first start: an organization, an administrator allowed everything, and its API key.

use tessera_domain::FieldError;
use tessera_domain::audit::{ActorKind, AuditResult};
use tessera_domain::ids::{ApiKeyId, OrgId, PolicyId, UserId};
use tessera_domain::policy::PolicyDocument;
use tessera_domain::token::{MIN_BOOTSTRAP_KEY_LEN, TokenDigest, TokenKind, mint};
use tessera_domain::user::{ApiKey, Email, Organization, User, UserStatus};
use tessera_store::audit as trail;
use tessera_store::{Bootstrap, Policy};

use crate::audit::events::BOOTSTRAP;
use crate::iam::RngRef;
use crate::{App, AppError, AppResult, System};

pub struct BootstrapRequest {
    pub organization_name: String,
    pub admin_email: String,
    /// An operator-chosen administrator key (`TESSERA_BOOTSTRAP_API_KEY`); minted when absent.
    pub api_key: Option<String>,
}

#[derive(Debug)]
pub enum BootstrapOutcome {
    /// The store already had an organization; nothing was written.
    AlreadyInitialized,
    /// The first organization was created. `minted_key` is set when Tessera chose the key;
    /// it must be shown to the operator now, because it is never stored.
    Created { organization: OrgId, admin: UserId, minted_key: Option<String> },
}

impl App {
    /// Writes the first organization unless one exists; `by` is [`System::BOOTSTRAP`] (the
    /// wiring, at start) — no caller exists yet to authorize.
    pub async fn bootstrap(&self, by: System, req: BootstrapRequest) -> AppResult<BootstrapOutcome> {
        tracing::debug!(by = %by, "bootstrap");
        let (secret, digest, minted) = match req.api_key {
            Some(k) if k.chars().count() < MIN_BOOTSTRAP_KEY_LEN => {
                return Err(AppError::Invalid(FieldError::new(
                    "TESSERA_BOOTSTRAP_API_KEY",
                    format!("must be at least {MIN_BOOTSTRAP_KEY_LEN} characters"),
                )));
            }
            Some(k) => {
                let d = TokenDigest::of(&k);
                (k, d, false)
            }
            None => {
                let t = self.with_rng(|r| mint(TokenKind::ApiKey, &mut RngRef(r)));
                (t.secret, t.digest, true)
            }
        };
        let now = self.now();
        let org = self.new_id(OrgId::from_random);
        let admin = User {
            id: self.new_id(UserId::from_random),
            org_id: org,
            email: Email::parse(&req.admin_email)?,
            first_name: "Administrator".into(),
            last_name: String::new(),
            status: UserStatus::Active,
            date_created: now,
        };
        let b = Bootstrap {
            organization: Organization { id: org, name: req.organization_name, date_created: now },
            policy: Policy {
                id: self.new_id(PolicyId::from_random),
                org_id: org,
                name: "Administrator".into(),
                description: "Allows every action on every resource".into(),
                document: PolicyDocument::allow_all(),
                date_created: now,
            },
            api_key: ApiKey {
                id: self.new_id(ApiKeyId::from_random),
                org_id: org,
                user_id: admin.id,
                name: "bootstrap".into(),
                digest,
                date_created: now,
                date_expire: None,
            },
            admin: admin.clone(),
        };
        let system = crate::audit::Actor {
            kind: ActorKind::System,
            org,
            id: String::new(),
            email: String::new(),
            credential: String::new(),
        };
        let event = self
            .audit_event(system, BOOTSTRAP, "organization", org, AuditResult::Success)
            .with_reason(format!("administrator {} with key {}", admin.id, b.api_key.id));
        if !trail::scope(event, self.store.bootstrap(&b)).await.0? {
            return Ok(BootstrapOutcome::AlreadyInitialized);
        }
        Ok(BootstrapOutcome::Created { organization: org, admin: admin.id, minted_key: minted.then_some(secret) })
    }
}
