//! grete-codegen: turns Apache Kafka's JSON message definitions into the Rust codec in
//! `src/protocol/messages/`.
//!
//! ```text
//! cargo run -p grete-codegen -- [--input DIR] [--output DIR] [--check]
//! ```
//!
//! `--check` regenerates into memory and exits non-zero, listing the files that differ from
//! what is on disk. Output is formatted with `rustfmt`, so it is stable under `cargo fmt`.

mod gen;
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The APIs grete generates, request and response each. Edit this list to add an API.
pub const APIS: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "TxnOffsetCommit",
    "DescribeConfigs",
    "SaslAuthenticate",
    "CreatePartitions",
    "ConsumerGroupHeartbeat",
];

/// Non-API definitions grete generates: headers and `data` types.
pub const EXTRAS: &[&str] = &[
    "RequestHeader",
    "ResponseHeader",
    "ConsumerProtocolSubscription",
    "ConsumerProtocolAssignment",
];

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen lives inside the workspace")
        .to_path_buf();
    let mut input = root.join("../shared/kafka-protocol/message");
    let mut output = root.join("src/protocol/messages");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--input" => input = PathBuf::from(args.next().unwrap_or_default()),
            "--output" => output = PathBuf::from(args.next().unwrap_or_default()),
            "--check" => check = true,
            _ => {
                eprintln!("usage: grete-codegen [--input DIR] [--output DIR] [--check]");
                return ExitCode::from(2);
            }
        }
    }
    let files = match generate(&input, &root) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        let mut bad = Vec::new();
        for (name, text) in &files {
            let on_disk = std::fs::read_to_string(output.join(name)).unwrap_or_default();
            if &on_disk != text {
                bad.push(name.clone());
            }
        }
        bad.extend(stale_files(&output, &files));
        if bad.is_empty() {
            println!("{} generated files are up to date", files.len());
            ExitCode::SUCCESS
        } else {
            eprintln!("generated files differ from the committed ones (run `cargo run -p grete-codegen`):");
            for b in bad {
                eprintln!("  {}", output.join(b).display());
            }
            ExitCode::FAILURE
        }
    } else {
        if let Err(e) = std::fs::create_dir_all(&output) {
            eprintln!("error: {}: {e}", output.display());
            return ExitCode::FAILURE;
        }
        for (name, text) in &files {
            if let Err(e) = std::fs::write(output.join(name), text) {
                eprintln!("error: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
        for stale in stale_files(&output, &files) {
            eprintln!("warning: {stale} is no longer generated; delete it");
        }
        println!("wrote {} files to {}", files.len(), output.display());
        ExitCode::SUCCESS
    }
}

/// Reads the definitions and returns every generated file (name -> formatted text).
fn generate(input: &Path, root: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut msgs = Vec::new();
    let names: Vec<String> = APIS
        .iter()
        .flat_map(|a| [format!("{a}Request"), format!("{a}Response")])
        .chain(EXTRAS.iter().map(|s| s.to_string()))
        .collect();
    for n in &names {
        let path = input.join(format!("{n}.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let m = model::parse_message(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        msgs.push(m);
    }
    // grete's own test definition, generated into a `#[cfg(test)]` module.
    let fixture = root.join("codegen/fixtures/GreteTestMessage.json");
    let text =
        std::fs::read_to_string(&fixture).map_err(|e| format!("{}: {e}", fixture.display()))?;
    let test_msg =
        model::parse_message(&text).map_err(|e| format!("{}: {e}", fixture.display()))?;
    let mut out = BTreeMap::new();
    out.insert(
        format!("{}.rs", model::snake(&test_msg.name)),
        gen::message_file(&test_msg),
    );
    for m in &msgs {
        out.insert(
            format!("{}.rs", model::snake(&m.name)),
            gen::message_file(m),
        );
    }
    out.insert("mod.rs".to_string(), gen::mod_file(&msgs, &test_msg));
    for text in out.values_mut() {
        *text = rustfmt(text, root)?;
    }
    Ok(out)
}

fn rustfmt(text: &str, root: &Path) -> Result<String, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("rustfmt stdin")?;
    let owned = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(owned.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked")?
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// Hand-written files that live beside the generated ones.
const HAND_WRITTEN: &[&str] = &["tests.rs"];

/// `.rs` files in the output directory that the generator no longer produces.
fn stale_files(output: &Path, files: &BTreeMap<String, String>) -> Vec<String> {
    let mut stale: Vec<String> = std::fs::read_dir(output)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            n.ends_with(".rs") && !files.contains_key(n) && !HAND_WRITTEN.contains(&n.as_str())
        })
        .collect();
    stale.sort();
    stale
}
