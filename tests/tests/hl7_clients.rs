//! The ADT feed driven by HL7 clients nobody here wrote (issue 16): PyPI's
//! `hl7` (its `mllp_send` command) sends the message files kept under
//! tests/hl7/ as they are (`\r`, `\n` and `\r\n` segment ends, PID-3
//! repetitions, escapes, `""`), and `hl7apy` builds messages and reads
//! Baton's acknowledgements back. Both live in the virtualenv `.ci/run`
//! installs (`ensure_hl7_clients`, pinned); without it these tests fail,
//! saying how to install it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use tokio::process::Command;

use baton_tests::http::{Stack, TestApp};
use baton_tests::mllp::message_file;
use domain::values::VisitNumber;

fn venv() -> PathBuf {
    let venv = PathBuf::from(
        std::env::var("BATON_HL7_VENV").unwrap_or_else(|_| "/opt/baton-hl7".to_owned()),
    );
    assert!(
        venv.join("bin/mllp_send").is_file() && venv.join("bin/python").is_file(),
        "the HL7 clients are missing from {}: install them as .ci/run does \
         (python3 -m venv {0}; {0}/bin/pip install hl7==0.4.5 hl7apy==1.3.5), \
         or point BATON_HL7_VENV at such a virtualenv",
        venv.display()
    );
    venv
}

fn hl7_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hl7")
}

async fn feed_app(stack: Stack) -> TestApp {
    let app = TestApp::spawn_with(stack, |c| c.mllp_listen = Some("127.0.0.1:0".into())).await;
    app.seed_reference().await;
    app
}

async fn where_is(app: &TestApp, visit: &str) -> (String, String) {
    let id = infra::hl7::feed::spell_id("RBD", &VisitNumber::parse(visit).unwrap()).unwrap();
    let (spell, _) = app.bus.load_spell(&id).await.unwrap();
    let stay = spell.stay().expect("the spell exists");
    (
        stay.placement.ward.to_string(),
        stay.placement.bed.to_string(),
    )
}

/// Runs a command to its end (the Baton under test serves meanwhile, on
/// the same runtime), failing the test with its output.
async fn run(command: &mut Command) -> String {
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        command.kill_on_drop(true).output(),
    )
    .await
    .expect("the client did not finish within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn mllp_send_journey(stack: Stack) {
    let venv = venv();
    let app = feed_app(stack).await;
    let port = app.mllp.unwrap().to_string();
    // The files as they are, each in an MLLP frame, one stream.
    let files = [
        "a01_admit.hl7",
        "a01_admit_second.hl7",
        "a02_transfer.hl7",
        "a08_update.hl7",
        "a17_swap.hl7",
        "a03_discharge.hl7",
        "a13_cancel_discharge.hl7",
        "a04_register.hl7",
    ];
    let mut stream = Vec::new();
    for file in files {
        stream.push(0x0b);
        stream.extend(message_file(file));
        stream.extend([0x1c, 0x0d]);
    }
    let dir = tempfile::tempdir().unwrap();
    let framed = dir.path().join("journey.mllp");
    std::fs::write(&framed, &stream).unwrap();
    let out = run(Command::new(venv.join("bin/mllp_send"))
        .args(["--port", &port, "--file"])
        .arg(&framed)
        .arg("127.0.0.1"))
    .await;
    let codes: Vec<&str> = out
        .split(['\r', '\n'])
        .filter_map(|s| s.strip_prefix("MSA|"))
        .map(|s| &s[..2])
        .collect();
    assert_eq!(codes, vec!["AA"; files.len()], "{out}");
    assert_eq!(where_is(&app, "V1001").await, ("W1".into(), "14".into()));
    assert_eq!(where_is(&app, "V1002").await, ("W2".into(), "3".into()));
    // `--loose`: a file of messages one after another, its line ends
    // rewritten by mllp_send; a point of care Baton does not know is AE.
    let out = run(Command::new(venv.join("bin/mllp_send"))
        .args(["--loose", "--port", &port, "--file"])
        .arg(hl7_dir().join("a01_unknown_ward.hl7"))
        .arg("127.0.0.1"))
    .await;
    assert!(out.contains("MSA|AE|ADM0003"), "{out}");
    assert!(out.contains("ERR|||103^unknown_ward"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn mllp_send_from_pypi_hl7_drives_a_journey_on_the_embedded_stack() {
    mllp_send_journey(Stack::Embedded).await;
}

#[tokio::test]
async fn mllp_send_from_pypi_hl7_drives_a_journey_on_the_production_stack() {
    mllp_send_journey(Stack::Production).await;
}

async fn hl7apy_messages(stack: Stack) {
    let venv = venv();
    let app = feed_app(stack).await;
    let port = app.mllp.unwrap().to_string();
    let out = run(Command::new(venv.join("bin/python"))
        .arg(hl7_dir().join("hl7apy_send.py"))
        .arg(&port))
    .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["AA APY0001", "AA APY0002", "AA APY0002"],
        "{out}"
    );
    assert_eq!(where_is(&app, "V2001").await, ("W2".into(), "20".into()));
    let id = infra::hl7::feed::spell_id("RBD", &VisitNumber::parse("V2001").unwrap()).unwrap();
    assert_eq!(
        app.bus.load_spell(&id).await.unwrap().1,
        2,
        "the repeat changed nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn messages_built_with_hl7apy_apply_and_its_parser_reads_the_acks_embedded() {
    hl7apy_messages(Stack::Embedded).await;
}

#[tokio::test]
async fn messages_built_with_hl7apy_apply_and_its_parser_reads_the_acks_production() {
    hl7apy_messages(Stack::Production).await;
}
