//! Officers' mistakes are errors located at file:line:column, never silent no-ops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::reference_federation;
use fedq_policy::Policy;

const HEAD: &str = r#"version = 1
[[purpose]]
name = "administrative-licensing"
[[requester]]
name = "market-regulation.licensing"
role = "licensing"
purposes = ["administrative-licensing"]
"#;

fn errors(body: &str) -> Vec<String> {
    let text = format!("{HEAD}{body}");
    match Policy::parse(&text, "p.toml", &reference_federation()) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn rule(fields: &str) -> String {
    format!("[[rule]]\nid = \"r1\"\neffect = \"grant\"\n{fields}\nrationale = \"because\"\n")
}

#[test]
fn a_valid_rule_parses() {
    let e = errors(&rule("requesters = [\"market-regulation.licensing\"]\npurposes = [\"administrative-licensing\"]\ndatasets = [\"court.dishonest_debtors\"]\nfields = [\"case_no\"]\ntransform = \"clear\""));
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn unknown_names_are_located_errors() {
    let e = errors(&rule("requesters = [\"market-regulation.licencing\"]\npurposes = [\"licensing\"]\ndatasets = [\"court.debtors\"]\nfields = [\"case_no\"]\ntransform = \"clear\""));
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0].starts_with("p.toml:11:15: unknown requester `market-regulation.licencing`; declared requesters are: market-regulation.licensing"), "{}", e[0]);
    assert!(
        e[1].starts_with("p.toml:12:13: unknown purpose `licensing`"),
        "{}",
        e[1]
    );
    assert!(
        e[2].starts_with("p.toml:13:13: unknown dataset `court.debtors`"),
        "{}",
        e[2]
    );
}

#[test]
fn unknown_fields_classes_roles_and_transforms_are_errors() {
    let e = errors(&rule("roles = [\"licencing\"]\npurposes = [\"*\"]\ndatasets = [\"court.dishonest_debtors\"]\nfields = [\"case_number\"]\nclasses = [\"secret\"]\ntransform = \"reveal\""));
    let all = e.join("\n");
    assert!(
        all.contains("p.toml:11:10: unknown role `licencing`; declared roles are: licensing"),
        "{all}"
    );
    assert!(
        all.contains("unknown field `case_number` in dataset `court.dishonest_debtors`"),
        "{all}"
    );
    assert!(all.contains("unknown field class `secret`"), "{all}");
    assert!(
        all.contains("unknown transform `reveal`; expected one of omit, exists"),
        "{all}"
    );
}

