//! Criterion micro-benchmarks of the hot paths: policy evaluation, token digest, cached token
//! lookup (the whole `authenticate` on a cache hit), the filter parser, and what the store's
//! statement metrics add to a statement beside an indexed SQLite read.

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
        Arc::clone(&store) as Arc<dyn tessera_store::Store>,
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
    let BootstrapOutcome::Created { organization, admin, .. } = out else { panic!("bootstrapped") };
    rt.block_on(app.authenticate(key, None)).unwrap();
    c.bench_function("auth: token digest + cached lookup + permissions", |b| {
        b.iter(|| {
            let caller = rt.block_on(app.authenticate(black_box(key), None)).unwrap();
            caller.authorize("iam.user.Read", "*").unwrap();
        })
    });
    // One indexed read through the store, statement metrics included: the scale for the
    // metrics' own cost below.
    c.bench_function("store: get_user on SQLite (one indexed read, counted)", |b| {
        b.iter(|| rt.block_on(tessera_store::IamStore::get_user(&*store, organization, black_box(admin))).unwrap())
    });
}

fn store_metrics(c: &mut Criterion) {
    use tessera_store_sql::metrics::{StatementKind, StatementMetrics};
    let m = StatementMetrics::default();
    let q = tessera_store_sql::statements::get_user(
        "00000000-0000-4000-8000-000000000001".parse().unwrap(),
        "00000000-0000-4000-8000-000000000002".parse().unwrap(),
    )
    .query;
    c.bench_function("store metrics: count one shared statement (kind kept, 2 clock reads)", |b| {
        b.iter(|| m.time(black_box(&q).kind(), || Ok::<_, tessera_store::StoreError>(())))
    });
    let built =
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.org_id = $1 AND s.status = $2";
    c.bench_function("store metrics: kind of a built statement (scan of its text)", |b| {
        b.iter(|| StatementKind::of(black_box(built)))
    });
}

fn filters(c: &mut Criterion) {
    let f = "status eq 'Active' and (kind in ('login','gateway') or contains(user_id_or_email,'@example.com')) \
             and create_time gt now() sub PT2H";
    c.bench_function("filter: parse and check a 4-clause filter", |b| {
        b.iter(|| parse_filter(black_box(f), &SESSION_SCHEMA, Timestamp(1_900_000_000)).unwrap())
    });
}

criterion_group!(benches, policies, lookup, filters, store_metrics);
criterion_main!(benches);
