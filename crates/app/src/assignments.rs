//! Assignable roles given to users and groups (their policies join the users'), and what the
//! caller itself holds: its user, groups, roles and policies (`/v2/users/me…`).

use std::future::Future;

use tessera_domain::FieldError;
use tessera_domain::ids::{GroupId, OrgId, RoleId, UserId};
use tessera_domain::role::{Assignee, Role, RoleAssignment, RoleType};
use tessera_domain::user::{Group, User};
use tessera_store::{Page, PageRequest, Policy, PolicyTarget, StoreResult, audit};

use crate::actions as act;
use crate::{App, AppError, AppResult, Caller, not_found};

/// Where a policy the caller holds comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// Attached to the user itself.
    User,
    Group(GroupId),
    /// Attached to an assignable role the user holds (directly or through a group).
    Role(RoleId),
}

/// A policy the caller holds, and through what.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerPolicy {
    pub policy: Policy,
    pub source: PolicySource,
}

/// Every page of a list the caller's own view must show whole (a user's attachments are few;
/// "no silent caps").
async fn all_pages<T, F, Fut>(mut page: F) -> StoreResult<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = StoreResult<Page<T>>>,
{
    let mut req = PageRequest::first(PageRequest::MAX_PER_PAGE);
    let mut out = vec![];
    loop {
        let p = page(req.clone()).await?;
        out.extend(p.items);
        match p.next {
            Some(next) => req.cursor = Some(next),
            None => return Ok(out),
        }
    }
}

fn actions_for(to: Assignee) -> (&'static str, &'static str) {
    match to {
        Assignee::User(_) => (act::ROLE_ATTACH_USER, act::ROLE_DETACH_USER),
        Assignee::Group(_) => (act::ROLE_ATTACH_GROUP, act::ROLE_DETACH_GROUP),
    }
}

fn named(to: Assignee) -> String {
    match to {
        Assignee::User(u) => format!("user {u}"),
        Assignee::Group(g) => format!("group {g}"),
    }
}

impl App {
    /// Assigns an assignable role; returns the assignment and whether it is new (assigning
    /// twice is idempotent). An assumable role is refused (400): it is assumed, never held.
    pub async fn assign_role(&self, caller: &Caller, role: RoleId, to: Assignee) -> AppResult<(RoleAssignment, bool)> {
        let (attach, _) = actions_for(to);
        self.change(caller, attach, &role.to_string(), "role").await?;
        let org = caller.org_id;
        let role = self.store.get_role(org, role).await?.ok_or_else(|| not_found("Role"))?;
        if role.role_type != RoleType::Assignable {
            return Err(FieldError::new(
                "role_id",
                format!("role {} is assumable; only assignable roles can be assigned", role.id),
            )
            .into());
        }
        let assignee_name = self.assignee_name(org, to).await?;
        audit::reason(named(to));
        let now = self.now();
        let added = self.store.assign_role(org, role.id, to, now).await?;
        // The assignee's permissions changed: cached sets are rebuilt (other nodes hear it
        // through the store's change feed).
        self.cache.permissions_changed();
        Ok((RoleAssignment { role, assignee: to, assignee_name, date_assigned: now }, added))
    }

    pub async fn unassign_role(&self, caller: &Caller, role: RoleId, from: Assignee) -> AppResult<()> {
        let (_, detach) = actions_for(from);
        self.change(caller, detach, &role.to_string(), "role").await?;
        audit::reason(named(from));
        if !self.store.unassign_role(caller.org_id, role, from).await? {
            return Err(AppError::NotFound("Role assignment not found".into()));
        }
        self.cache.permissions_changed();
        Ok(())
    }

