//! The tour's stops: each sends a query (or reads an audit log) in a running sandbox
//! federation and checks the answer against what fedq promises. A check fails when a part
//! of the answer it looks at is missing, so a stop never passes on an empty answer.

use fedq_coordinator::client;
use fedq_policy::catalogue::PublicList;
use fedq_sandbox::{
    ask, ask_through_gateway, consent_token, forged_consent_token, licensing, rights, self_query,
    Ask, Federation, Running, CATALOGUES, GATEWAY_APP, GATEWAY_REQUESTER, LICENSING_BASIS,
    LICENSING_CASE, OFFICERS, RECORDS_OFFICER, RECRUITMENT_BASIS, RECRUITMENT_CASE,
    RECRUITMENT_OFFICE, REPAIR_REVIEWERS,
};
use fedq_wire::transport::FrameTap;
use serde_json::Value;

/// One stop of the tour.
#[derive(Debug)]
pub struct Step {
    /// What it demonstrates, in one line.
    pub headline: String,
    /// HTTP status.
    pub status: u16,
    /// The answer.
    pub answer: Value,
    /// Whether the answer was as expected, and why not.
    pub check: Result<(), String>,
}

/// Sends one query as the tour does, with the gateway running ([`Running`]): the
/// licensing office's through its gateway (as its app [`GATEWAY_APP`], with the app's
/// token), every other office's as [`ask`] does.
async fn ask_in_tour(fed: &Federation, q: &Ask) -> Result<(u16, Value), String> {
    if q.requester == GATEWAY_REQUESTER {
        ask_through_gateway(fed, q).await
    } else {
        ask(fed, q).await
    }
    .map_err(|e| e.to_string())
}

/// The court's log as the other departments witnessed it: waits (at most 15 s) until
/// every other node has cosigned its newest kept checkpoint, then checks the log file
/// against every checkpoint they cosigned, as `fedq audit verify --witness` does.
async fn witnessed_log(fed: &Federation, node: &str) -> Result<(u16, Value), String> {
    use fedq_audit::review::certificate_verifiers;
    let pki = fed.layout.pki();
    let log_path = fed.layout.root.join(format!("audit/{node}-audit.db"));
    let (log, _) =
        certificate_verifiers(&pki.join(format!("{node}.crt"))).map_err(|e| e.to_string())?;
    let (size, _) = fedq_audit::latest_checkpoint(&log_path)
        .map_err(|e| e.to_string())?
        .ok_or("the log kept no checkpoint")?;
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let mut all = Vec::new();
        let mut held = serde_json::Map::new();
        for witness in fed.nodes.keys().filter(|w| *w != node) {
            let (_, cosigner) = certificate_verifiers(&pki.join(format!("{witness}.crt")))
                .map_err(|e| e.to_string())?;
            let state = fed.layout.root.join(format!("audit/{witness}-witness.db"));
            let cosigned = fedq_audit::witness::cosigned_in(&state, &log, &cosigner)
                .map(|c| c.checkpoints)
                .unwrap_or_default();
            let newest = cosigned.last().map_or(0, |w| w.checkpoint.size);
            held.insert(witness.clone(), Value::from(newest));
            all.extend(cosigned);
        }
        let caught_up = held.values().all(|v| v.as_u64() == Some(size));
        if caught_up || std::time::Instant::now() > give_up {
            let v = fedq_audit::verify_against(&log_path, &all).map_err(|e| e.to_string())?;
            let summary = format!(
                "{node}'s log: {} entries, signed checkpoint at size {size}; cosigned by {} of {} other departments ({}); checked against all {} checkpoints they cosigned: {}",
                v.entries,
                held.values().filter(|v| v.as_u64() == Some(size)).count(),
                held.len(),
                held.iter()
                    .map(|(w, s)| format!("{w} {s}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                v.witnessed,
                v.first_break
                    .as_ref()
                    .map_or("intact".to_owned(), ToString::to_string),
            );
            return Ok((
                200,
                serde_json::json!({
                    "summary": summary,
                    "size": size,
                    "witnesses": held,
                    "caught_up": caught_up,
                    "intact": v.first_break.is_none(),
                    "witnessed": v.witnessed,
                }),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The newest `query` entry of the log at `path` (under the federation's root), as
/// `fedq audit list --json` shows it.
fn newest_query_entry(fed: &Federation, path: &str) -> Result<Value, String> {
    let path = fed.layout.root.join(path);
    let entries =
        fedq_audit::list(&path, &fedq_audit::ListFilter::default()).map_err(|e| e.to_string())?;
    let entry = entries
        .iter()
        .rev()
        .find(|e| e.record.kind == fedq_audit::EntryKind::Query)
        .ok_or_else(|| format!("{} registered no query", path.display()))?;
    serde_json::to_value(&entry.record).map_err(|e| e.to_string())
}

/// The coordinator's newest `query` entry.
fn coordinator_entry(fed: &Federation) -> Result<(u16, Value), String> {
    Ok((200, newest_query_entry(fed, "audit/coordinator-audit.db")?))
}

/// The licensing office's gateway's newest `query` entry; an error unless it registers
/// the same query as the coordinator's newest.
fn gateway_entry(fed: &Federation) -> Result<(u16, Value), String> {
    let entry = newest_query_entry(fed, "gateway/gateway-audit.db")?;
    let coordinator = newest_query_entry(fed, "audit/coordinator-audit.db")?;
    if coordinator.get("query_id") != entry.get("query_id") {
        return Err("the gateway's newest query is not the coordinator's".into());
    }
    Ok((200, entry))
}

/// Sends `q` once, proven as `fedq query` proves it, and then re-posts the very same
/// body (the same proofs) over the raw API, as a coordinator replaying a query it saw
/// would: returns the answer to the replay.
pub(crate) async fn replay(fed: &Federation, q: &Ask) -> Result<(u16, Value), String> {
    let pki = fed.layout.pki();
    let mut conn = client::ApiConnection::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join(format!("{}.crt", q.requester)),
        &pki.join(format!("{}.key", q.requester)),
        &pki.join("ca.crt"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let proven = conn.prove(&q.query()).await.map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&proven).map_err(|e| e.to_string())?;
    let (status, first) = conn
        .call("POST", "/v1/query", "application/json", body.clone())
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "the original query was not answered ({status}): {first}"
        ));
    }
    conn.call("POST", "/v1/query", "application/json", body)
        .await
        .map_err(|e| e.to_string())
}

fn node_status<'a>(answer: &'a Value, node: &str) -> Option<&'a str> {
    answer
        .get("nodes")?
        .as_array()?
        .iter()
        .find(|n| n.get("node").and_then(Value::as_str) == Some(node))?
        .get("status")?
        .as_str()
}

fn records_of(answer: &Value, dataset: &str) -> usize {
    answer
        .pointer(&format!("/datasets/{dataset}/records"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn expect(cond: bool, why: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why.to_owned())
    }
}

/// The view result of `kind` with every source accounted for (`unverified` present and
/// empty): an answer that lacks a part of the view, or left a source out, cannot show
/// that something was *not* disclosed.
fn complete_view<'a>(a: &'a Value, kind: &str) -> Result<&'a Value, String> {
    let view = a
        .get("view_result")
        .ok_or_else(|| format!("expected a `{kind}` view result"))?;
    expect(
        view.get("kind").and_then(Value::as_str) == Some(kind),
        &format!("expected a `{kind}` view result"),
    )?;
    let unverified = view
        .get("unverified")
        .and_then(Value::as_array)
        .ok_or("expected the view's unverified sources")?;
    expect(
        unverified.is_empty(),
        "expected every source of the view to answer",
    )?;
    Ok(view)
}

/// A view's answer carries the view's result and each department's completeness, none of
/// the sources' records (the reference views declare no `release`).
fn releases_only_the_view(a: &Value) -> Result<(), String> {
    expect(
        a.get("datasets")
            .and_then(Value::as_object)
            .is_some_and(serde_json::Map::is_empty),
        "expected no source records beside the view's result",
    )?;
    let statuses = a
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or("expected each department's status")?;
    expect(
        statuses.iter().all(|n| {
            !matches!(
                n.get("status").and_then(Value::as_str),
                Some("ok" | "no_record")
            )
        }),
        "expected no department to say whether it holds a record",
    )
}

/// The sections of a complete credit report; none is a failure.
fn report_sections(a: &Value) -> Result<&Vec<Value>, String> {
    complete_view(a, "credit-report")?
        .get("sections")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "expected the report's sections".to_owned())
}

