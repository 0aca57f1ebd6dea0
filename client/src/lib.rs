//! The requester API, as a client sees it: the request and answer types the coordinator
//! itself reads and writes ([`query`], [`api`], [`answer`], [`problem`]) and [`Client`],
//! one kept-alive HTTPS connection (TLS 1.3 on ring, the caller's certificate) with one
//! async call per endpoint.
//!
//! `fedq query` is built on it: `fedq_coordinator::client::ApiConnection` adds the
//! requester side's sessions, proofs, sealing and the opening of sealed answers, and sends
//! every request through a [`Client`].
//!
//! ```no_run
//! # async fn ask() -> Result<(), fedq_client::Error> {
//! use std::path::Path;
//! let mut api = fedq_client::Client::connect(
//!     "https://coordinator.gov.example:8443",
//!     Path::new("ca.crt"),
//!     Some((Path::new("market-regulation.licensing.crt"), Path::new("market-regulation.licensing.key"))),
//! )
//! .await?;
//! let nodes = api.nodes().await?;
//! println!("{} nodes", nodes.nodes.len());
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod answer;
pub mod api;
pub mod complaint;
pub mod problem;
pub mod query;
pub mod statistics;

use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{Health, NodeList, PolicyStatus, Publication, SessionRequest, SessionsOpened};
use crate::problem::Problem;
use crate::query::{QueryRequest, RelayedAnswer};

/// Why a call gave no answer of its type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments cannot be used (a URL, a file, a certificate).
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {url}: {reason}")]
    Connect {
        /// The server.
        url: String,
        /// Why: the transport's (TLS, HTTP, socket) error as the source, or a message.
        #[source]
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server refused: its problem document (RFC 9457).
    #[error("refused ({}): {}", .0.status, .0.detail)]
    Refused(Box<Problem>),
    /// The server answered something that is not what the API documents.
    #[error("unexpected answer ({status}): {reason}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// What did not fit.
        reason: String,
    },
}

