//! Behaviour of the engine, minimization, views and tools on the Changsha reference policy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use common::{date, reference_engine, reference_federation, reference_text};
use fedq_policy::analysis;
use fedq_policy::engine::{DecisionRequest, FieldSelection, Reason, Refusal, ViewRequest};
use fedq_policy::ratelimit::{RateLimited, RateLimiter};
use fedq_policy::views::{
    evaluate, released, GreenChannelVerdict, SourceOutcome, UnverifiedStatus, ViewResult,
};
use fedq_policy::{minimize, FieldTransform, Policy, Record, Summary, Value};

const LIC: &str = "market-regulation.licensing";
const LIC_PURPOSE: &str = "administrative-licensing";
const OPINION: &str = "长政办发〔2017〕62号";
const LIC_CASE: &str = "长市监许申〔2026〕001234号";

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn debtor_record(case: &str, listed: &str, status: &str) -> Record {
    let mut r = Record::new();
    r.insert("case_no".into(), text(case));
    r.insert("resident_id".into(), text("43010219900101123X"));
    r.insert("name".into(), text("张三丰"));
    r.insert("court".into(), text("长沙市岳麓区人民法院"));
    r.insert("obligation".into(), text("支付货款 120000 元"));
    r.insert("amount_owed".into(), Value::Amount(12_000_000));
    r.insert("performance_status".into(), text(status));
    r.insert("listed_on".into(), Value::Date(date(listed)));
    r
}

#[test]
fn the_embedded_tests_pass() {
    let engine = reference_engine();
    let outcomes = fedq_policy::testing::run_tests(&engine);
    assert!(outcomes.len() >= 20);
    for o in outcomes {
        assert!(o.passed(), "{}: {:?}", o.case.name, o.failures);
    }
}

#[test]
fn licensing_receives_only_what_the_policy_allows_from_live_records() {
    let engine = reference_engine();
    let today = date("2026-11-27");
    let decision = engine
        .decide(&DecisionRequest {
            requester: LIC,
            purpose: LIC_PURPOSE,
            legal_basis: Some(OPINION),
            consent: false,
            case_reference: Some(LIC_CASE),
            dataset: "court.dishonest_debtors",
            fields: FieldSelection::All,
            now: today,
        })
        .unwrap();
    let records = vec![
        debtor_record("(2025)湘0104执100号", "2025-03-01", "unperformed"),
        // Outside the statutory 3-year window: never released.
        debtor_record("(2022)湘0104执7号", "2022-05-01", "unperformed"),
        // Repaired (performed): never released.
        debtor_record("(2024)湘0104执9号", "2024-05-01", "performed"),
    ];
    let answer = minimize(&decision, &records);
    assert_eq!(answer.records.len(), 1);
    let r = &answer.records[0];
    assert_eq!(r.get("case_no"), Some(&text("(2025)湘0104执100号")));
    assert_eq!(r.get("listed_on"), Some(&Value::Date(date("2025-03-01"))));
    for hidden in [
        "name",
        "obligation",
        "amount_owed",
        "performance_status",
        "resident_id",
    ] {
        assert!(!r.contains_key(hidden), "{hidden} must not be released");
    }
    assert_eq!(
        answer.summaries.get("resident_id"),
        Some(&Summary::Exists(true))
    );
    assert_eq!(answer.policy_version, "2026.11-1");
}

#[test]
fn a_denial_names_the_blocking_rule_and_its_rationale() {
    let engine = reference_engine();
    let d = engine
        .decide(&DecisionRequest {
            requester: LIC,
            purpose: LIC_PURPOSE,
            legal_basis: Some(OPINION),
            consent: false,
            case_reference: Some(LIC_CASE),
            dataset: "public-security.identity_basics",
            fields: FieldSelection::Named(&["household_registration", "name", "gender"]),
            now: date("2026-11-27"),
        })
        .unwrap();
    assert_eq!(d.fields[0].transform, FieldTransform::Omit);
    match d.fields[0].reason {
        Reason::Denied(rule) => {
            assert_eq!(rule.id, "privacy-household-registration");
            assert!(d.fields[0].explanation().contains("户籍地址"));
        }
        other => panic!("expected a deny, got {other:?}"),
    }
    assert_eq!(d.fields[1].transform, FieldTransform::Mask);
    assert_eq!(d.fields[2].reason, Reason::NoGrant);
}

