//! The reference Changsha federation's cast: its catalogues and policy (embedded, so a
//! sandbox builds from any directory), and the names and citations its offices use.

/// The reference catalogues, embedded so a sandbox builds from any directory.
pub const CATALOGUES: [(&str, &str); 7] = [
    (
        "civil-affairs",
        include_str!("../../reference/changsha/catalogue/civil-affairs.toml"),
    ),
    (
        "court",
        include_str!("../../reference/changsha/catalogue/court.toml"),
    ),
    (
        "education",
        include_str!("../../reference/changsha/catalogue/education.toml"),
    ),
    (
        "hrss",
        include_str!("../../reference/changsha/catalogue/hrss.toml"),
    ),
    (
        "market-regulation",
        include_str!("../../reference/changsha/catalogue/market-regulation.toml"),
    ),
    (
        "public-security",
        include_str!("../../reference/changsha/catalogue/public-security.toml"),
    ),
    (
        "tax",
        include_str!("../../reference/changsha/catalogue/tax.toml"),
    ),
];

/// The reference policy, embedded.
pub const POLICY: &str = include_str!("../../reference/changsha/policy.toml");

/// The legal basis the licensing office cites.
pub const LICENSING_BASIS: &str = "长政办发〔2017〕62号";

/// The consent authority's certificate name: the identity check at the service window,
/// which signs a citizen's consent tokens.
pub const CONSENT_AUTHORITY: &str = "identity-check";
/// A licensing application the licensing office's queries serve (of the form the reference
/// policy declares for `administrative-licensing`).
pub const LICENSING_CASE: &str = "长市监许申〔2026〕001234号";

/// The security officers a sandbox issues certificates to (policy bundles need two of
/// them).
pub const OFFICERS: [&str; 3] = ["officer-zhang", "officer-li", "officer-wang"];

/// The credit-repair review office's officers, the reference policy's `repair_approvers`:
/// their signed decisions record, reject or (two together) reverse a credit repair.
pub const REPAIR_REVIEWERS: [&str; 2] = ["reviewer-chen", "reviewer-zhou"];

/// A department officer who resolves the persons' objections.
pub const RECORDS_OFFICER: &str = "records-officer-liu";

/// The requester whose gateway a sandbox sets up: the licensing office.
pub const GATEWAY_REQUESTER: &str = "market-regulation.licensing";

/// The licensing office's app that calls the gateway.
pub const GATEWAY_APP: &str = "licensing-portal";

/// The recruitment office.
pub const RECRUITMENT_OFFICE: &str = "hrss.recruitment";
/// The regulation recruitment cites.
pub const RECRUITMENT_BASIS: &str = "公务员录用规定";
/// A recruitment application the recruitment office's queries serve.
pub const RECRUITMENT_CASE: &str = "HRSS-ZL-2026-000123";

/// The requester the service window's self-queries come from.
pub const SELF_QUERY_OFFICE: &str = "service-window.self-query";
