//! Authentication: the principal cache keeps revocation prompt.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::fixture;
use custos_server::auth::PrincipalCache;
use custos_vault::By;

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_lifetime() {
    let f = fixture();
    let key = f.new_admin_key();
    let id = key.split('_').nth(1).expect("a key id").to_string();
    let ok = f.send_as(&key, Method::GET, "/v1/policy", None, None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert!(f.with_vault(|v| v.revoke_api_key(&id, &By::Cli)).expect("revoke"));
    tokio::time::sleep(PrincipalCache::TTL + Duration::from_millis(100)).await;
    let refused = f.send_as(&key, Method::GET, "/v1/policy", None, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text());
    // Other keys are unaffected.
    let admin = f.send(Method::GET, "/v1/policy", None, None).await;
    assert_eq!(admin.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_key_is_refused_every_time() {
    let f = fixture();
    let mut forged = f.admin.clone();
    forged.pop();
    forged.push(if f.admin.ends_with('0') { '1' } else { '0' });
    for _ in 0..3 {
        let r = f.send_as(&forged, Method::GET, "/v1/policy", None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}
