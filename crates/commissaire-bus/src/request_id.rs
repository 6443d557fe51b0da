//! The id of the HTTP request a bus call is made for, carried with it:
//! the server runs each request in [`REQUEST_ID`]'s scope, every JSON-RPC
//! request sent from within it carries the id (member `request_id`), and
//! the service handling it logs inside a span naming it. So one id finds
//! a request's lines in the server's log and in every daemon's.

tokio::task_local! {
    /// The request id of the task's current work, when there is one.
    pub static REQUEST_ID: String;
}

/// The current task's request id, if it runs in [`REQUEST_ID`]'s scope.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Whether `id` may be used as a request id as a client sent it: 1 to 128
/// letters, digits, `-`, `_`, `.` or `:` (anything else is replaced by a
/// fresh id, so a log line never carries what a client injected).
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_plain_and_short() {
        assert!(is_valid("3f2a-11.x_y:z"));
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(129)] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_id_is_seen_inside_its_scope_only() {
        assert_eq!(current(), None);
        let seen = REQUEST_ID
            .scope("r-1".to_string(), async { current() })
            .await;
        assert_eq!(seen.as_deref(), Some("r-1"));
    }
}
