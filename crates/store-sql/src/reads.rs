//! The read methods of `Store`, written once for both SQL backends.
//!
//! A read is the same everywhere: a shared statement, its decoder, and a connection to run it
//! on. A backend writes its store impls inside [`sql_store!`](crate::sql_store), one block per
//! area, and the macro adds every read method to the backend's own (writes, the feed); the
//! backend supplies four inherent methods that run one
//! [`Fetch`](crate::statements::Fetch) for one row or all rows, one
//! [`ListPage`](crate::paging::ListPage), and one [`RecordQuery`](crate::record_query::RecordQuery)
//! on its own connections (`fetch_one`, `fetch_all`, `list`, `records`), and its `DIALECT`.

/// `sql_store! { impl Store for MyStore { ...writes... } }`: the `Store` impl (through
/// `async_trait`) with the backend's own methods and every read-only one, the latter over the
/// backend's `fetch_one`, `fetch_all`, `list` and `records`.
/// The backend's `StoreBackend` impl and its area impls (through `async_trait`), each with the
/// backend's own methods and every read-only one of that area, the latter over the backend's
/// `fetch_one`, `fetch_all`, `list` and `records`:
///
/// ```text
/// sql_store! {
///     MyStore;
///     backend { fn backend(&self) -> &'static str { "mine" } }
///     iam { ...writes... }
///     sessions { ... }
///     login { ... }
///     gateway { ... }
///     audit { ... }
/// }
/// ```
#[macro_export]
macro_rules! sql_store {
    (
        $store:ty;
        backend { $($backend:tt)* }
        iam { $($iam:tt)* }
        sessions { $($sessions:tt)* }
        login { $($login:tt)* }
        gateway { $($gateway:tt)* }
        audit { $($audit:tt)* }
    ) => {
        impl ::tessera_store::StoreBackend for $store {
            $($backend)*
        }

        #[::async_trait::async_trait]
        impl ::tessera_store::IamStore for $store {
            $($iam)*

            async fn get_organization(
                &self,
                org: ::tessera_domain::ids::OrgId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::user::Organization>> {
                self.fetch_one($crate::statements::get_organization(org)).await
            }

            async fn get_user(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::UserId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::user::User>> {
                self.fetch_one($crate::statements::get_user(org, id)).await
            }

            async fn list_users(
                &self,
                org: ::tessera_domain::ids::OrgId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::user::User>> {
                self.list($crate::statements::list_users(org, &req)).await
            }

            async fn list_api_keys(
                &self,
                org: ::tessera_domain::ids::OrgId,
                user: ::tessera_domain::ids::UserId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::user::ApiKey>> {
                self.list($crate::statements::list_api_keys(org, user, &req)).await
            }

            async fn find_credential(
                &self,
                kind: ::tessera_domain::token::TokenKind,
                digest: &::tessera_domain::token::TokenDigest,
            ) -> ::tessera_store::StoreResult<Option<::tessera_store::Credential>> {
                self.fetch_one($crate::statements::find_credential(kind, digest)).await
            }

            async fn get_group(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::GroupId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::user::Group>> {
                self.fetch_one($crate::statements::get_group(org, id)).await
            }

            async fn list_groups(
                &self,
                org: ::tessera_domain::ids::OrgId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::user::Group>> {
                self.list($crate::statements::list_groups(org, &req)).await
            }

            async fn list_group_members(
                &self,
                org: ::tessera_domain::ids::OrgId,
                group: ::tessera_domain::ids::GroupId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::user::User>> {
                self.list($crate::statements::list_group_members(org, group, &req)).await
            }

            async fn groups_of_user(
                &self,
                org: ::tessera_domain::ids::OrgId,
                user: ::tessera_domain::ids::UserId,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_domain::ids::GroupId>> {
                self.fetch_all($crate::statements::groups_of_user(org, user)).await
            }

            async fn group_names_of_user(
                &self,
                org: ::tessera_domain::ids::OrgId,
                user: ::tessera_domain::ids::UserId,
            ) -> ::tessera_store::StoreResult<Vec<String>> {
                self.fetch_all($crate::statements::group_names_of_user(org, user)).await
            }

            async fn get_policy(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::PolicyId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_store::Policy>> {
                self.fetch_one($crate::statements::get_policy(org, id)).await
            }

            async fn list_policies(
                &self,
                org: ::tessera_domain::ids::OrgId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_store::Policy>> {
                self.list($crate::statements::list_policies(org, &req)).await
            }

            async fn list_attached_policies(
                &self,
                org: ::tessera_domain::ids::OrgId,
                target: ::tessera_store::PolicyTarget,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_store::Policy>> {
                self.list($crate::statements::list_attached_policies(org, target, &req)).await
            }

            async fn list_policy_users(
                &self,
                org: ::tessera_domain::ids::OrgId,
                policy: ::tessera_domain::ids::PolicyId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::user::User>> {
                self.list($crate::statements::list_policy_users(org, policy, &req)).await
            }

            async fn list_policy_groups(
                &self,
                org: ::tessera_domain::ids::OrgId,
                policy: ::tessera_domain::ids::PolicyId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::user::Group>> {
                self.list($crate::statements::list_policy_groups(org, policy, &req)).await
            }

            async fn user_policy_documents(
                &self,
                org: ::tessera_domain::ids::OrgId,
                user: ::tessera_domain::ids::UserId,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_domain::policy::PolicyDocument>> {
                self.fetch_all($crate::statements::user_policy_documents(org, user)).await
            }

            async fn role_policy_documents(
                &self,
                org: ::tessera_domain::ids::OrgId,
                role: ::tessera_domain::ids::RoleId,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_domain::policy::PolicyDocument>> {
                self.fetch_all($crate::statements::role_policy_documents(org, role)).await
            }

            async fn list_role_assignments(
                &self,
                org: ::tessera_domain::ids::OrgId,
                role: ::tessera_domain::ids::RoleId,
                groups: bool,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::role::RoleAssignment>> {
                self.list($crate::statements::list_role_assignments(org, role, groups, &req)).await
            }

            async fn roles_of_user(
                &self,
                org: ::tessera_domain::ids::OrgId,
                user: ::tessera_domain::ids::UserId,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_domain::role::RoleAssignment>> {
                self.fetch_all($crate::statements::roles_of_user(org, user)).await
            }

            async fn get_role(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::RoleId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::role::Role>> {
                self.fetch_one($crate::statements::get_role(org, id)).await
            }

            async fn list_roles(
                &self,
                org: ::tessera_domain::ids::OrgId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::role::Role>> {
                self.list($crate::statements::list_roles(org, &req)).await
            }

            async fn get_trust(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::TrustId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::trust::RoleTrust>> {
                self.fetch_one($crate::statements::get_trust(org, id)).await
            }

            async fn list_trusts(
                &self,
                org: ::tessera_domain::ids::OrgId,
                role: Option<::tessera_domain::ids::RoleId>,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::trust::RoleTrust>> {
                self.list($crate::statements::list_trusts(org, role, &req)).await
            }

            async fn role_trusts(
                &self,
                org: ::tessera_domain::ids::OrgId,
                role: ::tessera_domain::ids::RoleId,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_domain::trust::RoleTrust>> {
                self.fetch_all($crate::statements::role_trusts(org, role)).await
            }

            async fn get_oidc_issuer(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::OidcIssuerId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::oidc::OidcIssuer>> {
                self.fetch_one($crate::statements::get_oidc_issuer(org, id)).await
            }

            async fn find_oidc_issuer(
                &self,
                id: ::tessera_domain::ids::OidcIssuerId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::oidc::OidcIssuer>> {
                self.fetch_one($crate::statements::find_oidc_issuer(id)).await
            }

            async fn list_oidc_issuers(
                &self,
                org: ::tessera_domain::ids::OrgId,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::oidc::OidcIssuer>> {
                self.list($crate::statements::list_oidc_issuers(org, &req)).await
            }
        }

        #[::async_trait::async_trait]
        impl ::tessera_store::SessionStore for $store {
            $($sessions)*

            async fn get_session(
                &self,
                org: ::tessera_domain::ids::OrgId,
                id: ::tessera_domain::ids::SessionId,
            ) -> ::tessera_store::StoreResult<Option<::tessera_domain::session::Session>> {
                self.fetch_one($crate::statements::get_session(org, id)).await
            }

            async fn list_active_sessions(
                &self,
                org: ::tessera_domain::ids::OrgId,
                user: ::tessera_domain::ids::UserId,
                kind: Option<::tessera_domain::session::SessionKind>,
                now: ::tessera_domain::Timestamp,
                req: ::tessera_store::PageRequest,
            ) -> ::tessera_store::StoreResult<::tessera_store::Page<::tessera_domain::session::Session>> {
                self.list($crate::statements::list_active_sessions(org, user, kind, now, &req)).await
            }

            async fn query_sessions(
                &self,
                org: ::tessera_domain::ids::OrgId,
                q: &::tessera_store::SessionQuery,
            ) -> ::tessera_store::StoreResult<::tessera_store::SessionQueryResult> {
                let rq = $crate::statements::query_sessions(org, q, Self::DIALECT)?;
                Ok($crate::statements::session_query_result(self.records(rq).await?))
            }

            async fn aggregate_sessions(
                &self,
                org: ::tessera_domain::ids::OrgId,
                apply: &::tessera_domain::filter::Apply,
            ) -> ::tessera_store::StoreResult<::std::vec::Vec<::std::vec::Vec<::tessera_store::Cell>>> {
                let f = $crate::aggregate::aggregate_sessions(org, apply, Self::DIALECT)?;
                $crate::aggregate::cells(apply, self.fetch_all(f).await?)
            }

            async fn count_live_sessions(
                &self,
                now: ::tessera_domain::Timestamp,
            ) -> ::tessera_store::StoreResult<::std::vec::Vec<(String, u64)>> {
                let rows = self.fetch_all($crate::aggregate::live_sessions_by_kind(now)).await?;
                Ok(rows.into_iter().map(|(k, n)| (k, n.max(0) as u64)).collect())
            }
        }

        #[::async_trait::async_trait]
        impl ::tessera_store::LoginStore for $store {
            $($login)*

            async fn find_login(
                &self,
                email: &::tessera_domain::user::Email,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_store::LoginRecord>> {
                self.fetch_all($crate::statements::find_login(email)).await
            }

            async fn get_session_limits(
                &self,
                org: ::tessera_domain::ids::OrgId,
            ) -> ::tessera_store::StoreResult<::tessera_domain::login::SessionLimits> {
                Ok(self.fetch_one($crate::statements::get_session_limits(org)).await?.unwrap_or_default())
            }
        }

        #[::async_trait::async_trait]
        impl ::tessera_store::GatewayStore for $store {
            $($gateway)*

            async fn get_gateway_object(
                &self,
                org: ::tessera_domain::ids::OrgId,
                kind: ::tessera_store::GatewayKind,
                id: ::uuid::Uuid,
            ) -> ::tessera_store::StoreResult<Option<::tessera_store::GatewayObject>> {
                self.fetch_one($crate::statements::get_gateway_object(org, kind, id)).await
            }

            async fn list_gateway_objects(
                &self,
                org: Option<::tessera_domain::ids::OrgId>,
                kind: ::tessera_store::GatewayKind,
            ) -> ::tessera_store::StoreResult<Vec<::tessera_store::GatewayObject>> {
                self.fetch_all($crate::statements::list_gateway_objects(org, kind)).await
            }

            async fn find_gateway_key(
                &self,
                key: &::tessera_domain::token::TokenDigest,
            ) -> ::tessera_store::StoreResult<Option<::tessera_store::GatewayKey>> {
                self.fetch_one($crate::statements::find_gateway_key(key)).await
            }
        }

        #[::async_trait::async_trait]
        impl ::tessera_store::AuditStore for $store {
            $($audit)*

            async fn query_audit_events(
                &self,
                org: ::tessera_domain::ids::OrgId,
                q: &::tessera_store::SessionQuery,
            ) -> ::tessera_store::StoreResult<::tessera_store::AuditQueryResult> {
                let rq = $crate::statements::query_audit_events(org, q, Self::DIALECT)?;
                Ok($crate::statements::audit_query_result(self.records(rq).await?))
            }
        }
    };
}
