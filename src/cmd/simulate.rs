//! `nwf simulate`: replay a capture through a port's program and show every frame's verdict.

use crate::{output, BindingArgs};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nwf_compiler::driver;
use nwf_compiler::program::{Program, Provenance, Way};
use nwf_simulator::capture::{CaptureReader, CaptureWriter, Captured};
use nwf_simulator::eval::{Context, Verdict};
use nwf_simulator::frame::Frame;
use nwf_simulator::replay::{FrameResult, Replayer, WaySource};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output of `nwf simulate`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    /// One row per frame.
    Table,
    /// One JSON object per frame (JSON lines).
    Json,
    /// Counts per verdict and hits per rule.
    Summary,
}

/// A direction given on the command line, in rule terms.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirArg {
    /// Frames delivered to the VM.
    In,
    /// Frames sent by the VM.
    Out,
}

/// Arguments of `nwf simulate`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    port: BindingArgs,
    /// Direction of frames whose capture does not record one (`out` = sent by the VM).
    #[arg(long, value_enum)]
    direction: Option<DirArg>,
    /// Contents of an ipset, NAME=ADDR[,ADDR...]; sets not given are empty.
    #[arg(long = "ipset", value_name = "NAME=ADDRS")]
    ipsets: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SimFormat::Table)]
    format: SimFormat,
    /// Write the capture back as pcapng with a comment per frame (verdict and rule).
    #[arg(long, value_name = "OUT.pcapng")]
    annotate: Option<PathBuf>,
    /// The capture (pcap or pcapng; Ethernet, Linux cooked SLL or SLL2).
    capture: PathBuf,
}

/// One decoded frame of a batch; its bytes are `bytes[start..end]` of the batch.
struct Item {
    index: usize,
    time: std::time::Duration,
    way: Option<Way>,
    dst_unknown: bool,
    start: usize,
    end: usize,
    frame: Frame,
}

/// Frames passed from the reading thread to the evaluating one.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
}

const BATCH: usize = 1024;

/// Reads and decodes the capture into batches until the end, an error, or the receiver leaving.
fn read_batches(
    mut reader: CaptureReader,
    verify: bool,
    tx: std::sync::mpsc::SyncSender<Result<Batch, String>>,
    recycled: std::sync::mpsc::Receiver<Batch>,
) {
    loop {
        let mut batch = recycled.try_recv().unwrap_or_default();
        batch.items.clear();
        batch.bytes.clear();
        let mut end = false;
        while batch.items.len() < BATCH {
            match reader.next_frame() {
                None => {
                    end = true;
                    break;
                }
                Some(Err(e)) => {
                    if !batch.items.is_empty() {
                        let _ = tx.send(Ok(std::mem::take(&mut batch)));
                    }
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                Some(Ok(c)) => {
                    let start = batch.bytes.len();
                    batch.bytes.extend_from_slice(&c.data);
                    batch.items.push(Item {
                        index: c.index,
                        time: c.time,
                        way: c.way,
                        dst_unknown: c.dst_unknown,
                        start,
                        end: batch.bytes.len(),
                        frame: Frame::decode_with(&c.data, verify),
                    });
                }
            }
        }
        if !batch.items.is_empty() && tx.send(Ok(batch)).is_err() {
            return;
        }
        if end {
            return;
        }
    }
}

fn way_name(w: Way) -> &'static str {
    match w {
        Way::FromVm => "out",
        Way::ToVm => "in",
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
        Verdict::Reject => "reject",
    }
}

fn rule_text(r: Option<&Provenance>) -> String {
    match r {
        Some(p) => format!("{} ({})", p.location, p.filter),
        None => "default".into(),
    }
}

