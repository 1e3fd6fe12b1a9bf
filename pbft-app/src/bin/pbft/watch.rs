//! `pbft status --watch`: a live view of the cluster. Every interval it
//! asks each replica for its status and shows, per replica, its view and
//! mode, how far it executed and how fast, how far it lags the most advanced
//! replica, its links and send queues, rejections per second and any
//! checkpoint disagreement. On a terminal it redraws in place (ratatui) and
//! quits on q, Esc or Ctrl-C; otherwise it prints one block of plain lines
//! per refresh.

use pbft_app::cluster_config::ClusterConfig;
use pbft_app::node::{agreement, cluster_status, role, Agreement};
use pbft_core::ClientId;
use pbft_net::NodeStatus;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// One replica's line of the live view.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The replica's id, marked `T` for a demonstration traitor.
    pub replica: String,
    /// `primary` or `backup` (in its own view); empty when unreachable.
    pub role: &'static str,
    /// Its view.
    pub view: Option<u64>,
    /// `normal`, `view-change`, `recovering` or `unreachable`.
    pub mode: &'static str,
    /// The last sequence number it executed.
    pub executed: Option<u64>,
    /// Sequence numbers executed per second since the previous refresh.
    pub rate: Option<f64>,
    /// How far it is behind the most advanced replica that answered.
    pub lag: Option<u64>,
    /// Outgoing links up, out of n − 1.
    pub links: Option<(u64, usize)>,
    /// Frames waiting in its send queues, all peers together.
    pub queued: Option<u64>,
    /// Messages it rejected per second since the previous refresh.
    pub rejections: Option<f64>,
    /// The sequence number of the latest checkpoint it saw disagreement at.
    pub disagreement: Option<u64>,
}

/// The replicas' statuses at one moment.
pub struct Sample {
    at: Instant,
    statuses: Vec<Option<NodeStatus>>,
}

/// The live view's rows for `now`, with rates against `previous`.
pub fn rows(config: &ClusterConfig, previous: Option<&Sample>, now: &Sample) -> Vec<Row> {
    let leader = now.statuses.iter().flatten().map(|s| s.last_executed).max().unwrap_or(0);
    let peers = config.n().saturating_sub(1);
    let per_second = |index: usize, value: &dyn Fn(&NodeStatus) -> u64| -> Option<f64> {
        let previous = previous?;
        let (before, after) = (previous.statuses.get(index)?.as_ref()?, now.statuses.get(index)?.as_ref()?);
        let seconds = now.at.duration_since(previous.at).as_secs_f64();
        (seconds > 0.0).then(|| value(after).saturating_sub(value(before)) as f64 / seconds)
    };
    config
        .replicas
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let replica = match role(config, entry.id).as_str() {
                "honest" => entry.id.0.to_string(),
                _ => format!("{} T", entry.id.0),
            };
            match now.statuses.get(index).and_then(Option::as_ref) {
                None => Row {
                    replica,
                    role: "",
                    view: None,
                    mode: "unreachable",
                    executed: None,
                    rate: None,
                    lag: None,
                    links: None,
                    queued: None,
                    rejections: None,
                    disagreement: None,
                },
                Some(status) => Row {
                    replica,
                    role: if status.primary { "primary" } else { "backup" },
                    view: Some(status.view),
                    mode: if status.recovering {
                        "recovering"
                    } else if status.normal {
                        "normal"
                    } else {
                        "view-change"
                    },
                    executed: Some(status.last_executed),
                    rate: per_second(index, &|s| s.last_executed),
                    lag: Some(leader.saturating_sub(status.last_executed)),
                    links: Some((status.net.links_up, peers)),
                    queued: Some(status.peers.iter().map(|p| p.send_queue_frames).sum()),
                    rejections: per_second(index, &notable_rejections),
                    disagreement: status.disagreement.as_ref().map(|d| d.seq),
                },
            }
        })
        .collect()
}

/// Rejections but for `Unneeded` votes (those that arrive after their
/// quorum is complete: a third of all votes in a healthy cluster of 4).
fn notable_rejections(status: &NodeStatus) -> u64 {
    status.rejections.iter().filter(|(reason, _)| reason.as_str() != "Unneeded").map(|(_, count)| count).sum()
}

/// The column titles, and each row's cells, sized for 80 columns.
const HEADER: [&str; 11] =
    ["id", "role", "view", "mode", "executed", "per s", "lag", "links", "queue", "rej/s", "disagree"];

