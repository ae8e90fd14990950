//! Assignable roles given to users and groups, and what the caller holds (`/v2/users/me…`),
//! in Vultr's shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Meta, PolicyView};

/// One assignment of a role: to a user (`user_id`) or to a group (`group_id`, `group_name`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct RoleAssignmentView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    pub role_id: String,
    pub role_name: String,
    pub role_description: String,
    pub role_type: String,
    pub date_assigned: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoleAssignmentEnvelope {
    pub assignment: RoleAssignmentView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoleAssignmentList {
    pub assignments: Vec<RoleAssignmentView>,
    pub meta: Meta,
}

/// A user's roles: given to it (`direct`), through its groups (`inherited`), and both.
#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
pub struct UserRoles {
    pub all: Vec<RoleAssignmentView>,
    pub direct: Vec<RoleAssignmentView>,
    pub inherited: Vec<RoleAssignmentView>,
}

/// `GET /v2/users/me/roles`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserRolesAnswer {
    pub roles: UserRoles,
    pub meta: Meta,
}

/// A policy as it reaches a user: attached to it (`source` `user`), to one of its groups
/// (`group`, `from_group`) or to one of its assigned roles (`role`, `from_role`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct UserPolicyView {
    #[serde(flatten)]
    pub policy: PolicyView,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_role: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
pub struct UserPolicies {
    pub all: Vec<UserPolicyView>,
    pub direct: Vec<UserPolicyView>,
    pub inherited: Vec<UserPolicyView>,
}

/// `GET /v2/users/me/policies`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserPoliciesAnswer {
    pub policies: UserPolicies,
    pub meta: Meta,
}
