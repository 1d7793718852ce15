//! The HTTP contract's rules: bad input never gets a 500, idempotency keys
//! (durable across a restart), `If-Match`, the access log, and operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{admission, read, Stack, TestApp};
use infra::auth::Role;
use serde_json::{json, Value};

/// One bad request and the answer it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: Option<String>,
    status: u16,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        body,
        headers: Vec::new(),
        status,
        field: None,
    }
}

fn with_field(mut c: Case, field: &'static str) -> Case {
    c.field = Some(field);
    c
}

fn with_header(mut c: Case, name: &'static str, value: &str) -> Case {
    c.headers.push((name, value.to_owned()));
    c
}

fn edit(body: &Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Option<String> {
    let mut body = body.clone();
    f(body.as_object_mut().unwrap());
    Some(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_the_right_problem_and_never_a_500() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward.admit(1, "W1", 1).await.id();
    let good = admission(2, "W1", 2);
    let s = |tail: &str| format!("/api/v1/spells/{spell}/{tail}");
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    // An admission with one field set to `value`, refused at that field.
    let admission_with = |name, field: &'static str, value: Value, status| {
        let body = edit(&good, |b| {
            b.insert(field.into(), value);
        });
        with_field(case(name, "POST", "/api/v1/spells", body, status), field)
    };
    let cases = vec![
        case(
            "malformed JSON",
            "POST",
            "/api/v1/spells",
            Some("{\"nhs_number\": ".into()),
            400,
        ),
        admission_with("an unknown field", "colour", json!("red"), 400),
        admission_with("a wrong type", "bed", json!(4), 400),
        with_field(
            case(
                "a missing field",
                "POST",
                "/api/v1/spells",
                edit(&good, |b| {
                    b.remove("ward");
                }),
                400,
            ),
            "ward",
        ),
        admission_with("a code with spaces", "ward", json!("W 1"), 400),
        admission_with(
            "a date that is not a date",
            "date_of_birth",
            json!("1941-02-30"),
            400,
        ),
        admission_with(
            "an invalid NHS number",
            "nhs_number",
            json!("9912003814"),
            422,
        ),
        admission_with(
            "born after admission",
            "date_of_birth",
            json!("2099-01-01"),
            422,
        ),
        admission_with("admitted in the future", "admitted_at", json!(future), 422),
        admission_with("an unknown ward", "ward", json!("NOPE"), 422),
        admission_with("a bed the ward does not have", "bed", json!("99"), 422),
        case(
            "an occupied bed",
            "POST",
            "/api/v1/spells",
            edit(&good, |b| {
                b.insert("bed".into(), json!("1"));
            }),
            409,
        ),
        case(
            "a body over the limit",
            "POST",
            "/api/v1/spells",
            Some(format!("{{\"note\": \"{}\"}}", "x".repeat(70_000))),
            413,
        ),
        case(
            "not JSON at all",
            "POST",
            &s("pathway"),
            Some("pathway=P1".into()),
            415,
        ),
        case("an unknown spell", "GET", "/api/v1/spells/nope", None, 404),
        case(
            "an id that cannot be an id",
            "GET",
            "/api/v1/spells/..%2F..",
            None,
            404,
        ),
        case(
            "an unknown referral",
            "POST",
            "/api/v1/referrals/nope/acknowledge",
            Some("{}".into()),
            404,
        ),
        case("an unknown path", "GET", "/api/v1/nothing-here", None, 404),
        case(
            "a path that is not UTF-8",
            "GET",
            "/api/v1/spells/%FF",
            None,
            400,
        ),
        case(
            "a method the path does not take",
            "DELETE",
            &format!("/api/v1/spells/{spell}"),
            None,
            405,
        ),
        with_field(
            case(
                "an unknown delay reason",
                "POST",
                &s("delays"),
                Some(
                    json!({ "reason_code": "99", "at": chrono::Utc::now().to_rfc3339() })
                        .to_string(),
                ),
                422,
            ),
            "reason_code",
        ),
        case(
            "resolving a delay that does not exist",
            "POST",
            &s("delays/D9/resolve"),
            Some(json!({ "at": chrono::Utc::now().to_rfc3339() }).to_string()),
            422,
        ),
        case(
            "cancelling a transfer that never happened",
            "POST",
            &s("cancel-transfer"),
            Some(json!({ "reason": "typo" }).to_string()),
            422,
        ),
        case(
            "an unknown pathway",
            "POST",
            &s("pathway"),
            Some(json!({ "pathway": "P9" }).to_string()),
            400,
        ),
        with_header(
            case(
                "If-Match that is not a version",
                "POST",
                &s("pathway"),
                Some(json!({ "pathway": "P1" }).to_string()),
                400,
            ),
            "if-match",
            "\"abc\"",
        ),
        with_header(
            case(
                "an Idempotency-Key that is not a UUID",
                "POST",
                &s("pathway"),
                Some(json!({ "pathway": "P1" }).to_string()),
                400,
            ),
            "idempotency-key",
            "not-a-uuid",
        ),
        case(
            "a consistency token that is not one",
            "GET",
            "/api/v1/boards/wards/W1?consistency_token=x",
            None,
            400,
        ),
        case(
            "an unknown query parameter",
            "GET",
            "/api/v1/boards/wards/W1?colour=red",
            None,
            400,
        ),
        case(
            "an unknown board",
            "GET",
            "/api/v1/boards/wards/NOPE",
            None,
            404,
        ),
        case(
            "a stream of no board",
            "GET",
            "/api/v1/boards/stream?board=kitchen:sink",
            None,
            400,
        ),
    ];
    let token = ward.token.clone().unwrap();
    for c in cases {
        let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
        let mut request = app
            .client
            .request(method, format!("{}{}", app.base, c.path))
            .bearer_auth(&token);
        if let Some(body) = c.body {
            let json = !body.starts_with("pathway=");
            request = request
                .header(
                    "content-type",
                    if json {
                        "application/json"
                    } else {
                        "application/x-www-form-urlencoded"
                    },
                )
                .body(body);
        }
        for (name, value) in &c.headers {
            request = request.header(*name, value);
        }
        let answer = read(request.send().await.unwrap()).await;
        assert_eq!(answer.status, c.status, "{}: {:#}", c.name, answer.body);
        assert_eq!(
            answer.content_type, "application/problem+json",
            "{}",
            c.name
        );
        assert_eq!(answer.body["status"], c.status, "{}", c.name);
        assert!(
            answer.body["type"].is_string() && answer.body["title"].is_string(),
            "{}",
            c.name
        );
        if let Some(field) = c.field {
            let none = Vec::new();
            let fields: Vec<&str> = answer.body["errors"]
                .as_array()
                .unwrap_or(&none)
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect::<Vec<_>>();
            assert!(
                fields.contains(&field),
                "{}: wanted field {field}: {:#}",
                c.name,
                answer.body
            );
        }
    }
    // No token, a forged one.
    assert_eq!(app.anonymous().get("/api/v1/wards").await.status, 401);
    let mut forged = app.as_(Role::Admin, None);
    forged.token = Some(format!("{}x", forged.token.unwrap()));
    let answer = forged.get("/api/v1/wards").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.content_type, "application/problem+json");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_command_returns_the_first_answer_and_records_nothing_twice() {
    let app = TestApp::seeded(Stack::Production).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let key = uuid::Uuid::new_v4().to_string();
    let body = admission(5, "W1", 5);
    // Eight copies at once, as an impatient client or a flaky network sends.
    let sends = (0..8).map(|_| {
        let ward = ward.clone();
        let body = body.clone();
        let key = key.clone();
        async move {
            ward.send(
                reqwest::Method::POST,
                "/api/v1/spells",
                Some(body),
                &[("idempotency-key", &key)],
            )
            .await
        }
    });
    let answers = futures::future::join_all(sends).await;
    let first = answers[0].clone().expect(201);
    for answer in &answers {
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body, first.body);
    }
    let spell = first.id();
    let history = ward
        .get(&format!("/api/v1/spells/{spell}/history"))
        .await
        .expect(200);
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    let board = ward
        .get_after("/api/v1/boards/wards/W1", &first)
        .await
        .expect(200);
    assert_eq!(board.body["totals"]["occupied"], 1);

    // A delay under a key: the replay names the same delay.
    let delay_key = uuid::Uuid::new_v4().to_string();
    let delay = json!({ "reason_code": "13", "at": chrono::Utc::now().to_rfc3339() });
    let path = format!("/api/v1/spells/{spell}/delays");
    let a = ward
        .send(
            reqwest::Method::POST,
            &path,
            Some(delay.clone()),
            &[("idempotency-key", &delay_key)],
        )
        .await
        .expect(201);
    let b = ward
        .send(
            reqwest::Method::POST,
            &path,
            Some(delay.clone()),
            &[("idempotency-key", &delay_key)],
        )
        .await
        .expect(201);
    assert_eq!(a.body, b.body);
    assert_eq!(b.body["delay_id"], "D1");

    // A key on a command that changed nothing still pins its answer: a
    // retry after a colleague's change does not undo that change.
    let edd_key = uuid::Uuid::new_v4().to_string();
    let edd_path = format!("/api/v1/spells/{spell}/expected-discharge-date");
    let day = |n: i64| (chrono::Utc::now().date_naive() + chrono::Duration::days(n)).to_string();
    ward.post(&edd_path, json!({ "date": day(3) }))
        .await
        .expect(200);
    let unchanged = ward
        .send(
            reqwest::Method::POST,
            &edd_path,
            Some(json!({ "date": day(3) })),
            &[("idempotency-key", &edd_key)],
        )
        .await
        .expect(200);
    ward.post(&edd_path, json!({ "date": day(5) }))
        .await
        .expect(200);
    let retried = ward
        .send(
            reqwest::Method::POST,
            &edd_path,
            Some(json!({ "date": day(3) })),
            &[("idempotency-key", &edd_key)],
        )
        .await
        .expect(200);
    assert_eq!(retried.body, unchanged.body);
    let now = ward
        .get(&format!("/api/v1/spells/{spell}"))
        .await
        .expect(200);
    assert_eq!(now.body["expected_discharge_date"], day(5).as_str());

    // A delay retried with If-Match after it landed gets its first answer.
    let version = now.body["version"].as_u64().unwrap().to_string();
    let if_match = format!("\"{version}\"");
    let key = uuid::Uuid::new_v4().to_string();
    let delay = json!({ "reason_code": "7", "at": chrono::Utc::now().to_rfc3339() });
    let first_delay = ward
        .send(
            reqwest::Method::POST,
            &path,
            Some(delay.clone()),
            &[("idempotency-key", &key), ("if-match", &if_match)],
        )
        .await
        .expect(201);
    let again = ward
        .send(
            reqwest::Method::POST,
            &path,
            Some(delay),
            &[("idempotency-key", &key), ("if-match", &if_match)],
        )
        .await
        .expect(201);
    assert_eq!(again.body, first_delay.body);
    let key = edd_key;

    // The same key for a different request is refused.
    let other = ward
        .send(
            reqwest::Method::POST,
            "/api/v1/spells",
            Some(admission(6, "W1", 6)),
            &[("idempotency-key", &key)],
        )
        .await
        .expect(422);
    assert_eq!(other.body["rule"], "idempotency_key_reused");
    // Another user's identical key is theirs alone.
    let colleague = app.as_(Role::Ward, Some("DCH"));
    colleague
        .send(
            reqwest::Method::POST,
            "/api/v1/spells",
            Some(admission(7, "X1", 1)),
            &[("idempotency-key", &key)],
        )
        .await
        .expect(201);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_outlives_a_restart() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let key = uuid::Uuid::new_v4().to_string();
    let body = admission(8, "W2", 3);
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let first = ward
        .send(
            reqwest::Method::POST,
            "/api/v1/spells",
            Some(body.clone()),
            &[("idempotency-key", &key)],
        )
        .await
        .expect(201);
    let again = app.sibling_after_stop().await;
    let ward = again.as_(Role::Ward, Some("POOLE"));
    let retry = ward
        .send(
            reqwest::Method::POST,
            "/api/v1/spells",
            Some(body),
            &[("idempotency-key", &key)],
        )
        .await
        .expect(201);
    assert_eq!(retry.body, first.body);
    let history = ward
        .get(&format!("/api/v1/spells/{}/history", first.id()))
        .await
        .expect(200);
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_match_refuses_a_change_to_a_record_that_moved_on() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward.admit(9, "W1", 9).await;
    assert_eq!(spell.etag.as_deref(), Some("\"1\""));
    let path = format!("/api/v1/spells/{}/pathway", spell.id());
    let moved = ward
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({ "pathway": "P1" })),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(200);
    assert_eq!(moved.body["version"], 2);
    let stale = ward
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({ "pathway": "P2" })),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(412);
    assert_eq!(stale.body["current_version"], 2);
    app.stop().await;
}