/// A row's cells, in [`HEADER`]'s order.
pub fn cells(row: &Row) -> [String; 11] {
    let number = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
    let rate = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0}"));
    [
        row.replica.clone(),
        row.role.to_string(),
        number(row.view),
        row.mode.to_string(),
        number(row.executed),
        rate(row.rate),
        number(row.lag),
        row.links.map_or_else(|| "-".into(), |(up, of)| format!("{up}/{of}")),
        number(row.queued),
        rate(row.rejections),
        row.disagreement.map_or_else(|| "-".into(), |seq| format!("at {seq}")),
    ]
}

/// The line under the table: whether the replicas agree.
fn verdict(statuses: &[Option<NodeStatus>]) -> String {
    let answered = statuses.iter().flatten().count();
    match agreement(statuses) {
        Agreement::Agree => format!("{answered}/{} answered; agreement holds", statuses.len()),
        Agreement::Diverged { seq, .. } => {
            format!("{answered}/{} answered; DIVERGED at sequence number {seq}", statuses.len())
        }
    }
}

/// What the columns mean, under the table.
const LEGEND: &str = "rej/s: rejections but late votes; T: demonstration traitor";

/// How the live view refreshes.
pub struct WatchOptions {
    /// Ask as this client.
    pub client: ClientId,
    /// Time between refreshes.
    pub interval: Duration,
    /// Stop after this many refreshes (forever when `None`).
    pub count: Option<u64>,
}

/// Runs the live view until q / Esc / Ctrl-C (on a terminal), or until
/// `count` refreshes or Ctrl-C (otherwise).
pub fn watch(config: &ClusterConfig, options: &WatchOptions) -> anyhow::Result<()> {
    let runtime = crate::runtime::runtime()?;
    let timeout = options.interval.min(Duration::from_millis(800));
    let mut sample = || -> anyhow::Result<Sample> {
        let statuses = runtime.block_on(cluster_status(config, options.client, timeout))?;
        Ok(Sample { at: Instant::now(), statuses })
    };
    if std::io::stdout().is_terminal() {
        screen::run(config, options, &mut sample)
    } else {
        plain(config, options, &mut sample)
    }
}

/// Plain lines: a block per refresh, for pipes and files.
fn plain(
    config: &ClusterConfig,
    options: &WatchOptions,
    sample: &mut dyn FnMut() -> anyhow::Result<Sample>,
) -> anyhow::Result<()> {
    let mut previous: Option<Sample> = None;
    let mut refreshes = 0;
    loop {
        let now = sample()?;
        println!("-- {}", pbft_net::unix_micros() / 1_000_000);
        println!("{}", format_line(&HEADER.map(String::from)));
        for row in rows(config, previous.as_ref(), &now) {
            println!("{}", format_line(&cells(&row)));
        }
        println!("{}", verdict(&now.statuses));
        println!("{LEGEND}");
        previous = Some(now);
        refreshes += 1;
        if options.count.is_some_and(|count| refreshes >= count) {
            return Ok(());
        }
        std::thread::sleep(options.interval);
    }
}

/// Column widths for 80 columns.
const WIDTHS: [usize; 11] = [4, 7, 4, 11, 8, 5, 4, 5, 5, 5, 8];

fn format_line(cells: &[String; 11]) -> String {
    cells.iter().zip(WIDTHS).map(|(cell, width)| format!("{cell:<width$}")).collect::<Vec<_>>().join(" ")
}

/// The terminal screen, redrawn in place.
mod screen {
    use super::{cells, rows, verdict, Sample, WatchOptions, HEADER, LEGEND, WIDTHS};
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use pbft_app::cluster_config::ClusterConfig;
    use ratatui::layout::{Constraint, Layout};
    use ratatui::style::{Modifier, Style};
    use ratatui::widgets::{Block, Paragraph, Row as TableRow, Table};
    use std::time::Instant;

    /// Puts the terminal back as it was, however the view ends.
    struct Restore;

    impl Drop for Restore {
        fn drop(&mut self) {
            ratatui::restore();
        }
    }

