//! `fedq coordinator …` ([`fedq_coordinator::serve`]), and the command-line clients of
//! its API: `fedq query`, `fedq policy publish` and `fedq policy status`
//! ([`fedq_coordinator::client`]).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use fedq_coordinator::client::{
    self, problem_detail, refused, ApiArgs, ClientError, PublishArgs, QueryArgs,
};
use fedq_coordinator::config::CoordinatorConfig;
use fedq_wire::transport::Limits;

/// The `fedq coordinator` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CoordinatorCommand {
    /// Serve the requester API until Ctrl-C (then drain in-flight queries).
    Serve {
        /// The coordinator's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the requester API's OpenAPI 3.1 document (what `docs/api/openapi.json` holds
    /// and the server serves at `/v1/openapi.json`).
    Openapi,
}

/// `fedq coordinator openapi`.
pub fn openapi() {
    print!("{}", fedq_coordinator::openapi::document_text());
}

/// `fedq coordinator serve`: serves the requester API until `shutdown`, then drains
/// in-flight queries.
pub async fn serve(
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let api = fedq_coordinator::serve::start(config, Limits::default()).await?;
    let addr = api.local_addr().map_err(super::message)?;
    match api.ops_addr() {
        Some(ops) => eprintln!("coordinator serving https://{addr} (health and metrics on http://{ops}); Ctrl-C to stop"),
        None => eprintln!("coordinator serving https://{addr}; Ctrl-C to stop"),
    }
    api.serve(Duration::from_secs(2), shutdown).await;
    eprintln!("coordinator stopped");
    Ok(())
}

/// Arguments of `fedq query`. `Debug` shows neither the subject nor the consent token.
#[derive(clap::Args)]
pub struct QueryCli {
    /// The coordinator, e.g. `https://127.0.0.1:8443`: `fedq query` opens the sessions,
    /// proves, seals and opens itself, as the requester of `--cert` and `--key`.
    #[arg(
        long,
        required_unless_present = "gateway",
        conflicts_with = "gateway",
        requires_all = ["cert", "key"]
    )]
    pub coordinator: Option<String>,
    /// Your agency's gateway instead (`fedq gateway`), e.g. `https://127.0.0.1:9443`: it
    /// asks as the agency's requester; `--token` is your app's, `--ca` its `gateway-ca.crt`.
    #[arg(long, requires = "token")]
    pub gateway: Option<String>,
    /// Your app's token from the gateway's operator: the token, or `@FILE`.
    #[arg(long, requires = "gateway")]
    pub token: Option<String>,
    /// Your requester certificate (with `--coordinator`).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The CA certificate to trust: the federation's (with `--coordinator`) or the
    /// gateway's `gateway-ca.crt` (with `--gateway`).
    #[arg(long)]
    pub ca: PathBuf,
    /// The federation's CRL, which nodes' session accepts are checked against (default:
    /// `crl.pem` beside `--ca`; with `--coordinator`).
    #[arg(long)]
    pub crl: Option<PathBuf>,
    /// The person's resident ID, or `@FILE` to read it from a file (kept out of the shell's
    /// history and the process list).
    #[arg(long)]
    pub subject: String,
    /// The declared purpose.
    #[arg(long)]
    pub purpose: String,
    /// The legal basis cited (e.g. the regulation the licensing application falls under).
    #[arg(long)]
    pub basis: Option<String>,
    /// The subject's consent token from the consent authority (`fedq consent issue`): the
    /// token itself, or `@FILE`.
    #[arg(long)]
    pub consent: Option<String>,
    /// The case the query serves, in the form its purpose declares (e.g. a licensing
    /// application number or a court case number such as `(2026)湘01执123号`).
    #[arg(long = "case", value_name = "REF")]
    pub case_reference: Option<String>,
    /// A view from the policy.
    #[arg(long, conflicts_with_all = ["dataset", "rights"])]
    pub view: Option<String>,
    /// `department.dataset` or `department.dataset.field` (repeatable); with `--rights`,
    /// the one dataset the right is about.
    #[arg(long, required_unless_present_any = ["view", "rights"])]
    pub dataset: Vec<String>,
    /// Exercise one of the person's rights instead: `register` (who looked at my data, at
    /// every department), `object` or `apply-repair` (about one record: `--dataset`,
    /// `--record`, `--reason`, `--evidence`), `repair-applications` (the review office).
    #[arg(long, value_name = "RIGHT")]
    pub rights: Option<String>,
    /// The record an objection or repair application is about: its key in the dataset
    /// (e.g. the case number).
    #[arg(long, requires_all = ["rights", "reason", "evidence"])]
    pub record: Option<String>,
    /// Why the person objects, or what the repair rests on.
    #[arg(long, requires = "record")]
    pub reason: Option<String>,
    /// The evidence reference (a receipt or certificate number).
    #[arg(long, requires = "record")]
    pub evidence: Option<String>,
    /// A repair application's grounds: `performance`, `volunteer-service` or `donation`.
    #[arg(long, requires = "record")]
    pub grounds: Option<String>,
    /// The language a rights answer is printed in: `zh` (default) or `en`.
    #[arg(long, default_value = "zh")]
    pub lang: String,
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
}

