//! The work queues of `jobs.*` announcements.
//!
//! A job is announced to a service that may not be running: a publisher
//! declares the job's queue and its bindings itself before publishing (AMQP:
//! a durable queue and persistent messages, with publisher confirms; Redis:
//! the bindings registry), so the job waits in the queue instead of being
//! dropped for want of a consumer. The services bind their queues with the
//! same table ([`job_bindings`]).

/// Each job queue (the consuming service's name) with its bindings.
pub const JOB_QUEUES: &[(&str, &[&str])] = &[
    ("investigator", &["jobs.investigate"]),
    ("clusterexec", &["jobs.clusterexec.*"]),
];

/// The queue, and its bindings, that a job announced on `routing_key` goes
/// to; `None` for a key that is no job (`notify.*` announcements, whose
/// subscribers are optional) or a job nobody consumes.
pub fn job_queue(routing_key: &str) -> Option<(&'static str, &'static [&'static str])> {
    if !routing_key.starts_with("jobs.") {
        return None;
    }
    JOB_QUEUES.iter().copied().find(|(_, patterns)| {
        patterns
            .iter()
            .any(|p| crate::topic_matches(p, routing_key))
    })
}

/// The bindings of job queue `queue` (empty for a queue that is none).
pub fn job_bindings(queue: &str) -> Vec<String> {
    JOB_QUEUES
        .iter()
        .filter(|(q, _)| *q == queue)
        .flat_map(|(_, p)| p.iter().map(|s| s.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_map_to_their_service_queues() {
        assert_eq!(job_queue("jobs.investigate").unwrap().0, "investigator");
        assert_eq!(
            job_queue("jobs.clusterexec.restart").unwrap().0,
            "clusterexec"
        );
        assert!(job_queue("jobs.nobody").is_none());
        assert!(job_queue("notify.storage.Host.created").is_none());
        assert_eq!(job_bindings("clusterexec"), vec!["jobs.clusterexec.*"]);
        assert!(job_bindings("storage").is_empty());
    }
}
