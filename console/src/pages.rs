//! What each console page shows, computed from the files the console was given and the
//! coordinator's answers, through the libraries the command line uses. No HTTP here: the
//! functions take text and paths and return plain data for the templates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fedq_policy::catalogue::{Catalogue, Federation};
use fedq_policy::load::{load_federation, LoadError};
use fedq_policy::location::LocatedErrors;
use fedq_policy::policy::Policy;
use fedq_policy::Engine;
use rustls::pki_types::pem::PemObject;

use crate::Console;

/// The name the editor uses for the policy file (catalogues go by their file names).
pub const POLICY: &str = "policy";

/// One located problem, as the editor marks it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErrorAt {
    /// The file it is in (as the parser was told).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong and what to do.
    pub message: String,
    /// Whether it is in the file being edited (else in another file it affects).
    pub here: bool,
}

/// The verdict on the text in the editor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    /// No problem anywhere.
    pub ok: bool,
    /// Every problem, located.
    pub errors: Vec<ErrorAt>,
    /// When it checks: what the policy holds, one line.
    pub summary: String,
}

/// The files the editor opens: the policy, then each catalogue.
pub fn editable_files(console: &Console) -> Vec<String> {
    let mut files = vec![POLICY.to_owned()];
    if let Ok(entries) = std::fs::read_dir(&console.catalogue) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        names.sort();
        files.extend(names);
    }
    files
}

/// The path of an editable file, if `name` is one (never a path the browser made up).
pub fn file_path(console: &Console, name: &str) -> Option<PathBuf> {
    if name == POLICY {
        return Some(console.policy.clone());
    }
    editable_files(console)
        .into_iter()
        .skip(1)
        .find(|n| n == name)
        .map(|n| console.catalogue.join(n))
}

