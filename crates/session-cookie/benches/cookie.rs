//! Criterion micro-benchmarks of the cookie hot paths with a typical Kong session (two UUIDs,
//! a 245-character cookie): open (verify + decrypt), verify alone, a forged MAC, seal, touch.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tessera_session_cookie::{
    BindValues, Keys, OpenOptions, SealOptions, SessionEntry, Timeouts, open, seal_with_rng, touch, verify,
};

const NOW: u64 = 1_800_000_000;

fn cookie(c: &mut Criterion) {
    let keys = Keys::from_secret("benchmark-secret-change-me");
    let data = vec![SessionEntry::new(
        json!(["11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"]),
        "default",
        "alice",
    )];
    let bind = BindValues::default();
    let mut rng = StdRng::seed_from_u64(1);
    let sealed = seal_with_rng(&keys, &SealOptions::default(), &data, &bind, NOW, &mut rng).unwrap();
    assert_eq!(sealed.value.len(), 245);
    let opts = OpenOptions { timeouts: Timeouts::SESSION_DEFAULT, ..Default::default() };

    c.bench_function("cookie: open 2-UUID (verify + decrypt + JSON)", |b| {
        b.iter(|| open(&keys, &opts, black_box(&sealed.value), None, &bind, NOW + 1).unwrap())
    });
    c.bench_function("cookie: verify header only", |b| {
        b.iter(|| verify(&keys, &opts, black_box(&sealed.value), &bind, NOW + 1).unwrap())
    });
    let mut forged = sealed.value.clone().into_bytes();
    forged[100] = if forged[100] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    c.bench_function("cookie: reject forged header (MAC)", |b| {
        b.iter(|| verify(&keys, &opts, black_box(&forged), &bind, NOW + 1).unwrap_err())
    });
    c.bench_function("cookie: seal 2-UUID", |b| {
        b.iter(|| seal_with_rng(&keys, &SealOptions::default(), black_box(&data), &bind, NOW, &mut rng).unwrap())
    });
    c.bench_function("cookie: touch", |b| {
        b.iter(|| touch(&keys, black_box(&sealed.header), &sealed.value, &bind, NOW + 120))
    });
    c.bench_function("cookie: Keys::from_secret", |b| b.iter(|| Keys::from_secret(black_box("secret"))));
}

criterion_group!(benches, cookie);
criterion_main!(benches);
