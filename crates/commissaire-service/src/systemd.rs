//! systemd's service protocol (`Type=notify`): `READY=1` once the process
//! really serves, `WATCHDOG=1` pings while its runtime runs (when the unit
//! sets `WatchdogSec=`), `RELOADING=1` … `READY=1` around a reload, and
//! `STOPPING=1` at a graceful stop. Without `$NOTIFY_SOCKET` (not started
//! by systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// Tells systemd the process serves (start-up is over, or a reload is).
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// Tells systemd a reload began (`ready` ends it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Tells systemd the process is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Reports `status` as the unit's status line (`systemctl status`).
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// When the unit has a watchdog (`WATCHDOG_USEC` for this process), pings
/// it at half its period from a task on the current runtime, so a runtime
/// that stops making progress gets the process restarted. Returns the
/// period, `None` without a watchdog.
pub fn spawn_watchdog() -> Option<Duration> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
    tracing::info!(
        period_ms = period.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    Some(period)
}