#[test]
fn misspelt_settings_and_missing_rationale_are_errors() {
    let e = errors("[[rule]]\nid = \"r1\"\neffect = \"grant\"\nrequester = [\"x\"]\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("p.toml:11:1: unknown field `requester`, expected one of"),
        "{}",
        e[0]
    );
    let e = errors("[[rule]]\nid = \"r1\"\neffect = \"grant\"\nrequesters = [\"*\"]\npurposes = [\"*\"]\ndatasets = [\"*\"]\nfields = [\"*\"]\ntransform = \"exists\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("rule `r1` needs a `rationale`"), "{}", e[0]);
}

#[test]
fn transforms_that_do_not_fit_a_named_field_are_errors() {
    let e = errors(&rule("requesters = [\"*\"]\npurposes = [\"*\"]\ndatasets = [\"tax.arrears\"]\nfields = [\"tax_type\"]\ntransform = \"bucket\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("`bucket` does not apply to field `tax_type` (enum) and would release it only as `count`"), "{}", e[0]);
}

#[test]
fn conditions_in_the_wrong_place_are_errors() {
    let e = errors("[[rule]]\nid = \"d1\"\neffect = \"deny\"\nrequesters = [\"*\"]\npurposes = [\"*\"]\ndatasets = [\"*\"]\nfields = [\"*\"]\nconsent = true\nrationale = \"x\"\n\n[[rule]]\nid = \"g1\"\neffect = \"grant\"\nrequesters = [\"*\"]\npurposes = [\"*\"]\ndatasets = [\"*\"]\nfields = [\"*\"]\ntransform = \"exists\"\nmax_record_age = \"1y\"\nrationale = \"x\"\n");
    let all = e.join("\n");
    assert!(all.contains("`consent` narrows a grant"), "{all}");
    assert!(
        all.contains("`max_record_age` belongs on a `limit` rule"),
        "{all}"
    );
}

#[test]
fn unknown_views_in_tests_are_errors() {
    let e = errors("[[test]]\nname = \"t\"\nnow = 2026-01-01\nrequester = \"x\"\npurpose = \"y\"\nview = \"greenchannel\"\nexpect = { decision = \"refused\" }\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("p.toml:13:8: unknown view `greenchannel`"),
        "{}",
        e[0]
    );
}

#[test]
fn toml_syntax_errors_are_located() {
    let e = errors("[[rule]\nid = 1\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("p.toml:8:"), "{}", e[0]);
}

#[test]
fn tests_about_unknown_datasets_or_fields_are_errors() {
    let e = errors("[[test]]\nname = \"t\"\nnow = 2026-01-01\nrequester = \"x\"\npurpose = \"y\"\ndataset = \"court.dishonest_debtor\"\nexpect = { decision = \"refused\" }\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("p.toml:13:11: unknown dataset `court.dishonest_debtor` in test"),
        "{}",
        e[0]
    );
    let e = errors("[[test]]\nname = \"t\"\nnow = 2026-01-01\nrequester = \"x\"\npurpose = \"y\"\ndataset = \"court.dishonest_debtors\"\nexpect = { decision = \"decided\", fields = { case_number = \"clear\" } }\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("test expects about `case_number`, which the request does not ask for"),
        "{}",
        e[0]
    );
}

#[test]
fn a_rule_that_matches_no_field_is_an_error() {
    let e = errors(&rule("requesters = [\"*\"]\npurposes = [\"*\"]\ndatasets = [\"court.dishonest_debtors\"]\nclasses = [\"positive\"]\ntransform = \"clear\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("rule `r1` matches no field of its datasets"),
        "{}",
        e[0]
    );
}

#[test]
fn a_rule_no_request_can_match_is_an_error() {
    // The licensing office may only ask for administrative-licensing.
    let text = format!(
        "{HEAD}[[purpose]]\nname = \"statistics\"\n{}",
        rule("requesters = [\"market-regulation.licensing\"]\npurposes = [\"statistics\"]\ndatasets = [\"court.dishonest_debtors\"]\nfields = [\"case_no\"]\ntransform = \"clear\"")
    );
    let e = Policy::parse(&text, "p.toml", &reference_federation())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "rule `r1` can never apply: none of its requesters may ask for any of its purposes"
        ),
        "{e}"
    );
}

#[test]
fn a_view_needing_a_transform_its_field_cannot_have_is_an_error() {
    let e = errors("[[view]]\nname = \"v\"\nkind = \"credit-report\"\n[[view.source]]\ndataset = \"tax.arrears\"\nneeds = { tax_type = \"bucket\" }\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("view `v` needs `bucket` of field `tax_type` (enum), which it can never get; use one of: omit, exists, count, clear"), "{}", e[0]);
}

/// Item 14.5: what a view declares it releases beside its result is checked at load:
/// one of its sources, a field of it, and one the source `needs` (no node releases
/// anything else for the view); each mistake located.
#[test]
fn a_view_s_declared_release_must_be_a_needed_source_field() {
    let view = |release: &str| {
        format!("[[view]]\nname = \"v\"\nkind = \"blacklist\"\nrelease = [{release}]\n[[view.source]]\ndataset = \"court.dishonest_debtors\"\nneeds = {{ listed_on = \"clear\" }}\nsince = \"listed_on\"\n")
    };
    assert!(errors(&view("\"court.dishonest_debtors.listed_on\"")).is_empty());
    let cases = [
        ("\"listed_on\"", "p.toml:11:12: `release` item `listed_on` of view `v` is not `department.dataset.field`"),
        ("\"tax.arrears.amount\"", "p.toml:11:12: `release` item `tax.arrears.amount` of view `v` names `tax.arrears`, which is not one of its sources; its sources are: court.dishonest_debtors"),
        ("\"court.dishonest_debtors.amount_owed\"", "p.toml:11:12: `release` item `court.dishonest_debtors.amount_owed` of view `v`: `amount_owed` is not one the source `needs`, so no node releases it for the view; the source needs: listed_on"),
        ("\"court.dishonest_debtors.nope\"", "p.toml:11:12: `release` item `court.dishonest_debtors.nope` of view `v`: `nope` is not a field of the dataset; the source needs: listed_on"),
        ("\"court.dishonest_debtors.listed_on\", \"court.dishonest_debtors.listed_on\"", "p.toml:11:49: `release` item `court.dishonest_debtors.listed_on` of view `v` is listed twice"),
    ];
    for (release, want) in cases {
        let e = errors(&view(release));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0], want);
    }
}

#[test]
fn the_audit_retention_period_is_days_in_range_or_a_located_error() {
    let parse =
        |line: &str| Policy::parse(&format!("{line}{HEAD}"), "p.toml", &reference_federation());
    assert_eq!(parse("").unwrap().audit_retention_days, None);
    assert_eq!(
        parse("audit_retention_days = 1826\n")
            .unwrap()
            .audit_retention_days,
        Some(1826)
    );
    for bad in ["0", "-5", "36501", "99999999999"] {
        let e = parse(&format!("audit_retention_days = {bad}\n")).unwrap_err();
        let all =
            e.0.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
        assert!(
            all.starts_with("p.toml:1:24: `audit_retention_days` must be between 1 and 36500"),
            "{bad}: {all}"
        );
    }
    let e = parse("audit_retention_days = \"5 years\"\n").unwrap_err();
    assert!(e.0[0].to_string().starts_with("p.toml:1:"), "{:?}", e.0);
}

#[test]
fn a_change_of_the_audit_retention_period_shows_in_the_diff() {
    let engine = |line: &str| {
        fedq_policy::Engine::new(
            Policy::parse(&format!("{line}{HEAD}"), "p.toml", &reference_federation()).unwrap(),
        )
    };
    let today = time::macros::date!(2026 - 12 - 01);
    let diff = fedq_policy::report::render_diff(
        &engine(""),
        &engine("audit_retention_days = 1826\n"),
        today,
    );
    assert!(
        diff.contains("audit entry bodies: kept for good → 1826 days"),
        "{diff}"
    );
    let same = fedq_policy::report::render_diff(&engine(""), &engine(""), today);
    assert!(!same.contains("audit entry bodies"), "{same}");
}
