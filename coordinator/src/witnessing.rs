//! The witness round (issue 18 §3): every `witness_interval`, the coordinator takes each
//! log's newest checkpoint — every node's, and its own — to every other node as a witness,
//! with the consistency proof from the size that witness last cosigned.
//!
//! The coordinator only relays. A witness checks the log's certificate, signature and
//! proof itself (the node's `witnessing` module), so a coordinator that lied would get refusals,
//! not cosignatures. What it keeps is a hint: the size each witness last cosigned of each
//! log, in memory. After a restart it starts from nothing; a witness answers 409 with the
//! size it holds, and the round fetches a proof from there and tries once more.
//!
//! A witness's 422 — the log offered a checkpoint that does not extend the one it cosigned:
//! rewritten, cut or forked — is an alarm: an error line naming the log, the witness and
//! the sizes, and [`WITNESS_ALARMS`]. Nothing of any entry travels; one request per
//! checkpoint and witness, none per entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use fedq_audit::witness::AddCheckpoint;
use fedq_audit::AuditLog;
use fedq_wire::message::{LogCheckpoint, WitnessRequest};
use fedq_wire::transport::TlsFiles;
use fedq_wire::{NodeRequest, NodeResponse};

use crate::health::NodeHealth;

/// Counter: checkpoints a witness cosigned (`log`, `witness`).
pub const WITNESS_COSIGNED: &str = "fedq_coordinator_witness_cosigned_total";
/// Counter: checkpoints a witness refused as not extending the one it cosigned (`log`,
/// `witness`): each an alarm for the operators of both.
pub const WITNESS_ALARMS: &str = "fedq_coordinator_witness_alarms_total";
/// Counter: witness requests that got no usable answer (a node down, a log unreadable).
pub const WITNESS_FAILURES: &str = "fedq_coordinator_witness_failures_total";

/// Describes the witness round's metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        WITNESS_COSIGNED,
        metrics::Unit::Count,
        "Checkpoints a witness checked and cosigned, by log and witness"
    );
    metrics::describe_counter!(
        WITNESS_ALARMS,
        metrics::Unit::Count,
        "Checkpoints a witness refused as not extending the one it cosigned (the log was rewritten, cut or forked), by log and witness"
    );
    metrics::describe_counter!(
        WITNESS_FAILURES,
        metrics::Unit::Count,
        "Witness requests that got no usable answer (a node down, a log unreadable)"
    );
    metrics::counter!(WITNESS_FAILURES).increment(0);
}

/// Where a log's checkpoints come from.
enum Log {
    /// A node's: asked over its channel.
    Node(Arc<NodeHealth>),
    /// The coordinator's own: read from its file, offered with its certificate.
    Own(Box<OwnLog>),
}

/// The coordinator's own log, as its witnesses are offered it.
struct OwnLog {
    name: String,
    log: AuditLog,
    certificate: Vec<u8>,
    tls: TlsFiles,
}

impl Log {
    /// The process whose log this is (it never witnesses itself).
    fn process(&self) -> &str {
        match self {
            Self::Node(node) => node.node(),
            Self::Own(own) => &own.name,
        }
    }

