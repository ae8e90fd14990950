//! Users, API keys, groups, policies, roles and role trusts: create, read, update, delete,
//! attach and detach, each guarded by its action.

use tessera_domain::Timestamp;
use tessera_domain::ids::*;
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::token::{TokenKind, mint};
use tessera_domain::trust::{RoleTrust, TrustConditions, TrustPrincipal};
use tessera_domain::user::{ApiKey, Email, Group, User, UserStatus};
use tessera_store::{Page, PageRequest, Policy, PolicyTarget, audit};

use crate::actions as act;
use crate::{App, AppError, AppResult, Caller, not_found};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub status: Option<UserStatus>,
    pub password: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub date_expire: Option<Timestamp>,
}

/// An API key just created: the only time its secret exists outside the caller's hands.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct GroupInput {
    pub display_name: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub name: String,
    pub description: String,
    pub document: PolicyDocument,
}

#[derive(Debug, Clone)]
pub struct RoleInput {
    pub name: String,
    pub description: String,
    pub role_type: RoleType,
    pub max_session_duration: MaxSessionDuration,
}

#[derive(Debug, Clone)]
pub struct TrustInput {
    pub role_id: RoleId,
    pub trust_type: String,
    pub principal: TrustPrincipal,
    pub conditions: TrustConditions,
    pub valid_until: Option<Timestamp>,
}

/// Hashes a password with Argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane).
pub fn hash_password(password: &str, salt: [u8; 16]) -> AppResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(19 * 1024, 2, 1, None).map_err(|e| AppError::Internal(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(e.to_string()))
}

pub(crate) fn check_password(password: &str) -> AppResult<()> {
    let n = password.chars().count();
    if !(8..=256).contains(&n) {
        return Err(AppError::Invalid(tessera_domain::FieldError::new("password", "must be 8 to 256 characters")));
    }
    Ok(())
}

/// Where a policy is attached, as an audit reason names it.
fn attachment(target: PolicyTarget) -> String {
    match target {
        PolicyTarget::User(u) => format!("user {u}"),
        PolicyTarget::Group(g) => format!("group {g}"),
        PolicyTarget::Role(r) => format!("role {r}"),
    }
}