/// The report's section of `dataset` (`department.dataset`); a missing one is a failure.
fn section<'a>(sections: &'a [Value], dataset: &str) -> Result<&'a Value, String> {
    sections
        .iter()
        .find(|sec| sec.get("dataset").and_then(Value::as_str) == Some(dataset))
        .ok_or_else(|| format!("expected a section for `{dataset}`"))
}

/// Whether a section discloses anything: a record, or a summary that is not zero/false.
fn discloses(section: &Value) -> bool {
    let records = section
        .get("records")
        .and_then(Value::as_array)
        .is_none_or(|r| !r.is_empty());
    // A summary (`{"exists": false}`, `{"count": 0}`) says nothing only when it is empty.
    fn says_nothing(v: &Value) -> bool {
        match v {
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_u64() == Some(0),
            Value::Object(o) => o.values().all(says_nothing),
            _ => false,
        }
    }
    let summaries = section
        .get("summaries")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.values().all(says_nothing));
    records || summaries
}

/// The expired person's own credit report: the section of each dataset that holds one of
/// their expired negative records is there (the department answered) and discloses
/// nothing, and no other negative section discloses anything.
fn check_expired_report(status: u16, a: &Value, expired: &[String]) -> Result<(), String> {
    expect(status == 200, "expected 200")?;
    let sections = report_sections(a)?;
    expect(!expired.is_empty(), "scenario has an expired record")?;
    for dataset in expired {
        let sec = section(sections, dataset)?;
        expect(
            !discloses(sec),
            &format!("an expired negative record of `{dataset}` was disclosed"),
        )?;
    }
    let any = sections
        .iter()
        .filter(|sec| {
            sec.get("dataset")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.starts_with("civil-affairs."))
        })
        .any(discloses);
    expect(!any, "an expired negative record was disclosed")
}

/// The repaired person's blacklist check: every list answered and none lists them.
fn check_repaired_blacklist(status: u16, a: &Value, repaired: bool) -> Result<(), String> {
    expect(status == 200, "expected 200")?;
    expect(repaired, "scenario has a repaired record")?;
    let listings = complete_view(a, "blacklist")?
        .get("listings")
        .and_then(Value::as_array)
        .ok_or("expected the blacklist check's listings")?;
    expect(listings.is_empty(), "a repaired record was disclosed")
}

/// Whether a blacklist check's answer lists the person on the court's list.
fn court_listed(a: &Value) -> Option<bool> {
    a.pointer("/view_result/listings")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .any(|x| x.get("dataset").and_then(Value::as_str) == Some(COURT_LIST))
        })
}

const COURT_LIST: &str = "court.dishonest_debtors";

/// The court's enforcement bureau locates the debtor (a covert inquiry), then the person
/// asks at the window who looked at their data.
async fn enforcement_then_register(
    fed: &Federation,
    subject: &str,
) -> Result<(u16, Value), String> {
    let q = Ask {
        requester: "court.enforcement".into(),
        subject: subject.into(),
        purpose: "judgment-enforcement".into(),
        basis: Some("民事诉讼法".into()),
        consent: None,
        case_reference: Some("(2026)湘01执123号".into()),
        view: None,
        datasets: vec![COURT_LIST.into()],
    };
    let (status, _) = ask_in_tour(fed, &q).await?;
    expect(status == 200, "expected the enforcement inquiry answered")?;
    rights::register(fed, subject)
        .await
        .map_err(|e| e.to_string())
}

/// The person objects to their court record; then the licensing office's blacklist check.
async fn object_then_check(
    fed: &Federation,
    subject: &str,
    record: &str,
) -> Result<(u16, Value), String> {
    let filing = fedq_wire::rights::Filing {
        record: record.into(),
        reason: "该案已于2026年10月履行完毕，名单未及时更新".into(),
        evidence: "执行款收据 2026-0415".into(),
        grounds: None,
    };
    let (status, filed) = rights::file(fed, subject, "object", COURT_LIST, filing)
        .await
        .map_err(|e| e.to_string())?;
    expect(status == 200, "expected the objection filed")?;
    let (status, check) = ask_in_tour(fed, &licensing(subject, "blacklist-check")).await?;
    Ok((
        status,
        serde_json::json!({ "filed": filed.pointer("/rights/court/filed"), "blacklist": check }),
    ))
}

