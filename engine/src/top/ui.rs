//! The terminal side of `flowtap top` (ratatui on crossterm): tabs for the
//! overview and each top list, arrow keys to move, `p` to pause, `q` to quit.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Tabs};
use ratatui::Frame;

use super::{Poller, Ranked, View};

const TABS: [&str; 5] = [
    "1 Overview",
    "2 Talkers",
    "3 DNS names",
    "4 HTTP hosts",
    "5 TLS SNI",
];

struct App {
    poller: Poller,
    tab: usize,
    scroll: usize,
    paused: bool,
    view: Option<View>,
    error: Option<String>,
}

/// Runs the view until `q`, Esc or Ctrl-C.
pub fn run(addr: SocketAddr, interval: Duration) -> std::io::Result<()> {
    let mut app = App {
        poller: Poller::new(addr, interval),
        tab: 0,
        scroll: 0,
        paused: false,
        view: None,
        error: None,
    };
    // The first scrape gives no rates; take it now so the first screen
    // after one interval has them.
    if let Err(e) = app.poller.poll() {
        app.error = Some(e.to_string());
    }
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        let mut next = Instant::now() + interval;
        loop {
            terminal.draw(|f| draw(f, &app))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                            return Ok(())
                        }
                        KeyCode::Right | KeyCode::Tab | KeyCode::Char('l') => {
                            app.tab = (app.tab + 1) % TABS.len();
                            app.scroll = 0;
                        }
                        KeyCode::Left | KeyCode::BackTab | KeyCode::Char('h') => {
                            app.tab = (app.tab + TABS.len() - 1) % TABS.len();
                            app.scroll = 0;
                        }
                        KeyCode::Char(c @ '1'..='5') => {
                            app.tab = usize::from(c as u8 - b'1');
                            app.scroll = 0;
                        }
                        KeyCode::Down | KeyCode::Char('j') => app.scroll += 1,
                        KeyCode::Up | KeyCode::Char('k') => {
                            app.scroll = app.scroll.saturating_sub(1)
                        }
                        KeyCode::PageDown => app.scroll += 10,
                        KeyCode::PageUp => app.scroll = app.scroll.saturating_sub(10),
                        KeyCode::Char('p') | KeyCode::Char(' ') => app.paused = !app.paused,
                        _ => {}
                    }
                }
                continue;
            }
            next = Instant::now() + interval;
            if !app.paused {
                match app.poller.poll() {
                    Ok(v) => {
                        app.error = None;
                        if v.is_some() {
                            app.view = v;
                        }
                    }
                    Err(e) => app.error = Some(e.to_string()),
                }
            }
        }
    })();
    ratatui::restore();
    result
}

/// 1234567 -> "1.23M".
fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn draw(f: &mut Frame<'_>, app: &App) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let mut head = format!(
        "flowtap top · {} · every {:.1} s",
        app.poller.addr,
        app.poller.interval.as_secs_f64()
    );
    if let Some(v) = &app.view {
        head.push_str(&format!(
            " · {} workers · {} pkt/s · {:.3} Gbit/s · {} flows",
            v.workers.len(),
            si(v.total.packets_per_s),
            v.total.gbit_per_s,
            si(v.total.flows_active)
        ));
    }
    if app.paused {
        head.push_str(" · PAUSED");
    }
    f.render_widget(Paragraph::new(head).bold(), header);
    f.render_widget(
        Tabs::new(TABS.to_vec())
            .select(app.tab)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    let keys = match &app.error {
        Some(e) => Line::from(format!("error: {e}")).red(),
        None => Line::from("←/→ or 1-5: tab · ↑/↓: scroll · p: pause · q: quit"),
    };
    f.render_widget(Paragraph::new(keys), footer);
    let Some(v) = &app.view else {
        f.render_widget(
            Paragraph::new("waiting for a second scrape…").block(Block::bordered()),
            body,
        );
        return;
    };
    match app.tab {
        0 => overview(f, body, v, app.scroll),
        1 => ranked(
            f,
            body,
            "Top talkers (bytes in flow records emitted during the interval)",
            &["address", "sent bit/s", "received bit/s"],
            &v.talkers,
            true,
            app.scroll,
            v.app_metrics,
        ),
        2 => ranked(
            f,
            body,
            "DNS names queried",
            &["name", "queries/s"],
            &v.dns_names,
            false,
            app.scroll,
            v.app_metrics,
        ),
        3 => ranked(
            f,
            body,
            "HTTP hosts",
            &["host", "requests/s"],
            &v.http_hosts,
            false,
            app.scroll,
            v.app_metrics,
        ),
        _ => ranked(
            f,
            body,
            "TLS server names",
            &["sni", "handshakes/s"],
            &v.tls_sni,
            false,
            app.scroll,
            v.app_metrics,
        ),
    }
}

