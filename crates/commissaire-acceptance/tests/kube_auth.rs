//! The bearer-token authentication plugin against the test bed's real
//! Kubernetes API server: with `method=tokenreview` (any Kubernetes, and
//! OpenShift) the server asks the API server who a token is, with its own
//! token; with `method=user` (OpenShift's `user.openshift.io` API, which a
//! plain Kubernetes does not serve) every token is refused.

mod common;

use commissaire_testkit::kube_api::RealKube;
use common::{Stack, StackOptions};

/// `GET /api/v0/clusters` with `Authorization: Bearer TOKEN`: the status.
async fn with_bearer(stack: &Stack, token: &str) -> u16 {
    stack
        .client
        .get(stack.url("/api/v0/clusters"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn stack_with(plugin: String) -> Stack {
    let mut options = StackOptions::default();
    options.args.authentication_plugins.push(plugin);
    Stack::start_with(options).await
}

#[tokio::test]
async fn a_token_the_api_server_knows_is_let_in_by_tokenreview_and_others_are_not() {
    let kube = RealKube::connect(&[]).await;
    let stack = stack_with(format!(
        "openshiftbearertokenauth:url={},method=tokenreview,token={},ca={},cache_ttl=0",
        kube.url,
        kube.token,
        kube.ca.display()
    ))
    .await;
    // The restricted user's token: the API server vouches for `viewer`.
    assert_eq!(with_bearer(&stack, &kube.restricted_token).await, 200);
    assert_eq!(with_bearer(&stack, "not-a-token-it-knows").await, 403);
    // Basic credentials still go to the first plugin.
    assert_eq!(stack.get("/api/v0/clusters").await.0, 200);

    // The server's own token is not one the API server accepts: no review,
    // every token refused.
    let stack = stack_with(format!(
        "openshiftbearertokenauth:url={},method=tokenreview,token=wrong,ca={},cache_ttl=0",
        kube.url,
        kube.ca.display()
    ))
    .await;
    assert_eq!(with_bearer(&stack, &kube.restricted_token).await, 403);
}

#[tokio::test]
async fn openshifts_user_method_refuses_every_token_on_a_plain_kubernetes() {
    let kube = RealKube::connect(&[]).await;
    let stack = stack_with(format!(
        "openshiftbearertokenauth:url={},ca={},cache_ttl=0",
        kube.url,
        kube.ca.display()
    ))
    .await;
    assert_eq!(with_bearer(&stack, &kube.token).await, 403);
    assert_eq!(with_bearer(&stack, &kube.restricted_token).await, 403);
}