/// The court's records officer upholds the objection (a signed decision recorded at the
/// node); then the blacklist check and the person's register.
async fn uphold_then_check(
    fed: &Federation,
    subject: &str,
    objection: &str,
) -> Result<(u16, Value), String> {
    let token = rights::sign_decision(
        fed,
        RECORDS_OFFICER,
        "court",
        objection,
        "upheld",
        "经核查，执行款尚未到账，维持原记录",
    )
    .map_err(|e| e.to_string())?;
    rights::resolve(fed, "court", objection, &token)
        .await
        .map_err(|e| e.to_string())?;
    let (_, register) = rights::register(fed, subject)
        .await
        .map_err(|e| e.to_string())?;
    let (status, check) = ask_in_tour(fed, &licensing(subject, "blacklist-check")).await?;
    Ok((
        status,
        serde_json::json!({ "register": register, "blacklist": check }),
    ))
}

/// The serious-dishonesty publication at `date` (every department's signed part, merged)
/// and the row of the court's case `case` in it, if it is there.
async fn published_case(
    fed: &Federation,
    date: time::Date,
    case: &str,
) -> Result<(fedq_coordinator::disclosure::Published, Option<Value>), String> {
    let published = fedq_sandbox::disclosure::publish(fed, PublicList::Dishonesty, date)
        .await
        .map_err(|e| e.to_string())?;
    let json = published
        .files
        .first()
        .ok_or("expected the publication's JSON file")?;
    let document: Value = serde_json::from_slice(&std::fs::read(json).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let row = document
        .get("rows")
        .and_then(Value::as_array)
        .and_then(|rows| {
            rows.iter()
                .find(|r| r.pointer("/cells/case_no").and_then(Value::as_str) == Some(case))
        })
        .cloned();
    Ok((published, row))
}

/// The day a record listed on `listed` leaves its three-year window (its last day shown is
/// the day before).
fn window_end(listed: time::Date) -> time::Date {
    let year = listed.year() + 3;
    listed
        .replace_year(year)
        .or_else(|_| time::Date::from_calendar_date(year, listed.month(), 28))
        .unwrap_or(listed)
}

/// Public disclosure at the tour's date: the court's and civil affairs' signed parts merged
/// into the dishonesty list and the red list; the same parts merged again give the same
/// bytes; the publication checks against the federation's CA; the debtor's case is in it
/// on the last day of its window and gone the day it ends.
async fn disclose_then_expire(
    fed: &Federation,
    subject: &str,
    case: &str,
) -> Result<(u16, Value), String> {
    let (published, row) = published_case(fed, fed.today, case).await?;
    let dir = fedq_sandbox::disclosure::directory(fed, PublicList::Dishonesty, fed.today);
    let parts: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("parts"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let again = fedq_coordinator::disclosure::publish(
        &fed.layout.pki(),
        PublicList::Dishonesty,
        fed.today,
        &parts,
        &dir.join("again"),
    )
    .map_err(|e| e.to_string())?;
    let bytes = |files: &[std::path::PathBuf]| -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_default())
            .collect()
    };
    let first = bytes(&published.files);
    let same_bytes = first == bytes(&again.files);
    let holds_id = first
        .iter()
        .any(|b| String::from_utf8_lossy(b).contains(subject));
    let manifest = published.files.last().ok_or("expected the manifest")?;
    let verified = match fedq_coordinator::disclosure::verify(&fed.layout.pki(), manifest) {
        Ok(checked) => serde_json::json!(checked.parts),
        Err(e) => Value::String(e.to_string()),
    };
    let listed = row
        .as_ref()
        .and_then(|r| r.pointer("/cells/listed_on"))
        .and_then(Value::as_str)
        .and_then(fedq_policy::value::parse_date)
        .ok_or("expected the case's listing date in the publication")?;
    let end = window_end(listed);
    let last_day = end.previous_day().ok_or("expected a date")?;
    let (_, on_last_day) = published_case(fed, last_day, case).await?;
    let (_, on_end) = published_case(fed, end, case).await?;
    let honours = fedq_sandbox::disclosure::publish(fed, PublicList::Honours, fed.today)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        200,
        serde_json::json!({
            "row": row,
            "manifest": published.manifest.parts.iter().map(|p| serde_json::json!({"node": p.node, "records": p.records})).collect::<Vec<_>>(),
            "same_bytes": same_bytes,
            "holds_resident_id": holds_id,
            "verified": verified,
            "last_day": last_day.to_string(),
            "shown_on_last_day": on_last_day.is_some(),
            "window_end": end.to_string(),
            "shown_when_window_ends": on_end.is_some(),
            "honours": honours.manifest.parts.iter().map(|p| serde_json::json!({"node": p.node, "records": p.records})).collect::<Vec<_>>(),
        }),
    ))
}

/// The person applies for a credit repair; the review office reads the application and
/// a reviewer approves it; the court records the repair; then the blacklist check.
async fn repair_then_check(
    fed: &Federation,
    subject: &str,
    record: &str,
) -> Result<(u16, Value), String> {
    let filing = fedq_wire::rights::Filing {
        record: record.into(),
        reason: "已全额履行并取得法院结案证明".into(),
        evidence: "结案证明 (2026)湘0102执结88号".into(),
        grounds: Some(fedq_wire::rights::RepairGrounds::Performance),
    };
    let (status, filed) = rights::file(fed, subject, "apply-repair", COURT_LIST, filing)
        .await
        .map_err(|e| e.to_string())?;
    expect(status == 200, "expected the application filed")?;
    let application = filed
        .pointer("/rights/court/filed")
        .and_then(Value::as_str)
        .ok_or("expected the application's id")?
        .to_owned();
    let (status, review) = rights::review_applications(fed, subject, COURT_LIST)
        .await
        .map_err(|e| e.to_string())?;
    expect(status == 200, "expected the review office's reading")?;
    let token = rights::sign_decision(
        fed,
        REPAIR_REVIEWERS[0],
        "court",
        &application,
        "approve",
        "履行证明核实无误，准予修复",
    )
    .map_err(|e| e.to_string())?;
    rights::repair(fed, "court", &application, &[token])
        .await
        .map_err(|e| e.to_string())?;
    let (status, check) = ask_in_tour(fed, &licensing(subject, "blacklist-check")).await?;
    Ok((
        status,
        serde_json::json!({ "application": application, "review": review, "blacklist": check }),
    ))
}

