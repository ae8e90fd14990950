//! Every action an API operation is guarded by. The docs list these; a policy names them.

pub const USER_CREATE: &str = "iam.user.Create";
pub const USER_READ: &str = "iam.user.Read";
pub const USER_LIST: &str = "iam.user.List";
pub const USER_UPDATE: &str = "iam.user.Update";
pub const USER_DELETE: &str = "iam.user.Delete";

pub const APIKEY_CREATE: &str = "iam.apikey.Create";
pub const APIKEY_LIST: &str = "iam.apikey.List";
pub const APIKEY_DELETE: &str = "iam.apikey.Delete";

pub const GROUP_CREATE: &str = "iam.group.Create";
pub const GROUP_READ: &str = "iam.group.Read";
pub const GROUP_LIST: &str = "iam.group.List";
pub const GROUP_UPDATE: &str = "iam.group.Update";
pub const GROUP_DELETE: &str = "iam.group.Delete";
pub const GROUP_ADD_MEMBER: &str = "iam.group.AddMember";
pub const GROUP_REMOVE_MEMBER: &str = "iam.group.RemoveMember";
pub const GROUP_LIST_MEMBERS: &str = "iam.group.ListMembers";

pub const POLICY_CREATE: &str = "iam.policy.Create";
pub const POLICY_READ: &str = "iam.policy.Read";
pub const POLICY_LIST: &str = "iam.policy.List";
pub const POLICY_UPDATE: &str = "iam.policy.Update";
pub const POLICY_DELETE: &str = "iam.policy.Delete";
pub const POLICY_ATTACH_USER: &str = "iam.policy.AttachUser";
pub const POLICY_DETACH_USER: &str = "iam.policy.DetachUser";
pub const POLICY_ATTACH_GROUP: &str = "iam.policy.AttachGroup";
pub const POLICY_DETACH_GROUP: &str = "iam.policy.DetachGroup";
pub const POLICY_LIST_USERS: &str = "iam.policy.ListUsers";
pub const POLICY_LIST_GROUPS: &str = "iam.policy.ListGroups";

pub const ROLE_CREATE: &str = "iam.role.Create";
pub const ROLE_READ: &str = "iam.role.Read";
pub const ROLE_LIST: &str = "iam.role.List";
pub const ROLE_UPDATE: &str = "iam.role.Update";
pub const ROLE_DELETE: &str = "iam.role.Delete";
pub const ROLE_ATTACH_POLICY: &str = "iam.role.AttachPolicy";
pub const ROLE_DETACH_POLICY: &str = "iam.role.DetachPolicy";
pub const ROLE_LIST_POLICIES: &str = "iam.role.ListPolicies";
pub const ROLE_ASSUME: &str = "iam.role.AssumeRole";
/// Assigning an assignable role to a user or a group, and the lists of its assignments.
pub const ROLE_ATTACH_USER: &str = "iam.role.AttachUser";
pub const ROLE_DETACH_USER: &str = "iam.role.DetachUser";
pub const ROLE_ATTACH_GROUP: &str = "iam.role.AttachGroup";
pub const ROLE_DETACH_GROUP: &str = "iam.role.DetachGroup";
pub const ROLE_LIST_USERS: &str = "iam.role.ListUsers";
pub const ROLE_LIST_GROUPS: &str = "iam.role.ListGroups";

pub const TRUST_CREATE: &str = "iam.roletrust.Create";
pub const TRUST_READ: &str = "iam.roletrust.Read";
pub const TRUST_LIST: &str = "iam.roletrust.List";
pub const TRUST_UPDATE: &str = "iam.roletrust.Update";
pub const TRUST_DELETE: &str = "iam.roletrust.Delete";

pub const ASSUMED_READ: &str = "iam.assumedrole.Read";
pub const ASSUMED_LIST: &str = "iam.assumedrole.List";
pub const ASSUMED_DELETE: &str = "iam.assumedrole.Delete";
/// Needed, besides `iam.role.AssumeRole`, to assume a role on behalf of another user.
pub const ASSUMED_CREATE_FOR_USER: &str = "iam.assumedrole.CreateForUser";

pub const OIDC_ISSUER_CREATE: &str = "iam.oidcissuer.Create";
pub const OIDC_ISSUER_READ: &str = "iam.oidcissuer.Read";
pub const OIDC_ISSUER_LIST: &str = "iam.oidcissuer.List";
pub const OIDC_ISSUER_UPDATE: &str = "iam.oidcissuer.Update";
pub const OIDC_ISSUER_DELETE: &str = "iam.oidcissuer.Delete";

pub const USER_UNLOCK: &str = "iam.user.Unlock";

pub const SESSION_LIST: &str = "iam.session.List";
pub const SESSION_READ: &str = "iam.session.Read";
pub const SESSION_TERMINATE: &str = "iam.session.Terminate";
/// Needed by proxies and services that ask whether a token is valid (RFC 7662).
pub const SESSION_INTROSPECT: &str = "iam.session.Introspect";
pub const SESSION_LIMITS_READ: &str = "iam.sessionlimits.Read";
pub const SESSION_LIMITS_UPDATE: &str = "iam.sessionlimits.Update";

