//! The console's HTTP side: one session per start (a random token in the path of the link
//! the terminal shows, `/s/<token>/…`; no cookie, which every port of the host would be
//! sent), the bound address as the only `Host` (no DNS rebinding), same-origin POSTs only,
//! a strict content security policy on every answer, and the pages as templates compiled
//! into the binary ([`askama`]).

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::pages::{self, Checked};
use crate::{Console, ConsoleError};

/// The running console's state.
#[derive(Debug)]
pub struct App {
    console: Console,
    /// SHA-256 of the session token (compared digest to digest).
    token_digest: [u8; 32],
    /// `/s/<token>`: every page's path starts with it.
    base: String,
    /// The address it serves on (the `Host` and `Origin` it accepts).
    addr: SocketAddr,
}

const LANG_COOKIE: &str = "fedq_lang";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// SHA-256 of a token: the token is compared digest to digest, so how long a comparison
/// takes says nothing about the token.
fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Serves the console on `listen` until `shutdown`; prints the address to open.
pub async fn serve(
    console: Console,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    let mut token = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut token)
        .map_err(|_| ConsoleError("no randomness for the session token".into()))?;
    let token = hex::encode(token);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        ConsoleError(format!(
            "cannot listen on {listen}: {e}; choose another --listen"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConsoleError(format!("cannot listen on {listen}: {e}")))?;
    let app = Arc::new(App {
        console,
        token_digest: digest(&token),
        base: format!("/s/{token}"),
        addr,
    });
    println!(
        "console for {} on http://{addr}/ — open this link (it alone opens the console; keep it to yourself):",
        app.console.officer
    );
    println!("console: http://{addr}{}/policy", app.base);
    tracing::info!(%addr, "console serving");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ConsoleError(format!("console stopped: {e}")))
}

fn router(app: Arc<App>) -> Router {
    let pages = Router::new()
        .route("/policy", get(policy_page).post(policy_action))
        .route("/api/check", post(api_check))
        .route("/changes", get(changes_page))
        .route("/approve", get(approve_page))
        .route("/approve/bundle", post(approve_bundle))
        .route("/approve/review", get(approve_review))
        .route("/approve/sign", post(approve_sign))
        .route("/approve/publish", post(approve_publish))
        .route("/audit", get(audit_page))
        .route("/citizens", get(citizens_page))
        .route("/citizens/complaint", post(citizens_complaint))
        .route("/citizens/decide", post(citizens_decide));
    Router::new()
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .nest("/s/{token}", pages)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `s` as a URL query value: file names are ASCII letters, digits, `-`, `_` and `.`;
/// anything else is percent-encoded.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// What a page is asked in: its language, and where it is (for the language switch).
#[derive(Debug, Clone)]
pub struct Ask {
    /// The language.
    pub lang: Lang,
    /// The page's path and query without `lang`, when it was a GET; else `None`.
    pub here: Option<String>,
}

/// Every request: the `Host` the console serves at; the session's path (but for the
/// static assets); changes from this origin only. Then the language; and on every
/// answer, refusals too, the security headers.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let asked = query_param(req.uri().query(), "lang").and_then(Lang::parse);
    let mut response = match admit(&app, req) {
        Ok(req) => next.run(req).await,
        Err((status, why)) => plain(status, why),
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(lang) = asked {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Strict",
            lang.code()
        )) {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The names the console answers at: its bound address, and `localhost` when that is
/// 127.0.0.1 or ::1.
fn hosts(addr: SocketAddr) -> Vec<String> {
    let mut names = vec![addr.to_string()];
    if matches!(addr.ip().to_string().as_str(), "127.0.0.1" | "::1") {
        names.push(format!("localhost:{}", addr.port()));
    }
    names
}

fn admit(app: &App, mut req: Request) -> Result<Request, (StatusCode, &'static str)> {
    let headers = req.headers();
    let names = hosts(app.addr);
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| names.iter().any(|ok| ok == h));
    if !host_ok {
        return Err((
            StatusCode::MISDIRECTED_REQUEST,
            "the console answers only at the address it serves on",
        ));
    }
    let path = req.uri().path();
    if !path.starts_with("/assets/") {
        let token = path
            .strip_prefix("/s/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        if token.is_empty() || digest(token) != app.token_digest {
            return Err((
                StatusCode::UNAUTHORIZED,
                "not the console's link: open the one `fedq console` printed when it started",
            ));
        }
    }
    let get = req.method() == Method::GET;
    if !get {
        let origin_ok = headers
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|o| names.iter().any(|n| o == format!("http://{n}")));
        if !origin_ok {
            return Err((
                StatusCode::FORBIDDEN,
                "refused: a change must come from the console's own pages",
            ));
        }
    }
    let asked = query_param(req.uri().query(), "lang").and_then(Lang::parse);
    let lang = asked
        .or_else(|| cookie(req.headers(), LANG_COOKIE).and_then(Lang::parse))
        .unwrap_or(Lang::Zh);
    let here = get.then(|| {
        let kept: Vec<&str> = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
            .collect();
        let path = req.uri().path();
        if kept.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", kept.join("&"))
        }
    });
    req.extensions_mut().insert(Ask { lang, here });
    Ok(req)
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/console.js"),
    )
        .into_response()
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's language.
    pub lang: Lang,
    /// The officer.
    pub officer: String,
    /// Which page (`policy`, `changes`, …).
    pub active: &'static str,
    /// `/s/<token>`: the start of every link and form action.
    pub base: String,
    /// This page in the other language.
    pub other_lang: String,
    /// The outcome of the action just taken: (ok, text).
    pub message: Option<(bool, String)>,
}

