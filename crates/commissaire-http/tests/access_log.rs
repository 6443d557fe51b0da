//! Request ids on the fast tier's stack: `X-Request-Id` is kept when it is
//! a plain id, replaced by a fresh one when absent or not plain, and
//! returned on every answer (the probes' and refusals' too). The id in the
//! server's and a daemon's log lines: `commissaire-faults`' `logs.rs`.

mod common;

use common::Stack;

async fn request_id(s: &Stack, path: &str, sent: Option<&str>, auth: bool) -> (u16, String) {
    let mut req = s.client.get(s.url(path));
    if auth {
        req = req.basic_auth(common::USER, Some(common::PASSWORD));
    }
    if let Some(id) = sent {
        req = req.header("x-request-id", id);
    }
    let resp = req.send().await.unwrap();
    let id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), id)
}

#[tokio::test]
async fn request_ids_are_kept_when_plain_and_made_when_absent_or_not() {
    let s = Stack::start().await;
    assert_eq!(
        request_id(&s, "/api/v0/clusters", Some("deploy-42.a_b:c"), true).await,
        (200, "deploy-42.a_b:c".to_string())
    );
    let (status, made) = request_id(&s, "/api/v0/clusters", None, true).await;
    assert_eq!(status, 200);
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made:?}");
    let (_, other) = request_id(&s, "/api/v0/clusters", None, true).await;
    assert_ne!(made, other, "every request gets its own id");
    // Not plain (a space, a quote, too long): replaced, never echoed.
    for bad in ["a b", "x\"y", &"z".repeat(129)] {
        let (_, id) = request_id(&s, "/api/v0/clusters", Some(bad), true).await;
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} gave {id:?}");
    }
    // Refusals, unknown paths and probes carry one too.
    assert_eq!(
        request_id(&s, "/api/v0/clusters", Some("r-1"), false).await,
        (403, "r-1".to_string())
    );
    assert_eq!(
        request_id(&s, "/api/v0/nope", Some("r-2"), true).await,
        (404, "r-2".to_string())
    );
    assert_eq!(
        request_id(&s, "/healthz", Some("r-3"), false).await,
        (200, "r-3".to_string())
    );
}