/// A client certificate chain and its key.
pub type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// One kept-alive HTTP/1.1 connection over TLS 1.3 to the requester API (or to an
/// agency's gateway).
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
    url: String,
    bearer: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `url` (`https://host:port`), trusting the CA certificate(s) in `ca`,
    /// with the certificate and key files in `identity` (a requester's, an officer's).
    pub async fn connect(
        url: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Self, Error> {
        let identity = match identity {
            Some((cert, key)) => Some(
                fedq_certs::tls::Credentials::load(cert, key)
                    .map_err(|e| Error::Usage(e.to_string()))?
                    .chain_and_key(),
            ),
            None => None,
        };
        Self::connect_with(url, ca, identity).await
    }

    /// Connects with a certificate chain and key already loaded.
    pub async fn connect_with(
        url: &str,
        ca: &Path,
        identity: Option<ClientIdentity>,
    ) -> Result<Self, Error> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| Error::Usage(format!("`{url}` is not a URL like https://host:8443")))?;
        if uri.scheme_str() != Some("https") {
            return Err(Error::Usage(format!("`{url}` must be an https:// URL")));
        }
        let host = uri
            .host()
            .unwrap_or("localhost")
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(8443);
        let connect_err = |reason: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            url: url.to_owned(),
            reason,
        };
        let ca_pem = std::fs::read(ca)
            .map_err(|e| Error::Usage(format!("cannot read --ca `{}`: {e}", ca.display())))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            fedq_certs::tls::read_certificates(&ca_pem).map_err(|e| Error::Usage(e.to_string()))?
        {
            roots
                .add(cert)
                .map_err(|e| Error::Usage(format!("--ca: {e}")))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(fedq_certs::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::Usage(e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Usage(format!("--cert/--key: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| connect_err(e.into()))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.clone()).map_err(|e| Error::Usage(e.to_string()))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| connect_err(e.into()))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| connect_err(e.into()))?;
        tokio::spawn(conn);
        Ok(Self {
            sender,
            authority: format!("{host}:{port}"),
            url: url.to_owned(),
            bearer: None,
        })
    }

    /// Sends `Authorization: Bearer TOKEN` with every request (an app at its agency's
    /// gateway).
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server has closed this connection: nothing sent on it would arrive.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// One request: the HTTP status and the JSON answer, whatever they are.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, serde_json::Value), Error> {
        let connect_err = |reason: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            url: self.url.clone(),
            reason,
        };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.bearer {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Usage(e.to_string()))?;
        self.sender
            .ready()
            .await
            .map_err(|e| connect_err(e.into()))?;
        // TLS 1.3: a refused client certificate surfaces here, not at connect.
        let response = self.sender.send_request(request).await.map_err(|e| {
            connect_err(
                format!("{e} (was your certificate refused? check role, expiry and revocation)")
                    .into(),
            )
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| connect_err(e.into()))?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| connect_err(format!("answer is not JSON: {e}").into()))?;
        Ok((status, json))
    }

    /// One request whose 200 is a `T` and whose error is a problem document.
    async fn typed<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<T, Error> {
        let (status, json) = self.call(method, path, content_type, body).await?;
        read(status, json)
    }

    /// `GET /health`.
    pub async fn health(&mut self) -> Result<Health, Error> {
        self.typed("GET", "/health", "application/json", Vec::new())
            .await
    }

    /// `GET /v1/openapi.json`: the API's OpenAPI document.
    pub async fn openapi(&mut self) -> Result<serde_json::Value, Error> {
        self.typed("GET", "/v1/openapi.json", "application/json", Vec::new())
            .await
    }

    /// `GET /v1/nodes`: the nodes to open sessions with and each view's nodes.
    pub async fn nodes(&mut self) -> Result<NodeList, Error> {
        self.typed("GET", "/v1/nodes", "application/json", Vec::new())
            .await
    }

    /// `POST /v1/sessions`: each node's accept of its grant, or why not.
    pub async fn open_sessions(
        &mut self,
        grants: &SessionRequest,
    ) -> Result<SessionsOpened, Error> {
        self.typed("POST", "/v1/sessions", "application/json", json(grants)?)
            .await
    }

    /// `POST /v1/query`: a proven query (its `proofs` and `sealed` filled in by the
    /// requester side), answered with every node's sealed answer.
    pub async fn query(&mut self, proven: &QueryRequest) -> Result<RelayedAnswer, Error> {
        self.typed("POST", "/v1/query", "application/json", json(proven)?)
            .await
    }

    /// `POST /v1/policy/bundles`: a signed bundle's text, published.
    pub async fn publish(&mut self, bundle: &str) -> Result<Publication, Error> {
        self.typed(
            "POST",
            "/v1/policy/bundles",
            "application/toml",
            bundle.as_bytes().to_vec(),
        )
        .await
    }

    /// `GET /v1/policy/status`.
    pub async fn policy_status(&mut self) -> Result<PolicyStatus, Error> {
        self.typed("GET", "/v1/policy/status", "application/json", Vec::new())
            .await
    }

    /// `POST /v1/complaints`: a complaint filed under this connection's requester
    /// certificate (201).
    pub async fn file_complaint(
        &mut self,
        complaint: &complaint::ComplaintRequest,
    ) -> Result<complaint::ComplaintFiled, Error> {
        self.typed(
            "POST",
            "/v1/complaints",
            "application/json",
            json(complaint)?,
        )
        .await
    }

    /// `GET /v1/complaints/{id}`: the status of a complaint this requester filed.
    pub async fn complaint(&mut self, id: &str) -> Result<complaint::ComplaintState, Error> {
        let path = complaint_path(id, "")?;
        self.typed("GET", &path, "application/json", Vec::new())
            .await
    }

    /// `POST /v1/complaints/{id}/status`: an officer's signed status change (an officer
    /// certificate on this connection).
    pub async fn update_complaint(
        &mut self,
        id: &str,
        update: &complaint::StatusUpdate,
    ) -> Result<complaint::ComplaintState, Error> {
        let path = complaint_path(id, "/status")?;
        self.typed("POST", &path, "application/json", json(update)?)
            .await
    }
}

/// `/v1/complaints/ID` + `tail`; an id that could not be a complaint's is refused here,
/// so it is never put in a path.
fn complaint_path(id: &str, tail: &str) -> Result<String, Error> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Usage(
            "a complaint id is the hex id `fedq complaint file` printed".into(),
        ));
    }
    Ok(format!("/v1/complaints/{id}{tail}"))
}

fn json(body: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Usage(format!("cannot encode the request: {e}")))
}

/// A 200 (or 201) read as `T`; any other status as its problem document.
pub fn read<T: DeserializeOwned>(status: u16, json: serde_json::Value) -> Result<T, Error> {
    if status == 200 || status == 201 {
        return serde_json::from_value(json).map_err(|e| Error::Unexpected {
            status,
            reason: format!("not the documented answer: {e}"),
        });
    }
    match serde_json::from_value::<Problem>(json) {
        Ok(problem) => Err(Error::Refused(Box::new(problem))),
        Err(e) => Err(Error::Unexpected {
            status,
            reason: format!("not a problem document: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_as_its_type_and_a_refusal_as_its_problem() {
        let nodes: NodeList =
            read(200, serde_json::json!({ "nodes": ["court"], "views": {} })).unwrap();
        assert_eq!(nodes.nodes, ["court"]);
        let refused = read::<NodeList>(
            403,
            serde_json::json!({ "type": "urn:fedq:problem:role-not-allowed", "title": "t", "status": 403, "detail": "no" }),
        );
        match refused {
            Err(Error::Refused(p)) => {
                assert_eq!(p.known_kind(), Some(problem::Kind::RoleNotAllowed));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read::<NodeList>(200, serde_json::json!({ "nodes": 3 })),
            Err(Error::Unexpected { status: 200, .. })
        ));
        assert!(matches!(
            read::<NodeList>(500, serde_json::json!("boom")),
            Err(Error::Unexpected { status: 500, .. })
        ));
    }
}
