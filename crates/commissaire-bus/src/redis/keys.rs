//! The Redis key names of one exchange (see the table in [`super`]).

/// The key names of one exchange.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub(super) prefix: String,
}

impl Keys {
    pub(super) fn new(exchange: &str) -> Self {
        Keys {
            prefix: format!("commissaire:{exchange}"),
        }
    }
    pub(super) fn bindings(&self) -> String {
        format!("{}:bindings", self.prefix)
    }
    pub(super) fn queue(&self, queue: &str) -> String {
        format!("{}:queue:{queue}", self.prefix)
    }
    pub(super) fn processing(&self, queue: &str, consumer: &str) -> String {
        format!("{}:processing:{queue}:{consumer}", self.prefix)
    }
    pub(super) fn consumers(&self, queue: &str) -> String {
        format!("{}:consumers:{queue}", self.prefix)
    }
    pub(super) fn alive(&self, consumer: &str) -> String {
        format!("{}:alive:{consumer}", self.prefix)
    }
    pub(super) fn reply_prefix(&self) -> String {
        format!("{}:reply:", self.prefix)
    }
    pub(super) fn topic(&self, routing_key: &str) -> String {
        format!("{}:topic:{routing_key}", self.prefix)
    }
    /// A `PSUBSCRIBE` glob matching (at least) the channels of every key that
    /// the topic `pattern` matches; deliveries are then filtered exactly.
    pub(super) fn topic_glob(&self, pattern: &str) -> String {
        let words: Vec<&str> = pattern.split('.').collect();
        let literal = words
            .iter()
            .take_while(|w| **w != "*" && **w != "#")
            .count();
        let mut glob = glob_escape(&format!(
            "{}:topic:{}",
            self.prefix,
            words[..literal].join(".")
        ));
        if literal < words.len() {
            glob.push('*');
        }
        glob
    }
}

/// `text` with Redis glob metacharacters escaped.
pub(super) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_globs_cover_their_patterns() {
        let keys = Keys::new("ex");
        assert_eq!(
            keys.topic_glob("storage.get"),
            "commissaire:ex:topic:storage.get"
        );
        assert_eq!(
            keys.topic_glob("storage.*"),
            "commissaire:ex:topic:storage*"
        );
        assert_eq!(keys.topic_glob("notify.#"), "commissaire:ex:topic:notify*");
        assert_eq!(keys.topic_glob("#"), "commissaire:ex:topic:*");
        assert_eq!(keys.topic_glob("*.x"), "commissaire:ex:topic:*");
        assert_eq!(
            Keys::new("a*b").topic_glob("q?"),
            "commissaire:a\\*b:topic:q\\?"
        );
    }
}