/// The text of an editable file.
pub fn read_file(console: &Console, name: &str) -> Result<String, String> {
    let path = file_path(console, name).ok_or_else(|| "no such file in this console".to_owned())?;
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

fn located(errors: &LocatedErrors, here: &str) -> Vec<ErrorAt> {
    errors
        .0
        .iter()
        .map(|e| ErrorAt {
            file: e.location.file.clone(),
            line: e.location.line,
            column: e.location.column,
            message: e.message.clone(),
            here: e.location.file == here,
        })
        .collect()
}

fn unlocated(message: String) -> Vec<ErrorAt> {
    vec![ErrorAt {
        file: String::new(),
        line: 1,
        column: 1,
        message,
        here: false,
    }]
}

fn load_errors(e: &LoadError, here: &str) -> Vec<ErrorAt> {
    match e.located() {
        Some(errors) => located(errors, here),
        None => unlocated(e.to_string()),
    }
}

/// The source name errors in `name` carry.
fn source_of(console: &Console, name: &str) -> String {
    file_path(console, name)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Parses the policy and catalogues with `text` standing for the file `name`: what the
/// command line's `fedq policy check` would say of them once saved.
pub fn parse_with(console: &Console, name: &str, text: &str) -> Result<Policy, Vec<ErrorAt>> {
    let here = source_of(console, name);
    if name == POLICY {
        let federation = load_federation(&console.catalogue).map_err(|e| load_errors(&e, &here))?;
        return Policy::parse(text, &here, &federation).map_err(|e| located(&e, &here));
    }
    // A catalogue: every other catalogue from disk, this one from the editor, then the
    // policy on disk against them.
    let mut catalogues = Vec::new();
    let mut errors = Vec::new();
    for other in editable_files(console).into_iter().skip(1) {
        let source = source_of(console, &other);
        let parsed = if other == name {
            Catalogue::parse(text, &source)
        } else {
            match std::fs::read_to_string(console.catalogue.join(&other)) {
                Ok(t) => Catalogue::parse(&t, &source),
                Err(e) => return Err(unlocated(format!("cannot read `{source}`: {e}"))),
            }
        };
        match parsed {
            Ok(c) => catalogues.push(c),
            Err(e) => errors.extend(located(&e, &here)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let federation = Federation::new(catalogues).map_err(|e| unlocated(e.to_string()))?;
    let policy_source = source_of(console, POLICY);
    let policy_text = std::fs::read_to_string(&console.policy)
        .map_err(|e| unlocated(format!("cannot read `{policy_source}`: {e}")))?;
    Policy::parse(&policy_text, &policy_source, &federation).map_err(|e| located(&e, &here))
}

/// Checks the editor's text.
pub fn check(console: &Console, name: &str, text: &str) -> Checked {
    match parse_with(console, name, text) {
        Ok(policy) => {
            let engine = policy.compile();
            Checked {
                ok: true,
                errors: Vec::new(),
                summary: format!(
                    "{} {} — {}",
                    engine.policy().version,
                    engine.policy().content_hash.get(..16).unwrap_or_default(),
                    fedq_policy::report::summary(&engine)
                ),
            }
        }
        Err(errors) => Checked {
            ok: false,
            errors,
            summary: String::new(),
        },
    }
}

/// Saves the editor's text, only when it checks, replacing the file in one rename so a
/// crash leaves the old file or the new one, never half of either.
///
/// `loaded` is the SHA-256 of the file as the editor opened it: a file changed on disk
/// since (another officer's console, an editor) is not overwritten.
pub fn save(console: &Console, name: &str, text: &str, loaded: &str) -> Result<(), Checked> {
    let checked = check(console, name, text);
    if !checked.ok {
        return Err(checked);
    }
    let fail = |message: String| Checked {
        ok: false,
        errors: unlocated(message),
        summary: String::new(),
    };
    let path = file_path(console, name).ok_or_else(|| fail("no such file".into()))?;
    // Compared and replaced under one lock, so two consoles saving at once cannot both
    // pass the comparison.
    let _lock = fedq_certs::fsutil::lock_beside(&path)
        .map_err(|e| fail(format!("cannot lock `{}`: {e}", path.display())))?;
    let now =
        std::fs::read(&path).map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))?;
    if sha256_hex(&now) != loaded {
        return Err(fail(format!(
            "not saved: `{}` changed on disk since you opened it; copy your edits, reopen the file and apply them again",
            path.display()
        )));
    }
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode() & 0o777)
    };
    fedq_certs::fsutil::write_atomic(&path, text.as_bytes(), mode).map_err(|e| {
        fail(format!(
            "cannot write `{}`: {e}; the file was not changed",
            path.display()
        ))
    })
}

/// SHA-256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// One embedded test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The case's name.
    pub name: String,
    /// Where it is.
    pub location: String,
    /// What did not match; empty when it passed.
    pub failures: Vec<String>,
}

/// Runs the `[[test]]` cases of the policy as the editor holds it.
pub fn run_tests(console: &Console, name: &str, text: &str) -> Result<Vec<TestResult>, Checked> {
    let policy = parse_with(console, name, text).map_err(|errors| Checked {
        ok: false,
        errors,
        summary: String::new(),
    })?;
    let engine = policy.compile();
    Ok(fedq_policy::testing::run_tests(&engine)
        .into_iter()
        .map(|o| TestResult {
            name: o.case.name.clone(),
            location: o.case.location.to_string(),
            failures: o.failures.clone(),
        })
        .collect())
}

/// The working copy compiled, or why it does not check.
pub fn working_engine(console: &Console) -> Result<Engine, String> {
    fedq_policy::load::load_policy(&console.policy, Some(&console.catalogue))
        .map(|p| p.compile())
        .map_err(|e| format!("the working copy does not check: {e}"))
}

/// The version in force, compiled, and what it is in words.
pub fn in_force_engine(in_force: &Path, console: &Console) -> Result<(Engine, String), String> {
    fedq_bundle::officer::in_force_policy(in_force, &console.catalogue)
        .map(|(engine, what, _)| (engine, what))
        .map_err(|e| e.to_string())
}

/// One change in access.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    /// The purpose.
    pub purpose: String,
    /// `department.dataset.field`.
    pub field: String,
    /// The field's own name.
    pub field_name: String,
    /// What the requester got.
    pub before: String,
    /// What it gets.
    pub after: String,
    /// Under which conditions, in words.
    pub conditions: String,
    /// More than before.
    pub gain: bool,
}

