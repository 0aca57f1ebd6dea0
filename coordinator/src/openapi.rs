//! The requester API's OpenAPI 3.1 document, generated from the types the server reads
//! and writes (their JSON Schemas come from `schemars`, draft 2020-12, which is OpenAPI
//! 3.1's own dialect) and the table of endpoints below. The server serves it at
//! `/v1/openapi.json`; `fedq coordinator openapi` prints it; `docs/api/openapi.json` is
//! that output, and a test fails when the two differ.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::api::{Health, NodeList, PolicyStatus, Publication, SessionRequest, SessionsOpened};
use crate::complaints::complaint;
use crate::problem::{Kind, Problem, CONTENT_TYPE as PROBLEM};
use crate::query::{QueryRequest, QueryResponse, RelayedAnswer};

/// The document's description of the API as a whole.
const ABOUT: &str = "Authorized cross-department questions about one person, answered without pooling records. Every request is authenticated by the requester's client certificate (TLS 1.3, issued by the federation CA with role `requester`); the certificate's name (`agency.office`) is the requester. The policy endpoints take an officer's certificate (or the coordinator's own) instead. Every query, answered or refused, is registered in the coordinator's audit log before the answer is returned.\n\n**Answers.** The coordinator relays each node's answer sealed to the requester (`RelayedAnswer`); the requester side (`fedq query`, the Rust client, an agency gateway) opens them and concludes the answer document (`ConcludedAnswer`). Released values there are plain JSON: strings as strings; dates as ISO 8601 strings (`YYYY-MM-DD`, or `YYYY-MM` / `YYYY` when minimized to month or year); whole numbers as numbers; amounts as `{\"value\": \"8000.00\", \"currency\": \"CNY\"}` (a decimal string, never a float); a value minimized to a range as `{\"bucket\": \"10000-100000\", \"at_least\": \"10000\", \"below\": \"100000\"}` (the policy's label; yuan for amounts); masked text as `{\"masked\": \"张*\"}`.\n\n**Errors.** Every 4xx and 5xx is `application/problem+json` (RFC 9457): `type` (`urn:fedq:problem:<kind>`, stable; match on it), `title`, `status`, `detail` (for a person; never the refused input), and where they apply `query_id`, `field` (the request field at fault), `accepted` (what the policy accepts there), `limit_bytes`, `retry_after_seconds`.\n\n**Gateway.** An agency's gateway (`fedq gateway`) serves the same `POST /v1/query` to the agency's apps over TLS with `Authorization: Bearer TOKEN` (a token per app) instead of a client certificate; there the body is an `AppQuery` (`subject` and `consent` beside the query, no `proofs`, `sealed` or `consent_sealed`, which the gateway makes), the 200 answer is a `ConcludedAnswer`, and a missing or wrong token is a 401 `unauthenticated` problem.";

/// One response of an operation: status, description, and the schema of its body (a
/// component name), if it has one.
type Answer = (u16, &'static str, Option<&'static str>);

/// One operation.
struct Operation {
    path: &'static str,
    method: &'static str,
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    body: Option<(&'static str, &'static str)>,
    answers: &'static [Answer],
}

