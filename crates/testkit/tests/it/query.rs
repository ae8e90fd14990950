//! `GET /v2/iam/sessions`: one query over every kind of session, with Intersight's options.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tessera_api_types as wire;
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

async fn seed(t: &TestApp) -> Vec<String> {
    let mut moids = vec![];
    for (i, email) in ["ann@example.com", "bob@example.com", "cy%@example.com"].iter().enumerate() {
        t.admin
            .create_user(&wire::UserCreate {
                email: (*email).into(),
                password: Some(PASSWORD.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        for _ in 0..=i {
            let s = t
                .anonymous()
                .sign_in(&wire::SignInRequest {
                    email: (*email).into(),
                    password: PASSWORD.into(),
                    organization_id: None,
                })
                .await
                .unwrap();
            moids.push(s.session.moid);
            t.clock.advance(10);
        }
    }
    moids
}

async fn get(t: &TestApp, query: &str) -> (StatusCode, Value) {
    t.admin.raw(Method::GET, &format!("/v2/iam/sessions?{query}"), None).await.unwrap()
}

fn moids(v: &Value) -> Vec<String> {
    v["Results"].as_array().unwrap().iter().map(|r| r["moid"].as_str().unwrap().to_owned()).collect()
}

async fn filters_orders_selects_and_counts(backend: Backend) {
    let t = spawn_app(backend).await;
    let all = seed(&t).await;
    let (code, v) = get(&t, "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v["Count"], 6);
    assert_eq!(moids(&v), all);

    let (_, v) = get(&t, "$filter=user_id_or_email%20eq%20'bob@example.com'").await;
    assert_eq!(moids(&v), all[1..3].to_vec());
    let (_, v) = get(&t, "$filter=contains(user_id_or_email,'%25')&$orderby=create_time%20desc").await;
    assert_eq!(moids(&v), vec![all[5].clone(), all[4].clone(), all[3].clone()]);
    let (_, v) = get(&t, "$filter=create_time%20ge%20now()%20sub%20PT30S%20and%20kind%20eq%20'login'").await;
    assert_eq!(v["Count"], 3);
    let (_, v) = get(&t, "$top=2&$skip=2").await;
    assert_eq!((moids(&v), v["Count"].as_u64()), (all[2..4].to_vec(), Some(6)));
    let (_, v) = get(&t, "$select=moid,status&$top=1").await;
    let row = v["Results"][0].as_object().unwrap();
    assert_eq!(row.keys().collect::<Vec<_>>(), vec!["moid", "status"]);
    let (_, v) = get(&t, "$count=true&$filter=status%20eq%20'Active'").await;
    assert_eq!(v, serde_json::json!({"Count": 6}));
    let (_, v) = get(&t, "$inlinecount=none&$top=1").await;
    assert!(v.get("Count").is_none() && v["Results"].as_array().unwrap().len() == 1);
}

async fn skiptokens_walk_an_ordered_scan(backend: Backend) {
    let t = spawn_app(backend).await;
    let all = seed(&t).await;
    let mut seen = vec![];
    let mut query = "$orderby=create_time%20desc&$top=4".to_owned();
    loop {
        let (code, v) = get(&t, &query).await;
        assert_eq!(code, StatusCode::OK);
        seen.extend(moids(&v));
        match v["NextSkipToken"].as_str() {
            Some(tok) => query = format!("$orderby=create_time%20desc&$top=4&$skiptoken={tok}"),
            None => break,
        }
    }
    let mut want = all.clone();
    want.reverse();
    assert_eq!(seen, want);
}

async fn timed_out_sessions_read_as_ended_without_a_sweeper(backend: Backend) {
    let t = spawn_app(backend).await;
    t.admin
        .put_session_limits(&wire::SessionLimitsView {
            idle_timeout: 300,
            absolute_timeout: 57_600,
            max_sessions_per_user: 32,
        })
        .await
        .unwrap();
    let all = seed(&t).await;
    t.clock.advance(1_000);
    let (_, v) = get(&t, "$filter=status%20eq%20'Active'").await;
    assert_eq!(v["Count"], 0);
    let (_, v) = get(&t, "$filter=end_reason%20eq%20'idle_timeout'&$top=1").await;
    assert_eq!(v["Count"], 6);
    assert_eq!(v["Results"][0]["status"], "Ended");
    assert_eq!(moids(&v), vec![all[0].clone()]);
}

async fn bad_queries_are_400s_that_point_at_the_problem(backend: Backend) {
    let t = spawn_app(backend).await;
    let cases: &[(&str, &str, &str)] = &[
        ("$filter=statuz%20eq%20'x'", "$filter", "at 0: unknown field 'statuz'"),
        (
            "$filter=failed_logins%20eq%20'abc'",
            "$filter",
            "at 17: field 'failed_logins' is a number; 'abc' is a string",
        ),
        ("$filter=status%20eq", "$filter", "at 9: expected a value after 'eq', found end of input"),
        ("$orderby=status%20up", "$orderby", "at 7: expected 'asc' or 'desc'"),
        ("$top=0", "$top", "must be from 1 to 1000"),
        ("$top=1001", "$top", "must be from 1 to 1000"),
        ("$top=ten", "$top", "integer"),
        ("$skip=-1", "$skip", "non-negative"),
        ("$select=moid,secret", "$select", "at 5: unknown field 'secret'"),
        ("$count=maybe", "$count", "true or false"),
        ("$expand=User", "$expand", "not supported"),
        ("$skiptoken=zzz", "$skiptoken", "not one this server issued"),
        ("$orderby=create_time,status&$skiptoken=eyJpIjoxLCJzIjoxfQ", "$skiptoken", "at most one"),
    ];
    for (query, field, message) in cases {
        let (code, v) = get(&t, query).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["error"]["field"], *field, "{query}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(message), "{query}: {v}");
    }
}

/// A second organization with a user of the same email and password as one of the first's,
/// signed in twice; answers its id and its sessions' moids.
async fn another_organization_with_sessions(t: &TestApp) -> (String, Vec<String>) {
    use tessera_domain::ids::{OrgId, UserId};
    use tessera_domain::user::{Email, Organization, User, UserStatus};
    let org = Organization { id: OrgId::from_random(rand::random()), name: "other".into(), date_created: t.app.now() };
    t.store().create_organization(&org).await.unwrap();
    let user = User {
        id: UserId::from_random(rand::random()),
        org_id: org.id,
        email: Email::parse("ann@example.com").unwrap(),
        first_name: "Other".into(),
        last_name: "Ann".into(),
        status: UserStatus::Active,
        date_created: t.app.now(),
    };
    let hash = tessera_app::hash_password(PASSWORD, rand::random()).unwrap();
    t.store().create_user(&user, Some(&hash)).await.unwrap();
    let mut moids = vec![];
    for _ in 0..2 {
        let s = t
            .anonymous()
            .sign_in(&wire::SignInRequest {
                email: "ann@example.com".into(),
                password: PASSWORD.into(),
                organization_id: Some(org.id.to_string()),
            })
            .await
            .unwrap();
        assert_eq!(s.session.user_id, user.id.to_string(), "signed in to the other organization");
        moids.push(s.session.moid);
    }
    (org.id.to_string(), moids)
}

async fn the_query_needs_its_action_and_stays_in_the_organization(backend: Backend) {
    let t = spawn_app(backend).await;
    let mine = seed(&t).await;
    let (other_org, theirs) = another_organization_with_sessions(&t).await;
    // Every way of asking names only this organization's sessions.
    let (_, v) = get(&t, "$top=1000").await;
    assert_eq!((moids(&v), v["Count"].as_u64()), (mine.clone(), Some(6)));
    let (_, v) = get(&t, &format!("$filter=account_moid%20eq%20'{other_org}'")).await;
    assert_eq!(v["Count"], 0, "{v}");
    for moid in &theirs {
        let (_, v) = get(&t, &format!("$filter=moid%20eq%20'{moid}'")).await;
        assert_eq!(v["Count"], 0, "{v}");
        let err = t.admin.get_session(moid).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    }
    let (_, v) = get(&t, "$filter=user_id_or_email%20eq%20'ann@example.com'&$orderby=create_time%20desc").await;
    assert_eq!(moids(&v), vec![mine[0].clone()], "the other organization's ann is not this one's");
    // A walk by skip token stays inside too.
    let mut seen = vec![];
    let mut query = "$orderby=create_time&$top=2".to_owned();
    loop {
        let (_, v) = get(&t, &query).await;
        seen.extend(moids(&v));
        match v["NextSkipToken"].as_str() {
            Some(tok) => query = format!("$orderby=create_time&$top=2&$skiptoken={tok}"),
            None => break,
        }
    }
    assert_eq!(seen, mine);
    let (_, reader) = t.user_with_policy("reader@example.com", Some(allow(&["iam.user.List"]))).await;
    let err = reader.query_sessions(&[]).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert!(err.to_string().contains("iam.session.List"));
    let (_, lister) = t.user_with_policy("lister@example.com", Some(allow(&["iam.session.List"]))).await;
    let r = lister.query_sessions(&[("$filter", "kind eq 'login'")]).await.unwrap();
    assert_eq!(r.count, Some(6));
}

/// Scripts written against Intersight name fields in PascalCase and count with `$apply`.
async fn intersight_names_and_apply_answer_as_intersight_does(backend: Backend) {
    let t = spawn_app(backend).await;
    let all = seed(&t).await;
    t.admin.terminate_session(&all[0]).await.unwrap();
    let (code, v) =
        get(&t, "$filter=UserIdOrEmail%20eq%20'bob@example.com'%20and%20Status%20eq%20'Active'&$orderby=CreateTime%20desc&$select=Moid,ClientIpAddress,status").await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let rows = v["Results"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["Moid"].as_str().unwrap()).collect::<Vec<_>>(), vec![&all[2], &all[1]]);
    assert_eq!(rows[0].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["ClientIpAddress", "Moid", "status"]);
    assert_eq!(rows[0]["ClientIpAddress"], "127.0.0.1");
    // camelCase is neither name.
    let (code, v) = get(&t, "$filter=userIdOrEmail%20eq%20'x'").await;
    assert_eq!((code, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("$filter")), "{v}");

    let (code, v) = get(&t, "$apply=groupby((Kind,Status),aggregate($count%20as%20Count))").await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"ObjectType": "mo.AggregateTransform", "Results": [
            {"Kind": "login", "Status": "Active", "Count": 5},
            {"Kind": "login", "Status": "Terminated", "Count": 1},
        ]})
    );
    let (_, v) = get(&t, "$apply=filter(user_id_or_email%20ne%20'ann@example.com')/groupby((user_id_or_email),aggregate($count%20as%20n,%20create_time%20with%20max%20as%20newest))").await;
    let rows = v["Results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!((rows[0]["user_id_or_email"].as_str(), rows[0]["n"].as_u64()), (Some("bob@example.com"), Some(2)));
    assert_eq!((rows[1]["user_id_or_email"].as_str(), rows[1]["n"].as_u64()), (Some("cy%@example.com"), Some(3)));
    let (_, newest) = get(
        &t,
        "$filter=user_id_or_email%20eq%20'cy%25@example.com'&$orderby=create_time%20desc&$top=1&$select=create_time",
    )
    .await;
    assert_eq!(rows[1]["newest"], newest["Results"][0]["create_time"], "times read as the records show them");
    let (_, v) = get(&t, "$apply=aggregate($count%20as%20total)").await;
    assert_eq!(v["Results"], serde_json::json!([{"total": 6}]));

    // Bad aggregations point at the problem; other options do not mix with $apply.
    let (code, v) = get(&t, "$apply=groupby((Kind,Nope))").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["field"], "$apply");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("$apply: at 14: unknown field 'Nope'"), "{v}");
    let (code, v) = get(&t, "$apply=aggregate($count%20as%20n)&$top=1").await;
    assert_eq!((code, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("$top")), "{v}");
    // Too many groups is refused, not cut short.
    let (code, v) = get(&t, "$apply=groupby((moid))").await;
    assert_eq!(code, StatusCode::OK, "six groups are fine: {v}");
    assert_eq!(v["Results"].as_array().unwrap().len(), 6);
    // The permission is the query's.
    let (_, reader) = t.user_with_policy("reader@example.com", Some(allow(&["iam.user.List"]))).await;
    let err = reader.query_sessions(&[("$apply", "aggregate($count as n)")]).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
}

tessera_testkit::both_backends!(
    intersight_names_and_apply_answer_as_intersight_does,
    filters_orders_selects_and_counts,
    skiptokens_walk_an_ordered_scan,
    timed_out_sessions_read_as_ended_without_a_sweeper,
    bad_queries_are_400s_that_point_at_the_problem,
    the_query_needs_its_action_and_stays_in_the_organization,
);
