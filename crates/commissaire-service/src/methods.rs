//! A service's JSON-RPC methods, each declared once: its name, the type its
//! params deserialise to, and its handler, whose result is serialised.

use std::future::Future;
use std::sync::Arc;

use commissaire_bus::{RpcError, codes};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

type Handler<S> =
    Box<dyn Fn(Arc<S>, Value) -> BoxFuture<'static, Result<Value, RpcError>> + Send + Sync>;

/// The method table of a service `S` (see [`crate::Service::methods`]).
///
/// ```ignore
/// Methods::new()
///     .method("investigate", |me: Arc<Investigator>, p: InvestigateParams| async move {
///         me.investigate(p).await
///     })
/// ```
pub struct Methods<S> {
    table: Vec<(&'static str, Handler<S>)>,
}

impl<S> Default for Methods<S> {
    fn default() -> Self {
        Methods { table: Vec::new() }
    }
}

impl<S: Send + Sync + 'static> Methods<S> {
    /// No methods yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `name`: its params (an object or an array; `null` reads as
    /// `{}`) deserialise to `P`, a bad shape answering -32602 (invalid
    /// params) with serde's reason ("missing field `address`"); what
    /// `handler` returns is serialised as the result.
    pub fn method<P, R, F, Fut>(mut self, name: &'static str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(Arc<S>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, RpcError>> + Send + 'static,
    {
        assert!(
            self.table.iter().all(|(n, _)| *n != name),
            "method {name} declared twice"
        );
        let handler = Arc::new(handler);
        self.table.push((
            name,
            Box::new(move |service, params| {
                let handler = handler.clone();
                Box::pin(async move {
                    let params = if params.is_null() {
                        Value::Object(Default::default())
                    } else {
                        params
                    };
                    let params: P = serde_json::from_value(params).map_err(|e| {
                        RpcError::invalid_params(format!("invalid params for {name}: {e}"))
                    })?;
                    let result = handler(service, params).await?;
                    serde_json::to_value(result).map_err(|e| {
                        RpcError::new(
                            codes::INTERNAL_ERROR,
                            format!("{name}: result not serialisable: {e}"),
                        )
                    })
                })
            }),
        ));
        self
    }

    /// The declared method names, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.table.iter().map(|(n, _)| *n)
    }

    /// Whether `name` is declared.
    pub fn has(&self, name: &str) -> bool {
        self.table.iter().any(|(n, _)| *n == name)
    }

    /// Runs method `name` of `service` on raw `params`; `None` when there
    /// is no such method.
    pub fn call(
        &self,
        service: Arc<S>,
        name: &str,
        params: Value,
    ) -> Option<BoxFuture<'static, Result<Value, RpcError>>> {
        self.table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h(service, params))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize)]
    struct Node {
        #[serde(alias = "name")]
        manager: String,
        address: String,
        #[serde(default)]
        timeout: Option<f64>,
    }

    fn table() -> Methods<()> {
        Methods::new().method("node", |_: Arc<()>, p: Node| async move {
            Ok(json!([p.manager, p.address, p.timeout]))
        })
    }

    async fn call(params: Value) -> Result<Value, RpcError> {
        table().call(Arc::new(()), "node", params).unwrap().await
    }

    #[tokio::test]
    async fn params_deserialise_from_an_object_or_an_array() {
        assert_eq!(
            call(json!({"name": "k", "address": "a"})).await.unwrap(),
            json!(["k", "a", null])
        );
        assert_eq!(
            call(json!(["k", "a", 5.0])).await.unwrap(),
            json!(["k", "a", 5.0])
        );
        assert_eq!(
            call(json!(["k", "a"])).await.unwrap(),
            json!(["k", "a", null])
        );
    }

    #[tokio::test]
    async fn a_bad_shape_is_invalid_params_naming_what_is_wrong() {
        let e = call(json!({"name": "k"})).await.unwrap_err();
        assert_eq!(e.code, codes::INVALID_PARAMS);
        assert!(e.message.contains("address"), "{}", e.message);
        let e = call(json!({"name": 3, "address": "a"})).await.unwrap_err();
        assert_eq!(e.code, codes::INVALID_PARAMS);
        assert!(table().call(Arc::new(()), "other", json!({})).is_none());
        assert_eq!(table().names().collect::<Vec<_>>(), ["node"]);
    }
}