/// The first process remembers the spell with one delay; the second
/// records another behind its back. The first must name the next delay D3,
/// not the D2 its memory would give.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delay_recorded_after_another_process_recorded_one_is_named_after_it() {
    let first = TestApp::seeded(Stack::Embedded).await;
    let second = first.sibling().await;
    let (one, two) = (
        first.as_(Role::Ward, Some("POOLE")),
        second.as_(Role::Ward, Some("POOLE")),
    );
    let spell = one.admit(31, "W1", 12).await;
    let path = format!("/api/v1/spells/{}/delays", spell.id());
    let delay = |code: &str| json!({ "reason_code": code, "at": chrono::Utc::now().to_rfc3339() });
    let named = |answer: baton_tests::http::Answer| answer.body["delay_id"].clone();
    assert_eq!(named(one.post(&path, delay("1")).await.expect(201)), "D1");
    assert_eq!(named(two.post(&path, delay("7")).await.expect(201)), "D2");
    assert_eq!(named(one.post(&path, delay("13")).await.expect(201)), "D3");
    let (stored, version) = first
        .bus
        .load_spell(&spell.id().parse().unwrap())
        .await
        .unwrap();
    assert_eq!((stored.stay().unwrap().delays.len(), version), (3, 4));
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_read_of_a_patient_is_logged_and_an_admin_sees_who_looked() {
    let app = TestApp::seeded(Stack::Production).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let body = admission(11, "W1", 11);
    let nhs = body["nhs_number"].as_str().unwrap().to_owned();
    let spell = ward.post("/api/v1/spells", body).await.expect(201);
    ward.get(&format!("/api/v1/spells/{}", spell.id()))
        .await
        .expect(200);
    ward.get_after("/api/v1/boards/wards/W1", &spell)
        .await
        .expect(200);
    let raised = ward
        .post("/api/v1/referrals", json!({ "spell_id": spell.id(), "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "stairs" }))
        .await
        .expect(201);
    let team = app.as_(Role::Team, Some("REAB"));
    team.get_after(&format!("/api/v1/referrals/{}", raised.id()), &raised)
        .await
        .expect(200);
    let admin = app.as_(Role::Admin, None);
    let log = admin
        .get(&format!("/api/v1/audit?nhs_number={nhs}"))
        .await
        .expect(200);
    let actions: Vec<(String, String)> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap().to_owned(),
                a["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("ward-POOLE".into(), "read_spell".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("ward-POOLE".into(), "read_ward_board".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("team-REAB".into(), "read_referral".into())),
        "{actions:?}"
    );
    assert!(log.body[0]["at"].is_string() && log.body[0]["client"] == "127.0.0.1");
    // Only admins, and the log cannot be rewritten.
    assert_eq!(
        ward.get(&format!("/api/v1/audit?nhs_number={nhs}"))
            .await
            .status,
        403
    );
    // TRUNCATE visits no row, so the row triggers never see it; the
    // statement-level triggers (migration 0004) refuse it. A plain
    // `TRUNCATE access_log` fails on the foreign key before any trigger, so
    // CASCADE is what would have emptied both tables.
    let truncates = [
        "TRUNCATE access_log_patients",
        "TRUNCATE access_log CASCADE",
        "TRUNCATE access_log, access_log_patients",
    ];
    assert_the_access_log_refuses(&app, &truncates, "P0001").await;
    app.stop().await;
}

/// Updates and deletes of every row of either table of the access log.
const REWRITES: [&str; 4] = [
    "UPDATE access_log SET actor = 'someone else'",
    "UPDATE access_log_patients SET nhs_number = '9434765919'",
    "DELETE FROM access_log",
    "DELETE FROM access_log_patients",
];

/// Asserts that the app's access log holds accesses and patients, refuses
/// [`REWRITES`] and `more` with `code` from its own trigger, and holds the
/// same rows after.
async fn assert_the_access_log_refuses(app: &TestApp, more: &[&str], code: &str) {
    const COUNTS: &str =
        "SELECT (SELECT count(*) FROM access_log), (SELECT count(*) FROM access_log_patients)";
    let db = app.database().await;
    let counts = || async {
        infra::on_either_database!(&db, pool => {
            sqlx::query_as::<_, (i64, i64)>(COUNTS).fetch_one(pool).await.unwrap()
        })
    };
    let before = counts().await;
    assert!(before.0 > 0 && before.1 > 0, "{before:?}");
    for statement in REWRITES.iter().chain(more) {
        let refused = infra::on_either_database!(&db, pool => {
            sqlx::query(statement).execute(pool).await.map(|_| ())
        });
        assert_refused_by_the_append_only_trigger(statement, refused, code);
    }
    assert_eq!(counts().await, before, "accesses and patients logged");
}

/// Asserts that `statement` was refused by the access log's own trigger: its
/// SQLSTATE (PostgreSQL) or result code (SQLite) and its message, not merely
/// some SQL error (a syntax error, a foreign key, a missing table).
fn assert_refused_by_the_append_only_trigger(
    statement: &str,
    result: Result<impl std::fmt::Debug, sqlx::Error>,
    code: &str,
) {
    let error = match result {
        Ok(done) => panic!("{statement}: accepted ({done:?})"),
        Err(error) => error,
    };
    let Some(database) = error.as_database_error() else {
        panic!("{statement}: not refused by the database: {error:?}");
    };
    assert_eq!(
        (database.code().as_deref(), database.message()),
        (Some(code), "the access log is append-only"),
        "{statement}: {database:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_access_log_refuses_updates_and_deletes_of_every_kind() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward.admit(12, "W1", 12).await;
    ward.get(&format!("/api/v1/spells/{}", spell.id()))
        .await
        .expect(200);
    // SQLite has no TRUNCATE. A DELETE with no WHERE clause would empty a
    // table without visiting its rows, except that SQLite never takes that
    // short cut on a table with triggers: the row triggers refuse it.
    // 1811: SQLITE_CONSTRAINT_TRIGGER, what RAISE(ABORT, ...) answers.
    let deletes = ["DELETE FROM access_log_patients WHERE access_id > 0"];
    assert_the_access_log_refuses(&app, &deletes, "1811").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_endpoints_answer_without_a_token() {
    let app = TestApp::spawn(Stack::Production).await;
    let anonymous = app.anonymous();
    assert_eq!(
        anonymous.get("/healthz").await.expect(200).body["status"],
        "ok"
    );
    let ready = anonymous.get("/readyz").await;
    assert!(ready.status == 200 || ready.status == 503, "{ready:?}");
    assert_eq!(ready.content_type, "application/json");
    assert!(ready.body["event_store"].as_bool().unwrap());
    baton_tests::eventually("ready", std::time::Duration::from_secs(20), || async {
        anonymous.get("/readyz").await.status == 200
    })
    .await;
    let metrics = app.text("/metrics").await;
    for name in [
        "baton_outbox_published_total",
        "baton_outbox_depth",
        "baton_projection_position",
        "baton_http_requests_total",
        "baton_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let doc = anonymous.get("/openapi.json").await.expect(200);
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/spells",
        "/api/v1/spells/{id}/history",
        "/api/v1/spells/{id}/delays/{delay_id}/resolve",
        "/api/v1/referrals/{id}/start-care",
        "/api/v1/boards/stream",
        "/api/v1/wards/{code}",
        "/api/v1/delay-reasons",
        "/api/v1/audit",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }
    let docs = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs
        .text()
        .await
        .unwrap()
        .contains("/api/v1/referrals/{id}/accept"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pages_and_their_assets_come_from_baton_itself() {
    let app = TestApp::spawn(Stack::Embedded).await;
    for path in ["/", "/ward/W1", "/team/REAB", "/hospital/POOLE", "/system"] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("/assets/app.js")
                && !html.contains("http://")
                && !html.contains("https://")
        );
    }
    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(
            !response.text().await.unwrap().contains("https://"),
            "{path} loads from the internet"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_development_sign_in_exists_only_on_the_embedded_default() {
    let embedded = TestApp::seeded(Stack::Embedded).await;
    let anonymous = embedded.anonymous();
    assert_eq!(
        anonymous.get("/api/v1/dev/sign-in").await.expect(200).body["enabled"],
        true
    );
    let signed = anonymous
        .post(
            "/api/v1/dev/sign-in",
            json!({ "role": "team", "team": "REAB", "name": "Sam" }),
        )
        .await
        .expect(200);
    let mut sam = embedded.anonymous();
    sam.token = Some(signed.body["token"].as_str().unwrap().to_owned());
    let me = sam.get("/api/v1/session").await.expect(200);
    assert_eq!(me.body["role"], "team");
    assert_eq!(me.body["team"], "REAB");
    assert_eq!(me.body["name"], "Sam");
    let unknown = anonymous
        .post(
            "/api/v1/dev/sign-in",
            json!({ "role": "ward", "hospital": "NOWHERE" }),
        )
        .await
        .expect(422);
    assert_eq!(unknown.body["errors"][0]["field"], "hospital");
    embedded.stop().await;

    let production = TestApp::spawn(Stack::Production).await;
    let anonymous = production.anonymous();
    assert_eq!(
        anonymous.get("/api/v1/dev/sign-in").await.expect(200).body["enabled"],
        false
    );
    anonymous
        .post("/api/v1/dev/sign-in", json!({ "role": "admin" }))
        .await
        .expect(404);
    production.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admission_with_an_active_referral_is_cancelled_only_after_the_referral_is_withdrawn() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward.admit(21, "W1", 21).await.id();
    let referral = ward
        .post("/api/v1/referrals", json!({ "spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "stairs" }))
        .await
        .expect(201)
        .id();
    let cancel = format!("/api/v1/spells/{spell}/cancel-admission");
    let refused = ward
        .post(&cancel, json!({ "reason": "wrong patient" }))
        .await
        .expect(409);
    assert_eq!(refused.body["rule"], "referrals_still_active");
    ward.post(
        &format!("/api/v1/referrals/{referral}/withdraw"),
        json!({ "reason": "admission entered in error" }),
    )
    .await
    .expect(200);
    ward.post(&cancel, json!({ "reason": "wrong patient" }))
        .await
        .expect(200);
}