/// Reading the audit trail of the organization.
pub const AUDIT_LIST: &str = "iam.auditevent.List";

pub const GATEWAY_SERVICE_CREATE: &str = "gateway.service.Create";
pub const GATEWAY_SERVICE_READ: &str = "gateway.service.Read";
pub const GATEWAY_SERVICE_LIST: &str = "gateway.service.List";
pub const GATEWAY_SERVICE_UPDATE: &str = "gateway.service.Update";
pub const GATEWAY_SERVICE_DELETE: &str = "gateway.service.Delete";
pub const GATEWAY_ROUTE_CREATE: &str = "gateway.route.Create";
pub const GATEWAY_ROUTE_READ: &str = "gateway.route.Read";
pub const GATEWAY_ROUTE_LIST: &str = "gateway.route.List";
pub const GATEWAY_ROUTE_UPDATE: &str = "gateway.route.Update";
pub const GATEWAY_ROUTE_DELETE: &str = "gateway.route.Delete";
pub const GATEWAY_PLUGIN_CREATE: &str = "gateway.plugin.Create";
pub const GATEWAY_PLUGIN_READ: &str = "gateway.plugin.Read";
pub const GATEWAY_PLUGIN_LIST: &str = "gateway.plugin.List";
pub const GATEWAY_PLUGIN_UPDATE: &str = "gateway.plugin.Update";
pub const GATEWAY_PLUGIN_DELETE: &str = "gateway.plugin.Delete";
pub const GATEWAY_CA_CERTIFICATE_CREATE: &str = "gateway.cacertificate.Create";
pub const GATEWAY_CA_CERTIFICATE_READ: &str = "gateway.cacertificate.Read";
pub const GATEWAY_CA_CERTIFICATE_LIST: &str = "gateway.cacertificate.List";
pub const GATEWAY_CA_CERTIFICATE_UPDATE: &str = "gateway.cacertificate.Update";
pub const GATEWAY_CA_CERTIFICATE_DELETE: &str = "gateway.cacertificate.Delete";

/// All actions, for the docs and for validating that the table stays complete.
pub const ALL: &[&str] = &[
    GATEWAY_SERVICE_CREATE,
    GATEWAY_SERVICE_READ,
    GATEWAY_SERVICE_LIST,
    GATEWAY_SERVICE_UPDATE,
    GATEWAY_SERVICE_DELETE,
    GATEWAY_ROUTE_CREATE,
    GATEWAY_ROUTE_READ,
    GATEWAY_ROUTE_LIST,
    GATEWAY_ROUTE_UPDATE,
    GATEWAY_ROUTE_DELETE,
    GATEWAY_PLUGIN_CREATE,
    GATEWAY_PLUGIN_READ,
    GATEWAY_PLUGIN_LIST,
    GATEWAY_PLUGIN_UPDATE,
    GATEWAY_PLUGIN_DELETE,
    GATEWAY_CA_CERTIFICATE_CREATE,
    GATEWAY_CA_CERTIFICATE_READ,
    GATEWAY_CA_CERTIFICATE_LIST,
    GATEWAY_CA_CERTIFICATE_UPDATE,
    GATEWAY_CA_CERTIFICATE_DELETE,
    USER_CREATE,
    USER_READ,
    USER_LIST,
    USER_UPDATE,
    USER_DELETE,
    APIKEY_CREATE,
    APIKEY_LIST,
    APIKEY_DELETE,
    GROUP_CREATE,
    GROUP_READ,
    GROUP_LIST,
    GROUP_UPDATE,
    GROUP_DELETE,
    GROUP_ADD_MEMBER,
    GROUP_REMOVE_MEMBER,
    GROUP_LIST_MEMBERS,
    POLICY_CREATE,
    POLICY_READ,
    POLICY_LIST,
    POLICY_UPDATE,
    POLICY_DELETE,
    POLICY_ATTACH_USER,
    POLICY_DETACH_USER,
    POLICY_ATTACH_GROUP,
    POLICY_DETACH_GROUP,
    POLICY_LIST_USERS,
    POLICY_LIST_GROUPS,
    ROLE_CREATE,
    ROLE_READ,
    ROLE_LIST,
    ROLE_UPDATE,
    ROLE_DELETE,
    ROLE_ATTACH_POLICY,
    ROLE_DETACH_POLICY,
    ROLE_LIST_POLICIES,
    ROLE_ASSUME,
    ROLE_ATTACH_USER,
    ROLE_DETACH_USER,
    ROLE_ATTACH_GROUP,
    ROLE_DETACH_GROUP,
    ROLE_LIST_USERS,
    ROLE_LIST_GROUPS,
    TRUST_CREATE,
    TRUST_READ,
    TRUST_LIST,
    TRUST_UPDATE,
    TRUST_DELETE,
    ASSUMED_READ,
    ASSUMED_LIST,
    ASSUMED_DELETE,
    ASSUMED_CREATE_FOR_USER,
    OIDC_ISSUER_CREATE,
    OIDC_ISSUER_READ,
    OIDC_ISSUER_LIST,
    OIDC_ISSUER_UPDATE,
    OIDC_ISSUER_DELETE,
    AUDIT_LIST,
];