    /// The users (`groups` false) or groups a role is assigned to.
    pub async fn list_role_assignments(
        &self,
        caller: &Caller,
        role: RoleId,
        groups: bool,
        page: PageRequest,
    ) -> AppResult<Page<RoleAssignment>> {
        let action = if groups { act::ROLE_LIST_GROUPS } else { act::ROLE_LIST_USERS };
        caller.authorize(action, &role.to_string())?;
        self.store.get_role(caller.org_id, role).await?.ok_or_else(|| not_found("Role"))?;
        Ok(self.store.list_role_assignments(caller.org_id, role, groups, page).await?)
    }

    async fn assignee_name(&self, org: OrgId, to: Assignee) -> AppResult<String> {
        Ok(match to {
            Assignee::User(u) => self
                .store
                .get_user(org, u)
                .await?
                .ok_or_else(|| AppError::NotFound("Invalid user".into()))?
                .email
                .as_str()
                .to_owned(),
            Assignee::Group(g) => self.store.get_group(org, g).await?.ok_or_else(|| not_found("Group"))?.display_name,
        })
    }

    // ---- the caller's own view (`/v2/users/me…`) -------------------------------------------

    /// The user the caller's credential speaks for (a role session's: the user who assumed
    /// it). A workload has none.
    fn caller_user_id(caller: &Caller) -> AppResult<UserId> {
        caller.user_id().ok_or_else(|| AppError::NotFound("a workload's session has no user".into()))
    }

    pub async fn my_user(&self, caller: &Caller) -> AppResult<User> {
        let id = Self::caller_user_id(caller)?;
        self.store.get_user(caller.org_id, id).await?.ok_or_else(|| AppError::NotFound("Invalid user".into()))
    }

    pub async fn my_groups(&self, caller: &Caller) -> AppResult<Vec<Group>> {
        let (org, user) = (caller.org_id, Self::caller_user_id(caller)?);
        let mut groups = vec![];
        for id in self.store.groups_of_user(org, user).await? {
            // A group deleted since the membership was read is simply no longer one.
            if let Some(g) = self.store.get_group(org, id).await? {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    /// The caller's assignable roles: its own (assignee the user) and its groups'.
    pub async fn my_roles(&self, caller: &Caller) -> AppResult<Vec<RoleAssignment>> {
        Ok(self.store.roles_of_user(caller.org_id, Self::caller_user_id(caller)?).await?)
    }

    /// Every policy that makes up the caller's own permissions, with where it comes from.
    pub async fn my_policies(&self, caller: &Caller) -> AppResult<Vec<CallerPolicy>> {
        let (org, user) = (caller.org_id, Self::caller_user_id(caller)?);
        let attached = |target: PolicyTarget| {
            all_pages(move |req| async move { self.store.list_attached_policies(org, target, req).await })
        };
        let mut out: Vec<CallerPolicy> = attached(PolicyTarget::User(user))
            .await?
            .into_iter()
            .map(|policy| CallerPolicy { policy, source: PolicySource::User })
            .collect();
        for g in self.store.groups_of_user(org, user).await? {
            let from_group = attached(PolicyTarget::Group(g)).await?;
            out.extend(from_group.into_iter().map(|policy| CallerPolicy { policy, source: PolicySource::Group(g) }));
        }
        let mut roles: Vec<Role> = self.my_roles(caller).await?.into_iter().map(|a| a.role).collect();
        roles.dedup_by_key(|r| r.id);
        for r in roles {
            let from_role = attached(PolicyTarget::Role(r.id)).await?;
            out.extend(from_role.into_iter().map(|policy| CallerPolicy { policy, source: PolicySource::Role(r.id) }));
        }
        Ok(out)
    }

    /// The names of a user's assignable roles, for a login session's `role` (seed 002: "Role
    /// of the user who launched the session"): comma-separated, in assignment order.
    pub(crate) async fn assigned_role_names(&self, org: OrgId, user: UserId) -> AppResult<String> {
        let mut names: Vec<String> = vec![];
        for a in self.store.roles_of_user(org, user).await? {
            if !names.contains(&a.role.name) {
                names.push(a.role.name);
            }
        }
        Ok(names.join(","))
    }
}
