//! What the AWS STS compatibility endpoint needs beyond the assume use cases themselves.

use tessera_domain::ids::{OidcIssuerId, OrgId, RoleId};
use tessera_domain::trust::TrustPrincipal;

use crate::{App, AppResult};

impl App {
    /// The OIDC issuer a web-identity assume of `role` is meant for when the caller named none:
    /// the one issuer the role's trusts name, or `None` when none or several do. AWS STS finds
    /// the provider from the token; the AWS SDKs' web-identity credential providers
    /// (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`) send no `ProviderId`. Naming the
    /// issuer reveals nothing the token check that follows does not decide on.
    pub async fn sole_trusted_issuer(&self, org: OrgId, role: RoleId) -> AppResult<Option<OidcIssuerId>> {
        let mut issuers: Vec<OidcIssuerId> = vec![];
        for t in self.store.role_trusts(org, role).await? {
            if let TrustPrincipal::OidcIssuer(i) = t.principal
                && !issuers.contains(&i)
            {
                issuers.push(i);
            }
        }
        Ok(match issuers.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    }
}