/// The changes for one dataset.
#[derive(Debug, Clone)]
pub struct DatasetChanges {
    /// `department.dataset`.
    pub dataset: String,
    /// Its rows.
    pub rows: Vec<ChangeRow>,
}

/// The changes for one requester.
#[derive(Debug, Clone)]
pub struct RequesterChanges {
    /// `agency.office`.
    pub requester: String,
    /// By dataset.
    pub datasets: Vec<DatasetChanges>,
}

/// "Who gains / who loses what", grouped by requester and dataset, and the whole diff as
/// the command line prints it.
pub fn changes(old: &Engine, new: &Engine, today: time::Date) -> (Vec<RequesterChanges>, String) {
    let mut grouped: BTreeMap<String, BTreeMap<String, Vec<ChangeRow>>> = BTreeMap::new();
    for c in fedq_policy::analysis::diff(old, new, today) {
        let mut parts = c.field.splitn(3, '.');
        let (dept, dataset, field) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        grouped
            .entry(c.requester.clone())
            .or_default()
            .entry(format!("{dept}.{dataset}"))
            .or_default()
            .push(ChangeRow {
                purpose: c.purpose.clone(),
                field_name: field.to_owned(),
                field: c.field.clone(),
                before: c.before.to_string(),
                after: c.after.to_string(),
                conditions: c.conditions.clone().unwrap_or_default(),
                gain: c.is_gain(),
            });
    }
    let groups = grouped
        .into_iter()
        .map(|(requester, datasets)| RequesterChanges {
            requester,
            datasets: datasets
                .into_iter()
                .map(|(dataset, rows)| DatasetChanges { dataset, rows })
                .collect(),
        })
        .collect();
    (groups, fedq_policy::report::render_diff(old, new, today))
}

/// The names the explain form offers.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Requesters.
    pub requesters: Vec<String>,
    /// Purposes.
    pub purposes: Vec<String>,
    /// Views.
    pub views: Vec<String>,
    /// Datasets, `department.dataset`.
    pub datasets: Vec<String>,
}

/// The names a policy declares.
pub fn names(engine: &Engine) -> Names {
    let p = engine.policy();
    Names {
        requesters: p.requesters.iter().map(|r| r.name.clone()).collect(),
        purposes: p.purposes.iter().map(|r| r.name.clone()).collect(),
        views: p.views.iter().map(|v| v.name.clone()).collect(),
        datasets: engine
            .datasets()
            .iter()
            .map(|d| d.qualified.clone())
            .collect(),
    }
}

/// One row of who-can.
#[derive(Debug, Clone)]
pub struct WhoCanRow {
    /// The requester.
    pub requester: String,
    /// The purpose.
    pub purpose: String,
    /// The most revealing form it gets.
    pub best: String,
    /// Under which conditions.
    pub conditions: String,
}

/// Who can ever see `field`, in which form.
pub fn who_can(engine: &Engine, field: &str, today: time::Date) -> Result<Vec<WhoCanRow>, String> {
    fedq_policy::analysis::who_can(engine, field, today)
        .map(|access| {
            access
                .into_iter()
                .map(|a| WhoCanRow {
                    requester: a.requester,
                    purpose: a.purpose,
                    best: a.best.to_string(),
                    conditions: a.conditions.unwrap_or_default(),
                })
                .collect()
        })
        .map_err(|e| e.to_string())
}

/// A bundle file in the bundles directory.
#[derive(Debug, Clone)]
pub struct PendingBundle {
    /// Its file name.
    pub file: String,
    /// Bundle version.
    pub version: u64,
    /// The policy's own version.
    pub policy_version: String,
    /// Content hash, first 16 hex digits.
    pub content: String,
    /// The whole content hash.
    pub content_sha256: String,
    /// Distinct officers the next bundle needs.
    pub threshold: u32,
    /// Who signed.
    pub signers: Vec<Signer>,
    /// Whether this officer signed it.
    pub signed_by_me: bool,
    /// Why it cannot be read, if it cannot.
    pub problem: Option<String>,
}