#[test]
fn the_reference_policy_names_the_case_accepts_only_its_bases_and_keeps_statistics_aggregate() {
    let engine = reference_engine();
    let base = DecisionRequest {
        requester: LIC,
        purpose: LIC_PURPOSE,
        legal_basis: Some(OPINION),
        consent: false,
        case_reference: Some(LIC_CASE),
        dataset: "court.dishonest_debtors",
        fields: FieldSelection::Named(&["case_no"]),
        now: date("2026-11-27"),
    };
    assert_eq!(
        engine.decide(&base).unwrap().fields[0].transform,
        FieldTransform::Clear
    );
    // No case, or something that is not a licensing application number: refused, and the
    // refusal shows the expected form without repeating what was sent.
    let err = engine
        .decide(&DecisionRequest {
            case_reference: None,
            ..base
        })
        .unwrap_err();
    assert!(
        matches!(err, Refusal::CaseReferenceRequired { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("长市监许申〔2026〕001234号"),
        "{err}"
    );
    for sent in [
        "(2026)湘01执123号",
        "长市监许申〔2026〕009876号 ",
        "长市监许申〔2026〕009876号x",
        "x长市监许申〔2026〕009876号",
        "长市监许申〔26〕009876号",
    ] {
        let err = engine
            .decide(&DecisionRequest {
                case_reference: Some(sent),
                ..base
            })
            .unwrap_err();
        assert!(
            matches!(err, Refusal::CaseReferenceMalformed { .. }),
            "{sent}: {err}"
        );
        assert!(!err.to_string().contains(sent), "{err}");
    }
    // Court case numbers, half- or full-width parentheses.
    for case in ["(2026)湘01执123号", "（2026）湘0102执恢45号"] {
        assert!(engine
            .check_request(
                "court.enforcement",
                "judgment-enforcement",
                Some("民事诉讼法"),
                false,
                Some(case)
            )
            .is_ok());
    }
    // `--basis anything` no longer reaches the green channel: the whole request is
    // refused, listing what the purpose accepts.
    let err = engine
        .decide(&DecisionRequest {
            legal_basis: Some("anything"),
            dataset: "court.enforcement_cases",
            fields: FieldSelection::All,
            ..base
        })
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::LegalBasisNotAccepted {
            purpose: LIC_PURPOSE.into(),
            accepted: "行政许可法, 长政办发〔2017〕62号".into(),
        }
    );
    // A basis of another purpose is not one this purpose accepts either.
    assert!(matches!(
        engine.decide(&DecisionRequest {
            legal_basis: Some("民事诉讼法"),
            ..base
        }),
        Err(Refusal::LegalBasisNotAccepted { .. })
    ));
    // Statistics: not even a count about one named person, on any dataset or view.
    for dataset in ["court.dishonest_debtors", "tax.arrears"] {
        let err = engine
            .decide(&DecisionRequest {
                requester: "statistics.bureau",
                purpose: "statistics",
                legal_basis: Some("统计法"),
                case_reference: None,
                dataset,
                fields: FieldSelection::All,
                ..base
            })
            .unwrap_err();
        assert!(matches!(err, Refusal::AggregateOnly { .. }), "{err}");
    }
    assert!(matches!(
        engine.decide_view(&ViewRequest {
            requester: "statistics.bureau",
            purpose: "statistics",
            legal_basis: Some("统计法"),
            consent: false,
            case_reference: None,
            view: "integrity-score",
            now: date("2026-11-27"),
        }),
        Err(Refusal::AggregateOnly { .. })
    ));
    // Self-query declares no case reference: citing one is refused, not recorded.
    assert!(matches!(
        engine.check_request(
            "service-window.self-query",
            "self-query",
            None,
            true,
            Some(LIC_CASE)
        ),
        Err(Refusal::CaseReferenceNotAccepted { .. })
    ));
    let policy = engine.policy();
    assert_eq!(
        policy.recordable_case(LIC_PURPOSE, Some(LIC_CASE)),
        Some(LIC_CASE)
    );
    assert_eq!(
        policy.recordable_case(LIC_PURPOSE, Some("(2026)湘01执123号")),
        None
    );
    assert_eq!(policy.recordable_case("self-query", Some(LIC_CASE)), None);
}

#[test]
fn request_level_refusals_say_why() {
    let engine = reference_engine();
    let base = DecisionRequest {
        requester: LIC,
        purpose: LIC_PURPOSE,
        legal_basis: None,
        consent: false,
        case_reference: Some(LIC_CASE),
        dataset: "court.dishonest_debtors",
        fields: FieldSelection::All,
        now: date("2026-11-27"),
    };
    assert!(matches!(
        engine.decide(&base),
        Err(Refusal::LegalBasisRequired { .. })
    ));
    let unknown_field = DecisionRequest {
        legal_basis: Some(OPINION),
        fields: FieldSelection::Named(&["salary"]),
        ..base
    };
    let err = engine.decide(&unknown_field).unwrap_err();
    assert_eq!(err.to_string(), "unknown field `salary` in dataset `court.dishonest_debtors`; ask only for catalogued fields");
    let unknown_dataset = DecisionRequest {
        legal_basis: Some(OPINION),
        dataset: "court.nope",
        ..base
    };
    assert!(matches!(
        engine.decide(&unknown_dataset),
        Err(Refusal::UnknownDataset { .. })
    ));
    let wrong_purpose = DecisionRequest {
        purpose: "self-query",
        consent: true,
        case_reference: None,
        ..base
    };
    assert!(matches!(
        engine.decide(&wrong_purpose),
        Err(Refusal::PurposeNotAllowed { .. })
    ));
}

#[test]
fn a_limit_window_drops_older_records_for_that_field() {
    let engine = reference_engine();
    let today = date("2026-11-27");
    let d = engine
        .decide(&DecisionRequest {
            requester: "hrss.recruitment",
            purpose: "public-recruitment",
            legal_basis: Some("公务员录用规定"),
            consent: true,
            case_reference: Some("HRSS-ZL-2026-000123"),
            dataset: "public-security.serious_traffic_violations",
            fields: FieldSelection::Named(&["violation", "occurred_on"]),
            now: today,
        })
        .unwrap();
    assert_eq!(d.fields[0].records_after, Some(date("2024-11-27")));
    let mk = |on: &str| {
        let mut r = Record::new();
        r.insert("record_id".into(), text(on));
        r.insert("violation".into(), text("drunk_driving"));
        r.insert("occurred_on".into(), Value::Date(date(on)));
        r
    };
    let answer = minimize(&d, &[mk("2025-06-01"), mk("2024-06-01")]);
    assert_eq!(answer.records.len(), 1, "{answer:?}");
    assert_eq!(
        answer.records[0].get("occurred_on"),
        Some(&Value::Date(date("2025-06-01")))
    );
}

fn answered(
    dataset: &str,
    records: Vec<BTreeMap<String, Value>>,
    summaries: &[(&str, Summary)],
) -> (String, SourceOutcome) {
    (
        dataset.to_owned(),
        SourceOutcome::Answered(fedq_policy::MinimizedAnswer {
            dataset: dataset.to_owned(),
            policy_version: "t".into(),
            records,
            summaries: summaries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            disputed: 0,
        }),
    )
}

#[test]
fn green_channel_needs_every_source_clean_and_answered() {
    let engine = reference_engine();
    let today = date("2026-11-27");
    let view = engine
        .decide_view(&ViewRequest {
            requester: LIC,
            purpose: LIC_PURPOSE,
            legal_basis: Some(OPINION),
            consent: false,
            case_reference: Some(LIC_CASE),
            view: "green-channel",
            now: today,
        })
        .unwrap();
    assert!(view.sources.iter().all(|s| s.satisfied));
    // The view's own 3-year window is folded into every source.
    assert!(view.sources.iter().all(|s| s
        .decision
        .fields
        .iter()
        .all(|f| f.records_after == Some(date("2023-11-27")))));
    let clean: BTreeMap<String, SourceOutcome> = view
        .sources
        .iter()
        .map(|s| {
            let key = s.decision.fields[0].field.name.clone();
            answered(
                &s.source.dataset_name,
                vec![],
                &[(&key, Summary::Exists(false))],
            )
        })
        .collect();
    match evaluate(view.view, &clean, today) {
        ViewResult::GreenChannel { eligible, .. } => assert!(eligible),
        other => panic!("{other:?}"),
    }
    let mut dirty = clean.clone();
    dirty.extend([answered(
        "tax.arrears",
        vec![],
        &[("record_id", Summary::Exists(true))],
    )]);
    match evaluate(view.view, &dirty, today) {
        ViewResult::GreenChannel {
            eligible, reason, ..
        } => {
            assert!(!eligible);
            // The verdict, never which source holds the record (an input of the view).
            assert_eq!(reason, "a negative record within the last 3 years");
            assert!(
                !reason.contains("欠税") && !reason.contains("tax"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut missing = clean;
    missing.insert(
        "education.exam_cheating".into(),
        SourceOutcome::Unavailable("timed out".into()),
    );
    match evaluate(view.view, &missing, today) {
        ViewResult::GreenChannel {
            eligible, reason, ..
        } => {
            assert!(!eligible, "an unanswered source is never clean");
            assert!(
                reason.contains("education.exam_cheating (timed out)"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 13 §6: a source that is unverified, unavailable or timed out is never read as
/// clean. With every other source clean, the green channel says "cannot confirm" (not
/// "eligible", and not a plain "not eligible" either), and names the source and why.
#[test]
fn green_channel_cannot_confirm_when_any_source_is_unverified_unavailable_or_timed_out() {
    let engine = reference_engine();
    let today = date("2026-11-27");
    let view = engine
        .policy()
        .views
        .iter()
        .find(|v| v.name == "green-channel")
        .unwrap();
    let clean: BTreeMap<String, SourceOutcome> = view
        .sources
        .iter()
        .map(|s| answered(&s.dataset_name, vec![], &[("k", Summary::Exists(false))]))
        .collect();
    match evaluate(view, &clean, today) {
        ViewResult::GreenChannel {
            verdict,
            eligible,
            unverified,
            ..
        } => {
            assert_eq!(verdict, GreenChannelVerdict::Eligible);
            assert!(eligible);
            assert!(unverified.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let source = "court.dishonest_debtors";
    for (outcome, status) in [
        (
            SourceOutcome::Unverified("a stored record cannot be read".into()),
            UnverifiedStatus::Unverified,
        ),
        (
            SourceOutcome::Unavailable("store unavailable".into()),
            UnverifiedStatus::Unavailable,
        ),
        (
            SourceOutcome::TimedOut("no answer within 2000 ms".into()),
            UnverifiedStatus::TimedOut,
        ),
    ] {
        let mut outcomes = clean.clone();
        outcomes.insert(source.into(), outcome.clone());
        match evaluate(view, &outcomes, today) {
            ViewResult::GreenChannel {
                verdict,
                eligible,
                reason,
                unverified,
                ..
            } => {
                assert_eq!(verdict, GreenChannelVerdict::CannotConfirm, "{outcome:?}");
                assert!(!eligible, "{outcome:?}");
                assert!(
                    reason.starts_with("cannot confirm") && reason.contains(source),
                    "{reason}"
                );
                assert_eq!(unverified.len(), 1, "{unverified:?}");
                assert_eq!(unverified[0].dataset, source);
                assert_eq!(unverified[0].status, status);
            }
            other => panic!("{other:?}"),
        }
        // A source that answered with a record still decides: not eligible, whatever
        // else is missing.
        outcomes.extend([answered(
            "tax.arrears",
            vec![],
            &[("record_id", Summary::Exists(true))],
        )]);
        match evaluate(view, &outcomes, today) {
            ViewResult::GreenChannel { verdict, .. } => {
                assert_eq!(verdict, GreenChannelVerdict::NotEligible)
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Issue 13 §6: the blacklist check lists an unverified source as unverified (with its
/// status), so an empty list of listings is not read as "not listed".
#[test]
fn blacklist_lists_unverified_sources() {
    let engine = reference_engine();
    let view = engine
        .policy()
        .views
        .iter()
        .find(|v| v.name == "blacklist-check")
        .unwrap();
    let mut outcomes: BTreeMap<String, SourceOutcome> = view
        .sources
        .iter()
        .map(|s| answered(&s.dataset_name, vec![], &[]))
        .collect();
    outcomes.insert(
        "court.dishonest_debtors".into(),
        SourceOutcome::Unverified(
            "a record of `court.dishonest_debtors` has field `listed_on` in the future".into(),
        ),
    );
    outcomes.insert(
        "tax.serious_violations".into(),
        SourceOutcome::TimedOut("no answer within 2000 ms".into()),
    );
    match evaluate(view, &outcomes, date("2026-11-27")) {
        ViewResult::Blacklist {
            listings,
            unverified,
        } => {
            assert!(listings.is_empty());
            let got: Vec<(&str, UnverifiedStatus)> = unverified
                .iter()
                .map(|u| (u.dataset.as_str(), u.status))
                .collect();
            assert_eq!(
                got,
                vec![
                    ("court.dishonest_debtors", UnverifiedStatus::Unverified),
                    ("tax.serious_violations", UnverifiedStatus::TimedOut),
                ]
            );
            assert!(unverified[0].reason.contains("in the future"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn blacklist_lists_active_listings_only() {
    let engine = reference_engine();
    let today = date("2026-11-27");
    let view = engine
        .policy()
        .views
        .iter()
        .find(|v| v.name == "blacklist-check")
        .unwrap();
    let listing = |since: &str, until: Option<&str>| {
        let mut r = BTreeMap::new();
        r.insert("listed_on".to_owned(), Value::Date(date(since)));
        if let Some(u) = until {
            r.insert("removed_on".to_owned(), Value::Date(date(u)));
        }
        r
    };
    let outcomes: BTreeMap<String, SourceOutcome> = [
        answered(
            "court.dishonest_debtors",
            vec![
                listing("2025-01-01", Some("2027-01-01")),
                listing("2024-01-01", Some("2025-01-01")),
            ],
            &[],
        ),
        answered("tax.serious_violations", vec![], &[]),
        (
            "hrss.benefit_fraud".to_owned(),
            SourceOutcome::Unavailable("node unavailable".into()),
        ),
    ]
    .into_iter()
    .collect();
    match evaluate(view, &outcomes, today) {
        ViewResult::Blacklist {
            listings,
            unverified,
        } => {
            assert_eq!(listings.len(), 1);
            assert_eq!(listings[0].list, "失信被执行人名单");
            assert_eq!(listings[0].since, Some(Value::Date(date("2025-01-01"))));
            assert_eq!(unverified.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}

/// Item 14.5: a view releases its result, not its inputs. Without `release`, nothing of
/// the sources' records is released beside the result; with it, exactly the declared
/// fields of the sources that answered — every other field of the same records, and
/// every other source, stays out.
#[test]
fn a_view_releases_only_the_fields_it_declares() {
    let engine = reference_engine();
    let view = engine
        .policy()
        .views
        .iter()
        .find(|v| v.name == "blacklist-check")
        .unwrap();
    assert!(
        view.release.is_empty(),
        "the reference views declare no extra output"
    );
    let mut removed = BTreeMap::new();
    removed.insert("listed_on".to_owned(), Value::Date(date("2024-01-01")));
    removed.insert("removed_on".to_owned(), Value::Date(date("2025-01-01")));
    let outcomes: BTreeMap<String, SourceOutcome> = [
        answered("court.dishonest_debtors", vec![removed], &[]),
        answered(
            "tax.serious_violations",
            vec![[("decided_on".to_owned(), Value::Date(date("2025-02-02")))].into()],
            &[],
        ),
        (
            "hrss.benefit_fraud".to_owned(),
            SourceOutcome::Unavailable("node unavailable".into()),
        ),
    ]
    .into_iter()
    .collect();
    // "Not listed" (the court's listing was removed): no dates of it anywhere.
    assert!(released(view, &outcomes).is_empty());

    // Declared: the court's listing date, and the benefit-fraud decision date.
    let text = reference_text().replacen(
        "name = \"blacklist-check\"\n",
        "name = \"blacklist-check\"\nrelease = [\"court.dishonest_debtors.listed_on\", \"hrss.benefit_fraud.decided_on\"]\n",
        1,
    );
    let policy = Policy::parse(&text, "policy.toml", &reference_federation()).unwrap();
    let view = policy
        .views
        .iter()
        .find(|v| v.name == "blacklist-check")
        .unwrap();
    assert_eq!(
        view.release
            .iter()
            .map(|r| format!("{}.{} {}", r.dataset, r.field, r.transform))
            .collect::<Vec<_>>(),
        [
            "court.dishonest_debtors.listed_on clear",
            "hrss.benefit_fraud.decided_on clear"
        ]
    );
    // `fedq policy explain` says what the view releases: with and without `release`.
    let ask = fedq_policy::report::Ask {
        requester: LIC,
        purpose: LIC_PURPOSE,
        legal_basis: Some(OPINION),
        consent: false,
        case_reference: Some(LIC_CASE),
        today: date("2026-11-27"),
    };
    let plain = fedq_policy::report::render_explain(&engine, &ask, Some("blacklist-check"), None);
    assert!(
        plain.contains("the requester gets: the active listings (list, dataset, since, until); which sources answered, were denied, unverified or unavailable\n  and nothing of the sources' records beside it (the view declares no `release`)"),
        "{plain}"
    );
    let declared = fedq_policy::report::render_explain(
        &policy.clone().compile(),
        &ask,
        Some("blacklist-check"),
        None,
    );
    assert!(
        declared.contains("  and, declared in `release`, these source fields beside it:\n    court.dishonest_debtors.listed_on (at most clear, as the node releases it)\n    hrss.benefit_fraud.decided_on (at most clear, as the node releases it)\n"),
        "{declared}"
    );
    let got = released(view, &outcomes);
    // Only the court: tax declared nothing, hrss did not answer.
    assert_eq!(got.keys().collect::<Vec<_>>(), ["court.dishonest_debtors"]);
    let court = &got["court.dishonest_debtors"];
    assert_eq!(
        court.records,
        vec![BTreeMap::from([(
            "listed_on".to_owned(),
            Value::Date(date("2024-01-01"))
        )])]
    );
    assert!(court.summaries.is_empty());
}

#[test]
fn integrity_score_uses_declared_weights_and_grades() {
    let engine = reference_engine();
    let view = engine
        .policy()
        .views
        .iter()
        .find(|v| v.name == "integrity-score")
        .unwrap();
    let mut outcomes: BTreeMap<String, SourceOutcome> = view
        .sources
        .iter()
        .map(|s| answered(&s.dataset_name, vec![], &[("k", Summary::Count(0))]))
        .collect();
    outcomes.extend([
        answered(
            "civil-affairs.volunteer_service",
            vec![],
            &[("record_id", Summary::Count(15))],
        ),
        answered(
            "civil-affairs.honours",
            vec![],
            &[("honour_id", Summary::Count(1))],
        ),
    ]);
    match evaluate(view, &outcomes, date("2026-11-27")) {
        // 100 + min(15×2, 20) + 10 = 130 → AAA
        ViewResult::IntegrityScore { points, grade, .. } => {
            assert_eq!(points, 130);
            assert_eq!(grade.as_deref(), Some("AAA"));
        }
        other => panic!("{other:?}"),
    }
    outcomes.extend([answered(
        "court.dishonest_debtors",
        vec![],
        &[("case_no", Summary::Count(1))],
    )]);
    outcomes.insert(
        "tax.arrears".into(),
        SourceOutcome::Unavailable("denied".into()),
    );
    match evaluate(view, &outcomes, date("2026-11-27")) {
        ViewResult::IntegrityScore {
            points,
            grade,
            unverified,
            ..
        } => {
            assert_eq!(points, 90);
            assert_eq!(grade, None, "a partial score is not graded");
            assert_eq!(unverified.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_limits_are_per_requester_and_per_window() {
    let engine = reference_engine();
    let mut limiter = RateLimiter::new(engine.policy());
    let t0 = time::macros::datetime!(2026-11-27 09:00:00 +8);
    for _ in 0..10 {
        limiter.check("statistics.bureau", t0).unwrap();
    }
    assert!(matches!(
        limiter.check("statistics.bureau", t0),
        Err(RateLimited::PerMinute { limit: 10, .. })
    ));
    limiter.check(LIC, t0).unwrap();
    limiter
        .check("statistics.bureau", t0 + time::Duration::minutes(1))
        .unwrap();
    assert!(matches!(
        limiter.check("bank.loans", t0),
        Err(RateLimited::UnknownRequester { .. })
    ));
}

#[test]
fn rule_order_does_not_change_any_decision() {
    let fed = reference_federation();
    let text = reference_text();
    // Reverse the order of the [[rule]] tables.
    let head_end = text.find("[[rule]]").unwrap();
    let tail_start = text.find("[[view]]").unwrap();
    let mut rules: Vec<&str> = text[head_end..tail_start]
        .split("[[rule]]")
        .filter(|s| !s.trim().is_empty())
        .collect();
    rules.reverse();
    let reversed = format!(
        "{}{}{}",
        &text[..head_end],
        rules
            .iter()
            .map(|r| format!("[[rule]]{r}"))
            .collect::<String>(),
        &text[tail_start..]
    );
    let a = Policy::parse(&text, "a.toml", &fed).unwrap().compile();
    let b = Policy::parse(&reversed, "b.toml", &fed).unwrap().compile();
    assert!(analysis::diff(&a, &b, date("2026-11-27")).is_empty());
}

#[test]
fn diff_reports_gains_and_losses_in_terms_of_access() {
    let fed = reference_federation();
    let old_text = reference_text();
    let new_text = old_text.replace(
        r#"fields = ["case_no", "court", "listed_on", "removed_on"]"#,
        r#"fields = ["court", "listed_on", "removed_on", "obligation"]"#,
    );
    let old = Policy::parse(&old_text, "old.toml", &fed)
        .unwrap()
        .compile();
    let new = Policy::parse(&new_text, "new.toml", &fed)
        .unwrap()
        .compile();
    let lines: Vec<String> = analysis::diff(&old, &new, date("2026-11-27"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(lines.contains(&"market-regulation.licensing gains court.dishonest_debtors.obligation in clear for purpose administrative-licensing, citing `行政许可法` or `长政办发〔2017〕62号`".to_owned()), "{lines:#?}");
    // case_no falls back to the green channel's `exists`.
    assert!(lines.contains(&"market-regulation.licensing loses court.dishonest_debtors.case_no in clear (now exists) for purpose administrative-licensing, citing `行政许可法` or `长政办发〔2017〕62号`".to_owned()), "{lines:#?}");
    assert_eq!(lines.len(), 2, "{lines:#?}");
}

#[test]
fn who_can_answers_can_anyone_ever_see_it_in_clear() {
    let engine = reference_engine();
    let who = analysis::who_can(
        &engine,
        "public-security.identity_basics.household_registration",
        date("2026-11-27"),
    )
    .unwrap();
    let names: Vec<(&str, FieldTransform)> =
        who.iter().map(|a| (a.requester.as_str(), a.best)).collect();
    assert_eq!(
        names,
        vec![
            ("court.enforcement", FieldTransform::Clear),
            ("service-window.self-query", FieldTransform::Clear)
        ]
    );
    // The pilot only exists between its validity dates.
    let honours =
        analysis::who_can(&engine, "civil-affairs.honours.level", date("2026-11-27")).unwrap();
    let lic = honours.iter().find(|a| a.requester == LIC).unwrap();
    assert!(
        lic.conditions
            .as_deref()
            .unwrap()
            .contains("from 2026-01-01 until 2027-12-31"),
        "{lic:?}"
    );
    let error = analysis::who_can(&engine, "court.nope.x", date("2026-11-27"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("unknown field `court.nope.x`; expected `department.dataset.field`"),
        "{error}"
    );
}

/// Runs `view` for the asker on `today` over one court listing, through the engine's
/// decision, `minimize` and `evaluate` — the path a node and the coordinator take — and
/// says how many court listings the view result discloses (read from the result itself:
/// listings, a dirty green channel, report records, score points).
fn disclosed_by_view(view: &str, today: time::Date, listing: &Record) -> usize {
    let engine = reference_engine();
    let (requester, purpose, legal_basis, consent, case_reference) = match view {
        "blacklist-check" | "green-channel" => {
            (LIC, LIC_PURPOSE, Some(OPINION), false, Some(LIC_CASE))
        }
        _ => ("service-window.self-query", "self-query", None, true, None),
    };
    let decision = engine
        .decide_view(&ViewRequest {
            requester,
            purpose,
            legal_basis,
            consent,
            case_reference,
            view,
            now: today,
        })
        .unwrap_or_else(|e| panic!("{view} on {today}: {e:?}"));
    let court = decision
        .source("court.dishonest_debtors")
        .unwrap_or_else(|| panic!("{view} has no court source"));
    assert!(court.satisfied, "{view}: the court source is not granted");
    let outcomes: BTreeMap<String, SourceOutcome> = decision
        .sources
        .iter()
        .map(|s| {
            let records = if s.source.dataset_name == "court.dishonest_debtors" {
                vec![listing.clone()]
            } else {
                Vec::new()
            };
            let outcome = if s.satisfied {
                SourceOutcome::Answered(minimize(&s.decision, &records))
            } else {
                SourceOutcome::Unavailable("denied".into())
            };
            (s.source.dataset_name.clone(), outcome)
        })
        .collect();
    match evaluate(decision.view, &outcomes, today) {
        ViewResult::Blacklist {
            listings,
            unverified,
        } => {
            assert!(unverified.is_empty(), "{unverified:?}");
            listings
                .iter()
                .filter(|l| l.list == "失信被执行人名单")
                .count()
        }
        ViewResult::GreenChannel {
            verdict,
            unverified,
            ..
        } => {
            // Ineligible only because of the court's listing: every other source answered
            // empty (the verdict does not say which source holds the record).
            assert!(unverified.is_empty(), "{unverified:?}");
            match verdict {
                GreenChannelVerdict::Eligible => 0,
                GreenChannelVerdict::NotEligible => 1,
                GreenChannelVerdict::CannotConfirm => panic!("every source answered"),
            }
        }
        ViewResult::CreditReport {
            sections,
            unverified,
        } => {
            assert!(unverified.is_empty(), "{unverified:?}");
            let court = sections
                .iter()
                .find(|s| s.dataset == "court.dishonest_debtors")
                .expect("the court's section is in the report");
            let counted = court
                .summaries
                .values()
                .map(|s| match s {
                    Summary::Count(n) => usize::try_from(*n).unwrap(),
                    Summary::Exists(e) => usize::from(*e),
                })
                .max()
                .unwrap_or(0);
            court.records.len().max(counted)
        }
        ViewResult::IntegrityScore {
            points, breakdown, ..
        } => {
            let court: u64 = breakdown
                .iter()
                .filter(|l| l.points < 0)
                .map(|l| l.records)
                .sum();
            // Nothing else is on record: the base points, less the court's deduction.
            assert!(points <= 100, "{points} {breakdown:?}");
            usize::try_from(court).unwrap()
        }
    }
}

const EVERY_VIEW: [&str; 4] = [
    "blacklist-check",
    "green-channel",
    "credit-report",
    "integrity-score",
];

/// The statutory 3-year window (长政办发〔2017〕62号 §十) at its edges and around 29 February, and credit
/// repair, in every view. The expected answers are the calendar's, written out here, not
/// computed by the code under test: a listing is disclosed on the days before the third
/// anniversary of its listing and not from that day on; a listing of 29 February reaches
/// its anniversary on 1 March of a common year (as a person born on 29 February comes of
/// age); a repaired listing is never disclosed, even one listed today.
#[test]
fn expired_and_repaired_listings_are_withheld_in_every_view_at_the_window_edges() {
    let cases: [(&str, &str, &str, bool); 16] = [
        // (today, listed on, performance status, disclosed)
        ("2026-11-27", "2026-11-27", "unperformed", true),
        ("2026-11-27", "2023-11-28", "unperformed", true), // the day before the anniversary
        ("2026-11-27", "2023-11-27", "unperformed", false), // the day of
        ("2026-11-27", "2023-11-26", "unperformed", false), // the day after
        ("2026-11-27", "2023-11-28", "partially_performed", true),
        ("2026-11-27", "2026-11-27", "performed", false), // repaired: never
        ("2026-11-27", "2023-11-28", "performed", false),
        ("2026-11-27", "2019-01-01", "performed", false),
        // Listed on 29 February 2024.
        ("2027-02-27", "2024-02-29", "unperformed", true),
        ("2027-02-28", "2024-02-29", "unperformed", true),
        ("2027-03-01", "2024-02-29", "unperformed", false),
        ("2027-02-28", "2024-02-29", "performed", false),
        // Today is 29 February 2028.
        ("2028-02-29", "2025-03-01", "unperformed", true),
        ("2028-02-29", "2025-02-28", "unperformed", false),
        ("2028-02-28", "2025-03-01", "unperformed", true),
        ("2028-02-28", "2025-02-28", "unperformed", false),
    ];
    for (today, listed, status, disclosed) in cases {
        let listing = debtor_record("(2023)湘0104执1号", listed, status);
        for view in EVERY_VIEW {
            let n = disclosed_by_view(view, date(today), &listing);
            assert_eq!(
                n,
                usize::from(disclosed),
                "{view} on {today}: a listing of {listed} ({status}) disclosed {n} time(s)"
            );
        }
    }
}

#[test]
fn the_diff_names_a_changed_privacy_budget_and_a_bad_statistics_table_is_located() {
    let fed = reference_federation();
    let old_text = reference_text();
    let new_text = old_text.replacen("budget = \"2\"", "budget = \"5\"", 1);
    assert_ne!(old_text, new_text);
    let old = Policy::parse(&old_text, "old.toml", &fed)
        .unwrap()
        .compile();
    let new = Policy::parse(&new_text, "new.toml", &fed)
        .unwrap()
        .compile();
    let report = fedq_policy::report::render_diff(&old, &new, date("2026-11-27"));
    assert!(
        report.contains(
            "aggregate queries: purposes [statistics], ε 0.5 per query, budget 2 per month"
        ) && report.contains("budget 5 per month"),
        "{report}"
    );
    for (from, to, says) in [
        (
            "epsilon = \"0.5\"",
            "epsilon = \"3\"",
            "must not exceed `budget`",
        ),
        (
            "epsilon = \"0.5\"",
            "epsilon = \"0.5e1\"",
            "positive decimal",
        ),
        (
            "min_cell = 10",
            "min_cell = 0",
            "`min_cell` must be at least 1",
        ),
        (
            "purposes = [\"statistics\"]\nmin_cell",
            "purposes = [\"self-query\"]\nmin_cell",
            "must be `aggregate_only`",
        ),
        (
            "\"court.enforcement_cases\" = \"status\"",
            "\"court.enforcement_cases\" = \"court\"",
            "is not one",
        ),
    ] {
        let bad = old_text.replacen(from, to, 1);
        assert_ne!(bad, old_text, "{from}");
        let err = Policy::parse(&bad, "bad.toml", &fed)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says) && err.contains("bad.toml:"), "{err}");
    }
}
