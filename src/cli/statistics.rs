//! `fedq statistics`: an aggregate query (issue 20 §2) — counts by dataset, district,
//! year and category, each department's noisy and suppressed, proven to every department
//! it counts ([`fedq_coordinator::client::ApiConnection::statistics`]).

use fedq_coordinator::client::{self, ClientError};
use fedq_coordinator::statistics::{StatisticsRequest, StatisticsResponse};
use fedq_policy::statistics::{AggregateTarget, Dimension};

use super::coordinator::ApiCli;

/// Arguments of `fedq statistics`.
#[derive(Debug, clap::Args)]
pub struct StatisticsCli {
    /// The aggregate-only purpose (the policy's `[statistics] purposes`).
    #[arg(long)]
    pub purpose: String,
    /// The legal basis cited.
    #[arg(long)]
    pub legal_basis: Option<String>,
    /// A dataset to count, `department.dataset` (repeatable).
    #[arg(long = "dataset", required = true)]
    pub datasets: Vec<String>,
    /// Break the counts down by `district`, `year` and/or `category` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// First year counted (by each record's window start).
    #[arg(long)]
    pub from_year: i32,
    /// Last year counted.
    #[arg(long)]
    pub to_year: i32,
    /// Count the persons in both datasets (two datasets of two departments, no `--by`),
    /// by private set-intersection cardinality between the departments.
    #[arg(long)]
    pub both: bool,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiCli,
}

fn dimension(word: &str) -> Result<Dimension, ClientError> {
    match word.trim() {
        "district" => Ok(Dimension::District),
        "year" => Ok(Dimension::Year),
        "category" => Ok(Dimension::Category),
        _ => Err(ClientError::Usage(
            "--by takes `district`, `year` and `category`, comma-separated".into(),
        )),
    }
}

/// Runs `fedq statistics`.
pub async fn run(args: StatisticsCli) -> Result<(), ClientError> {
    let by = args
        .by
        .iter()
        .filter(|w| !w.trim().is_empty())
        .map(|w| dimension(w))
        .collect::<Result<Vec<_>, _>>()?;
    let request = StatisticsRequest {
        purpose: args.purpose,
        legal_basis: args.legal_basis,
        target: AggregateTarget {
            datasets: args.datasets,
            by,
            from_year: args.from_year,
            to_year: args.to_year,
            intersect: args.both,
        },
        proofs: Default::default(),
    };
    let mut conn = client::connect(&args.api.into()).await?;
    let (status, body) = conn.statistics(&request).await?;
    if status != 200 {
        return Err(client::refused(status, &body));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    }
    let answer: StatisticsResponse = serde_json::from_value(body)
        .map_err(|e| ClientError::Usage(format!("the coordinator's answer: {e}")))?;
    if !args.json {
        print!("{}", render(&answer));
    }
    if !answer.complete {
        return Err(ClientError::Usage(
            "not every department answered; the counts above are partial".into(),
        ));
    }
    Ok(())
}

/// The answer as lines: a cell per line, then each department's report.
fn render(answer: &StatisticsResponse) -> String {
    let mut out = String::new();
    for c in &answer.cells {
        let mut key = vec![c.dataset.clone()];
        key.extend(c.district.clone());
        key.extend(c.year.map(|y| y.to_string()));
        key.extend(c.category.clone());
        let count = c
            .count
            .map_or_else(|| "suppressed".to_owned(), |n| n.to_string());
        out.push_str(&format!("{}  {count}\n", key.join("  ")));
    }
    for n in &answer.nodes {
        out.push_str(&format!(
            "{}: {}{}{}{}\n",
            n.node,
            n.status,
            n.epsilon
                .as_ref()
                .map_or(String::new(), |e| format!(", ε {e} spent")),
            n.left.as_ref().map_or(String::new(), |l| format!(
                ", ε {l} left until {}",
                n.renews_on.as_deref().unwrap_or("-")
            )),
            n.reason
                .as_ref()
                .map_or(String::new(), |r| format!(": {r}"))
        ));
    }
    out
}