/// The policy version a bundle's text declares (`version = "…"`), for the table.
fn declared_version(policy: &str) -> String {
    toml::from_str::<toml::Table>(policy)
        .ok()
        .and_then(|t| t.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// A file name in the bundles directory (never a path the browser made up).
pub fn bundle_path(console: &Console, file: &str) -> Option<PathBuf> {
    let ok = !file.is_empty()
        && file.ends_with(".toml")
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !file.starts_with('.');
    let path = console.bundles.join(file);
    (ok && path.is_file()).then_some(path)
}

/// One signature on a bundle, as the console could check it.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The officer's name, as the signature's certificate says.
    pub name: String,
    /// `Ok(true)`: the certificate chains to the federation CA, is not revoked, and its
    /// key made this signature over this bundle; `Ok(false)`: not checked (no `--ca`);
    /// `Err`: why it does not verify. Every process checks it again, against its roster,
    /// on publish.
    pub verified: Result<bool, String>,
}

impl PendingBundle {
    /// Signatures that verify (none are counted when they could not be checked).
    pub fn counted(&self) -> usize {
        self.signers
            .iter()
            .filter(|sig| sig.verified == Ok(true))
            .count()
    }
}

fn signer(
    trust: &Result<Option<fedq_certs::FederationTrust>, String>,
    s: &fedq_bundle::Signature,
    message: &[u8],
) -> Signer {
    let der = rustls::pki_types::CertificateDer::from_pem_slice(s.certificate.as_bytes()).ok();
    let name = der
        .as_ref()
        .and_then(|der| fedq_certs::Identity::from_certificate_der(der).ok())
        .map_or_else(|| "?".to_owned(), |i| i.name);
    let verified = match trust {
        Err(why) => Err(why.clone()),
        Ok(None) => Ok(false),
        Ok(Some(trust)) => match (der.as_ref(), hex::decode(s.signature.trim())) {
            (Some(der), Ok(signature)) => trust
                .verify_officer_signature(der, message, &signature, fedq_bundle::now(), true)
                .map_err(|e| e.to_string())
                .and_then(|o| {
                    if o.identity.to_uri() == s.officer {
                        Ok(true)
                    } else {
                        Err(format!(
                            "signed by {}, labelled {}",
                            o.identity.to_uri(),
                            s.officer
                        ))
                    }
                }),
            _ => Err("the certificate or the signature cannot be read".to_owned()),
        },
    };
    Signer { name, verified }
}

/// The federation's trust (its CA and the `crl.pem` beside it), when the console was
/// given `--ca`; why it cannot be loaded, if it cannot (then no signature counts).
fn trust_of(console: &Console) -> Result<Option<fedq_certs::FederationTrust>, String> {
    let Some((_, ca)) = console.coordinator.as_ref() else {
        return Ok(None);
    };
    fedq_certs::FederationTrust::load(&fedq_certs::tls::TrustFiles {
        ca: ca.clone(),
        crl: ca.with_file_name("crl.pem"),
        crl_grace: std::time::Duration::ZERO,
        crl_state: None,
    })
    .map(Some)
    .map_err(|e| format!("signatures not checked: {e}"))
}

/// Every bundle in the bundles directory, newest version first; each signature checked
/// against the federation CA when the console has it.
pub fn bundles(console: &Console) -> Vec<PendingBundle> {
    let mut out = Vec::new();
    let trust = trust_of(console);
    let Ok(entries) = std::fs::read_dir(&console.bundles) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let Ok(file) = e.file_name().into_string() else {
            continue;
        };
        if bundle_path(console, &file).is_none() {
            continue;
        }
        let text = std::fs::read_to_string(e.path());
        // A TOML file that does not even claim to be a bundle (a policy kept beside the
        // bundles) is not listed; one that claims to and fails is, with why.
        if text.as_ref().is_ok_and(|t| {
            toml::from_str::<toml::Table>(t).is_ok_and(|t| !t.contains_key("content_sha256"))
        }) {
            continue;
        }
        let parsed = text
            .map_err(|e| e.to_string())
            .and_then(|t| fedq_bundle::Bundle::parse(&t).map_err(|e| e.to_string()))
            .and_then(|b| b.check_integrity().map(|()| b).map_err(|e| e.to_string()));
        match parsed {
            Ok(b) => {
                let message = b.signing_message();
                let signers: Vec<Signer> = b
                    .signature
                    .iter()
                    .map(|s| signer(&trust, s, &message))
                    .collect();
                out.push(PendingBundle {
                    signed_by_me: b.signature.iter().any(|s| s.officer == console.officer),
                    file,
                    version: b.version,
                    policy_version: declared_version(&b.policy),
                    content: b.content_sha256.get(..16).unwrap_or_default().to_owned(),
                    content_sha256: b.content_sha256.clone(),
                    threshold: b.threshold,
                    signers,
                    problem: None,
                });
            }
            Err(problem) => out.push(PendingBundle {
                file,
                version: 0,
                policy_version: String::new(),
                content: String::new(),
                content_sha256: String::new(),
                threshold: 0,
                signers: Vec::new(),
                signed_by_me: false,
                problem: Some(problem),
            }),
        }
    }
    out.sort_by(|a, b| b.version.cmp(&a.version).then(a.file.cmp(&b.file)));
    out
}