/// One approver alone cannot reverse the repair; two can; then the blacklist check.
async fn reverse_then_check(
    fed: &Federation,
    subject: &str,
    application: &str,
) -> Result<(u16, Value), String> {
    let sign = |officer: &str| {
        rights::sign_decision(
            fed,
            officer,
            "court",
            application,
            "reverse",
            "结案证明系伪造，撤销修复",
        )
        .map_err(|e| e.to_string())
    };
    let first = sign(REPAIR_REVIEWERS[0])?;
    let alone = rights::repair(fed, "court", application, std::slice::from_ref(&first)).await;
    let refused = alone.err().map(|e| e.to_string());
    let second = sign(REPAIR_REVIEWERS[1])?;
    rights::repair(fed, "court", application, &[first, second])
        .await
        .map_err(|e| e.to_string())?;
    let (status, check) = ask_in_tour(fed, &licensing(subject, "blacklist-check")).await?;
    Ok((
        status,
        serde_json::json!({ "one_approval": refused, "blacklist": check }),
    ))
}

/// The person complains, at the window, about a query their register lists: the
/// coordinator routes it to the departments that query concerned; a security officer
/// takes it up and closes it with signed statements; the window reads the outcome.
async fn complain_then_follow(fed: &Federation, subject: &str) -> Result<(u16, Value), String> {
    use fedq_coordinator::complaints::complaint::{
        ComplaintAbout, ComplaintRequest, ComplaintStatus,
    };
    let (status, register) = rights::register(fed, subject)
        .await
        .map_err(|e| e.to_string())?;
    expect(status == 200, "expected the register")?;
    let query = register
        .pointer("/rights/court/entries")
        .and_then(Value::as_array)
        .and_then(|entries| {
            entries.iter().find(|e| {
                e.get("requester").and_then(Value::as_str) == Some("market-regulation.licensing")
            })
        })
        .and_then(|e| e.get("query_id").and_then(Value::as_str))
        .ok_or("expected the licensing office's query in the register")?
        .to_owned();
    let filed = rights::file_complaint(
        fed,
        &ComplaintRequest {
            about: ComplaintAbout::Query(query),
            text: "我没有申请过任何许可，为什么市场监管局查询了我的失信记录？".into(),
            contact: Some("窗口回电".into()),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let officer = OFFICERS[0];
    rights::update_complaint(
        fed,
        officer,
        &filed.complaint_id,
        ComplaintStatus::InReview,
        "已调取许可申请材料核查",
    )
    .await
    .map_err(|e| e.to_string())?;
    rights::update_complaint(
        fed,
        officer,
        &filed.complaint_id,
        ComplaintStatus::Closed,
        "查询有对应许可申请及法定依据，已书面答复",
    )
    .await
    .map_err(|e| e.to_string())?;
    let state = rights::complaint_status(fed, &filed.complaint_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok((200, serde_json::json!({ "filed": filed, "state": state })))
}

/// Sends `q` as built, or fails the stop with why it could not be built.
async fn ask_built(fed: &Federation, q: Result<Ask, String>) -> Result<(u16, Value), String> {
    ask(fed, &q?).await.map_err(|e| e.to_string())
}

/// An answer in which every department asked refused the consent token itself, each
/// naming the claim `claim` that failed, and nothing was released. (The coordinator never
/// sees the token: it is sealed with the subject to each department.)
fn check_consent_refused(status: u16, a: &Value, claim: &str) -> Result<(), String> {
    expect(
        status == 200,
        "expected 200 with every department's refusal",
    )?;
    let nodes = a
        .get("nodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    expect(!nodes.is_empty(), "expected the departments' reports")?;
    for n in &nodes {
        let reason = n.get("reason").and_then(Value::as_str).unwrap_or_default();
        expect(
            n.get("status").and_then(Value::as_str) == Some("denied")
                && reason.contains("consent")
                && reason.contains(claim),
            &format!("expected every department to refuse the token, naming its {claim}"),
        )?;
    }
    let listings = a
        .pointer("/view_result/listings")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    expect(listings == 0, "expected nothing released")
}

/// The label of the bundle the tour's officers approve (bundle 1 of the policy
/// `2026.12-1`).
pub const APPROVED_VERSION: &str = "1/2026.12-1";

/// Two officers sign the policy in force, renamed `2026.12-1`, as bundle 1, and a third
/// publishes it through the coordinator's API. Returns the publication's JSON.
async fn approve_policy_change(fed: &Federation) -> Result<Value, String> {
    let policy = fed.layout.policy();
    let text = std::fs::read_to_string(&policy).map_err(|e| e.to_string())?;
    let renamed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("version = ") {
                "version = \"2026.12-1\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    let dir = fedq_policy::load::catalogue_dir_of(&policy, &text).map_err(|e| e.to_string())?;
    let digests = fedq_bundle::catalogue_digests(&dir).map_err(|e| e.to_string())?;
    let pki = fed.layout.pki();
    // The bundle also pins the roster: from now on only these officers' keys may approve.
    let roster = OFFICERS
        .iter()
        .map(|o| fedq_bundle::RosterEntry::from_certificate_file(&pki.join(format!("{o}.crt"))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut bundle =
        fedq_bundle::Bundle::create("changsha", 1, 2, renamed.join("\n") + "\n", digests, roster)
            .map_err(|e| e.to_string())?;
    for officer in ["officer-zhang", "officer-li"] {
        let key = fedq_certs::signing::OfficerKey::load(
            &pki.join(format!("{officer}.crt")),
            &pki.join(format!("{officer}.key")),
        )
        .map_err(|e| e.to_string())?;
        bundle.sign(&key).map_err(|e| e.to_string())?;
    }
    let file = policy.with_file_name("v1.bundle.toml");
    std::fs::write(&file, bundle.to_toml().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let args = client::PublishArgs {
        bundle: file,
        api: client::ApiArgs {
            coordinator: format!("https://{}", fed.coordinator),
            cert: pki.join("officer-wang.crt"),
            key: pki.join("officer-wang.key"),
            ca: pki.join("ca.crt"),
            crl: None,
        },
    };
    match client::publish(&args).await {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(format!("publication refused ({status}): {body}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the tour against a running federation. `stop_node` is called to take a node down
/// for the last stop and `restart_node` to bring it back. The witnessing stop expects the
/// federation built with [`Federation::witness_quickly`] (as `fedq demo` does), so that the
/// court's log is cosigned within the tour.
pub async fn tour(fed: &Federation, running: &mut Running, tap: Option<FrameTap>) -> Vec<Step> {
    let s = &fed.scenario;
    let mut steps = Vec::new();
    let mut run = |headline: &str,
                   result: Result<(u16, Value), String>,
                   check: &dyn Fn(u16, &Value) -> Result<(), String>| {
        let (status, answer, check) = match result {
            Ok((status, answer)) => {
                let c = check(status, &answer);
                (status, answer, c)
            }
            Err(e) => (0, Value::Null, Err(e)),
        };
        steps.push(Step {
            headline: headline.to_owned(),
            status,
            answer,
            check,
        });
    };

    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "A licensing office asks: is this applicant on a serious-dishonesty list? (the active listing comes back; every other department's list is checked too, and no department's records travel beside the answer)",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let listings = a.pointer("/view_result/listings").and_then(Value::as_array).map_or(0, Vec::len);
            expect(listings >= 1, "expected at least one active listing")?;
            expect(node_status(a, "court") == Some("answered"), "expected court: answered")?;
            releases_only_the_view(a)
        },
    );

    let applicant = s.blacklisted.resident_id.clone();
    run(
        "What the coordinator registered for that query, beside what the office saw: the requester, purpose, legal basis, case, view and which departments it asked — never the person, whom the office sealed to each department (the coordinator's entry's subject is `-`)",
        coordinator_entry(fed),
        &|status, e| {
            expect(status == 200, "expected the coordinator's entry")?;
            expect(e.get("subject").and_then(Value::as_str) == Some("-"), "expected no subject in the coordinator's entry")?;
            expect(e.get("consent_id").is_none_or(Value::is_null), "expected no consent token id")?;
            expect(!e.to_string().contains(applicant.as_str()), "the coordinator's entry holds the resident ID")?;
            expect(
                e.pointer("/node_query_ids/court").and_then(Value::as_str).is_some(),
                "expected the court among the departments asked",
            )
        },
    );

    run(
        "What the licensing office's own gateway registered for the same query: which of its apps asked, the person under the gateway's own pseudonym key (the app sent the ID to the gateway, which sealed it to each department), and the coordinator's query id",
        gateway_entry(fed),
        &|status, e| {
            expect(status == 200, "expected the gateway's entry")?;
            expect(
                e.get("requester").and_then(Value::as_str) == Some(&format!("app:{GATEWAY_APP}")),
                "expected the app in the gateway's entry",
            )?;
            let subject = e.get("subject").and_then(Value::as_str).unwrap_or("-");
            expect(subject != "-", "expected the subject's pseudonym in the gateway's entry")?;
            expect(!e.to_string().contains(applicant.as_str()), "the gateway's entry holds the resident ID")
        },
    );

    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "Refused replay: whoever holds the coordinator re-sends the same signed query, proofs and all — every department sees a proof already used, refuses it (audited), and releases nothing",
        replay(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let nodes = a.get("nodes").and_then(Value::as_array).cloned().unwrap_or_default();
            expect(!nodes.is_empty(), "expected the departments to be asked")?;
            expect(
                nodes.iter().all(|n| n.get("proof_refused").and_then(Value::as_str) == Some("replayed")),
                "expected every department to refuse the replayed proof",
            )?;
            expect(node_status(a, "court") == Some("denied"), "expected court: denied")?;
            let listings = a.pointer("/view_result/listings").and_then(Value::as_array).map_or(0, Vec::len);
            expect(listings == 0, "expected nothing released")
        },
    );

    let q = licensing(&s.clean.resident_id, "green-channel");
    run(
        "Green channel (长政办发〔2017〕62号 §十三): three clean years → fast-track; each department answers only \"any negative record: yes/no\", and the licensing office gets the verdict alone",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(a.pointer("/view_result/eligible") == Some(&Value::Bool(true)), "expected eligible")?;
            releases_only_the_view(a)
        },
    );

    let q = self_query(fed, &s.tax_arrears.resident_id, "credit-report").map_err(|e| e.to_string());
    run(
        "A citizen's own credit report at the service window, with a consent token the identity check signed for this person, office, purpose and view",
        ask_built(fed, q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let sections = report_sections(a)?;
            let tax = sections
                .iter()
                .filter(|sec| sec.get("dataset").and_then(Value::as_str).is_some_and(|d| d.starts_with("tax.")))
                .map(|sec| sec.get("records").and_then(Value::as_array).map_or(0, Vec::len))
                .sum::<usize>();
            expect(tax >= 1, "expected the tax arrears in the report")
        },
    );

    // Recruitment with the candidate's written consent: the identity check signs a token for
    // this candidate, the recruitment office, its purpose and the blacklist check.
    let recruitment = |subject: &str, consent: Result<String, String>| -> Result<Ask, String> {
        Ok(Ask {
            requester: RECRUITMENT_OFFICE.into(),
            subject: subject.into(),
            purpose: "public-recruitment".into(),
            basis: Some(RECRUITMENT_BASIS.into()),
            consent: Some(consent?),
            case_reference: Some(RECRUITMENT_CASE.into()),
            view: Some("blacklist-check".into()),
            datasets: Vec::new(),
        })
    };
    let candidate = &s.blacklisted.resident_id;
    let token = consent_token(
        fed,
        candidate,
        RECRUITMENT_OFFICE,
        "public-recruitment",
        &["view:blacklist-check"],
    )
    .map_err(|e| e.to_string());
    run(
        "Recruitment with the candidate's consent token: the blacklist check is answered (the consent-only rules apply because the token verified at the coordinator and at every department)",
        ask_built(fed, recruitment(candidate, token.clone())).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let listings = a.pointer("/view_result/listings").and_then(Value::as_array).map_or(0, Vec::len);
            expect(listings >= 1, "expected the candidate's active listing")
        },
    );
    let forged = forged_consent_token(
        fed,
        RECRUITMENT_OFFICE,
        candidate,
        RECRUITMENT_OFFICE,
        "public-recruitment",
        &["view:blacklist-check"],
    )
    .map_err(|e| e.to_string());
    run(
        "Refused: the same consent forged — signed with the recruitment office's own key instead of the consent authority's — every department verifies the token itself (the coordinator never sees it, sealed with the subject) and refuses it as not verifying; nothing is released",
        ask_built(fed, recruitment(candidate, forged)).await,
        &|status, a| check_consent_refused(status, a, "does not verify"),
    );
    run(
        "Refused: the candidate's genuine token, used to ask about another person — every department refuses it naming the `sub` claim, never either person",
        ask_built(fed, recruitment(&s.clean.resident_id, token)).await,
        &|status, a| {
            check_consent_refused(status, a, "`sub`")?;
            let text = a.to_string();
            expect(
                !text.contains(s.clean.resident_id.as_str()) && !text.contains(candidate.as_str()),
                "the refusal must not quote a resident ID",
            )
        },
    );

    let q = Ask {
        requester: "statistics.bureau".into(),
        subject: s.blacklisted.resident_id.clone(),
        purpose: "statistics".into(),
        basis: Some("统计法".into()),
        consent: None,
        case_reference: None,
        view: None,
        datasets: vec!["court.dishonest_debtors.case_no".into()],
    };
    run(
        "Refused: statistics is aggregate-only — the statistics bureau may not learn even a count about one named person (\"this person is a listed debtor\"); the refusal carries the policy's reason, and no department was asked",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 403, "expected 403")?;
            let error = a.get("detail").and_then(Value::as_str).unwrap_or_default();
            expect(
                error.contains("aggregate-only") && error.contains("`statistics`"),
                "expected the policy's reason naming the purpose",
            )?;
            expect(a.get("nodes").is_none(), "expected no department to be asked")
        },
    );

    let q = Ask {
        case_reference: Some("(2026)湘01执123号".into()),
        ..licensing(&s.clean.resident_id, "green-channel")
    };
    run(
        "Refused: a licensing query must name the application it serves — a court case number is not a licensing application number; the refusal shows the expected form, never what was sent",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 403, "expected 403")?;
            let error = a.get("detail").and_then(Value::as_str).unwrap_or_default();
            expect(
                error.contains("case reference") && error.contains("长市监许申"),
                "expected the expected form of the case reference",
            )?;
            expect(!error.contains("湘01执"), "the refusal must not quote the reference sent")?;
            expect(a.get("nodes").is_none(), "expected no department to be asked")
        },
    );

    let q = Ask {
        basis: Some("anything".into()),
        ..licensing(&s.clean.resident_id, "green-channel")
    };
    run(
        "Refused: a legal basis the purpose does not accept gets nothing, not even the green channel — the refusal lists the accepted ones",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 403, "expected 403")?;
            let error = a.get("detail").and_then(Value::as_str).unwrap_or_default();
            expect(
                error.contains(LICENSING_BASIS) && error.contains("行政许可法"),
                "expected the accepted legal bases",
            )?;
            expect(a.get("nodes").is_none(), "expected no department to be asked")
        },
    );

    let q = Ask {
        requester: "market-regulation.licensing".into(),
        subject: s.blacklisted.resident_id.clone(),
        purpose: "administrative-licensing".into(),
        basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view: None,
        datasets: vec!["public-security.identity_basics.household_registration".into()],
    };
    run(
        "Denied by a rule, with its rationale: the licensing office asks for the applicant's household registration — the deny rule names itself and says why, and public security is never asked",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(node_status(a, "public-security") == Some("denied"), "expected public-security: denied")?;
            let reason = a
                .get("nodes")
                .and_then(Value::as_array)
                .and_then(|n| n.iter().find(|n| n.get("node").and_then(Value::as_str) == Some("public-security")))
                .and_then(|n| n.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("");
            expect(reason.contains("privacy-household-registration"), "expected the deny rule's id and rationale")
        },
    );

    let q = self_query(fed, &s.expired.resident_id, "credit-report").map_err(|e| e.to_string());
    // The datasets of the person's negative records (not their identity basics).
    let is_negative = |department: &str, dataset: &str| {
        CATALOGUES
            .iter()
            .filter(|(d, _)| *d == department)
            .filter_map(|(d, text)| fedq_policy::Catalogue::parse(text, d).ok())
            .any(|c| {
                c.dataset(dataset)
                    .is_some_and(|ds| ds.kind == fedq_policy::catalogue::DatasetKind::Negative)
            })
    };
    let expired: Vec<String> = s
        .expired
        .records
        .iter()
        .filter(|r| is_negative(&r.department, &r.dataset))
        .map(|r| format!("{}.{}", r.department, r.dataset))
        .collect();
    run(
        "The law is not a policy option: this person's only negative record is older than 3 years (长政办发〔2017〕62号 §十) — not disclosed, even in their own report",
        ask_built(fed, q).await,
        &|status, a| check_expired_report(status, a, &expired),
    );

    let repaired = !s.repaired.records.is_empty();
    let q = licensing(&s.repaired.resident_id, "blacklist-check");
    run(
        "Credit repair ends disclosure early (长政办发〔2017〕62号 §十): this person's listing was repaired — the blacklist check finds nothing",
        ask_in_tour(fed, &q).await,
        &|status, a| check_repaired_blacklist(status, a, repaired),
    );

    let published = approve_policy_change(fed).await;
    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "Two security officers approve a policy change: the signed bundle is verified by the coordinator and by every department itself, and the next answer names the version that decided it",
        match &published {
            Ok(_) => ask_in_tour(fed, &q).await,
            Err(e) => Err(e.clone()),
        },
        &|status, a| {
            let publication = published.as_ref().map_err(Clone::clone)?;
            expect(
                publication.get("complete") == Some(&Value::Bool(true)),
                "expected the coordinator and every node to run the bundle",
            )?;
            expect(status == 200, "expected 200")?;
            expect(
                a.get("policy_version").and_then(Value::as_str) == Some(APPROVED_VERSION),
                "expected the approved version to decide",
            )
        },
    );

    let witnesses = fed.nodes.len() - 1;
    run(
        "No department can quietly rewrite its register (长政办发〔2017〕62号 §八): the court's audit log signs checkpoints, every other department checks each against the last it cosigned and cosigns it, and the log file is checked against all of them",
        witnessed_log(fed, "court").await,
        &|status, w| {
            expect(status == 200, "expected the witnessed log")?;
            expect(w.get("caught_up") == Some(&Value::Bool(true)), "expected every witness to cosign the newest checkpoint")?;
            expect(
                w.get("witnesses").and_then(Value::as_object).map(serde_json::Map::len) == Some(witnesses),
                "expected every other department as a witness",
            )?;
            expect(w.get("intact") == Some(&Value::Bool(true)), "expected the log to match every cosigned checkpoint")
        },
    );

    // The person's rights (issue 19), at the citizen-service window.
    let debtor = s.blacklisted.resident_id.clone();
    let court_record = rights::record_key(&s.blacklisted, COURT_LIST).unwrap_or_default();
    run(
        "Who looked at my data: at the service window, with a consent token for exactly this, the person's register comes back from every department's own log — the licensing office's queries listed with their case and legal basis, each proven against the department's signed checkpoint; the court's enforcement inquiry only counted, hidden for 180 days as the policy says for judgment enforcement",
        enforcement_then_register(fed, &debtor).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let rights = a.get("rights").and_then(Value::as_object).ok_or("expected every department's register")?;
            expect(rights.len() == fed.nodes.len(), "expected a register from every department")?;
            let court = rights.get("court").ok_or("expected the court's register")?;
            let entries = court.get("entries").and_then(Value::as_array).ok_or("expected the court's entries")?;
            expect(
                entries.iter().any(|e| e.get("requester").and_then(Value::as_str) == Some("market-regulation.licensing")
                    && e.get("case_reference").and_then(Value::as_str) == Some(LICENSING_CASE)),
                "expected the licensing office's query with its case",
            )?;
            expect(
                !entries.iter().any(|e| e.get("purpose").and_then(Value::as_str) == Some("judgment-enforcement")),
                "the covert enforcement inquiry was listed",
            )?;
            let hidden = court.get("hidden").and_then(Value::as_array).ok_or("expected the hidden count")?;
            expect(
                hidden.iter().any(|h| h.get("purpose").and_then(Value::as_str) == Some("judgment-enforcement")
                    && h.get("count").and_then(Value::as_u64).is_some_and(|n| n >= 1)),
                "expected the enforcement inquiry counted as hidden",
            )?;
            expect(court.get("checkpoint").is_some_and(Value::is_string), "expected the court's signed checkpoint")
        },
    );

    run(
        "Public disclosure (公开披露, 长政办发〔2017〕62号 §十五; the red list, §三): the court and civil affairs each sign their part — records inside their window, none repaired or disputed, the name masked to the surname and the ID to its first six and last four — and the parts merge into one dated publication (JSON, CSV, a static Chinese page) whose manifest names each part's node, count and signature; the same parts give the same bytes; the debtor's case is shown on the last day of its window and gone the day it ends",
        disclose_then_expire(fed, &debtor, &court_record).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let row = a.get("row").filter(|r| !r.is_null()).ok_or("expected the debtor's case in the publication")?;
            let name = row.pointer("/cells/name").and_then(Value::as_str).unwrap_or_default();
            expect(name.chars().skip(1).all(|c| c == '*') && name.chars().count() > 1, "expected the name masked to the surname")?;
            let id = row.pointer("/cells/resident_id").and_then(Value::as_str).unwrap_or_default();
            expect(id.len() == 18 && &id[6..14] == "********", "expected the ID masked to its first six and last four")?;
            expect(row.pointer("/cells/amount_owed").is_none(), "the amount owed was published")?;
            expect(a.get("holds_resident_id") == Some(&Value::Bool(false)), "a published file holds the resident ID")?;
            expect(a.get("same_bytes") == Some(&Value::Bool(true)), "the same parts gave other bytes")?;
            expect(a.pointer("/verified/court").and_then(Value::as_u64).is_some_and(|n| n >= 1), "expected the court's signature verified")?;
            expect(a.get("shown_on_last_day") == Some(&Value::Bool(true)), "expected the case shown on its window's last day")?;
            expect(a.get("shown_when_window_ends") == Some(&Value::Bool(false)), "the case was shown after its window ended")?;
            expect(
                // Civil affairs' signed part of the red list (how many honours fall inside
                // their three years depends on the synthetic data's size).
                a.get("honours").and_then(Value::as_array).is_some_and(|p| p.iter().any(|p| p.get("node").and_then(Value::as_str) == Some("civil-affairs") && p.get("records").is_some_and(Value::is_u64))),
                "expected the red list with civil affairs' signed part",
            )
        },
    );

    let objected = object_then_check(fed, &debtor, &court_record).await;
    let objection = objected
        .as_ref()
        .ok()
        .and_then(|(_, a)| a.get("filed").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    run(
        "The person objects (异议) to the court's record, the reason and evidence sealed to the court alone: the court marks it disputed, and the licensing office's blacklist check no longer counts it until the court decides",
        objected,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(a.get("filed").and_then(Value::as_str).is_some_and(|id| id.starts_with("obj-")), "expected the objection's id")?;
            expect(court_listed(&a["blacklist"]) == Some(false), "a disputed record was counted by the blacklist check")
        },
    );

    run(
        "The court's records officer upholds the record with a signed decision, which the node verifies against the federation's CA before recording it: the person sees the outcome and the officer in their register, and the listing counts again",
        uphold_then_check(fed, &debtor, &objection).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let objection = a.pointer("/register/rights/court/objections/0").ok_or("expected the objection in the register")?;
            expect(objection.get("status").and_then(Value::as_str) == Some("upheld"), "expected the objection upheld")?;
            expect(objection.pointer("/resolution/officer").and_then(Value::as_str) == Some(RECORDS_OFFICER), "expected the officer named")?;
            expect(court_listed(&a["blacklist"]) == Some(true), "expected the upheld listing counted again")
        },
    );

    let repaired = repair_then_check(fed, &debtor, &court_record).await;
    let application = repaired
        .as_ref()
        .ok()
        .and_then(|(_, a)| a.get("application").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    run(
        "Credit repair (信用修复, 长政办发〔2017〕62号 §十): the person applies, citing performance; the review office reads the application and the record, a reviewer on the policy's `repair_approvers` signs the approval, and the court records it — the listing is no longer disclosed",
        repaired,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(
                a.pointer("/review/rights/court/repairs/0/status").and_then(Value::as_str) == Some("applied"),
                "expected the review office to read the application",
            )?;
            expect(court_listed(&a["blacklist"]) == Some(false), "a repaired record was disclosed")
        },
    );

    run(
        "The repaired case drops out of the next publication: the court's new signed part no longer holds it",
        published_case(fed, fed.today, &court_record)
            .await
            .map(|(p, row)| (200, serde_json::json!({ "row": row, "court": p.manifest.parts.iter().find(|p| p.node == "court").map(|p| p.records) }))),
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(a.get("court").is_some_and(Value::is_u64), "expected the court's part")?;
            expect(a.get("row").is_some_and(Value::is_null), "the repaired case was published")
        },
    );

    run(
        "Reversing a repair needs a second approval: one reviewer's signed reversal is refused, two reviewers' together are recorded, and the listing is disclosed again",
        reverse_then_check(fed, &debtor, &application).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(
                a.get("one_approval").and_then(Value::as_str).is_some_and(|e| e.contains("second approval")),
                "expected one approval refused",
            )?;
            expect(court_listed(&a["blacklist"]) == Some(true), "expected the listing disclosed again")
        },
    );

    run(
        "Complaints (投诉, 长政办发〔2017〕62号 §九): the person names a query from their register; the coordinator routes the complaint to the departments that query concerned and keeps it in its queue (its audit log registers the id, never the words); a security officer takes it up and closes it with statements signed by their officer key, and the window reads each step",
        complain_then_follow(fed, &debtor).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(
                a.pointer("/filed/departments").and_then(Value::as_array).is_some_and(|d| d.iter().any(|d| d == "court")),
                "expected the complaint routed to the court",
            )?;
            expect(a.pointer("/state/status").and_then(Value::as_str) == Some("closed"), "expected the complaint closed")?;
            expect(
                a.pointer("/state/history").and_then(Value::as_array).map(Vec::len) == Some(3),
                "expected filed, in review and closed",
            )?;
            expect(a.pointer("/state/history/2/officer").and_then(Value::as_str) == Some(OFFICERS[0]), "expected the officer named")
        },
    );

    running.stop_node("hrss").await;
    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "A department is down: hrss is shown as `unavailable`, the others still answer, and the answer says it is partial",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(node_status(a, "hrss") == Some("unavailable"), "expected hrss: unavailable")?;
            expect(node_status(a, "court") == Some("answered"), "expected court: answered")?;
            expect(a.get("complete") == Some(&Value::Bool(false)), "expected complete: false")
        },
    );
    if let Err(e) = running.restart_node(fed, "hrss", tap).await {
        tracing::error!(error = %e, "could not restart hrss");
    }
    let _ = records_of;
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    fn report(sections: Value) -> Value {
        json!({ "view_result": { "kind": "credit-report", "sections": sections, "unverified": [] } })
    }

    fn empty_section(dataset: &str) -> Value {
        json!({ "label": "x", "dataset": dataset, "records": [], "summaries": {} })
    }

    #[test]
    fn the_expired_check_passes_only_on_a_report_with_the_section_and_nothing_in_it() {
        let expired = vec!["court.dishonest_debtors".to_owned()];
        let good = report(json!([
            empty_section("court.dishonest_debtors"),
            empty_section("tax.arrears")
        ]));
        assert_eq!(check_expired_report(200, &good, &expired), Ok(()));
        // The view, the sections, the dataset's section missing; a source unverified.
        for bad in [
            json!({}),
            json!({ "view_result": { "kind": "credit-report", "unverified": [] } }),
            report(json!([])),
            report(json!([empty_section("tax.arrears")])),
            json!({ "view_result": { "kind": "credit-report",
                "sections": [empty_section("court.dishonest_debtors")],
                "unverified": [{ "dataset": "tax.arrears", "reason": "unavailable" }] } }),
        ] {
            assert!(check_expired_report(200, &bad, &expired).is_err(), "{bad}");
        }
        // Something disclosed: a record, or a summary that is not empty.
        let mut record = empty_section("court.dishonest_debtors");
        record["records"] = json!([{ "listed_on": "2022-01-01" }]);
        let mut counted = empty_section("court.dishonest_debtors");
        counted["summaries"] = json!({ "case_no": { "count": 1 } });
        for disclosed in [record, counted] {
            let a = report(json!([disclosed]));
            assert!(check_expired_report(200, &a, &expired).is_err(), "{a}");
        }
        let mut zero = empty_section("court.dishonest_debtors");
        zero["summaries"] = json!({ "case_no": { "exists": false } });
        assert_eq!(
            check_expired_report(200, &report(json!([zero])), &expired),
            Ok(())
        );
        assert!(check_expired_report(403, &good, &expired).is_err());
        assert!(check_expired_report(200, &good, &[]).is_err());
    }

    #[test]
    fn the_repaired_check_fails_without_listings_or_with_a_source_unverified() {
        let good =
            json!({ "view_result": { "kind": "blacklist", "listings": [], "unverified": [] } });
        assert_eq!(check_repaired_blacklist(200, &good, true), Ok(()));
        for bad in [
            json!({}),
            json!({ "view_result": { "kind": "blacklist", "unverified": [] } }),
            json!({ "view_result": { "kind": "blacklist", "listings": [] } }),
            json!({ "view_result": { "kind": "blacklist", "listings": [],
                "unverified": [{ "dataset": "court.dishonest_debtors", "reason": "timed out" }] } }),
            json!({ "view_result": { "kind": "blacklist", "listings": [{ "label": "x" }], "unverified": [] } }),
            json!({ "view_result": { "kind": "credit-report", "listings": [], "unverified": [] } }),
        ] {
            assert!(check_repaired_blacklist(200, &bad, true).is_err(), "{bad}");
        }
        assert!(check_repaired_blacklist(200, &good, false).is_err());
    }
}
