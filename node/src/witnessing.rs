//! A node's part in witnessing (issue 18 §3): it offers its own log's newest checkpoint,
//! with a consistency proof, to whoever relays it to a witness; and it witnesses the
//! other processes' logs, cosigning a checkpoint only once it has checked that it extends
//! the one it cosigned before.
//!
//! The coordinator relays both ways but is not believed: the log's name and key come from
//! the certificate sent with the checkpoint, checked here against the federation's CA and
//! CRL; the consistency proof is checked against what this node itself cosigned, kept in
//! its own witness state file. A checkpoint that does not extend it (the log was rewritten,
//! cut or forked) is refused 422 and raises an alarm: an error line naming the log and the
//! sizes, and [`WITNESS_ALARMS`]. Traffic is per checkpoint, never per entry, and carries
//! no entry.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use fedq_audit::checkpoint::{log_name, NoteSigner, NoteVerifier};
use fedq_audit::witness::{AddCheckpoint, Refusal, Witness};
use fedq_certs::FederationTrust;
use fedq_wire::message::{
    FailureCode, LogCheckpoint, NodeResponse, WitnessRequest, MAX_ADD_CHECKPOINT_LEN,
    MAX_CERTIFICATE_LEN, MAX_CHAIN_CERTIFICATES,
};
use fedq_wire::proof::UnixTime;

/// Counter: checkpoints of another log this node refused as not extending the one it
/// cosigned (`log`: the log's origin) — each an alarm for the operators.
pub const WITNESS_ALARMS: &str = "fedq_audit_witness_alarms_total";
/// Counter: checkpoints of other logs this node cosigned (`log`: the log's origin).
pub const WITNESS_COSIGNED: &str = "fedq_audit_witness_cosigned_total";

/// Describes the witnessing metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        WITNESS_ALARMS,
        metrics::Unit::Count,
        "Checkpoints of another log refused as not extending the one this witness cosigned (the log was rewritten, cut or forked), by log"
    );
    metrics::describe_counter!(
        WITNESS_COSIGNED,
        metrics::Unit::Count,
        "Checkpoints of other logs this witness checked and cosigned, by log"
    );
}

/// This node as a log offering its checkpoints and as a witness of the others.
pub struct NodeWitness {
    witness: Arc<Witness>,
    /// This node's own log's origin, which it never witnesses.
    own_log: String,
    /// This node's audit log.
    audit: PathBuf,
    /// The certificate the log's checkpoints are signed with (DER), sent with each offer.
    chain: RwLock<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for NodeWitness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeWitness")
            .field("own_log", &self.own_log)
            .finish_non_exhaustive()
    }
}

impl NodeWitness {
    /// A node's witness: its state file, the key it cosigns with (its certificate key,
    /// under its witness name), its own log's origin, and the certificate its log signs
    /// with.
    pub fn new(witness: Witness, own_log: String, audit: PathBuf, certificate: Vec<u8>) -> Self {
        Self {
            witness: Arc::new(witness),
            own_log,
            audit,
            chain: RwLock::new(vec![certificate]),
        }
    }

    /// The certificate (DER) this node's checkpoints and cosignatures are signed with.
    pub fn certificate(&self) -> Vec<u8> {
        self.chain().into_iter().next().unwrap_or_default()
    }

