//! `nwf synth`: make a pcapng capture from a readable description of frames.

use nwf_compiler::value::MacAddr;
use nwf_simulator::capture::CaptureWriter;
use nwf_simulator::describe::{self, Defaults};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nwf synth`.
#[derive(clap::Args)]
pub struct Args {
    /// The VM's MAC address (source of `out` frames).
    #[arg(long, default_value = "52:54:00:00:00:01")]
    vm_mac: String,
    /// The peer's MAC address (source of `in` frames).
    #[arg(long, default_value = "52:54:00:00:00:99")]
    peer_mac: String,
    /// Where to write the pcapng file.
    #[arg(short, long, value_name = "OUT.pcapng")]
    output: PathBuf,
    /// The description (see `docs/captures.md`).
    description: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mac =
        |s: &str| MacAddr::parse(s).ok_or_else(|| anyhow::anyhow!("invalid MAC address `{s}`"));
    let d = Defaults {
        vm_mac: mac(&args.vm_mac)?,
        peer_mac: mac(&args.peer_mac)?,
    };
    let text = std::fs::read_to_string(&args.description)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.description.display()))?;
    let frames = match describe::parse(&text, d) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "nwf: error: {}:{}: {}",
                args.description.display(),
                e.line,
                e.message
            );
            return Ok(ExitCode::from(1));
        }
    };
    let file = std::fs::File::create(&args.output)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.output.display()))?;
    let mut w = CaptureWriter::new(std::io::BufWriter::new(file))?;
    for f in &frames {
        w.write(f.time, Some(f.way), &f.data, None)?;
    }
    w.into_inner().flush()?;
    eprintln!("wrote {} frames to {}", frames.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}