impl std::fmt::Debug for QueryCli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCli")
            .field("coordinator", &self.coordinator)
            .field("gateway", &self.gateway)
            .field("purpose", &self.purpose)
            .field("view", &self.view)
            .field("dataset", &self.dataset)
            .field("consent", &self.consent.is_some())
            .finish_non_exhaustive()
    }
}

impl TryFrom<QueryCli> for QueryArgs {
    type Error = ClientError;

    fn try_from(a: QueryCli) -> Result<Self, ClientError> {
        let lang = fedq_coordinator::rights::Lang::parse(&a.lang)
            .ok_or_else(|| ClientError::Usage("`--lang` is `zh` or `en`".into()))?;
        let grounds = a
            .grounds
            .as_deref()
            .map(|g| {
                fedq_wire::rights::RepairGrounds::parse(g).ok_or_else(|| {
                    ClientError::Usage(
                        "`--grounds` is `performance`, `volunteer-service` or `donation`".into(),
                    )
                })
            })
            .transpose()?;
        let filing = match (a.record, a.reason, a.evidence) {
            (Some(record), Some(reason), Some(evidence)) => Some(fedq_wire::rights::Filing {
                record,
                reason,
                evidence,
                grounds,
            }),
            _ => None,
        };
        Ok(QueryArgs {
            coordinator: a.coordinator,
            gateway: a.gateway,
            token: a.token,
            cert: a.cert,
            key: a.key,
            ca: a.ca,
            crl: a.crl,
            subject: a.subject,
            purpose: a.purpose,
            basis: a.basis,
            consent: a.consent,
            case_reference: a.case_reference,
            view: a.view,
            dataset: a.dataset,
            rights: a.rights,
            filing,
            json: a.json,
            lang,
        })
    }
}

/// `fedq query`.
pub async fn query(args: QueryCli) -> Result<(), ClientError> {
    let args = QueryArgs::try_from(args)?;
    let (status, answer) = client::send(&args).await?;
    if status != 200 {
        return Err(ClientError::Refused {
            status,
            message: problem_detail(&answer).to_owned(),
        });
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    } else if args.rights.is_some() {
        print!("{}", fedq_coordinator::rights::render(&answer, args.lang));
    } else {
        print!("{}", client::render(&answer));
    }
    Ok(())
}

/// How the command-line clients reach the coordinator's API.
#[derive(Debug, clap::Args)]
pub struct ApiCli {
    /// The coordinator, e.g. `https://127.0.0.1:8443`.
    #[arg(long)]
    pub coordinator: String,
    /// Your certificate: a requester's to query; an officer's (or the coordinator's own) to
    /// publish a policy bundle.
    #[arg(long)]
    pub cert: PathBuf,
    /// Its private key.
    #[arg(long)]
    pub key: PathBuf,
    /// The federation CA certificate.
    #[arg(long)]
    pub ca: PathBuf,
    /// The federation's CRL, which nodes' session accepts are checked against (default:
    /// `crl.pem` beside `--ca`).
    #[arg(long)]
    pub crl: Option<PathBuf>,
}

/// Arguments of `fedq policy publish`.
#[derive(Debug, clap::Args)]
pub struct PublishCli {
    /// The signed bundle file.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub api: ApiCli,
}

impl From<ApiCli> for ApiArgs {
    fn from(a: ApiCli) -> Self {
        ApiArgs {
            coordinator: a.coordinator,
            cert: a.cert,
            key: a.key,
            ca: a.ca,
            crl: a.crl,
        }
    }
}

/// `fedq policy publish`: prints where the bundle took effect; fails unless the
/// coordinator and every node run it.
pub async fn publish(args: PublishCli) -> Result<(), ClientError> {
    let args = PublishArgs {
        bundle: args.bundle,
        api: args.api.into(),
    };
    let (status, body) = client::publish(&args).await?;
    if status != 200 {
        return Err(refused(status, &body));
    }
    let (text, failed) = client::render_publish(&body);
    print!("{text}");
    if failed > 0 {
        return Err(ClientError::Usage(format!(
            "{failed} node(s) did not apply the bundle and keep their previous version; fix the cause shown and publish the same bundle again"
        )));
    }
    Ok(())
}

/// `fedq policy status`.
pub async fn status(args: ApiCli) -> Result<(), ClientError> {
    let (status, body) = client::policy_status(&args.into()).await?;
    if status != 200 {
        return Err(refused(status, &body));
    }
    print!("{}", client::render_status(&body));
    Ok(())
}