/// The file the version in force is read from: the bundle of the version the coordinator
/// reports (matched by version and content hash), or the set-up file.
pub fn in_force_file(
    console: &Console,
    reported: Option<(u64, &str)>,
) -> (PathBuf, Option<String>) {
    match reported {
        None | Some((0, _)) => (console.in_force.clone(), None),
        Some((version, content)) => {
            match bundles(console)
                .into_iter()
                .find(|b| b.version == version && b.content_sha256 == content)
            {
                Some(b) => (console.bundles.join(b.file), None),
                None => (
                    console.in_force.clone(),
                    Some(format!(
                        "bundle version {version} is in force but is not in the bundles directory `{}`",
                        console.bundles.display()
                    )),
                ),
            }
        }
    }
}

/// One entry as the audit table shows it.
#[derive(Debug, Clone)]
pub struct EntryRow {
    /// Position.
    pub seq: u64,
    /// When, UTC, to the second.
    pub at: String,
    /// The entry's kind.
    pub kind: String,
    /// The requester.
    pub requester: String,
    /// The purpose.
    pub purpose: String,
    /// The case reference cited.
    pub case: String,
    /// What was asked of.
    pub target: String,
    /// The outcome's class.
    pub outcome: String,
    /// The policy version.
    pub policy: String,
}

/// One bar of the per-office chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// `office · day`.
    pub label: String,
    /// Queries.
    pub count: usize,
    /// Where the bar's row starts (pixels).
    pub y: usize,
    /// Its width (pixels).
    pub width: usize,
}

/// What the audit page shows of one log.
#[derive(Debug, Clone, Default)]
pub struct AuditView {
    /// Entries matching, in all.
    pub total: usize,
    /// The newest of them.
    pub rows: Vec<EntryRow>,
    /// Queries per office per day among the entries matching.
    pub bars: Vec<Bar>,
    /// The chart's height.
    pub chart_height: usize,
    /// Refusals among them.
    pub refusals: usize,
    /// Rate-limit hits among them.
    pub rate_limited: usize,
}

/// At most this many rows are shown (the count says how many matched).
pub const SHOWN: usize = 500;