impl Chrome {
    fn new(app: &App, ask: &Ask, active: &'static str) -> Chrome {
        // After a change (a POST), the switch leads to the page's own GET.
        let here = ask
            .here
            .clone()
            .unwrap_or_else(|| format!("{}/{active}", app.base));
        let other = ask.lang.other().code();
        let other_lang = if here.contains('?') {
            format!("{here}&lang={other}")
        } else {
            format!("{here}?lang={other}")
        };
        Chrome {
            lang: ask.lang,
            officer: app.console.officer_name.clone(),
            active,
            base: app.base.clone(),
            other_lang,
            message: None,
        }
    }

    /// After a POST: the language switch leads to `page` (a path under the session with
    /// its query), not to the page's bare GET.
    fn switching_to(mut self, page: String) -> Chrome {
        let other = self.lang.other().code();
        let sep = if page.contains('?') { '&' } else { '?' };
        self.other_lang = format!("{page}{sep}lang={other}");
        self
    }

    fn with(mut self, ok: bool, text: impl Into<String>) -> Chrome {
        self.message = Some((ok, text.into()));
        self
    }

    /// The console's word for `key` in this page's language.
    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        self.lang.t(key)
    }

    /// The navigation: (page, label key).
    pub fn nav(&self) -> [(&'static str, &'static str); 5] {
        [
            ("policy", "nav.policy"),
            ("changes", "nav.changes"),
            ("approve", "nav.approve"),
            ("audit", "nav.audit"),
            ("citizens", "nav.citizens"),
        ]
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the page could not be drawn: {e}"),
        ),
    }
}

// ---- Policy ----

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    c: Chrome,
    files: Vec<String>,
    file: String,
    text: String,
    /// SHA-256 of the file as it was opened (or last saved).
    loaded: String,
    checked: Checked,
    tests: Option<Vec<pages::TestResult>>,
}

impl PolicyPage {
    fn passed(&self) -> usize {
        self.tests
            .as_ref()
            .map_or(0, |t| t.iter().filter(|r| r.failures.is_empty()).count())
    }
    fn failed(&self) -> usize {
        self.tests
            .as_ref()
            .map_or(0, |t| t.iter().filter(|r| !r.failures.is_empty()).count())
    }
    fn line_count(&self) -> usize {
        self.text.lines().count().max(1)
    }
    fn error_on(&self, line: &usize) -> bool {
        self.checked
            .errors
            .iter()
            .any(|e| e.here && e.line == *line)
    }
}

#[derive(Deserialize)]
struct FileQuery {
    file: Option<String>,
}

async fn policy_page(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Query(q): Query<FileQuery>,
) -> Response {
    let file = q.file.unwrap_or_else(|| pages::POLICY.to_owned());
    let c = Chrome::new(&app, &ask, "policy");
    let (text, c) = match pages::read_file(&app.console, &file) {
        Ok(t) => (t, c),
        Err(e) => (String::new(), c.with(false, e)),
    };
    let checked = pages::check(&app.console, &file, &text);
    render(&PolicyPage {
        c,
        files: pages::editable_files(&app.console),
        file,
        loaded: pages::sha256_hex(text.as_bytes()),
        text,
        checked,
        tests: None,
    })
}

#[derive(Deserialize)]
struct PolicyForm {
    file: String,
    text: String,
    action: String,
    #[serde(default)]
    loaded: String,
}

async fn policy_action(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Form(f): Form<PolicyForm>,
) -> Response {
    let console = &app.console;
    if pages::file_path(console, &f.file).is_none() {
        return plain(StatusCode::BAD_REQUEST, "no such file in this console");
    }
    let lang = ask.lang;
    let c = Chrome::new(&app, &ask, "policy").switching_to(format!(
        "{}/policy?file={}",
        app.base,
        urlencode(&f.file)
    ));
    // Browsers send line ends as CRLF in forms; the files keep the editor's LF.
    let text = f.text.replace("\r\n", "\n");
    let mut tests = None;
    let mut loaded = f.loaded.clone();
    let (c, checked) = match f.action.as_str() {
        "save" => match pages::save(console, &f.file, &text, &f.loaded) {
            Ok(()) => {
                loaded = pages::sha256_hex(text.as_bytes());
                tracing::info!(file = %f.file, officer = %console.officer_name, "console saved a file");
                (
                    c.with(true, lang.t("policy.saved")),
                    pages::check(console, &f.file, &text),
                )
            }
            Err(checked) => (c.with(false, lang.t("policy.not-saved")), checked),
        },
        "test" => match pages::run_tests(console, &f.file, &text) {
            Ok(results) => {
                tests = Some(results);
                (c, pages::check(console, &f.file, &text))
            }
            Err(checked) => (c, checked),
        },
        _ => (c, pages::check(console, &f.file, &text)),
    };
    render(&PolicyPage {
        c,
        files: pages::editable_files(console),
        file: f.file,
        loaded,
        text,
        checked,
        tests,
    })
}