fn overview(f: &mut Frame<'_>, area: Rect, v: &View, scroll: usize) {
    let worker_rows = v.workers.len() as u16 + 1;
    let [workers, drops, sinks] = Layout::vertical([
        Constraint::Length(worker_rows + 3),
        Constraint::Length(v.drops.len().max(1) as u16 + 3),
        Constraint::Min(3),
    ])
    .areas(area);
    let rows = v
        .workers
        .iter()
        .chain(std::iter::once(&v.total))
        .skip(scroll.min(v.workers.len()))
        .map(|w| {
            Row::new(vec![
                Cell::from(w.worker.clone()),
                Cell::from(si(w.packets_per_s)),
                Cell::from(format!("{:.3}", w.gbit_per_s)),
                Cell::from(si(w.flows_active)),
            ])
        });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(12),
                Constraint::Length(10),
                Constraint::Length(12),
            ],
        )
        .header(Row::new(["worker", "packets/s", "Gbit/s", "flows active"]).bold())
        .block(Block::new().borders(Borders::ALL).title("Workers")),
        workers,
    );
    let title = match v.capture_packets_per_s {
        Some(p) => format!("Capture drops (capture receives {} pkt/s)", si(p)),
        None => "Capture drops (no live capture)".to_string(),
    };
    let drop_rows = v.drops.iter().map(|(cause, total, per_s)| {
        Row::new(vec![
            Cell::from(cause.clone()),
            Cell::from(si(*total)),
            Cell::from(si(*per_s)),
        ])
    });
    f.render_widget(
        Table::new(
            drop_rows,
            [
                Constraint::Length(24),
                Constraint::Length(12),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(["cause", "total", "per s"]).bold())
        .block(Block::new().borders(Borders::ALL).title(title)),
        drops,
    );
    let sink_rows = v.sinks.iter().map(|s| {
        Row::new(vec![
            Cell::from(s.name.clone()),
            Cell::from(if s.up { "up" } else { "DOWN" }),
            Cell::from(format!("{}/{}", si(s.queue), si(s.capacity))),
            Cell::from(si(s.events_per_s)),
            Cell::from(si(s.dropped)),
        ])
    });
    f.render_widget(
        Table::new(
            sink_rows,
            [
                Constraint::Min(16),
                Constraint::Length(5),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(["sink", "state", "queue", "events/s", "dropped"]).bold())
        .block(Block::new().borders(Borders::ALL).title("Sinks")),
        sinks,
    );
}

#[allow(clippy::too_many_arguments)]
fn ranked(
    f: &mut Frame<'_>,
    area: Rect,
    title: &str,
    header: &[&str],
    list: &[Ranked],
    two: bool,
    scroll: usize,
    app_metrics: bool,
) {
    let block = Block::new()
        .borders(Borders::ALL)
        .title(format!("{title} · {} entries", list.len()));
    if !app_metrics {
        f.render_widget(
            Paragraph::new(
                "application metrics are off on this instance ([app_metrics] enabled = false)",
            )
            .block(block),
            area,
        );
        return;
    }
    let rows = list
        .iter()
        .enumerate()
        .skip(scroll.min(list.len().saturating_sub(1)))
        .map(|(i, r)| {
            let mut cells = vec![
                Cell::from(format!("{}", i + 1)),
                Cell::from(r.name.clone()),
                Cell::from(si(r.per_s)),
            ];
            if two {
                cells.push(Cell::from(si(r.per_s_2)));
            }
            Row::new(cells)
        });
    let mut head = vec!["#"];
    head.extend_from_slice(header);
    let widths = [
        Constraint::Length(4),
        Constraint::Min(20),
        Constraint::Length(14),
        Constraint::Length(14),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(head).bold())
            .block(block),
        area,
    );
}
