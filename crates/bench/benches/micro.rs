//! Criterion micro-benchmarks of the hot paths: policy evaluation, token digest, cached token
//! lookup (the whole `authenticate` on a cache hit), and the filter parser.

use std::sync::Arc;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rand::SeedableRng;
use tessera_app::{App, BootstrapOutcome, BootstrapRequest, ManualClock};
use tessera_domain::Timestamp;
use tessera_domain::filter::parse_filter;
use tessera_domain::policy::{PermissionSet, PolicyDocument, parse_document_json};
use tessera_domain::token::TokenDigest;
use tessera_store::SESSION_SCHEMA;

fn policies(c: &mut Criterion) {
    let docs: Vec<PolicyDocument> = (0..10)
        .map(|i| {
            let json = format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":["compute.instance{i}.*","iam.role.Read"],"Resource":"*"}},
                   {{"Effect":"Deny","Action":"iam.user.Delete","Resource":["u-{i}"]}}]}}"#
            );
            PolicyDocument::from_json(parse_document_json(&json).unwrap(), "d").unwrap()
        })
        .collect();
    let set = PermissionSet::from_documents(&docs);
    c.bench_function("policy: evaluate 20 statements", |b| {
        b.iter(|| set.evaluate(black_box("iam.role.Read"), black_box("r-1")))
    });
    c.bench_function("token: sha-256 digest", |b| {
        b.iter(|| TokenDigest::of(black_box("tessera_ak_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH")))
    });
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(tessera_store_sqlite::SqliteStore::open(&dir.path().join("b.db")).unwrap());
    let app = App::new(
        store,
        Arc::new(ManualClock::new(Timestamp(1_900_000_000))),
        Box::new(rand::rngs::StdRng::seed_from_u64(1)),
    );
    let key = "bench-admin-key-0123456789abcdef0123456789";
    let out = rt
        .block_on(app.bootstrap(
            tessera_app::System::BOOTSTRAP,
            BootstrapRequest { organization_name: "b".into(), admin_email: "a@b.c".into(), api_key: Some(key.into()) },
        ))
        .unwrap();
    assert!(matches!(out, BootstrapOutcome::Created { .. }));
    rt.block_on(app.authenticate(key, None)).unwrap();
    c.bench_function("auth: token digest + cached lookup + permissions", |b| {
        b.iter(|| {
            let caller = rt.block_on(app.authenticate(black_box(key), None)).unwrap();
            caller.authorize("iam.user.Read", "*").unwrap();
        })
    });
}

fn filters(c: &mut Criterion) {
    let f = "status eq 'Active' and (kind in ('login','gateway') or contains(user_id_or_email,'@example.com')) \
             and create_time gt now() sub PT2H";
    c.bench_function("filter: parse and check a 4-clause filter", |b| {
        b.iter(|| parse_filter(black_box(f), &SESSION_SCHEMA, Timestamp(1_900_000_000)).unwrap())
    });
}

criterion_group!(benches, policies, lookup, filters);
criterion_main!(benches);