#[derive(Deserialize)]
struct CheckRequest {
    file: String,
    text: String,
}

async fn api_check(State(app): State<Arc<App>>, Json(r): Json<CheckRequest>) -> Response {
    if pages::file_path(&app.console, &r.file).is_none() {
        return plain(StatusCode::BAD_REQUEST, "no such file in this console");
    }
    let console = app.console.clone();
    // Parsing a large policy is CPU work; keep it off the runtime's threads.
    match tokio::task::spawn_blocking(move || pages::check(&console, &r.file, &r.text)).await {
        Ok(checked) => Json(checked).into_response(),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the check did not finish",
        ),
    }
}

// ---- What changes ----

#[derive(Template)]
#[template(path = "changes.html")]
struct ChangesPage {
    c: Chrome,
    in_force: String,
    working: String,
    warning: Option<String>,
    groups: Vec<pages::RequesterChanges>,
    full: String,
    names: pages::Names,
    ask: ExplainQuery,
    explanation: Option<String>,
    who_can: Option<Result<Vec<pages::WhoCanRow>, String>>,
}

#[derive(Deserialize, Default, Debug, Clone)]
struct ExplainQuery {
    requester: Option<String>,
    purpose: Option<String>,
    view: Option<String>,
    dataset: Option<String>,
    legal_basis: Option<String>,
    consent: Option<String>,
    case: Option<String>,
    at: Option<String>,
    field: Option<String>,
}