    fn chain(&self) -> Vec<Vec<u8>> {
        match self.chain.read() {
            Ok(chain) => chain.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Follows a renewed certificate: offers it with this node's checkpoints from now on,
    /// and cosigns with its key (`signer`, under this witness's name).
    pub fn follow(&self, certificate: Vec<u8>, signer: NoteSigner) -> Result<(), Refusal> {
        self.witness.replace_signer(signer)?;
        match self.chain.write() {
            Ok(mut chain) => *chain = vec![certificate],
            Err(poisoned) => *poisoned.into_inner() = vec![certificate],
        }
        Ok(())
    }

    /// Answers [`fedq_wire::message::NodeRequest::AuditCheckpoint`]: the newest kept
    /// checkpoint of this node's log and the consistency proof to it from `from`.
    pub async fn offer(&self, node: &str, from: u64) -> NodeResponse {
        let audit = self.audit.clone();
        let offered = tokio::task::spawn_blocking(move || fedq_audit::offer(&audit, from)).await;
        match offered {
            Ok(Ok(offer)) => NodeResponse::AuditCheckpoint(match offer {
                Some(offer) => LogCheckpoint {
                    checkpoint: Some(offer.note),
                    size: offer.size,
                    proof: fedq_audit::checkpoint::encode_proof(&offer.proof),
                    chain: self.chain(),
                },
                None => LogCheckpoint {
                    checkpoint: None,
                    size: 0,
                    proof: Vec::new(),
                    chain: self.chain(),
                },
            }),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the audit log's checkpoint could not be read for a witness");
                unavailable(node)
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the audit log's checkpoint failed");
                unavailable(node)
            }
        }
    }

    /// Answers [`fedq_wire::message::NodeRequest::Witness`] for `log` (from [`log_of`]):
    /// checks the checkpoint against what this witness cosigned, and cosigns it once it is
    /// durably this witness's latest for that log.
    pub async fn witness(
        &self,
        log: Result<NoteVerifier, Refusal>,
        request: WitnessRequest,
    ) -> NodeResponse {
        let log = match log {
            Ok(log) => log,
            Err(refusal) => return refused(&refusal),
        };
        if log.name() == self.own_log {
            return NodeResponse::WitnessRefused {
                status: 404,
                latest: None,
                message: format!("`{}` does not witness its own log", self.own_log),
            };
        }
        let parsed = if request.add_checkpoint.len() > MAX_ADD_CHECKPOINT_LEN {
            Err(Refusal::BadRequest("the add-checkpoint body is too long"))
        } else {
            AddCheckpoint::parse(&request.add_checkpoint)
        };
        let add = match parsed {
            Ok(add) => add,
            Err(refusal) => return refused(&refusal),
        };
        let witness = Arc::clone(&self.witness);
        let origin = log.name().to_owned();
        let outcome =
            tokio::task::spawn_blocking(move || witness.add_checkpoint_for(&add, &log)).await;
        match outcome {
            Ok(Ok(signatures)) => {
                metrics::counter!(WITNESS_COSIGNED, "log" => origin).increment(1);
                NodeResponse::Cosigned {
                    signatures: signatures.iter().map(|s| s.line()).collect(),
                }
            }
            Ok(Err(refusal)) => {
                if let Refusal::Inconsistent { latest, size, .. } = &refusal {
                    metrics::counter!(WITNESS_ALARMS, "log" => origin.clone()).increment(1);
                    tracing::error!(
                        log = %origin,
                        cosigned = latest,
                        offered = size,
                        "WITNESS ALARM: the log offered a checkpoint that does not extend the one this witness cosigned; it was rewritten, cut or forked (see the operator guide)"
                    );
                }
                refused(&refusal)
            }
            Err(e) => refused(&Refusal::Store(e.to_string())),
        }
    }
}

/// The log a witness request is for: its certificate (the chain's first) checked against
/// the federation's CA and CRL now, its name and key taken from it. Refused 403 if it is
/// not a node's or the coordinator's certificate of this federation, 400 if the chain is
/// malformed.
pub fn log_of(trust: &FederationTrust, request: &WitnessRequest) -> Result<NoteVerifier, Refusal> {
    let [cert, ..] = request.log_chain.as_slice() else {
        return Err(Refusal::BadRequest("no log certificate"));
    };
    if request.log_chain.len() > MAX_CHAIN_CERTIFICATES
        || request
            .log_chain
            .iter()
            .any(|c| c.len() > MAX_CERTIFICATE_LEN)
    {
        return Err(Refusal::BadRequest(
            "the log's certificate chain is too long",
        ));
    }
    let (identity, key) = trust
        .verify_process_certificate(cert, UnixTime::now(), true)
        .map_err(|e| Refusal::UntrustedLog(e.to_string()))?;
    let name = log_name(&identity.federation, identity.role.as_str(), &identity.name);
    NoteVerifier::new(&name, &key).map_err(|_| Refusal::Forbidden(name))
}

/// The wire form of a refusal: the protocol's status, the size this witness holds with a
/// 409 or 422, and one line naming the log and sizes.
fn refused(refusal: &Refusal) -> NodeResponse {
    let latest = match refusal {
        Refusal::Conflict { latest, .. } | Refusal::Inconsistent { latest, .. } => Some(*latest),
        _ => None,
    };
    NodeResponse::WitnessRefused {
        status: refusal.status(),
        latest,
        message: refusal.to_string(),
    }
}

fn unavailable(node: &str) -> NodeResponse {
    NodeResponse::Failed {
        code: FailureCode::Unavailable,
        message: format!("node `{node}`: its audit log is unavailable; retry later"),
    }
}

/// Offline review (`fedq audit verify | proofs`, the officers' console): what each
/// witnessing node (`witnesses`, node configs) holds of the log `config` names:
/// its name and what its state file holds, each note's cosignature checked with the key of
/// the certificate its config names, and the log's signature with the log's.
pub fn witness_states(
    config: &std::path::Path,
    witnesses: &[std::path::PathBuf],
) -> Result<Vec<(String, fedq_audit::witness::Cosigned)>, fedq_audit::review::ReviewError> {
    if witnesses.is_empty() {
        return Ok(Vec::new());
    }
    witnesses
        .iter()
        .map(|witness| {
            let node = crate::config::NodeConfig::load(witness).map_err(|e| {
                fedq_audit::review::ReviewError::Config {
                    path: witness.display().to_string(),
                    reason: fedq_audit::Cause::of(e),
                }
            })?;
            // Both certificates checked against the CA the witness's config names: a
            // log's config cannot bring a key of its own making.
            let trust = fedq_certs::FederationTrust::load(&node.tls.trust).map_err(|e| {
                fedq_audit::review::ReviewError::Config {
                    path: witness.display().to_string(),
                    reason: fedq_audit::Cause::of(e),
                }
            })?;
            let (log, _) = fedq_audit::review::trusted_certificate_verifiers(
                &fedq_audit::review::config_certificate(config)?,
                &trust,
            )?;
            let (_, cosigner) =
                fedq_audit::review::trusted_certificate_verifiers(&node.tls.cert, &trust)?;
            let cosigned = fedq_audit::witness::cosigned_in(&node.witness_state, &log, &cosigner)?;
            Ok((node.name.clone(), cosigned))
        })
        .collect()
}

/// Every checkpoint cosigned, one line per witness, and the witnesses that hold none.
pub type WitnessedLog = (Vec<fedq_audit::Witnessed>, Vec<String>, Vec<String>);

/// Every checkpoint of the log `config` names that the nodes `witnesses` name cosigned
/// ([`witness_states`]), per witness how many it holds and up to which size, and the
/// witnesses that hold none it can vouch for.
pub fn witnessed_checkpoints(
    config: &std::path::Path,
    witnesses: &[std::path::PathBuf],
) -> Result<WitnessedLog, fedq_audit::review::ReviewError> {
    let mut all = Vec::new();
    let mut held = Vec::new();
    let mut empty = Vec::new();
    for (name, cosigned) in witness_states(config, witnesses)? {
        if cosigned.checkpoints.is_empty() {
            empty.push(name.clone());
        }
        let earlier = match cosigned.under_earlier_keys {
            0 => String::new(),
            n => format!(", {n} more under an earlier key of its, not counted"),
        };
        held.push(match cosigned.checkpoints.last() {
            Some(last) => format!(
                "{name}: {} up to size {}{earlier}",
                cosigned.checkpoints.len(),
                last.checkpoint.size
            ),
            None => format!("{name}: none{earlier}"),
        });
        all.extend(cosigned.checkpoints);
    }
    Ok((all, held, empty))
}