    /// The log's newest checkpoint and the proof to it from `from`.
    async fn offer(&self, from: u64, deadline: Duration) -> Result<LogCheckpoint, String> {
        match self {
            Self::Node(node) => {
                match node
                    .request(&NodeRequest::AuditCheckpoint { from }, deadline)
                    .await
                {
                    Ok(NodeResponse::AuditCheckpoint(offer)) => Ok(offer),
                    Ok(NodeResponse::Failed { message, .. }) => Err(message),
                    Ok(_) => Err("an unexpected answer to a checkpoint request".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Self::Own(own) => {
                let (path, certificate) = (own.log.path().to_owned(), &own.certificate);
                let offered = tokio::task::spawn_blocking(move || fedq_audit::offer(&path, from))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                Ok(match offered {
                    Some(o) => LogCheckpoint {
                        checkpoint: Some(o.note),
                        size: o.size,
                        proof: fedq_audit::checkpoint::encode_proof(&o.proof),
                        chain: vec![certificate.clone()],
                    },
                    None => LogCheckpoint {
                        checkpoint: None,
                        size: 0,
                        proof: Vec::new(),
                        chain: vec![certificate.clone()],
                    },
                })
            }
        }
    }
}

impl Log {
    /// The coordinator's own log follows its renewed certificate: from the next group on
    /// its tree heads are signed with the renewed key (the first kept as a checkpoint),
    /// and that certificate goes with its checkpoints.
    fn follow_certificate(&mut self) {
        let Self::Own(own) = self else {
            return;
        };
        let OwnLog {
            log,
            certificate,
            tls,
            ..
        } = own.as_mut();
        let Ok(creds) = fedq_certs::tls::Credentials::load(&tls.cert, &tls.key) else {
            return;
        };
        let (chain, key) = creds.chain_and_key();
        let Some(current) = chain.first().map(|c| c.to_vec()) else {
            return;
        };
        if current == *certificate {
            return;
        }
        let id = creds.identity();
        match fedq_audit::checkpoint::NoteSigner::from_pkcs8(
            &fedq_audit::checkpoint::log_name(&id.federation, id.role.as_str(), &id.name),
            key.secret_der(),
        ) {
            Ok(signer) => {
                log.follow_signer(signer);
                *certificate = current;
                tracing::warn!(
                    "certificate renewed: the coordinator's audit log signs with its key"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "the renewed certificate's key cannot sign checkpoints")
            }
        }
    }
}

/// What one witness said of one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witnessed {
    /// Cosigned at this size.
    Cosigned(u64),
    /// Already cosigned at the log's newest size; nothing sent.
    UpToDate,
    /// Refused as not extending what it cosigned: an alarm.
    Alarm(String),
    /// Refused otherwise, or not answered.
    Failed(String),
}

/// The witness round's state: the logs, the witnesses, and what each witness was last
/// seen to cosign of each log.
pub struct WitnessRound {
    logs: Vec<Log>,
    witnesses: BTreeMap<String, Arc<NodeHealth>>,
    deadline: Duration,
    /// (log process, witness) → the size it last cosigned, as far as this round knows.
    cosigned: HashMap<(String, String), u64>,
}

impl std::fmt::Debug for WitnessRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessRound")
            .field("witnesses", &self.witnesses.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WitnessRound {
    /// A round over every node's log and the coordinator's own (`name`, its log at
    /// `audit`, signed with the key of `certificate`), witnessed by every node.
    pub fn new(
        nodes: &BTreeMap<String, Arc<NodeHealth>>,
        name: &str,
        log: AuditLog,
        certificate: Vec<u8>,
        tls: TlsFiles,
        deadline: Duration,
    ) -> Self {
        let mut logs: Vec<Log> = nodes.values().cloned().map(Log::Node).collect();
        logs.push(Log::Own(Box::new(OwnLog {
            name: name.to_owned(),
            log,
            certificate,
            tls,
        })));
        Self {
            logs,
            witnesses: nodes.clone(),
            deadline,
            cosigned: HashMap::new(),
        }
    }

    /// Runs a round every `interval` until the task is aborted.
    pub async fn run(mut self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.round().await;
        }
    }

    /// One round: each log's newest checkpoint to each witness that has not cosigned it.
    /// Returns, per (log process, witness), what happened.
    pub async fn round(&mut self) -> BTreeMap<(String, String), Witnessed> {
        for log in &mut self.logs {
            log.follow_certificate();
        }
        let mut report = BTreeMap::new();
        for log in &self.logs {
            let newest = match log.offer(0, self.deadline).await {
                Ok(offer) => offer,
                Err(why) => {
                    metrics::counter!(WITNESS_FAILURES).increment(1);
                    tracing::warn!(log = %log.process(), error = %why, "the log's checkpoint could not be had for its witnesses");
                    continue;
                }
            };
            if newest.checkpoint.is_none() {
                continue;
            }
            for (witness, channel) in &self.witnesses {
                if witness == log.process() {
                    continue;
                }
                let key = (log.process().to_owned(), witness.clone());
                let held = self.cosigned.get(&key).copied().unwrap_or(0);
                let outcome = if held == newest.size {
                    Witnessed::UpToDate
                } else {
                    witness_one(log, channel, held, &newest, self.deadline).await
                };
                match &outcome {
                    Witnessed::Cosigned(size) => {
                        self.cosigned.insert(key.clone(), *size);
                        metrics::counter!(WITNESS_COSIGNED, "log" => key.0.clone(), "witness" => witness.clone()).increment(1);
                    }
                    Witnessed::Alarm(why) => {
                        metrics::counter!(WITNESS_ALARMS, "log" => key.0.clone(), "witness" => witness.clone()).increment(1);
                        tracing::error!(log = %key.0, witness = %witness, refusal = %why, "WITNESS ALARM: a witness refused the log's checkpoint as not extending the one it cosigned; the log was rewritten, cut or forked (see the operator guide)");
                    }
                    Witnessed::Failed(why) => {
                        metrics::counter!(WITNESS_FAILURES).increment(1);
                        tracing::warn!(log = %key.0, witness = %witness, error = %why, "a witness did not cosign");
                    }
                    Witnessed::UpToDate => {}
                }
                report.insert(key, outcome);
            }
        }
        report
    }
}

/// Offers `newest` (or, when the witness holds `held`, the checkpoint with a proof from
/// there) to one witness; on a 409 fetches a proof from the size it names and tries once
/// more.
async fn witness_one(
    log: &Log,
    witness: &NodeHealth,
    held: u64,
    newest: &LogCheckpoint,
    deadline: Duration,
) -> Witnessed {
    let mut held = held;
    let mut offer = if held == 0 {
        newest.clone()
    } else {
        match log.offer(held, deadline).await {
            Ok(offer) => offer,
            Err(why) => return Witnessed::Failed(why),
        }
    };
    for attempt in 0..2 {
        let Some(request) = witness_request(held, &offer) else {
            return Witnessed::Failed("the log's offer is malformed".into());
        };
        match witness
            .request(&NodeRequest::Witness(request), deadline)
            .await
        {
            Ok(NodeResponse::Cosigned { .. }) => return Witnessed::Cosigned(offer.size),
            Ok(NodeResponse::WitnessRefused {
                status: 409,
                latest: Some(latest),
                ..
            }) if attempt == 0 => {
                held = latest;
                offer = match log.offer(held, deadline).await {
                    Ok(offer) => offer,
                    Err(why) => return Witnessed::Failed(why),
                };
            }
            Ok(NodeResponse::WitnessRefused {
                status: 422,
                message,
                ..
            }) => return Witnessed::Alarm(message),
            Ok(NodeResponse::WitnessRefused {
                status, message, ..
            }) => return Witnessed::Failed(format!("{status}: {message}")),
            Ok(NodeResponse::Failed { message, .. }) => return Witnessed::Failed(message),
            Ok(_) => return Witnessed::Failed("an unexpected answer to a witness request".into()),
            Err(e) => return Witnessed::Failed(e.to_string()),
        }
    }
    Witnessed::Failed("the witness's size changed twice during the round".into())
}

/// The `add-checkpoint` request for `offer`, from the size `old` the witness holds.
fn witness_request(old: u64, offer: &LogCheckpoint) -> Option<WitnessRequest> {
    let checkpoint = offer.checkpoint.clone()?;
    let proof = fedq_audit::checkpoint::decode_proof(&offer.proof)?;
    Some(WitnessRequest {
        add_checkpoint: AddCheckpoint {
            old,
            proof,
            checkpoint,
        }
        .to_text(),
        log_chain: offer.chain.clone(),
    })
}