const OPERATIONS: &[Operation] = &[
    Operation {
        path: "/v1/query",
        method: "post",
        id: "query",
        summary: "Ask one authorized question about one person",
        description: "A requester certificate. The body names the purpose, legal basis, case and view or datasets, with the requester's proof to each node and the subject sealed to each (`fedq query` and the Rust client make both). On an agency gateway the body is an `AppQuery` and the answer a `ConcludedAnswer`.",
        body: Some(("application/json", "QueryRequest")),
        answers: &[
            (200, "Answered: each node asked with its status, its answer sealed to the requester. `complete` is false when a node gave no sealed answer. The requester side opens the answers into a `ConcludedAnswer`.", Some("RelayedAnswer")),
            (400, "Malformed JSON, a field of the wrong type or an unknown field, a `subject` or `consent` field (never sent to the coordinator: sealed to each node), an unknown view, dataset or field, missing fields, a proof missing for a node the query asks (`proof-missing`). Registered in the audit log.", Some("Problem")),
            (403, "Refused by the policy (unknown requester or purpose, purpose not allowed, an aggregate-only purpose, a legal basis the purpose does not accept — `accepted` lists those it does —, a missing or malformed case reference, consent required), a revoked certificate or a certificate of another role. Registered in the audit log.", Some("Problem")),
            (404, "No such endpoint.", Some("Problem")),
            (408, "The body did not arrive within the body timeout (`[https] body_timeout_ms`, 10 s by default); registered in the audit log.", Some("Problem")),
            (413, "Body over 64 KiB (`limit_bytes`), on HTTP/1.1 and HTTP/2 alike; registered in the audit log.", Some("Problem")),
            (429, "Over the requester's rate limit declared in the policy.", Some("Problem")),
            (503, "Too many queries in flight, the audit log is unavailable (then nothing is answered), or the certificate already holds its cap of connections (`[https] max_connections_per_identity`).", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/nodes",
        method: "get",
        id: "nodes",
        summary: "The nodes a requester opens sessions with and proves its queries to",
        description: "A requester certificate.",
        body: None,
        answers: &[
            (200, "Node names, and each view's nodes.", Some("NodeList")),
            (403, "Not a requester certificate, or revoked.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/sessions",
        method: "post",
        id: "openSessions",
        summary: "Open requester–node sessions",
        description: "A requester certificate. Each grant is forwarded as it came to its node, which verifies it itself and answers with its signed accept. Registered in the coordinator's audit log (which nodes, never a token).",
        body: Some(("application/json", "SessionRequest")),
        answers: &[
            (200, "Each node's accept or failure.", Some("SessionsOpened")),
            (400, "Not a session request, a node this coordinator does not know, or a grant of the wrong shape (one line, never quoting the input); no node asked.", Some("Problem")),
            (403, "Not a requester certificate, or revoked.", Some("Problem")),
            (408, "The body did not arrive within the body timeout.", Some("Problem")),
            (413, "Body over 64 KiB.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/policy/bundles",
        method: "post",
        id: "publishBundle",
        summary: "Publish a signed policy bundle",
        description: "Officer or coordinator certificates only. The body is the `.bundle.toml` file as it is. The coordinator verifies the bundle (content hash, federation, version higher than the one in force, every signature an unrevoked officer certificate of this CA, at least M distinct officers, catalogues unchanged, policy compiles), puts it in force for queries that start from now on, and sends it to every node, which verifies it again. A refused bundle changes nothing anywhere.",
        body: Some(("application/toml", "Bundle")),
        answers: &[
            (200, "In force on the coordinator; per-node outcome (a node that did not apply it keeps its version).", Some("Publication")),
            (400, "The body is not UTF-8.", Some("Problem")),
            (403, "Revoked certificate, or a role that may not publish.", Some("Problem")),
            (408, "The body did not arrive within the body timeout.", Some("Problem")),
            (409, "Version not higher than the one in force (replay or rollback), or another bundle with the same version (`bundle-conflict`).", Some("Problem")),
            (413, "Body over 1 MiB.", Some("Problem")),
            (422, "Refused (`bundle-refused`): too few distinct officers, a bad, revoked or foreign signature, content edited after signing, another federation, a catalogue mismatch, an invalid policy.", Some("Problem")),
            (500, "Installing failed unexpectedly; nothing changed.", Some("Problem")),
            (503, "The coordinator could not read its CA or CRL or write its state file; nothing changed.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/policy/status",
        method: "get",
        id: "policyStatus",
        summary: "Which policy version the coordinator and each node run",
        description: "Officer or coordinator certificates. Nodes are asked live.",
        body: None,
        answers: &[
            (200, "Versions, last refusals and last publication failures.", Some("PolicyStatus")),
            (403, "Revoked certificate, or a role that may not read it.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/statistics",
        method: "post",
        id: "statistics",
        summary: "Ask for counts (an aggregate query; no person)",
        description: "A requester certificate, an aggregate-only purpose the policy's `[statistics]` table lists, and the requester's proof to every department whose datasets are counted (`fedq statistics` makes them; nothing is sealed, for no person is named). Each department checks its own policy, spends the query's ε from the requester's budget in its own ledger, counts its own records over the whole declared domain (districts, years, categories; each person once per dataset, inside the window, repaired and disputed records left out), adds discrete Laplace noise and suppresses every cell whose noisy count is below `min_cell`. Registered in the coordinator's and each department's audit log with the ε spent.",
        body: Some(("application/json", "StatisticsRequest")),
        answers: &[
            (200, "Each department's cells (a noisy count, or `null` when suppressed) and report (`answered` with the ε spent and left, `budget-spent`, `refused`, `proof-refused`, `failed`, `unavailable`); `complete` is false unless every department answered.", Some("StatisticsResponse")),
            (400, "Not a statistics query (an unknown field such as `subject`, a field of the wrong type), or no proof for a department it counts (`proof-missing`). Registered in the audit log.", Some("Problem")),
            (403, "Refused by the policy: a requester or purpose that may not count, a dataset not in `[statistics] datasets`, a category asked of a dataset without one, too many years. Registered in the audit log.", Some("Problem")),
            (413, "Body over 64 KiB.", Some("Problem")),
            (429, "The requester's budget is spent at every department asked (`budget-spent`): the detail says the ε left at each and the day it renews. Registered in the audit log.", Some("Problem")),
            (503, "The audit log is unavailable; nothing is answered.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/complaints",
        method: "post",
        id: "fileComplaint",
        summary: "File a complaint about a query or a leak",
        description: "A requester certificate (a person files at the citizen-service window, which files under its own certificate). About a query, by the coordinator's id of it or a node's (what the person's register shows): routed to the departments that query concerned, as the coordinator's audit log records them. About a leak: routed to every department. The text and contact are kept in the coordinator's complaint queue only; the audit log registers the filing with the complaint's id and the departments, never the text.",
        body: Some(("application/json", "ComplaintRequest")),
        answers: &[
            (201, "Filed: its id, status `open`, and the departments it is routed to.", Some("ComplaintFiled")),
            (400, "Not a complaint (one line, never quoting the input): an unknown field, an empty or over-long text or contact, `leak` not true, a malformed query id.", Some("Problem")),
            (403, "Not a requester certificate, or revoked.", Some("Problem")),
            (404, "No query is registered under that id (`query-not-found`).", Some("Problem")),
            (413, "Body over 32 KiB.", Some("Problem")),
            (429, "Over the requester's rate limit declared in the policy (filings are counted apart from queries), or a requester the policy does not declare.", Some("Problem")),
            (503, "The audit log or the complaint queue is unavailable; nothing was filed.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/complaints/{id}",
        method: "get",
        id: "complaintStatus",
        summary: "The status of a complaint you filed",
        description: "The requester certificate that filed it; to any other certificate the complaint does not exist (404). The text and contact are not sent back.",
        body: None,
        answers: &[
            (200, "Its status and every change of it, with the officer and their note.", Some("ComplaintState")),
            (403, "Not a requester certificate, or revoked.", Some("Problem")),
            (404, "No complaint of yours has that id (`complaint-not-found`).", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/complaints/{id}/status",
        method: "post",
        id: "changeComplaintStatus",
        summary: "An officer's signed change of a complaint's status",
        description: "An officer certificate, the same officer that signed the statement (`fedq complaint update` makes both). The signature is verified against the federation CA and CRL before anything is recorded; the statement and signature are kept in the queue. A complaint goes `open` → `in-review` → `closed` (or `open` → `closed`); each change is registered in the coordinator's audit log without the note.",
        body: Some(("application/json", "ComplaintStatusUpdate")),
        answers: &[
            (200, "Changed: the complaint's state now.", Some("ComplaintState")),
            (400, "Not a status update, a statement about another complaint, a note empty or over 2 KiB, or signed more than 300 s from the coordinator's clock.", Some("Problem")),
            (403, "Not an officer certificate; a signature, certificate or revocation check that fails (`officer-signature-refused`); a statement signed by another officer than the connection's.", Some("Problem")),
            (404, "No complaint has that id (`complaint-not-found`).", Some("Problem")),
            (409, "The complaint cannot go to that status from the one it has, or the same signed statement was recorded already (`complaint-status-conflict`).", Some("Problem")),
            (503, "The audit log or the complaint queue is unavailable; nothing was changed.", Some("Problem")),
        ],
    },
    Operation {
        path: "/v1/openapi.json",
        method: "get",
        id: "openapi",
        summary: "This document",
        description: "Any certificate of the federation.",
        body: None,
        answers: &[(200, "The OpenAPI document.", None)],
    },
    Operation {
        path: "/health",
        method: "get",
        id: "health",
        summary: "Liveness and the policy version in force",
        description: "Any certificate of the federation.",
        body: None,
        answers: &[(200, "Up.", Some("Health"))],
    },
];

/// The component schemas, by name, from the types.
fn schemas() -> Map<String, Value> {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut named = Map::new();
    let mut add = |name: &str, schema: schemars::Schema| {
        named.insert(name.to_owned(), schema.to_value());
    };
    add(
        "QueryRequest",
        generator.subschema_for::<Inline<QueryRequest>>(),
    );
    add(
        "RelayedAnswer",
        generator.subschema_for::<Inline<RelayedAnswer>>(),
    );
    add(
        "ConcludedAnswer",
        generator.subschema_for::<Inline<QueryResponse>>(),
    );
    add("Problem", generator.subschema_for::<Inline<Problem>>());
    add("NodeList", generator.subschema_for::<Inline<NodeList>>());
    add(
        "SessionRequest",
        generator.subschema_for::<Inline<SessionRequest>>(),
    );
    add(
        "SessionsOpened",
        generator.subschema_for::<Inline<SessionsOpened>>(),
    );
    add(
        "PolicyStatus",
        generator.subschema_for::<Inline<PolicyStatus>>(),
    );
    add(
        "Publication",
        generator.subschema_for::<Inline<Publication>>(),
    );
    add("Health", generator.subschema_for::<Inline<Health>>());
    add(
        "StatisticsRequest",
        generator.subschema_for::<Inline<crate::statistics::StatisticsRequest>>(),
    );
    add(
        "StatisticsResponse",
        generator.subschema_for::<Inline<crate::statistics::StatisticsResponse>>(),
    );
    add(
        "ComplaintRequest",
        generator.subschema_for::<Inline<complaint::ComplaintRequest>>(),
    );
    add(
        "ComplaintFiled",
        generator.subschema_for::<Inline<complaint::ComplaintFiled>>(),
    );
    add(
        "ComplaintState",
        generator.subschema_for::<Inline<complaint::ComplaintState>>(),
    );
    add(
        "ComplaintStatusUpdate",
        generator.subschema_for::<Inline<complaint::StatusUpdate>>(),
    );
    let mut all = generator.take_definitions(true);
    for (name, schema) in named {
        all.insert(name, schema);
    }
    // The gateway's body: the query's fields, with the subject and consent in clear (the
    // gateway seals them) and without what the gateway makes.
    if let Some(mut app) = all.get("QueryRequest").cloned() {
        if let Some(props) = app.get_mut("properties").and_then(Value::as_object_mut) {
            for made in ["proofs", "sealed", "consent_sealed"] {
                props.remove(made);
            }
            props.insert(
                "subject".into(),
                json!({ "type": "string", "description": "The person's 18-character resident ID. Sent to the gateway only; it seals it to each node." }),
            );
            props.insert(
                "consent".into(),
                json!({ "type": ["string", "null"], "description": "The subject's consent token (compact ES256 JWS, typ `fedq-consent+jwt`) from the federation's consent authority, when the purpose or a rule needs it." }),
            );
        }
        if let Some(required) = app.get_mut("required").and_then(Value::as_array_mut) {
            required.push(json!("subject"));
        } else if let Some(obj) = app.as_object_mut() {
            obj.insert("required".into(), json!(["purpose", "subject"]));
        }
        if let Some(obj) = app.as_object_mut() {
            obj.insert(
                "description".into(),
                json!("A query as an app sends it to its agency's gateway (`Authorization: Bearer TOKEN`)."),
            );
        }
        all.insert("AppQuery".into(), app);
    }
    // The problem kinds, each with its title.
    if let Some(kind) = all
        .get_mut("Problem")
        .and_then(|p| p.pointer_mut("/properties/type"))
        .and_then(Value::as_object_mut)
    {
        kind.insert(
            "enum".into(),
            Value::Array(Kind::ALL.iter().map(|k| Value::String(k.uri())).collect()),
        );
        let list: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("`{}`: {}", k.slug(), k.title()))
            .collect();
        kind.insert(
            "description".into(),
            Value::String(format!(
                "The kind of problem; match on this, not on `detail`. `urn:fedq:problem:` and one of — {}.",
                list.join("; ")
            )),
        );
    }
    all.insert(
        "Bundle".into(),
        json!({ "type": "string", "description": "A signed policy bundle: the `.bundle.toml` file `fedq policy bundle` and `fedq policy sign` write, as it is." }),
    );
    all
}

/// Wraps a type so that `subschema_for` gives its schema itself, not a `$ref` to it.
struct Inline<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for Inline<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

fn operation(op: &Operation) -> Value {
    let mut responses = Map::new();
    for (status, description, schema) in op.answers {
        let content = if let Some(name) = schema {
            let media = if *name == "Problem" {
                PROBLEM
            } else {
                "application/json"
            };
            json!({ media: { "schema": { "$ref": format!("#/components/schemas/{name}") } } })
        } else {
            json!({ "application/json": { "schema": { "type": "object" } } })
        };
        responses.insert(
            status.to_string(),
            json!({ "description": description, "content": content }),
        );
    }
    let mut o = Map::new();
    o.insert("operationId".into(), json!(op.id));
    o.insert("summary".into(), json!(op.summary));
    o.insert("description".into(), json!(op.description));
    if op.path.contains("{id}") {
        o.insert(
            "parameters".into(),
            json!([{ "name": "id", "in": "path", "required": true, "description": "The complaint's id (32 hex digits), as filing it answered.", "schema": { "type": "string", "pattern": "^[0-9a-f]{32}$" } }]),
        );
    }
    if let Some((media, schema)) = op.body {
        o.insert(
            "requestBody".into(),
            json!({
                "required": true,
                "content": { media: { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
            }),
        );
    }
    o.insert("responses".into(), Value::Object(responses));
    Value::Object(o)
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let entry = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(methods) = entry.as_object_mut() {
            methods.insert(op.method.to_owned(), operation(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "fedq requester API",
            "version": "1",
            "description": ABOUT,
        },
        "servers": [{ "url": "https://localhost:8443" }],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "clientCertificate": {
                    "type": "mutualTLS",
                    "description": "A certificate of the federation's CA: role `requester` for queries and sessions; `officer` or `coordinator` for the policy endpoints."
                },
                "appToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "On an agency gateway only: the app's token (`fedq gateway add-app`)."
                }
            }
        },
        "security": [{ "clientCertificate": [] }],
    })
}

/// The document as the file `docs/api/openapi.json` holds it: pretty, with a newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// Each documented response of `method path`: status → (media type, component schema).
pub fn documented(method: &str, path: &str) -> Vec<(u16, Option<&'static str>)> {
    OPERATIONS
        .iter()
        .filter(|o| o.path == path && o.method == method)
        .flat_map(|o| o.answers.iter().map(|(s, _, schema)| (*s, *schema)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_a_document_refers_to_is_in_it() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "`{name}` is referred to but missing"
            );
        }
        for name in [
            "QueryRequest",
            "RelayedAnswer",
            "ConcludedAnswer",
            "Problem",
            "AppQuery",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }

    /// `docs/api/openapi.json` is what the server serves: regenerate it with
    /// `cargo run -- coordinator openapi > docs/api/openapi.json`.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = include_str!("../../docs/api/openapi.json");
        assert!(
            committed == document_text(),
            "docs/api/openapi.json is stale; run `cargo run -- coordinator openapi > docs/api/openapi.json`"
        );
    }

    #[test]
    fn the_query_schema_has_no_subject_and_the_app_query_has_one() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        assert!(s["QueryRequest"]["properties"].get("subject").is_none());
        assert!(s["QueryRequest"]["properties"].get("consent").is_none());
        assert!(s["QueryRequest"]["properties"].get("proofs").is_some());
        assert!(s["AppQuery"]["properties"].get("subject").is_some());
        assert!(s["AppQuery"]["properties"].get("proofs").is_none());
        let kinds = s["Problem"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(kinds.len(), Kind::ALL.len());
    }
}