/// Builds the audit page's table and chart from the entries matching its filters.
pub fn audit_view(entries: &[fedq_audit::AuditEntry]) -> AuditView {
    use fedq_audit::OutcomeClass;
    let mut per_day: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut refusals = 0;
    let mut rate_limited = 0;
    for e in entries {
        let r = &e.record;
        match r.outcome.class() {
            OutcomeClass::Refused => refusals += 1,
            OutcomeClass::RateLimited => rate_limited += 1,
            OutcomeClass::Answered => {}
        }
        if matches!(
            r.kind,
            fedq_audit::EntryKind::Query
                | fedq_audit::EntryKind::Answer
                | fedq_audit::EntryKind::Refusal
        ) {
            let day = r.at.date().to_string();
            *per_day.entry((r.requester.clone(), day)).or_default() += 1;
        }
    }
    let max = per_day.values().copied().max().unwrap_or(1).max(1);
    let bars: Vec<Bar> = per_day
        .into_iter()
        .enumerate()
        .map(|(i, ((office, day), count))| Bar {
            label: format!("{office} · {day}"),
            count,
            y: i * 22,
            width: (count * 400).div_ceil(max).max(1),
        })
        .collect();
    let rows = entries
        .iter()
        .rev()
        .take(SHOWN)
        .map(|e| {
            let r = &e.record;
            EntryRow {
                seq: e.seq,
                at: r
                    .at
                    .replace_nanosecond(0)
                    .unwrap_or(r.at)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                kind: r.kind.as_str().to_owned(),
                requester: r.requester.clone(),
                purpose: r.purpose.clone(),
                case: r.case_reference.clone().unwrap_or_default(),
                target: r.target.clone(),
                outcome: r.outcome.class().as_str().to_owned(),
                policy: r.policy_version.clone(),
            }
        })
        .collect();
    AuditView {
        total: entries.len(),
        chart_height: bars.len() * 22 + 4,
        bars,
        rows,
        refusals,
        rate_limited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_counts_queries_per_office_per_day_and_the_table_shows_the_newest() {
        let entry = |seq: u64, requester: &str, day: u8, outcome: &str| fedq_audit::AuditEntry {
            seq,
            record: fedq_audit::AuditRecord {
                at: time::macros::datetime!(2026-12-01 08:00 UTC)
                    .replace_day(day)
                    .unwrap(),
                kind: fedq_audit::EntryKind::Query,
                query_id: format!("q{seq}"),
                requester: requester.into(),
                purpose: "administrative-licensing".into(),
                legal_basis: None,
                case_reference: None,
                subject: "-".into(),
                target: "view:blacklist-check".into(),
                outcome: fedq_audit::Outcome::json(&serde_json::from_str(outcome).unwrap()),
                policy_version: "0/2026.12-1".into(),
                consent_id: None,
                node_query_ids: BTreeMap::new(),
                answer_sha256: None,
            },
            prev_hash: String::new(),
            hash: String::new(),
            shredded: false,
        };
        let entries = vec![
            entry(1, "a.x", 1, r#"{"http":200}"#),
            entry(2, "a.x", 1, r#"{"http":403,"refused":"no rule"}"#),
            entry(3, "b.y", 2, r#"{"http":429,"refused":"over"}"#),
        ];
        let v = audit_view(&entries);
        assert_eq!((v.total, v.refusals, v.rate_limited), (3, 1, 1));
        let bars: Vec<(&str, usize)> = v.bars.iter().map(|b| (b.label.as_str(), b.count)).collect();
        assert_eq!(bars, [("a.x · 2026-12-01", 2), ("b.y · 2026-12-02", 1)]);
        assert_eq!(v.bars[0].width, 400);
        assert_eq!(v.rows.first().map(|r| r.seq), Some(3), "newest first");
        assert_eq!(v.rows[1].outcome, "refused");
    }

    #[test]
    fn only_plain_names_in_the_bundles_directory_are_bundles() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bundle-1.toml"), "x").unwrap();
        std::fs::write(dir.path().join("policy.toml"), "version = \"1\"").unwrap();
        let console = Console {
            officer: String::new(),
            officer_name: String::new(),
            federation: String::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            policy: PathBuf::new(),
            catalogue: PathBuf::new(),
            in_force: PathBuf::new(),
            bundles: dir.path().to_path_buf(),
            coordinator: None,
            coordinator_config: None,
            nodes: Vec::new(),
        };
        assert!(bundle_path(&console, "bundle-1.toml").is_some());
        for bad in [
            "../bundle-1.toml",
            "/etc/passwd",
            ".hidden.toml",
            "bundle-2.toml",
            "",
        ] {
            assert!(bundle_path(&console, bad).is_none(), "{bad}");
        }
        // An unreadable bundle is listed with its problem, not hidden; a policy beside it is
        // no bundle.
        let listed = bundles(&console);
        assert_eq!(listed.len(), 1);
        assert!(listed[0].problem.is_some());
    }
}