impl ExplainQuery {
    fn get(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    fn requester(&self) -> &str {
        Self::get(&self.requester).unwrap_or_default()
    }
    fn purpose(&self) -> &str {
        Self::get(&self.purpose).unwrap_or_default()
    }
    fn view(&self) -> &str {
        Self::get(&self.view).unwrap_or_default()
    }
    fn dataset(&self) -> &str {
        Self::get(&self.dataset).unwrap_or_default()
    }
    fn legal_basis(&self) -> &str {
        Self::get(&self.legal_basis).unwrap_or_default()
    }
    fn case(&self) -> &str {
        Self::get(&self.case).unwrap_or_default()
    }
    fn at(&self) -> &str {
        Self::get(&self.at).unwrap_or_default()
    }
    fn field(&self) -> &str {
        Self::get(&self.field).unwrap_or_default()
    }
    fn consent(&self) -> bool {
        self.consent.is_some()
    }
}

/// The file the version in force is read from, after asking the coordinator which it is.
async fn in_force(app: &App) -> (std::path::PathBuf, Option<String>) {
    let Some(api) = app.console.api() else {
        return (app.console.in_force.clone(), None);
    };
    match fedq_coordinator::client::policy_status(&api).await {
        Ok((200, body)) => match serde_json::from_value::<fedq_client::api::PolicyStatus>(body) {
            Ok(s) => pages::in_force_file(
                &app.console,
                Some((s.coordinator.version, &s.coordinator.content_sha256)),
            ),
            Err(e) => (
                app.console.in_force.clone(),
                Some(format!("the coordinator's status could not be read ({e})")),
            ),
        },
        Ok((status, body)) => (
            app.console.in_force.clone(),
            Some(format!(
                "the coordinator refused the status ({status}: {})",
                fedq_coordinator::client::problem_detail(&body)
            )),
        ),
        Err(e) => (
            app.console.in_force.clone(),
            Some(format!("the coordinator is not reachable ({e})")),
        ),
    }
}

async fn changes_page(
    State(app): State<Arc<App>>,
    axum::Extension(asked): axum::Extension<Ask>,
    Query(ask): Query<ExplainQuery>,
) -> Response {
    let c = Chrome::new(&app, &asked, "changes");
    let (in_force_path, warning) = in_force(&app).await;
    let console = app.console.clone();
    let ask2 = ask.clone();
    let built =
        tokio::task::spawn_blocking(move || changes_of(&console, &in_force_path, &ask2)).await;
    match built {
        Ok(Ok(b)) => render(&ChangesPage {
            c,
            in_force: b.in_force,
            working: b.working,
            warning,
            groups: b.groups,
            full: b.full,
            names: b.names,
            ask,
            explanation: b.explanation,
            who_can: b.who_can,
        }),
        Ok(Err(e)) => render(&ChangesPage {
            c: c.with(false, e),
            in_force: String::new(),
            working: String::new(),
            warning,
            groups: Vec::new(),
            full: String::new(),
            names: pages::Names::default(),
            ask,
            explanation: None,
            who_can: None,
        }),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the diff did not finish"),
    }
}

struct Built {
    in_force: String,
    working: String,
    groups: Vec<pages::RequesterChanges>,
    full: String,
    names: pages::Names,
    explanation: Option<String>,
    who_can: Option<Result<Vec<pages::WhoCanRow>, String>>,
}

fn changes_of(
    console: &Console,
    in_force: &std::path::Path,
    ask: &ExplainQuery,
) -> Result<Built, String> {
    let new = pages::working_engine(console)?;
    let (old, what) = pages::in_force_engine(in_force, console)?;
    let at = ExplainQuery::get(&ask.at);
    let today = fedq_policy::calendar::date_or_today(at).map_err(|e| e.to_string())?;
    let (groups, full) = pages::changes(&old, &new, today);
    let explanation = match (
        ExplainQuery::get(&ask.requester),
        ExplainQuery::get(&ask.purpose),
    ) {
        (Some(requester), Some(purpose)) => {
            let (view, dataset) = (
                ExplainQuery::get(&ask.view),
                ExplainQuery::get(&ask.dataset),
            );
            if view.is_none() && dataset.is_none() {
                Some("choose a view or a dataset to explain".to_owned())
            } else {
                let a = fedq_policy::report::Ask {
                    requester,
                    purpose,
                    legal_basis: ExplainQuery::get(&ask.legal_basis),
                    consent: ask.consent(),
                    case_reference: ExplainQuery::get(&ask.case),
                    today,
                };
                Some(fedq_policy::report::render_explain(
                    &new,
                    &a,
                    view,
                    if view.is_some() { None } else { dataset },
                ))
            }
        }
        _ => None,
    };
    let who_can = ExplainQuery::get(&ask.field).map(|f| pages::who_can(&new, f, today));
    Ok(Built {
        in_force: format!("{what} ({})", old.policy().version),
        working: new.policy().version.clone(),
        groups,
        full,
        names: pages::names(&new),
        explanation,
        who_can,
    })
}

// ---- Approve ----

#[derive(Template)]
#[template(path = "approve.html")]
struct ApprovePage {
    c: Chrome,
    bundles: Vec<pages::PendingBundle>,
    next_version: u64,
    threshold: u32,
    status: Option<Result<fedq_client::api::PolicyStatus, String>>,
    publication: Option<fedq_client::api::Publication>,
    coordinator: bool,
    /// Distinct officers a bundle needs now (the threshold in force), when known.
    required: Option<u32>,
}

impl ApprovePage {
    fn node_version(n: &fedq_client::api::NodePolicyStatus) -> String {
        n.version
            .as_ref()
            .map(|v| v.version.to_string())
            .unwrap_or_default()
    }
    fn node_label(n: &fedq_client::api::NodePolicyStatus) -> String {
        n.version
            .as_ref()
            .map(|v| v.label.clone())
            .unwrap_or_default()
    }
    fn node_hash(n: &fedq_client::api::NodePolicyStatus) -> String {
        n.version
            .as_ref()
            .map(|v| v.content_sha256.get(..16).unwrap_or_default().to_owned())
            .unwrap_or_default()
    }
    fn node_refusal(n: &fedq_client::api::NodePolicyStatus) -> String {
        let refused = n.version.as_ref().and_then(|v| v.last_refusal.clone());
        [refused, n.last_publish_error.clone(), n.error.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn in_step(s: &fedq_client::api::PolicyStatus, n: &fedq_client::api::NodePolicyStatus) -> bool {
        n.version
            .as_ref()
            .is_some_and(|v| v.content_sha256 == s.coordinator.content_sha256)
    }
    fn short(h: &str) -> &str {
        h.get(..16).unwrap_or(h)
    }
    fn publish_outcome(n: &fedq_client::api::NodePublication) -> String {
        match (&n.installed, &n.error) {
            (Some(i), _) => i.label.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => String::new(),
        }
    }
}

async fn status_of(app: &App) -> Option<Result<fedq_client::api::PolicyStatus, String>> {
    let api = app.console.api()?;
    Some(match fedq_coordinator::client::policy_status(&api).await {
        Ok((200, body)) => serde_json::from_value(body).map_err(|e| e.to_string()),
        Ok((status, body)) => Err(format!(
            "refused ({status}): {}",
            fedq_coordinator::client::problem_detail(&body)
        )),
        Err(e) => Err(e.to_string()),
    })
}

async fn approve(
    app: &App,
    c: Chrome,
    publication: Option<fedq_client::api::Publication>,
) -> Response {
    let bundles = pages::bundles(&app.console);
    let status = status_of(app).await;
    let in_force_version = match &status {
        Some(Ok(s)) => s.coordinator.version,
        _ => 0,
    };
    let next_version = bundles
        .iter()
        .map(|b| b.version)
        .chain([in_force_version])
        .max()
        .unwrap_or(0)
        + 1;
    let required = match &status {
        Some(Ok(s)) => Some(s.coordinator.threshold),
        _ => None,
    };
    let threshold = required.unwrap_or(fedq_bundle::DEFAULT_THRESHOLD);
    render(&ApprovePage {
        c,
        bundles,
        next_version,
        threshold,
        status,
        publication,
        coordinator: app.console.coordinator.is_some(),
        required,
    })
}

async fn approve_page(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
) -> Response {
    let c = Chrome::new(&app, &ask, "approve");
    approve(&app, c, None).await
}

#[derive(Deserialize)]
struct BundleForm {
    version: String,
    threshold: String,
}

async fn approve_bundle(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Form(f): Form<BundleForm>,
) -> Response {
    let lang = ask.lang;
    let c = Chrome::new(&app, &ask, "approve");
    let (Ok(version), Ok(threshold)) = (
        f.version.trim().parse::<u64>(),
        f.threshold.trim().parse::<u32>(),
    ) else {
        let c = c.with(
            false,
            "the bundle version and the threshold are whole numbers; nothing was written",
        );
        return approve(&app, c, None).await;
    };
    let console = &app.console;
    let out = console.bundles.join(format!("bundle-{version}.toml"));
    let proposal = fedq_bundle::officer::Proposal {
        policy: console.policy.clone(),
        federation: console.federation.clone(),
        version,
        threshold,
        catalogue: Some(console.catalogue.clone()),
        officers: Vec::new(),
        out: out.clone(),
    };
    let c =
        match tokio::task::spawn_blocking(move || fedq_bundle::officer::propose(&proposal)).await {
            Ok(Ok(p)) => {
                tracing::info!(version, officer = %console.officer_name, "console wrote a bundle");
                c.with(
                    true,
                    format!(
                        "{}: bundle-{version}.toml — policy {}, content sha256 {}",
                        lang.t("approve.created"),
                        p.policy_version,
                        p.bundle.content_sha256.get(..16).unwrap_or_default()
                    ),
                )
            }
            Ok(Err(e)) => c.with(false, e.to_string()),
            Err(_) => c.with(false, "the bundle was not written"),
        };
    approve(&app, c, None).await
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    c: Chrome,
    bundle: String,
    content_sha256: String,
    review: String,
    signer: String,
    can_sign: bool,
}

#[derive(Deserialize)]
struct BundleQuery {
    bundle: String,
}

fn sign_request(
    console: &Console,
    bundle: std::path::PathBuf,
    in_force: std::path::PathBuf,
) -> fedq_bundle::officer::SignRequest {
    fedq_bundle::officer::SignRequest {
        bundle,
        cert: console.cert.clone(),
        key: console.key.clone(),
        in_force,
        catalogue: Some(console.catalogue.clone()),
        at: None,
    }
}

/// The bundle file `bundle` names and what signing it is reviewed against: refused when
/// it is not in the bundles directory, or the version in force cannot be confirmed.
async fn signing(app: &App, bundle: &str) -> Result<fedq_bundle::officer::SignRequest, String> {
    let path = pages::bundle_path(&app.console, bundle)
        .ok_or_else(|| "no such bundle in the bundles directory".to_owned())?;
    let (in_force_path, warning) = in_force(app).await;
    if let Some(w) = warning {
        return Err(w);
    }
    Ok(sign_request(&app.console, path, in_force_path))
}

async fn approve_review(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Query(q): Query<BundleQuery>,
) -> Response {
    let c = Chrome::new(&app, &ask, "approve");
    let request = match signing(&app, &q.bundle).await {
        Ok(found) => found,
        Err(why) => {
            let c = c.with(false, format!("not shown for signing: {why}"));
            return approve(&app, c, None).await;
        }
    };
    let reviewed = tokio::task::spawn_blocking(move || {
        fedq_bundle::officer::SignReview::prepare(&request)
            .map(|r| (r.render(), r.signer(), r.content_sha256().to_owned()))
    })
    .await;
    match reviewed {
        Ok(Ok((review, signer, content_sha256))) => render(&ReviewPage {
            c,
            bundle: q.bundle,
            content_sha256,
            review,
            signer,
            can_sign: true,
        }),
        Ok(Err(e)) => render(&ReviewPage {
            c: c.with(false, e.to_string()),
            bundle: q.bundle,
            content_sha256: String::new(),
            review: String::new(),
            signer: app.console.officer.clone(),
            can_sign: false,
        }),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the review did not finish",
        ),
    }
}

#[derive(Deserialize)]
struct SignForm {
    bundle: String,
    content_sha256: String,
}

async fn approve_sign(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Form(f): Form<SignForm>,
) -> Response {
    let lang = ask.lang;
    let c = Chrome::new(&app, &ask, "approve");
    let request = match signing(&app, &f.bundle).await {
        Ok(found) => found,
        Err(why) => return approve(&app, c.with(false, format!("not signed: {why}")), None).await,
    };
    let signed = tokio::task::spawn_blocking(move || {
        // Sign only what the officer reviewed: the content hash the review page showed,
        // which `sign` checks again against the file under the bundle's lock.
        let review =
            fedq_bundle::officer::SignReview::prepare(&request).map_err(|e| e.to_string())?;
        if f.content_sha256.is_empty() || review.content_sha256() != f.content_sha256 {
            return Err(
                "not signed: the bundle changed since you reviewed it; review it again".to_owned(),
            );
        }
        review.sign().map_err(|e| e.to_string())
    })
    .await;
    let c = match signed {
        Ok(Ok(s)) => {
            tracing::info!(officer = %app.console.officer_name, signatures = s.signatures, "console signed a bundle");
            c.with(
                true,
                format!(
                    "{}: {} — {} signature(s)",
                    lang.t("approve.signed"),
                    f.bundle,
                    s.signatures
                ),
            )
        }
        Ok(Err(e)) => c.with(false, e),
        Err(_) => c.with(false, "not signed"),
    };
    approve(&app, c, None).await
}

async fn approve_publish(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Form(f): Form<BundleQuery>,
) -> Response {
    let lang = ask.lang;
    let c = Chrome::new(&app, &ask, "approve");
    let Some(path) = pages::bundle_path(&app.console, &f.bundle) else {
        return approve(
            &app,
            c.with(false, "no such bundle in the bundles directory"),
            None,
        )
        .await;
    };
    let Some(api) = app.console.api() else {
        return approve(&app, c.with(false, lang.t("approve.no-coordinator")), None).await;
    };
    let args = fedq_coordinator::client::PublishArgs { bundle: path, api };
    match fedq_coordinator::client::publish(&args).await {
        Ok((200, body)) => {
            match serde_json::from_value::<fedq_client::api::Publication>(body.clone()) {
                Ok(p) => {
                    let (text, failed) = fedq_coordinator::client::render_publish(&body);
                    tracing::info!(officer = %app.console.officer_name, failed, "console published a bundle");
                    let c = c.with(failed == 0 && p.complete, text);
                    approve(&app, c, Some(p)).await
                }
                Err(e) => {
                    approve(
                        &app,
                        c.with(
                            false,
                            format!("the coordinator's answer could not be read: {e}"),
                        ),
                        None,
                    )
                    .await
                }
            }
        }
        Ok((status, body)) => {
            let c = c.with(
                false,
                format!(
                    "refused ({status}): {}",
                    fedq_coordinator::client::problem_detail(&body)
                ),
            );
            approve(&app, c, None).await
        }
        Err(e) => approve(&app, c.with(false, e.to_string()), None).await,
    }
}

// ---- Audit ----

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    sources: Vec<String>,
    f: AuditQuery,
    view: pages::AuditView,
    verification: Option<(bool, String)>,
}

#[derive(Deserialize, Default, Debug, Clone)]
struct AuditQuery {
    source: Option<String>,
    requester: Option<String>,
    purpose: Option<String>,
    case: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl AuditQuery {
    fn v(x: &Option<String>) -> &str {
        x.as_deref().map(str::trim).unwrap_or_default()
    }
    fn source(&self) -> &str {
        match Self::v(&self.source) {
            "" => "coordinator",
            s => s,
        }
    }
    fn requester(&self) -> &str {
        Self::v(&self.requester)
    }
    fn purpose(&self) -> &str {
        Self::v(&self.purpose)
    }
    fn case(&self) -> &str {
        Self::v(&self.case)
    }
    fn outcome(&self) -> &str {
        Self::v(&self.outcome)
    }
    fn since(&self) -> &str {
        Self::v(&self.since)
    }
    fn until(&self) -> &str {
        Self::v(&self.until)
    }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn audit_of(
    console: &Console,
    f: &AuditQuery,
) -> Result<(pages::AuditView, (bool, String)), String> {
    let config = match f.source() {
        "coordinator" => console.coordinator_config.clone(),
        node => console.node_config(node).map(std::path::Path::to_path_buf),
    }
    .ok_or_else(|| "this log is not configured in this console".to_owned())?;
    let path = fedq_audit::review::config_path(&config, "audit").map_err(|e| e.to_string())?;
    let parse = |s: &str, what: &str| -> Result<Option<time::OffsetDateTime>, String> {
        match s {
            "" => Ok(None),
            s => fedq_audit::review::parse_since(s)
                .map(Some)
                .map_err(|_| format!("`{what}` is a date, YYYY-MM-DD")),
        }
    };
    let until = parse(f.until(), "until")?
        // A date means through the end of that day.
        .map(|t| t + time::Duration::days(1));
    let filter = fedq_audit::ListFilter {
        requester: some(f.requester()),
        purpose: some(f.purpose()),
        subject: None,
        case_reference: some(f.case()),
        since: parse(f.since(), "from")?,
        until,
        outcome: match f.outcome() {
            "" => None,
            o => Some(
                fedq_audit::OutcomeClass::parse(o)
                    .ok_or_else(|| "the outcome is answered, refused or rate-limited".to_owned())?,
            ),
        },
        limit: None,
    };
    let entries = fedq_audit::list(&path, &filter).map_err(|e| e.to_string())?;
    let view = pages::audit_view(&entries);
    // Verified against what the other configured nodes witnessed of it.
    let witnesses: Vec<std::path::PathBuf> = console
        .nodes
        .iter()
        .filter(|(_, p)| *p != config)
        .map(|(_, p)| p.clone())
        .collect();
    let verification = match fedq_node::witnessing::witnessed_checkpoints(&config, &witnesses) {
        Err(e) => (false, e.to_string()),
        Ok((witnessed, held, empty)) => match fedq_audit::verify_against(&path, &witnessed) {
            Err(e) => (false, e.to_string()),
            Ok(v) => match v.first_break {
                Some(b) => (false, format!("chain broken: {b}")),
                None => {
                    let mut line = format!(
                        "{} entries, chain intact; head {}",
                        v.entries,
                        v.head.get(..16).unwrap_or_default()
                    );
                    if v.witnessed > 0 {
                        line.push_str(&format!(
                            "; matches all {} checkpoints its witnesses cosigned ({})",
                            v.witnessed,
                            held.join(", ")
                        ));
                    }
                    if !empty.is_empty() {
                        line.push_str(&format!(
                            "; no checkpoint of it cosigned yet by {}",
                            empty.join(", ")
                        ));
                    }
                    if witnesses.is_empty() {
                        line.push_str("; no witness configured (--node-config)");
                    }
                    // As `fedq audit verify --witness`: a log no witness vouches for has
                    // not passed, however intact its own chain.
                    (v.witnessed > 0 && empty.is_empty(), line)
                }
            },
        },
    };
    Ok((view, verification))
}

async fn audit_page(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Query(f): Query<AuditQuery>,
) -> Response {
    let c = Chrome::new(&app, &ask, "audit");
    let mut sources = Vec::new();
    if app.console.coordinator_config.is_some() {
        sources.push("coordinator".to_owned());
    }
    sources.extend(app.console.nodes.iter().map(|(n, _)| n.clone()));
    let console = app.console.clone();
    let f2 = f.clone();
    let built = tokio::task::spawn_blocking(move || audit_of(&console, &f2)).await;
    match built {
        Ok(Ok((view, verification))) => render(&AuditPage {
            c,
            sources,
            f,
            view,
            verification: Some(verification),
        }),
        Ok(Err(e)) => render(&AuditPage {
            c: c.with(false, e),
            sources,
            f,
            view: pages::AuditView::default(),
            verification: None,
        }),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the audit page did not finish",
        ),
    }
}

// ---- Citizens ----

#[cfg(test)]
mod tests {
    #[test]
    fn resident_ids_in_record_keys_are_masked() {
        let id = "11010519491231002X";
        assert!(fedq_policy::resident_id::is_resident_id(id));
        assert_eq!(super::CitizensPage::record(id), "110105********002X");
        assert_eq!(
            super::CitizensPage::record(&format!("{id}|2026-01")),
            "110105********002X|2026-01"
        );
        assert_eq!(
            super::CitizensPage::record("(2026)湘0104执963号"),
            "(2026)湘0104执963号"
        );
    }
}

#[derive(Template)]
#[template(path = "citizens.html")]
struct CitizensPage {
    c: Chrome,
    complaints: Option<Result<Vec<fedq_coordinator::complaints::Complaint>, String>>,
    objections: Vec<(String, fedq_policy::rights::ObjectionState)>,
    repairs: Vec<(String, fedq_policy::rights::RepairState)>,
    problems: Vec<String>,
}

impl CitizensPage {
    /// A filing's record key as shown: any resident ID in it masked (a dataset keyed by
    /// the ID has the ID as its record key).
    fn record(key: &str) -> String {
        let mut out = String::with_capacity(key.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if fedq_policy::resident_id::is_resident_id(&word.to_ascii_uppercase()) {
                out.push_str(&fedq_policy::resident_id::mask_resident_id(
                    &word.to_ascii_uppercase(),
                ));
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for ch in key.chars() {
            if ch.is_ascii_alphanumeric() {
                word.push(ch);
            } else {
                flush(&mut word, &mut out);
                out.push(ch);
            }
        }
        flush(&mut word, &mut out);
        out
    }

    fn about(c: &fedq_coordinator::complaints::Complaint) -> String {
        match &c.about {
            fedq_client::complaint::ComplaintAbout::Query(id) => format!("query {id}"),
            fedq_client::complaint::ComplaintAbout::Leak(_) => "leak".to_owned(),
        }
    }
    fn next_statuses(c: &fedq_coordinator::complaints::Complaint) -> Vec<&'static str> {
        use fedq_client::complaint::ComplaintStatus;
        [ComplaintStatus::InReview, ComplaintStatus::Closed]
            .into_iter()
            .filter(|s| c.status.may_become(*s))
            .map(ComplaintStatus::as_str)
            .collect()
    }
}

async fn citizens(app: &App, c: Chrome) -> Response {
    let console = app.console.clone();
    let built = tokio::task::spawn_blocking(move || {
        let complaints = console.coordinator_config.as_ref().map(|path| {
            fedq_coordinator::config::CoordinatorConfig::load(path)
                .map_err(|e| e.to_string())
                .and_then(|config| {
                    fedq_coordinator::complaints::list(
                        &config.complaints,
                        &fedq_coordinator::complaints::ListFilter::default(),
                    )
                    .map_err(|e| e.to_string())
                })
        });
        let mut objections = Vec::new();
        let mut repairs = Vec::new();
        let mut problems = Vec::new();
        for (name, path) in &console.nodes {
            match fedq_node::config::NodeConfig::load(path) {
                Err(e) => problems.push(format!("{name}: {e}")),
                Ok(config) => {
                    match fedq_node::remedies::objections(&config, None) {
                        Ok(list) => objections.extend(list.into_iter().map(|o| (name.clone(), o))),
                        Err(e) => problems.push(format!("{name}: {e}")),
                    }
                    match fedq_node::remedies::repairs(&config) {
                        Ok(list) => repairs.extend(list.into_iter().map(|r| (name.clone(), r))),
                        Err(e) => problems.push(format!("{name}: {e}")),
                    }
                }
            }
        }
        (complaints, objections, repairs, problems)
    })
    .await;
    match built {
        Ok((complaints, objections, repairs, problems)) => render(&CitizensPage {
            c,
            complaints,
            objections,
            repairs,
            problems,
        }),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the page did not finish"),
    }
}

async fn citizens_page(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
) -> Response {
    let c = Chrome::new(&app, &ask, "citizens");
    citizens(&app, c).await
}

#[derive(Deserialize)]
struct ComplaintForm {
    id: String,
    status: String,
    note: String,
}

async fn citizens_complaint(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Form(f): Form<ComplaintForm>,
) -> Response {
    let lang = ask.lang;
    let c = Chrome::new(&app, &ask, "citizens");
    let Some(config) = app.console.coordinator_config.clone() else {
        return citizens(&app, c.with(false, lang.t("citizens.no-queue"))).await;
    };
    let Ok(status) = f.status.parse::<fedq_client::complaint::ComplaintStatus>() else {
        return citizens(&app, c.with(false, "the status is in-review or closed")).await;
    };
    let args = fedq_coordinator::complaints::UpdateArgs {
        config,
        coordinator: app.console.coordinator.as_ref().map(|(url, _)| url.clone()),
        id: f.id,
        status,
        note: f.note,
        officer_cert: app.console.cert.clone(),
        officer_key: app.console.key.clone(),
    };
    let c = match fedq_coordinator::complaints::update(&args).await {
        Ok(state) => {
            tracing::info!(officer = %app.console.officer_name, status = state.status.as_str(), "console changed a complaint's status");
            c.with(
                true,
                format!("{}: {}", lang.t("citizens.updated"), state.status.as_str()),
            )
        }
        Err(e) => c.with(false, e.to_string()),
    };
    citizens(&app, c).await
}

#[derive(Deserialize)]
struct DecideForm {
    node: String,
    filing: String,
    decision: String,
    note: String,
    #[serde(default)]
    corrections: String,
}

/// An officer's decision on an objection or a repair application: signed with the
/// officer's key (as `fedq decision sign`) and recorded at the department (as `fedq node
/// resolve` / `fedq node repair`), which verifies the signature and the officer's role.
async fn citizens_decide(
    State(app): State<Arc<App>>,
    axum::Extension(ask): axum::Extension<Ask>,
    Form(f): Form<DecideForm>,
) -> Response {
    let lang = ask.lang;
    let c = Chrome::new(&app, &ask, "citizens");
    let Some(config_path) = app
        .console
        .node_config(&f.node)
        .map(std::path::Path::to_path_buf)
    else {
        return citizens(
            &app,
            c.with(
                false,
                "this department's config is not given to this console (--node-config)",
            ),
        )
        .await;
    };
    let repair = match f.decision.as_str() {
        "approve" | "reject" | "reverse" => true,
        "upheld" | "corrected" | "removed" => false,
        _ => {
            let c = c.with(false, "the decision is upheld, corrected or removed (an objection) or approve, reject or reverse (a repair application)");
            return citizens(&app, c).await;
        }
    };
    let lines: Vec<String> = f
        .corrections
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let corrections = match fedq_node::remedies::corrections(&lines) {
        Ok(c) => c,
        Err(e) => return citizens(&app, c.with(false, e)).await,
    };
    let claims = fedq_node::decisions::DecisionClaims {
        node: f.node.clone(),
        filing: f.filing.clone(),
        decision: f.decision.clone(),
        note: f.note,
        corrections,
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let outcome = async {
        let config =
            fedq_node::config::NodeConfig::load(&config_path).map_err(|e| e.to_string())?;
        let token = fedq_node::remedies::sign(&app.console.cert, &app.console.key, repair, &claims)
            .map_err(|e| e.to_string())?;
        if repair {
            fedq_node::remedies::repair(&config, &claims.filing, &[token])
                .await
                .map(|r| r.status.as_str().to_owned())
                .map_err(|e| e.to_string())
        } else {
            fedq_node::remedies::resolve(&config, &claims.filing, &token)
                .await
                .map(|o| o.status.as_str().to_owned())
                .map_err(|e| e.to_string())
        }
    }
    .await;
    let c = match outcome {
        Ok(status) => {
            tracing::info!(officer = %app.console.officer_name, node = %f.node, "console recorded a decision");
            c.with(
                true,
                format!("{}: {} → {status}", lang.t("citizens.decided"), f.filing),
            )
        }
        Err(e) => c.with(false, e),
    };
    citizens(&app, c).await
}
