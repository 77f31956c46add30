//! The `/v1` hot path does not query the database per request: keys come from the cache,
//! which every change invalidates at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::{Catalog, ErrorCode, Role};
use engine::accounts::SignUp;
use engine::keys::{KeyChange, NewKey};
use engine::{Engine, EngineSettings};
use std::sync::Arc;

#[tokio::test]
async fn repeated_requests_hit_the_cache_and_changes_invalidate_it() {
    let db = testkit::db::TestDb::sqlite();
    let sql = Arc::new(store::connect(db.backend.clone()).await.unwrap());
    let settings = EngineSettings {
        pepper: b"pepper".to_vec(),
        ..Default::default()
    };
    let engine = Engine::start(sql.clone(), Catalog::default(), Vec::new(), settings)
        .await
        .unwrap();
    let account = engine
        .sign_up(SignUp {
            email: "c@example.com".into(),
            password: "long enough pw".into(),
            name: String::new(),
            role: Role::User,
        })
        .await
        .unwrap();
    let (record, secret) = engine
        .create_key(
            &account.id,
            NewKey {
                name: "k".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    for _ in 0..1000 {
        engine.authenticate(Some(secret.expose())).await.unwrap();
    }
    assert_eq!(
        sql.key_lookups(),
        1,
        "one database lookup for 1000 requests"
    );

    let change = KeyChange {
        disabled: Some(true),
        ..Default::default()
    };
    engine
        .update_key(&account.id, &record.id, change)
        .await
        .unwrap();
    let err = engine
        .authenticate(Some(secret.expose()))
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InvalidApiKey,
        "the change is seen at once"
    );
    assert_eq!(sql.key_lookups(), 2, "after invalidation, one reload");

    // Malformed and unknown keys: the checksum stops malformed ones before any lookup, and a
    // forged well-formed one is looked up once, then remembered as unknown.
    for _ in 0..100 {
        assert!(engine.authenticate(Some("sk-sy-not-a-key")).await.is_err());
    }
    assert_eq!(sql.key_lookups(), 2);
    let forged = domain::ApiKeySecret::generate();
    for _ in 0..100 {
        assert!(engine.authenticate(Some(forged.expose())).await.is_err());
    }
    assert_eq!(sql.key_lookups(), 3);
    engine.shutdown().await;
}
