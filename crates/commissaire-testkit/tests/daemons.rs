//! The split stack starts from the built binaries, serves the API, and a
//! killed daemon is gone until started again.

use std::time::Duration;

use commissaire_testkit::daemons::{Daemon, SplitStack};

#[tokio::test]
async fn split_stack_serves_and_restarts() {
    let mut stack = SplitStack::new(&commissaire_testkit::fresh_vhost(), 4);
    stack.start_all(&Daemon::ALL);
    assert!(
        stack.wait_ready(Duration::from_secs(60)).await,
        "server log:\n{}\nstorage log:\n{}",
        stack.log(Daemon::Server),
        stack.log(Daemon::Storage)
    );
    for daemon in Daemon::ALL {
        let rss = stack
            .rss_kib(daemon)
            .unwrap_or_else(|| panic!("{daemon:?} is not running:\n{}", stack.log(daemon)));
        assert!(rss > 0);
    }
    stack.kill(Daemon::Storage);
    assert!(!stack.is_running(Daemon::Storage));
    assert!(!stack.wait_ready(Duration::from_millis(500)).await);
    stack.start(Daemon::Storage);
    assert!(stack.wait_ready(Duration::from_secs(60)).await);
}
