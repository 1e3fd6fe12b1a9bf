//! One request's path through the cluster as a table: for each replica, when
//! it reached each phase of the normal case, in milliseconds from an origin
//! (the client's send when known, otherwise the earliest time any replica
//! recorded). What `pbft kv … --trace` and `pbft trace` print.

use pbft_core::ClientId;
use pbft_net::RequestTrace;
use std::fmt::Write;

/// The table of `traces` (entry `i` is replica `i`'s record, `None` where
/// it has none) for `client`'s request `timestamp`, times measured from
/// `origin` (wall-clock microseconds since the Unix epoch) or, without one,
/// from the earliest recorded phase. `None` when no replica has a record.
pub fn render(
    traces: &[Option<RequestTrace>],
    client: ClientId,
    timestamp: u64,
    origin: Option<u64>,
) -> Option<String> {
    let recorded = || traces.iter().flatten();
    let earliest = recorded().flat_map(|t| t.phases.in_order().into_iter().filter_map(|(_, at)| at)).min();
    let (origin, from) = match origin {
        Some(origin) => (origin, "the client's send"),
        None => (earliest?, "the earliest phase any replica recorded"),
    };
    recorded().next()?;
    let mut text = String::new();
    let _ = writeln!(text, "request {timestamp} of client {}; times in ms from {from}", client.0);
    let ordered: Vec<String> = {
        let mut views: Vec<(u64, u64, u32)> =
            recorded().filter_map(|t| Some((t.view?, t.seq?, t.primary?))).collect();
        views.sort_unstable();
        views.dedup();
        views
            .iter()
            .map(|(view, seq, primary)| format!("view {view}, seq {seq}, primary {primary}"))
            .collect()
    };
    match ordered.as_slice() {
        [] => text.push_str("not ordered (an unordered read, or a repeat answered from the reply cache)\n"),
        list => {
            let _ = writeln!(text, "ordered in {}", list.join("; "));
        }
    }
    let names = traces.iter().flatten().next().map(|t| t.phases.in_order().map(|(name, _)| name));
    let names = names.unwrap_or_default();
    let _ = write!(text, "{:<10}", "replica");
    for name in names {
        let _ = write!(text, "{name:>13}");
    }
    text.push('\n');
    for (index, trace) in traces.iter().enumerate() {
        let Some(trace) = trace else {
            let _ = writeln!(text, "{index:<10}no record of this request");
            continue;
        };
        let role = if trace.primary == Some(trace.replica) { " (P)" } else { "" };
        let _ = write!(text, "{:<10}", format!("{index}{role}"));
        for (name, at) in trace.phases.in_order() {
            let cell = match at {
                Some(at) => {
                    let ms = (i128::from(at) - i128::from(origin)) as f64 / 1000.0;
                    let mark = if name == "received" && !trace.from_client { "*" } else { "" };
                    format!("{mark}{ms:.2}")
                }
                None => "-".to_string(),
            };
            let _ = write!(text, "{cell:>13}");
        }
        if trace.from_cache {
            text.push_str("  (answered from the reply cache)");
        }
        text.push('\n');
    }
    if recorded().any(|t| !t.from_client && t.phases.received.is_some()) {
        text.push_str(
            "* first seen inside the primary's PRE-PREPARE (the client sent it to the primary only)\n",
        );
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_net::PhaseTimes;

    fn trace(replica: u32, base: u64, from_client: bool) -> RequestTrace {
        let at = |k: u64| Some(base + k * 1000);
        RequestTrace {
            replica,
            view: Some(0),
            seq: Some(3),
            primary: Some(0),
            from_cache: false,
            from_client,
            phases: PhaseTimes {
                received: at(0),
                pre_prepared: at(1),
                prepared: at(2),
                committed_local: at(3),
                executed: at(4),
                replied: at(5),
            },
        }
    }

    /// Every replica's row lists its phases in order in ms from the origin;
    /// a replica without a record says so; the primary is marked.
    #[test]
    fn a_timeline_has_a_row_per_replica_with_times_from_the_origin() {
        let traces = [Some(trace(0, 10_000, true)), Some(trace(1, 10_500, false)), None];
        let text = render(&traces, ClientId(4), 77, Some(9_000)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "request 77 of client 4; times in ms from the client's send");
        assert_eq!(lines[1], "ordered in view 0, seq 3, primary 0");
        let cells = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(cells(lines[3]), ["0", "(P)", "1.00", "2.00", "3.00", "4.00", "5.00", "6.00"]);
        assert_eq!(cells(lines[4]), ["1", "*1.50", "2.50", "3.50", "4.50", "5.50", "6.50"]);
        assert_eq!(lines[5], "2         no record of this request");
        assert!(lines[6].starts_with("* first seen inside"));
    }

    /// Without an origin, times count from the earliest phase recorded; with
    /// no record anywhere there is no timeline.
    #[test]
    fn without_an_origin_the_earliest_phase_is_zero_and_no_record_is_none() {
        let text = render(&[Some(trace(0, 10_000, true))], ClientId(0), 1, None).unwrap();
        assert!(text.lines().nth(3).is_some_and(|row| row.contains(" 0.00")), "{text}");
        assert_eq!(render(&[None, None], ClientId(0), 1, None), None);
        assert_eq!(render(&[None], ClientId(0), 1, Some(5)), None);
    }
}