    pub(super) fn run(
        config: &ClusterConfig,
        options: &WatchOptions,
        sample: &mut dyn FnMut() -> anyhow::Result<Sample>,
    ) -> anyhow::Result<()> {
        let mut terminal = ratatui::try_init()?;
        let _restore = Restore;
        let mut previous: Option<Sample> = None;
        let mut refreshes = 0;
        loop {
            let now = sample()?;
            let table_rows = rows(config, previous.as_ref(), &now);
            let footer = format!("{}   q: quit\n{LEGEND}", verdict(&now.statuses));
            terminal.draw(|frame| {
                let title = format!(" pbft cluster {} — n = {}, f = {} ", config.name, config.n(), config.f);
                let [table_area, footer_area] =
                    Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(frame.area());
                let header = TableRow::new(HEADER).style(Style::default().add_modifier(Modifier::BOLD));
                let body = table_rows.iter().map(|row| TableRow::new(cells(row)));
                let widths = WIDTHS.map(|w| Constraint::Length(w as u16));
                let table = Table::new(body, widths).header(header).block(Block::bordered().title(title));
                frame.render_widget(table, table_area);
                frame.render_widget(Paragraph::new(footer.as_str()), footer_area);
            })?;
            previous = Some(now);
            refreshes += 1;
            if options.count.is_some_and(|count| refreshes >= count) {
                return Ok(());
            }
            let next = Instant::now() + options.interval;
            while let Some(left) = next.checked_duration_since(Instant::now()) {
                if event::poll(left)? {
                    if let Event::Key(key) = event::read()? {
                        let ctrl_c =
                            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                        let quit = matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c;
                        if key.kind == KeyEventKind::Press && quit {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is a failed test

    use super::*;
    use pbft_net::{NetCounters, PeerCounters};

    fn config() -> ClusterConfig {
        let dir = std::env::temp_dir().join(format!("pbft-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut toml = String::from("[cluster]\nkeys_dir = \"keys\"\ndev_keys = true\n\n");
        for id in 0..4 {
            toml += &format!("[[replica]]\nid = {id}\naddress = \"127.0.0.1:{}\"\n\n", 7000 + id);
        }
        toml += "[[client]]\nid = 0\n";
        std::fs::write(dir.join("cluster.toml"), toml).unwrap();
        ClusterConfig::load(&dir.join("cluster.toml")).unwrap()
    }

    fn status(replica: u32, last_executed: u64, rejected: u64) -> Option<NodeStatus> {
        let rejections =
            [("Unneeded".to_string(), 1000 * last_executed), ("BadSignature".to_string(), rejected)];
        Some(NodeStatus {
            replica,
            view: 2,
            normal: true,
            primary: replica == 2,
            recovering: false,
            last_executed,
            stable_checkpoint: 0,
            stable_checkpoint_digest: String::new(),
            state_digest: String::new(),
            rejected_messages: rejections.iter().map(|(_, count)| count).sum(),
            rejections: rejections.into_iter().collect(),
            pending_requests: 0,
            held_reads: 0,
            log_slots: 0,
            net: NetCounters { links_up: 3, ..NetCounters::default() },
            peers: vec![PeerCounters { send_queue_frames: 4, ..PeerCounters::default() }],
            open_connections: 0,
            disagreement: None,
        })
    }

    /// Rates come from the difference between two samples over the time
    /// between them (rejections without the late votes); lag is measured
    /// against the most advanced replica; a replica that did not answer is
    /// unreachable; every row fits in 80 columns.
    #[test]
    fn rows_show_rates_lag_and_unreachable_replicas() {
        let config = config();
        let start = Instant::now();
        let before =
            Sample { at: start, statuses: vec![status(0, 10, 0), status(1, 10, 5), status(2, 10, 0), None] };
        let after = Sample {
            at: start + Duration::from_secs(2),
            statuses: vec![status(0, 30, 0), status(1, 24, 9), status(2, 30, 0), None],
        };
        let rows = rows(&config, Some(&before), &after);
        assert_eq!(
            cells(&rows[0]),
            ["0", "backup", "2", "normal", "30", "10", "0", "3/3", "4", "0", "-"].map(String::from)
        );
        assert_eq!(cells(&rows[1])[5..7], ["7".to_string(), "6".to_string()]);
        assert_eq!(cells(&rows[1])[9], "2");
        assert_eq!(rows[2].role, "primary");
        assert_eq!(rows[3].mode, "unreachable");
        for row in &rows {
            assert!(format_line(&cells(row)).trim_end().chars().count() <= 80);
        }
        assert!(format_line(&HEADER.map(String::from)).trim_end().chars().count() <= 80);
    }
}
