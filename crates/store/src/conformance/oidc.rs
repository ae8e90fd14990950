//! Conformance cases: OIDC issuers, trusts that name them, and a workload's session.

use serde_json::json;
use tessera_domain::oidc::{IssuerKeys, IssuerUri, JwkSet, OidcClaims, OidcIssuer};

use super::*;

fn issuer(f: &mut Fixture, uri: &str, keys: IssuerKeys) -> OidcIssuer {
    OidcIssuer {
        id: OidcIssuerId::generate(&mut f.rng),
        org_id: f.org,
        source: "external".into(),
        uri: IssuerUri::parse(uri, "uri").unwrap(),
        keys,
        date_created: T0,
    }
}

fn inline_keys() -> IssuerKeys {
    // An Ed25519 public key (any 32 bytes parse; nothing is verified here).
    let set = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
    IssuerKeys::Inline(JwkSet::parse_strict(&set).unwrap())
}

pub async fn oidc_issuers_round_trip_and_name_their_trusts(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let discovered = issuer(&mut f, "https://token.actions.githubusercontent.com", IssuerKeys::Discovered);
    let mut inline = issuer(&mut f, "https://cluster.example/oidc", inline_keys());
    store.create_oidc_issuer(&discovered).await.unwrap();
    store.create_oidc_issuer(&inline).await.unwrap();
    assert_eq!(store.get_oidc_issuer(f.org, inline.id).await.unwrap(), Some(inline.clone()));
    assert_eq!(store.find_oidc_issuer(discovered.id).await.unwrap(), Some(discovered.clone()));
    let other_org = OrgId::generate(&mut f.rng);
    assert_eq!(store.get_oidc_issuer(other_org, inline.id).await.unwrap(), None, "never across organizations");
    let listed = store.list_oidc_issuers(f.org, PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items, vec![discovered.clone(), inline.clone()]);
    assert!(store.list_oidc_issuers(other_org, PageRequest::first(10)).await.unwrap().items.is_empty());

    inline.keys = IssuerKeys::Discovered;
    assert!(store.update_oidc_issuer(&inline).await.unwrap());
    assert_eq!(store.get_oidc_issuer(f.org, inline.id).await.unwrap(), Some(inline.clone()));
    let stranger = issuer(&mut f, "https://x.example", IssuerKeys::Discovered);
    assert!(!store.update_oidc_issuer(&stranger).await.unwrap());

    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let conditions = TrustConditions {
        oidc_claims: OidcClaims::parse(&json!({"aud": "tessera", "sub": ["repo:acme/*", "x"]}), "c").unwrap(),
        ..Default::default()
    };
    let trust = RoleTrust {
        id: TrustId::generate(&mut f.rng),
        org_id: f.org,
        role_id: role.id,
        trust_type: "TemporaryAssumption".into(),
        principal: TrustPrincipal::OidcIssuer(inline.id),
        conditions,
        valid_until: None,
        date_created: T0,
    };
    store.create_trust(&trust).await.unwrap();
    assert_eq!(store.get_trust(f.org, trust.id).await.unwrap(), Some(trust.clone()));
    let missing = RoleTrust {
        id: TrustId::generate(&mut f.rng),
        principal: TrustPrincipal::OidcIssuer(stranger.id),
        ..trust.clone()
    };
    assert_eq!(store.create_trust(&missing).await, Err(StoreError::NotFound(Entity::OidcIssuer)));

    assert!(store.delete_oidc_issuer(f.org, inline.id).await.unwrap());
    assert!(!store.delete_oidc_issuer(f.org, inline.id).await.unwrap());
    assert_eq!(store.get_trust(f.org, trust.id).await.unwrap(), None, "the issuer's trusts go with it");
    assert_eq!(store.find_oidc_issuer(inline.id).await.unwrap(), None);
}

pub async fn a_workloads_session_resolves_without_a_user(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let iss = issuer(&mut f, "https://cluster.example/oidc", inline_keys());
    store.create_oidc_issuer(&iss).await.unwrap();
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let someone = f.user("ann@example.com");
    store.create_user(&someone, None).await.unwrap();
    let (mut s, digest) = f.session(&someone, Some(&role), T0);
    s.principal = Principal::Workload { issuer: iss.id, subject: "system:serviceaccount:ci:builder".into() };
    s.auth_method = "oidc".into();
    store.create_session(&s, &digest).await.unwrap();
    assert_eq!(store.get_session(f.org, s.id).await.unwrap(), Some(s.clone()));
    match store.find_credential(TokenKind::RoleSession, &digest).await.unwrap() {
        Some(Credential::Session { session, user: None }) => assert_eq!(*session, s),
        other => panic!("expected the workload's session without a user, got {other:?}"),
    }
    let q = |filter: &str| SessionQuery {
        filter: Some(tessera_domain::filter::parse_filter(filter, &SESSION_SCHEMA, T0).unwrap()),
        order: vec![],
        top: 10,
        skip: 0,
        after: None,
        count: false,
        rows: true,
    };
    let by_issuer = store.query_sessions(f.org, &q(&format!("oidc_issuer_id eq '{}'", iss.id))).await.unwrap();
    assert_eq!(by_issuer.sessions.iter().map(|x| x.id).collect::<Vec<_>>(), vec![s.id]);
    let by_subject =
        store.query_sessions(f.org, &q("user_id_or_email eq 'system:serviceaccount:ci:builder'")).await.unwrap();
    assert_eq!(by_subject.sessions.len(), 1);
    let ended = store.end_session(f.org, s.id, EndReason::Terminated, T0.plus_secs(5)).await.unwrap();
    assert_eq!(ended.map(|e| e.principal), Some(s.principal.clone()));
}
