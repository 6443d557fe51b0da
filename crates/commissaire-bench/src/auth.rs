//! Authentication refusals: what a refused request costs for a user name
//! the server does not know and for a known user with a wrong password.
//! They must cost about the same (within 2x), or the answer time tells
//! which user names exist.

use std::time::{Duration, Instant};

use crate::measure::Stats;
use crate::report::Row;
use crate::stack::Api;

/// `total` refusals of each kind, alternated, one at a time. After each
/// refusal an authenticated request from the same address clears the
/// failed-login throttle, so no refusal is held back by it.
pub async fn refusal_rows(setup: &str, api: &Api, total: usize) -> anyhow::Result<Vec<Row>> {
    let mut unknown = Stats::default();
    let mut wrong = Stats::default();
    let started = Instant::now();
    for i in 0..total * 2 {
        let (user, stats) = if i % 2 == 0 {
            ("nobody-by-this-name", &mut unknown)
        } else {
            ("a", &mut wrong)
        };
        let t = Instant::now();
        let result = api
            .send_as(
                user,
                "not-the-password",
                reqwest::Method::GET,
                "/api/v0/clusters",
            )
            .await;
        stats.latencies.push(t.elapsed());
        match result {
            Ok((403, _)) => {}
            Ok((status, body)) => stats.error(format!("{user}: {status} {}", body.text())),
            Err(e) => stats.error(format!("{user}: {e:#}")),
        }
        api.get_ok("/api/v0/clusters").await?;
    }
    let elapsed = started.elapsed() / 2;
    for s in [&mut unknown, &mut wrong] {
        s.latencies.sort();
        s.elapsed = elapsed;
    }
    let ratio = ratio(unknown.pct(0.5), wrong.pct(0.5));
    let met = (0.5..=2.0).contains(&ratio);
    eprintln!("  refusals: unknown/known p50 ratio {ratio:.2}");
    Ok(vec![
        Row::from_stats(setup, "refused: unknown user", 1, &unknown),
        Row::from_stats(setup, "refused: known user, wrong password", 1, &wrong).with_note(
            format!(
                "unknown/known p50 {ratio:.2}; target within 2x: {}",
                if met { "met" } else { "MISSED" }
            ),
        ),
    ])
}

/// `a / b`, 0 when `b` is zero.
fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}
