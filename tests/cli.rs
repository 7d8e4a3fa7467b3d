//! Command lines with golden standard output, standard error and exit status.
//!
//! Each folder of `testdata/cli/` holds `cmd` (the arguments after `nwf`, one line, split on
//! spaces) and the expected `stdout`, `stderr` and `status`. Run with `NWF_BLESS=1` to rewrite
//! the expectations after reviewing a change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/cli exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cmd").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn golden_command_lines() {
    let bless = std::env::var_os("NWF_BLESS").is_some();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 8,
        "expected the golden cases in testdata/cli"
    );
    for case in cases {
        let cmd = std::fs::read_to_string(case.join("cmd")).unwrap();
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let out = Command::new(env!("CARGO_BIN_EXE_nwf"))
            .args(&args)
            .current_dir(root)
            .env("NO_COLOR", "1")
            .output()
            .expect("nwf runs");
        let got = [
            ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
            ("stderr", String::from_utf8_lossy(&out.stderr).into_owned()),
            ("status", format!("{}\n", out.status.code().unwrap_or(-1))),
        ];
        for (name, text) in got {
            let path = case.join(name);
            if bless {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if want != text {
                failures.push(format!(
                    "{}/{name} differs\n--- expected\n{want}\n--- got\n{text}",
                    case.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(re-bless with NWF_BLESS=1)",
        failures.join("\n")
    );
}