impl App {
    pub(crate) async fn password_hash(&self, password: Option<&str>) -> AppResult<Option<String>> {
        let Some(pw) = password else { return Ok(None) };
        check_password(pw)?;
        let salt = self.with_rng(|r| {
            let mut s = [0u8; 16];
            r.fill_bytes(&mut s);
            s
        });
        let pw = pw.to_owned();
        // Argon2 is deliberately slow and large: off the async workers, through the bounded gate.
        let _admitted = self.hashing.admit()?;
        let hash = self.hashing.run(move || hash_password(&pw, salt)).await??;
        Ok(Some(hash))
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn create_user(&self, caller: &Caller, input: NewUser) -> AppResult<User> {
        self.create_user_with_id(caller, None, input).await
    }

    /// [`App::create_user`], with the id the caller chose (a Kong consumer's, when moving from
    /// Kong: gateway sessions name the user by id). A taken id is a conflict, whoever has it.
    pub async fn create_user_with_id(&self, caller: &Caller, id: Option<UserId>, input: NewUser) -> AppResult<User> {
        self.change(caller, act::USER_CREATE, "*", "user").await?;
        if let Some(id) = id
            && self.store.get_user(caller.org_id, id).await?.is_some()
        {
            return Err(AppError::Conflict(format!("a user with id {id} already exists")));
        }
        let hash = self.password_hash(input.password.as_deref()).await?;
        let user = User {
            id: id.unwrap_or_else(|| self.new_id(UserId::from_random)),
            org_id: caller.org_id,
            email: input.email,
            first_name: input.first_name,
            last_name: input.last_name,
            status: UserStatus::Active,
            date_created: self.now(),
        };
        audit::retarget(user.id);
        match self.store.create_user(&user, hash.as_deref()).await {
            // The id is the primary key, across organizations: the store cannot say which of
            // the two unique values was taken.
            Err(tessera_store::StoreError::Conflict(_)) if id.is_some() => Err(AppError::Conflict(format!(
                "a user with id {} or email {} already exists",
                user.id,
                user.email.as_str()
            ))),
            other => other.map(|()| user).map_err(Into::into),
        }
    }

    pub async fn get_user(&self, caller: &Caller, id: UserId) -> AppResult<User> {
        caller.authorize(act::USER_READ, &id.to_string())?;
        self.store.get_user(caller.org_id, id).await?.ok_or_else(|| AppError::NotFound("Invalid user".into()))
    }

    pub async fn list_users(&self, caller: &Caller, page: PageRequest) -> AppResult<Page<User>> {
        caller.authorize(act::USER_LIST, "*")?;
        Ok(self.store.list_users(caller.org_id, page).await?)
    }

    pub async fn update_user(&self, caller: &Caller, id: UserId, patch: UserPatch) -> AppResult<User> {
        self.change(caller, act::USER_UPDATE, &id.to_string(), "user").await?;
        let mut user = self.get_user_unchecked(caller.org_id, id).await?;
        if let Some(pw) = patch.password.as_deref() {
            check_password(pw)?;
        }
        if let Some(e) = patch.email {
            user.email = e;
        }
        if let Some(f) = patch.first_name {
            user.first_name = f;
        }
        if let Some(l) = patch.last_name {
            user.last_name = l;
        }
        let status_changed = patch.status.is_some_and(|s| s != user.status);
        if let Some(s) = patch.status {
            user.status = s;
        }
        if status_changed {
            audit::reason(format!("status {}", user.status.as_str()));
        }
        // Disabling ends the user's sessions in the same write (re-enabling revives none).
        let Some(ended) = self.store.update_user(&user, self.now()).await? else {
            return Err(AppError::NotFound("Invalid user".into()));
        };
        for s in &ended {
            self.cache.session_ended(s.id, s.expires);
        }
        if status_changed {
            self.cache.credentials_changed();
        }
        if let Some(pw) = patch.password.as_deref() {
            self.set_password(caller, id, pw).await?;
        }
        Ok(user)
    }

    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> AppResult<()> {
        self.change(caller, act::USER_DELETE, &id.to_string(), "user").await?;
        if Some(id) == caller.user_id() {
            return Err(AppError::Conflict("you cannot delete the user you are signed in as".into()));
        }
        if !self.store.delete_user(caller.org_id, id, self.now()).await? {
            return Err(AppError::NotFound("Invalid user".into()));
        }
        self.cache.clear();
        Ok(())
    }

    async fn get_user_unchecked(&self, org: OrgId, id: UserId) -> AppResult<User> {
        self.store.get_user(org, id).await?.ok_or_else(|| AppError::NotFound("Invalid user".into()))
    }

    // ---- API keys ----------------------------------------------------------------------

    pub async fn create_api_key(&self, caller: &Caller, user: UserId, input: NewApiKey) -> AppResult<CreatedApiKey> {
        self.change(caller, act::APIKEY_CREATE, &user.to_string(), "api_key").await?;
        let now = self.now();
        if input.date_expire.is_some_and(|t| t <= now) {
            return Err(AppError::Invalid(tessera_domain::FieldError::new("date_expire", "must be in the future")));
        }
        self.get_user_unchecked(caller.org_id, user).await?;
        let token = self.with_rng(|r| mint(TokenKind::ApiKey, &mut RngRef(r)));
        let key = ApiKey {
            id: self.new_id(ApiKeyId::from_random),
            org_id: caller.org_id,
            user_id: user,
            name: input.name,
            digest: token.digest,
            date_created: now,
            date_expire: input.date_expire,
        };
        audit::retarget(key.id);
        self.store.create_api_key(&key).await?;
        Ok(CreatedApiKey { key, secret: token.secret })
    }

    pub async fn list_api_keys(&self, caller: &Caller, user: UserId, page: PageRequest) -> AppResult<Page<ApiKey>> {
        caller.authorize(act::APIKEY_LIST, &user.to_string())?;
        self.get_user_unchecked(caller.org_id, user).await?;
        Ok(self.store.list_api_keys(caller.org_id, user, page).await?)
    }

    pub async fn delete_api_key(&self, caller: &Caller, user: UserId, key: ApiKeyId) -> AppResult<()> {
        self.change(caller, act::APIKEY_DELETE, &user.to_string(), "api_key").await?;
        audit::retarget(key);
        if !self.store.delete_api_key(caller.org_id, user, key).await? {
            return Err(not_found("API key"));
        }
        self.cache.credentials_changed();
        Ok(())
    }

    // ---- groups ------------------------------------------------------------------------

    pub async fn create_group(&self, caller: &Caller, input: GroupInput) -> AppResult<Group> {
        self.change(caller, act::GROUP_CREATE, "*", "group").await?;
        let group = Group {
            id: self.new_id(GroupId::from_random),
            org_id: caller.org_id,
            display_name: input.display_name,
            description: input.description,
            date_created: self.now(),
        };
        audit::retarget(group.id);
        self.store.create_group(&group).await?;
        Ok(group)
    }

    pub async fn get_group(&self, caller: &Caller, id: GroupId) -> AppResult<Group> {
        caller.authorize(act::GROUP_READ, &id.to_string())?;
        self.store.get_group(caller.org_id, id).await?.ok_or_else(|| not_found("Group"))
    }

    pub async fn list_groups(&self, caller: &Caller, page: PageRequest) -> AppResult<Page<Group>> {
        caller.authorize(act::GROUP_LIST, "*")?;
        Ok(self.store.list_groups(caller.org_id, page).await?)
    }

    pub async fn update_group(&self, caller: &Caller, id: GroupId, input: GroupInput) -> AppResult<Group> {
        self.change(caller, act::GROUP_UPDATE, &id.to_string(), "group").await?;
        let mut group = self.store.get_group(caller.org_id, id).await?.ok_or_else(|| not_found("Group"))?;
        group.display_name = input.display_name;
        group.description = input.description;
        if !self.store.update_group(&group).await? {
            return Err(not_found("Group"));
        }
        Ok(group)
    }

    pub async fn delete_group(&self, caller: &Caller, id: GroupId) -> AppResult<()> {
        self.change(caller, act::GROUP_DELETE, &id.to_string(), "group").await?;
        if !self.store.delete_group(caller.org_id, id).await? {
            return Err(not_found("Group"));
        }
        self.cache.permissions_changed();
        Ok(())
    }

    pub async fn add_group_member(&self, caller: &Caller, group: GroupId, user: UserId) -> AppResult<bool> {
        self.change(caller, act::GROUP_ADD_MEMBER, &group.to_string(), "group").await?;
        audit::reason(format!("user {user}"));
        let added = self.store.add_group_member(caller.org_id, group, user).await?;
        self.cache.permissions_changed();
        Ok(added)
    }

    pub async fn remove_group_member(&self, caller: &Caller, group: GroupId, user: UserId) -> AppResult<()> {
        self.change(caller, act::GROUP_REMOVE_MEMBER, &group.to_string(), "group").await?;
        audit::reason(format!("user {user}"));
        if !self.store.remove_group_member(caller.org_id, group, user).await? {
            return Err(AppError::NotFound("Group member not found".into()));
        }
        self.cache.permissions_changed();
        Ok(())
    }

    pub async fn list_group_members(
        &self,
        caller: &Caller,
        group: GroupId,
        page: PageRequest,
    ) -> AppResult<Page<User>> {
        caller.authorize(act::GROUP_LIST_MEMBERS, &group.to_string())?;
        self.store.get_group(caller.org_id, group).await?.ok_or_else(|| not_found("Group"))?;
        Ok(self.store.list_group_members(caller.org_id, group, page).await?)
    }

    // ---- policies ----------------------------------------------------------------------

    pub async fn create_policy(&self, caller: &Caller, input: PolicyInput) -> AppResult<Policy> {
        self.change(caller, act::POLICY_CREATE, "*", "policy").await?;
        let policy = Policy {
            id: self.new_id(PolicyId::from_random),
            org_id: caller.org_id,
            name: input.name,
            description: input.description,
            document: input.document,
            date_created: self.now(),
        };
        audit::retarget(policy.id);
        self.store.create_policy(&policy).await?;
        Ok(policy)
    }

    pub async fn get_policy(&self, caller: &Caller, id: PolicyId) -> AppResult<Policy> {
        caller.authorize(act::POLICY_READ, &id.to_string())?;
        self.store.get_policy(caller.org_id, id).await?.ok_or_else(|| not_found("Policy"))
    }

    pub async fn list_policies(&self, caller: &Caller, page: PageRequest) -> AppResult<Page<Policy>> {
        caller.authorize(act::POLICY_LIST, "*")?;
        Ok(self.store.list_policies(caller.org_id, page).await?)
    }

    pub async fn update_policy(&self, caller: &Caller, id: PolicyId, input: PolicyInput) -> AppResult<Policy> {
        self.change(caller, act::POLICY_UPDATE, &id.to_string(), "policy").await?;
        let mut policy = self.store.get_policy(caller.org_id, id).await?.ok_or_else(|| not_found("Policy"))?;
        policy.name = input.name;
        policy.description = input.description;
        policy.document = input.document;
        if !self.store.update_policy(&policy).await? {
            return Err(not_found("Policy"));
        }
        self.cache.permissions_changed();
        Ok(policy)
    }

    pub async fn delete_policy(&self, caller: &Caller, id: PolicyId) -> AppResult<()> {
        self.change(caller, act::POLICY_DELETE, &id.to_string(), "policy").await?;
        if !self.store.delete_policy(caller.org_id, id).await? {
            return Err(not_found("Policy"));
        }
        self.cache.permissions_changed();
        Ok(())
    }

    /// Attaches a policy; returns false when it already was attached (the call is idempotent).
    pub async fn attach_policy(&self, caller: &Caller, policy: PolicyId, target: PolicyTarget) -> AppResult<bool> {
        let (action, resource) = match target {
            PolicyTarget::User(_) => (act::POLICY_ATTACH_USER, policy.to_string()),
            PolicyTarget::Group(_) => (act::POLICY_ATTACH_GROUP, policy.to_string()),
            PolicyTarget::Role(r) => (act::ROLE_ATTACH_POLICY, r.to_string()),
        };
        self.change(caller, action, &resource, "policy").await?;
        audit::retarget(policy);
        audit::reason(attachment(target));
        let attached = self.store.attach_policy(caller.org_id, policy, target).await?;
        self.cache.permissions_changed();
        Ok(attached)
    }

    pub async fn detach_policy(&self, caller: &Caller, policy: PolicyId, target: PolicyTarget) -> AppResult<()> {
        let (action, resource) = match target {
            PolicyTarget::User(_) => (act::POLICY_DETACH_USER, policy.to_string()),
            PolicyTarget::Group(_) => (act::POLICY_DETACH_GROUP, policy.to_string()),
            PolicyTarget::Role(r) => (act::ROLE_DETACH_POLICY, r.to_string()),
        };
        self.change(caller, action, &resource, "policy").await?;
        audit::retarget(policy);
        audit::reason(attachment(target));
        if !self.store.detach_policy(caller.org_id, policy, target).await? {
            return Err(AppError::NotFound("Policy attachment not found".into()));
        }
        self.cache.permissions_changed();
        Ok(())
    }

    pub async fn list_policy_users(
        &self,
        caller: &Caller,
        policy: PolicyId,
        page: PageRequest,
    ) -> AppResult<Page<User>> {
        caller.authorize(act::POLICY_LIST_USERS, &policy.to_string())?;
        self.store.get_policy(caller.org_id, policy).await?.ok_or_else(|| not_found("Policy"))?;
        Ok(self.store.list_policy_users(caller.org_id, policy, page).await?)
    }

    pub async fn list_policy_groups(
        &self,
        caller: &Caller,
        policy: PolicyId,
        page: PageRequest,
    ) -> AppResult<Page<Group>> {
        caller.authorize(act::POLICY_LIST_GROUPS, &policy.to_string())?;
        self.store.get_policy(caller.org_id, policy).await?.ok_or_else(|| not_found("Policy"))?;
        Ok(self.store.list_policy_groups(caller.org_id, policy, page).await?)
    }

    /// Policies attached directly to a user, a group or a role.
    pub async fn list_attached_policies(
        &self,
        caller: &Caller,
        target: PolicyTarget,
        page: PageRequest,
    ) -> AppResult<Page<Policy>> {
        match target {
            PolicyTarget::User(u) => {
                caller.authorize(act::USER_READ, &u.to_string())?;
                self.get_user_unchecked(caller.org_id, u).await?;
            }
            PolicyTarget::Group(g) => {
                caller.authorize(act::GROUP_READ, &g.to_string())?;
                self.store.get_group(caller.org_id, g).await?.ok_or_else(|| not_found("Group"))?;
            }
            PolicyTarget::Role(r) => {
                caller.authorize(act::ROLE_LIST_POLICIES, &r.to_string())?;
                self.store.get_role(caller.org_id, r).await?.ok_or_else(|| not_found("Role"))?;
            }
        }
        Ok(self.store.list_attached_policies(caller.org_id, target, page).await?)
    }

    // ---- roles -------------------------------------------------------------------------

    pub async fn create_role(&self, caller: &Caller, input: RoleInput) -> AppResult<Role> {
        self.change(caller, act::ROLE_CREATE, "*", "role").await?;
        let role = Role {
            id: self.new_id(RoleId::from_random),
            org_id: caller.org_id,
            name: input.name,
            description: input.description,
            role_type: input.role_type,
            max_session_duration: input.max_session_duration,
            date_created: self.now(),
        };
        audit::retarget(role.id);
        self.store.create_role(&role).await?;
        Ok(role)
    }

    pub async fn get_role(&self, caller: &Caller, id: RoleId) -> AppResult<Role> {
        caller.authorize(act::ROLE_READ, &id.to_string())?;
        self.store.get_role(caller.org_id, id).await?.ok_or_else(|| not_found("Role"))
    }

    pub async fn list_roles(&self, caller: &Caller, page: PageRequest) -> AppResult<Page<Role>> {
        caller.authorize(act::ROLE_LIST, "*")?;
        Ok(self.store.list_roles(caller.org_id, page).await?)
    }

    pub async fn update_role(&self, caller: &Caller, id: RoleId, input: RoleInput) -> AppResult<Role> {
        self.change(caller, act::ROLE_UPDATE, &id.to_string(), "role").await?;
        let mut role = self.store.get_role(caller.org_id, id).await?.ok_or_else(|| not_found("Role"))?;
        role.name = input.name;
        role.description = input.description;
        role.role_type = input.role_type;
        role.max_session_duration = input.max_session_duration;
        let updated = self.store.update_role(&role).await?;
        // Assume reads cached roles and trusts: changes to either must be seen at once.
        self.cache.permissions_changed();
        if !updated {
            return Err(not_found("Role"));
        }
        Ok(role)
    }

    pub async fn delete_role(&self, caller: &Caller, id: RoleId) -> AppResult<()> {
        self.change(caller, act::ROLE_DELETE, &id.to_string(), "role").await?;
        if !self.store.delete_role(caller.org_id, id).await? {
            return Err(not_found("Role"));
        }
        self.cache.permissions_changed();
        Ok(())
    }

    // ---- role trusts -------------------------------------------------------------------

    pub async fn create_trust(&self, caller: &Caller, input: TrustInput) -> AppResult<RoleTrust> {
        self.change(caller, act::TRUST_CREATE, &input.role_id.to_string(), "role_trust").await?;
        let trust = RoleTrust {
            id: self.new_id(TrustId::from_random),
            org_id: caller.org_id,
            role_id: input.role_id,
            trust_type: input.trust_type,
            principal: input.principal,
            conditions: input.conditions,
            valid_until: input.valid_until,
            date_created: self.now(),
        };
        audit::retarget(trust.id);
        self.store.create_trust(&trust).await?;
        self.cache.permissions_changed();
        Ok(trust)
    }

    pub async fn get_trust(&self, caller: &Caller, id: TrustId) -> AppResult<RoleTrust> {
        caller.authorize(act::TRUST_READ, &id.to_string())?;
        self.store.get_trust(caller.org_id, id).await?.ok_or_else(|| not_found("Role trust"))
    }

    pub async fn list_trusts(
        &self,
        caller: &Caller,
        role: Option<RoleId>,
        page: PageRequest,
    ) -> AppResult<Page<RoleTrust>> {
        caller.authorize(act::TRUST_LIST, &role.map_or_else(|| "*".to_owned(), |r| r.to_string()))?;
        if let Some(r) = role {
            self.store.get_role(caller.org_id, r).await?.ok_or_else(|| not_found("Role"))?;
        }
        Ok(self.store.list_trusts(caller.org_id, role, page).await?)
    }

    /// Replaces a trust's principal, type, conditions and expiry; the role never changes.
    pub async fn update_trust(&self, caller: &Caller, id: TrustId, input: TrustInput) -> AppResult<RoleTrust> {
        self.change(caller, act::TRUST_UPDATE, &id.to_string(), "role_trust").await?;
        let mut trust = self.store.get_trust(caller.org_id, id).await?.ok_or_else(|| not_found("Role trust"))?;
        if input.role_id != trust.role_id {
            return Err(AppError::Invalid(tessera_domain::FieldError::new(
                "role_id",
                "a trust's role cannot change; create a new trust instead",
            )));
        }
        trust.trust_type = input.trust_type;
        trust.principal = input.principal;
        trust.conditions = input.conditions;
        trust.valid_until = input.valid_until;
        let updated = self.store.update_trust(&trust).await?;
        self.cache.permissions_changed();
        if !updated {
            return Err(not_found("Role trust"));
        }
        Ok(trust)
    }

    pub async fn delete_trust(&self, caller: &Caller, id: TrustId) -> AppResult<()> {
        self.change(caller, act::TRUST_DELETE, &id.to_string(), "role_trust").await?;
        let deleted = self.store.delete_trust(caller.org_id, id).await?;
        self.cache.permissions_changed();
        if !deleted {
            return Err(not_found("Role trust"));
        }
        Ok(())
    }
}

/// Adapts `&mut dyn RngCore` to the `impl RngCore` the domain's minting takes.
pub(crate) struct RngRef<'a>(pub &'a mut dyn rand::RngCore);

impl rand::RngCore for RngRef<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}
