//! The result table: one row per measurement, printed aligned.

use std::time::Duration;

use crate::measure::Stats;

/// One measurement.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Which stack (`all-in-one`, `split AMQP+etcd`, ...).
    pub setup: String,
    /// What was measured.
    pub what: String,
    /// Concurrent callers.
    pub concurrency: Option<usize>,
    /// Number of operations.
    pub n: Option<usize>,
    /// Operations per second.
    pub rate: Option<f64>,
    /// Median latency.
    pub p50: Option<Duration>,
    /// 99th percentile latency.
    pub p99: Option<Duration>,
    /// Anything else: errors, targets, memory, breakdowns.
    pub note: String,
}

impl Row {
    /// A row with only a setup, a name and a note.
    pub fn note(setup: &str, what: impl Into<String>, note: impl Into<String>) -> Row {
        Row {
            setup: setup.to_string(),
            what: what.into(),
            note: note.into(),
            ..Row::default()
        }
    }

    /// A row from timed calls; errors go into the note.
    pub fn from_stats(setup: &str, what: impl Into<String>, concurrency: usize, s: &Stats) -> Row {
        let mut note = String::new();
        if s.errors > 0 {
            note = format!(
                "{} ERRORS (first: {})",
                s.errors,
                s.first_error.as_deref().unwrap_or("?")
            );
        }
        Row {
            setup: setup.to_string(),
            what: what.into(),
            concurrency: Some(concurrency),
            n: Some(s.n()),
            rate: Some(s.rate()),
            p50: Some(s.pct(0.50)),
            p99: Some(s.pct(0.99)),
            note,
        }
    }

    /// Appends `text` to the note.
    pub fn with_note(mut self, text: impl AsRef<str>) -> Row {
        if !self.note.is_empty() {
            self.note.push_str("; ");
        }
        self.note.push_str(text.as_ref());
        self
    }

    fn cells(&self) -> [String; 8] {
        let ms = |d: Option<Duration>| d.map(|d| format!("{:.2}", d.as_secs_f64() * 1e3));
        [
            self.setup.clone(),
            self.what.clone(),
            self.concurrency.map(|c| c.to_string()).unwrap_or_default(),
            self.n.map(|n| n.to_string()).unwrap_or_default(),
            self.rate
                .map(|r| {
                    if r < 100.0 {
                        format!("{r:.1}")
                    } else {
                        format!("{r:.0}")
                    }
                })
                .unwrap_or_default(),
            ms(self.p50).unwrap_or_default(),
            ms(self.p99).unwrap_or_default(),
            self.note.clone(),
        ]
    }
}

const HEADER: [&str; 8] = [
    "setup", "what", "c", "n", "req/s", "p50 ms", "p99 ms", "notes",
];
/// Columns aligned right (numbers).
const RIGHT: [bool; 8] = [false, false, true, true, true, true, true, false];

/// Formats `rows` as an aligned table (a header, a rule, one line per row).
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 8]> = rows.iter().map(Row::cells).collect();
    let mut width = HEADER.map(str::len);
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 8]| {
        let mut out = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = width[i].saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if i == row.len() - 1 {
                out.push_str(cell);
            } else if RIGHT[i] {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(HEADER);
    out.push('\n');
    let rule: usize = width.iter().sum::<usize>() + 2 * (width.len() - 1);
    out.push_str(&"-".repeat(rule.min(200)));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// Whether a target `≥ min req/s and p99 < max_p99` holds for `row`, as a note.
pub fn target(row: &Row, min_rate: f64, max_p99: Duration) -> String {
    let ok = row.rate.is_some_and(|r| r >= min_rate) && row.p99.is_some_and(|p| p < max_p99);
    format!(
        "target >= {min_rate:.0} req/s, p99 < {} ms: {}",
        max_p99.as_millis(),
        if ok { "met" } else { "MISSED" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_aligned() {
        let rows = [
            Row {
                setup: "all-in-one".into(),
                what: "GET /cluster/NAME".into(),
                concurrency: Some(16),
                n: Some(4000),
                rate: Some(12345.6),
                p50: Some(Duration::from_micros(1250)),
                p99: Some(Duration::from_millis(7)),
                note: String::new(),
            },
            Row::note("split AMQP+etcd", "RSS storage", "idle 9.0 MB"),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("setup "));
        assert!(
            lines[2].contains("12346") && lines[2].contains("1.25") && lines[2].contains("7.00")
        );
        // The notes column starts at the same place on every line.
        let at = lines[0].find("notes").unwrap();
        assert_eq!(lines[3].find("idle 9.0 MB"), Some(at));
        // Numbers are aligned right, under their header.
        let end = |line: &str, text: &str| line.find(text).map(|i| i + text.len());
        assert_eq!(end(lines[2], "12346"), end(lines[0], "req/s"));
    }

    #[test]
    fn targets_say_met_or_missed() {
        let mut row = Row::note("s", "w", "");
        row.rate = Some(5000.0);
        row.p99 = Some(Duration::from_millis(5));
        assert!(target(&row, 3000.0, Duration::from_millis(20)).ends_with("met"));
        assert!(target(&row, 10000.0, Duration::from_millis(20)).ends_with("MISSED"));
    }
}
