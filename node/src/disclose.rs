//! A department's part of a public disclosure (`fedq disclose part`; 长政办发〔2017〕62号
//! §十五, and §三 for the red list), made beside the serving node: every dataset its
//! catalogue marks for the list, read whole from the store, each record shown only inside
//! its window and the publication's years, never a repaired one (in the store or by its
//! repair field), never a disputed or removed one (the rights file), corrections applied;
//! each published field in its published form ([`fedq_policy::disclosure`]). The part's
//! claims are signed with the node's own certificate key, so whoever merges the parts
//! checks who vouches for each, and the making is registered in the node's audit log
//! (counts only) before the part is handed out.

use fedq_audit::{AuditRecord, EntryKind, Outcome};
use fedq_policy::catalogue::PublicList;
use fedq_policy::disclosure::{self, PartClaims, PartFile, PART_FORMAT, PART_TYP};

use crate::admin::AdminError;
use crate::config::NodeConfig;
use crate::rights::RightsFile;

/// Why a part was not made. Nothing was registered or written.
#[derive(Debug, thiserror::Error)]
pub enum DiscloseError {
    /// Config, catalogue, store or audit log.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The rights file.
    #[error(transparent)]
    Rights(#[from] crate::rights::RightsError),
    /// The node's certificate and key.
    #[error("the node's certificate and key: {0}")]
    Key(String),
    /// Nothing of this catalogue is published in the list.
    #[error("catalogue `{catalogue}` marks no dataset for the `{list}` list (`[dataset.publication]`); this department has no part of it")]
    NothingMarked {
        /// The catalogue file.
        catalogue: String,
        /// The list.
        list: &'static str,
    },
}

impl From<fedq_audit::AuditError> for DiscloseError {
    fn from(e: fedq_audit::AuditError) -> Self {
        DiscloseError::Admin(AdminError::Audit(e))
    }
}

impl From<crate::store::StoreError> for DiscloseError {
    fn from(e: crate::store::StoreError) -> Self {
        DiscloseError::Admin(AdminError::Store(e))
    }
}

/// Makes, signs and registers this node's part of `list` at `date`.
pub async fn part(
    config: &NodeConfig,
    list: PublicList,
    date: time::Date,
) -> Result<PartFile, DiscloseError> {
    let catalogue =
        fedq_policy::load::load_catalogue(&config.catalogue).map_err(AdminError::from)?;
    let marked = disclosure::marked(&catalogue, list);
    if marked.is_empty() {
        return Err(DiscloseError::NothingMarked {
            catalogue: config.catalogue.display().to_string(),
            list: list.name(),
        });
    }
    for (d, _) in &marked {
        crate::admin::refuse_attached(
            &catalogue,
            config,
            d,
            "a publication reads whole datasets from the node's store; import the dataset to publish it",
        )?;
    }
    let key = fedq_certs::jws::CertificateKey::load(&config.tls.cert, &config.tls.key)
        .map_err(|e| DiscloseError::Key(e.to_string()))?;
    let store = crate::store::Store::open(&config.store).await?;
    let rights = RightsFile::open(&config.rights_state)?;
    let marks = rights.all_marks()?;
    let mut rows = Vec::new();
    let mut declared = Vec::new();
    let mut counts = serde_json::Map::new();
    for (dataset, marking) in &marked {
        let read = store.records_in(&dataset.qualified).await;
        let records: Vec<_> = read?.into_iter().map(|(_, r)| r).collect();
        // Removed records dropped, corrected ones corrected, disputed ones set apart.
        let (clean, _disputed) = crate::rights::overlay(dataset, records, &marks);
        let part = disclosure::published_rows(dataset, marking, &clean, date);
        counts.insert(dataset.qualified.clone(), serde_json::json!(part.len()));
        rows.extend(part);
        declared.push(disclosure::part_dataset(dataset, marking));
    }
    if let crate::store::Store::Postgres(pg) = &store {
        pg.close().await;
    }
    let claims = PartClaims {
        format: PART_FORMAT.into(),
        federation: key.identity().federation.clone(),
        node: config.name.clone(),
        list: list.name().into(),
        date: date.to_string(),
        datasets: declared,
        records: rows.len() as u64,
        rows_sha256: disclosure::rows_digest(&rows),
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| DiscloseError::Key(e.to_string()))?;
    let signature = fedq_certs::jws::sign_es256(&key, PART_TYP, &payload)
        .map_err(|e| DiscloseError::Key(e.to_string()))?;
    // Registered before it is handed out: a part nobody can trace is not made.
    let audit = fedq_audit::AuditLog::open(&config.audit)?;
    audit
        .append(AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: EntryKind::Disclosure,
            query_id: String::new(),
            requester: format!("node:{}", config.name),
            purpose: format!("public-disclosure:{}", list.name()),
            legal_basis: None,
            case_reference: None,
            subject: "-".into(),
            target: claims.date.clone(),
            outcome: Outcome::json(&serde_json::json!({
                "records": claims.records,
                "datasets": counts,
                "rows_sha256": claims.rows_sha256,
            })),
            policy_version: String::new(),
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        })
        .await?;
    Ok(PartFile { signature, rows })
}