fn json_line(c_index: usize, time: f64, r: &FrameResult) -> serde_json::Value {
    let rule = r.outcome.rule.map(|p| {
        serde_json::json!({
            "filter": p.filter,
            "file": p.location.file,
            "line": p.location.line,
            "column": p.location.column,
            "path": p.path,
        })
    });
    let ct = r.ct.map(|c| {
        let state = nwf_compiler::value::StateSet(c.state).to_string();
        serde_json::json!({ "state": if c.state == 0 { "UNTRACKED".to_string() } else { state }, "dir": format!("{:?}", c.dir).to_lowercase() })
    });
    serde_json::json!({
        "index": c_index,
        "time": time,
        "direction": way_name(r.way),
        "direction_source": r.way_source,
        "verdict": verdict_name(r.outcome.verdict),
        "layer": r.outcome.layer,
        "rule": rule,
        "conntrack": ct,
        "summary": r.frame.to_string(),
    })
}

fn parse_ipsets(specs: &[String]) -> anyhow::Result<BTreeMap<String, BTreeSet<IpAddr>>> {
    let mut sets: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for s in specs {
        let (name, addrs) = s
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--ipset expects NAME=ADDR[,ADDR...], got `{s}`"))?;
        let set = sets.entry(name.to_string()).or_default();
        for a in addrs.split(',').filter(|a| !a.is_empty()) {
            set.insert(
                a.parse()
                    .map_err(|_| anyhow::anyhow!("--ipset {name}: `{a}` is not an IP address"))?,
            );
        }
    }
    Ok(sets)
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    let run = driver::show_binding(
        &args.port.search.filters,
        &args.port.binding,
        &args.port.params,
    );
    output::print_diagnostics(&run.library.sources, &run.diagnostics, color);
    let Some(program) = run.program else {
        return Ok(ExitCode::from(1));
    };
    let reader = match CaptureReader::open(&args.capture) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nwf: error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let direction = args.direction.map(|d| match d {
        DirArg::In => Way::ToVm,
        DirArg::Out => Way::FromVm,
    });
    let cx = Context {
        ct: None,
        ipsets: parse_ipsets(&args.ipsets)?,
    };
    let mut annotate = match &args.annotate {
        Some(p) => Some(CaptureWriter::new(std::io::BufWriter::new(
            std::fs::File::create(p)?,
        ))?),
        None => None,
    };
    let progress = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {pos} frames ({per_sec})")
                .expect("valid template"),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Summaries do not show connection states: track only when the rules need it.
    let mut replayer =
        Replayer::with_tracking(&program, direction, cx, args.format != SimFormat::Summary);
    // Frames per verdict: accept, drop, reject.
    let mut counts = [0u64; 3];
    // Frames decided per program rule (by id), and by no rule.
    let mut decided: Vec<u64> = vec![0; program.rule_count()];
    let mut decided_default = 0u64;
    let mut warned_inferred = false;
    let mut warned_cooked = false;
    // Frames matched per program rule (by id), whether or not the rule decided them.
    let mut matched: Vec<u64> = vec![0; program.rule_count()];
    let mut frames = 0u64;
    if args.format == SimFormat::Table {
        writeln!(
            out,
            "{:>6}  {:>12}  {:<3}  {:<6}  {:<40}  frame",
            "index", "time", "dir", "verdict", "decided by"
        )?;
    }
    // Reading and decoding run on a second thread, evaluation (which keeps the connection
    // state, so it is sequential) on this one; batches of frames go between them.
    let verify = replayer.verifies_checksums();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch, String>>(4);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Batch>();
    let decoder = std::thread::spawn(move || read_batches(reader, verify, tx, recycle_rx));
    let mut failure = None;
    'frames: for batch in rx {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        for item in &batch.items {
            let c = Captured {
                index: item.index,
                time: item.time,
                way: item.way,
                data: std::borrow::Cow::Borrowed(&batch.bytes[item.start..item.end]),
                dst_unknown: item.dst_unknown,
            };
            let r = if args.format == SimFormat::Summary {
                replayer.step_decoded(&c, item.frame, &mut |p| matched[p.id as usize] += 1)
            } else {
                replayer.step_decoded(&c, item.frame, &mut |_| {})
            };
            if r.way_source == WaySource::Inferred && !warned_inferred {
                warned_inferred = true;
                progress.suspend(|| {
                eprintln!(
                    "warning: {} does not record directions; inferring them from the VM's MAC {} (spoofed frames defeat this; use --direction)",
                    args.capture.display(),
                    program.mac
                )
            });
            }
            if c.dst_unknown && !warned_cooked {
                warned_cooked = true;
                progress.suspend(|| {
                eprintln!(
                    "warning: {} is a Linux cooked capture, which does not record destination MAC addresses; rules that test dstmacaddr see 00:00:00:00:00:00",
                    args.capture.display()
                )
            });
            }
            frames += 1;
            if frames.is_multiple_of(4096) {
                progress.set_position(frames);
            }
            counts[r.outcome.verdict as usize] += 1;
            let time = c.time.as_secs_f64();
            match args.format {
                SimFormat::Table => writeln!(
                    out,
                    "{:>6}  {:>12.6}  {:<3}  {:<6}  {:<40}  {}",
                    c.index,
                    time,
                    way_name(r.way),
                    verdict_name(r.outcome.verdict),
                    rule_text(r.outcome.rule),
                    r.frame
                )?,
                SimFormat::Json => writeln!(out, "{}", json_line(c.index, time, &r))?,
                SimFormat::Summary => match r.outcome.rule {
                    Some(p) => decided[p.id as usize] += 1,
                    None => decided_default += 1,
                },
            }
            if let Some(w) = annotate.as_mut() {
                let comment = format!(
                    "nwf: {} by {}",
                    verdict_name(r.outcome.verdict),
                    rule_text(r.outcome.rule)
                );
                if let Err(e) = w.write(c.time, Some(r.way), &c.data, Some(&comment)) {
                    failure = Some(e.to_string());
                    break 'frames;
                }
            }
        }
        let _ = recycle_tx.send(batch);
    }
    drop(recycle_tx);
    let _ = decoder.join();
    progress.finish_and_clear();
    if let Some(e) = failure {
        out.flush()?;
        eprintln!("nwf: error: {e}");
        return Ok(ExitCode::from(1));
    }
    if args.format == SimFormat::Summary {
        write_summary(
            &mut out,
            &program,
            frames,
            &counts,
            (&decided, decided_default),
            &matched,
        )?;
    }
    if let Some(w) = annotate {
        w.into_inner().flush()?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_summary(
    out: &mut impl Write,
    program: &Program,
    frames: u64,
    counts: &[u64; 3],
    (decided, decided_default): (&[u64], u64),
    matched: &[u64],
) -> std::io::Result<()> {
    writeln!(out, "{frames} frames")?;
    for (v, n) in ["accept", "drop", "reject"].iter().zip(counts) {
        writeln!(out, "  {v:<7} {n}")?;
    }
    // Per source rule (a source rule may have several program copies).
    let mut per_decided: BTreeMap<String, u64> = BTreeMap::new();
    for p in program.provenances() {
        *per_decided.entry(rule_text(Some(p))).or_default() += decided[p.id as usize];
    }
    if decided_default > 0 {
        per_decided.insert(rule_text(None), decided_default);
    }
    writeln!(out, "\nframes decided per rule:")?;
    let mut by_count: Vec<(&String, u64)> = per_decided
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k, *n))
        .collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (k, n) in by_count {
        writeln!(out, "  {n:>10}  {k}")?;
    }
    // Hits per source rule: frames any of its program copies matched.
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for p in program.provenances() {
        let n = matched[p.id as usize];
        *per_rule.entry(rule_text(Some(p))).or_default() += n;
    }
    writeln!(out, "\nframes matched per rule:")?;
    for (r, n) in per_rule.iter().filter(|(_, n)| **n > 0) {
        writeln!(out, "  {n:>10}  {r}")?;
    }
    let never: Vec<&String> = per_rule
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(r, _)| r)
        .collect();
    writeln!(
        out,
        "\nrules no frame matched (candidates for removal): {}",
        never.len()
    )?;
    for r in never {
        writeln!(out, "  {r}")?;
    }
    Ok(())
}
