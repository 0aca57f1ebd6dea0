//! A view's terms: what the requester side needs of a view to combine the nodes' parts
//! without the policy, and their digest, which every part carries. Computed from a
//! [`View`] alone, so the engine (which computes them once per view) and the view
//! evaluation (which checks them) both build on this module and neither on the other.

use serde::{Deserialize, Serialize};

use crate::policy::{View, ViewKind};

/// What the requester side needs of a view to combine its parts without the policy: its
/// name and kind, every source (in the policy's order, with its label) and the view-wide
/// numbers. Each node's part carries the [`ViewTerms::digest`] of the terms it decided
/// under, so terms that reach the requester by another way (the coordinator's relay) are
/// used only when every part vouches for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ViewTerms {
    /// The view's name.
    pub name: String,
    /// What it computes.
    pub kind: ViewKind,
    /// Every source of the view, in order.
    pub sources: Vec<SourceTerm>,
    /// Green channel: years without a negative record.
    pub clean_years: u32,
    /// Integrity score: starting points.
    pub base_points: i64,
    /// Integrity score: grades, highest threshold first.
    pub grades: Vec<GradeTerm>,
    /// The source fields the view releases beside its result (`dataset.field:transform`).
    pub release: Vec<String>,
}

/// One source of a view, as its terms name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceTerm {
    /// `department.dataset`.
    pub dataset: String,
    /// Its label in reports.
    pub label: String,
    /// What a node computes its finding with (the fields it needs and their transforms,
    /// the listing dates, the active condition, points, caps, record age), as text: only
    /// for the digest, so that parts decided under another rule do not match.
    pub rule: String,
}

/// A grade threshold, as a view's terms name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GradeTerm {
    /// Lowest points for the grade.
    pub min_points: i64,
    /// The grade.
    pub grade: String,
}

impl ViewTerms {
    /// SHA-256 over an unambiguous encoding of the terms (every text and number
    /// length-prefixed, in order): equal digests, equal terms.
    pub fn digest(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut text = |t: &str| {
            ctx.update(&(t.len() as u64).to_be_bytes());
            ctx.update(t.as_bytes());
        };
        text("fedq view terms v1");
        text(&self.name);
        text(match self.kind {
            ViewKind::Blacklist => "blacklist",
            ViewKind::GreenChannel => "green-channel",
            ViewKind::CreditReport => "credit-report",
            ViewKind::IntegrityScore => "integrity-score",
        });
        text(&self.sources.len().to_string());
        for s in &self.sources {
            text(&s.dataset);
            text(&s.label);
            text(&s.rule);
        }
        text(&self.release.len().to_string());
        for r in &self.release {
            text(r);
        }
        text(&self.clean_years.to_string());
        text(&self.base_points.to_string());
        text(&self.grades.len().to_string());
        for g in &self.grades {
            text(&g.min_points.to_string());
            text(&g.grade);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// The terms of `view`.
    pub fn of(view: &View) -> Self {
        Self {
            name: view.name.clone(),
            kind: view.kind,
            sources: view
                .sources
                .iter()
                .map(|s| SourceTerm {
                    dataset: s.dataset_name.clone(),
                    label: s.label.clone(),
                    rule: format!(
                        "needs={:?};since={:?};until={:?};active_if={:?};points={};max={:?};age={:?}",
                        s.needs,
                        s.since,
                        s.until,
                        s.active_if,
                        s.points_per_record,
                        s.max_points,
                        s.max_record_age
                    ),
                })
                .collect(),
            clean_years: view.clean_years,
            base_points: view.base_points,
            grades: view
                .grades
                .iter()
                .map(|g| GradeTerm {
                    min_points: g.min_points,
                    grade: g.grade.clone(),
                })
                .collect(),
            release: view
                .release
                .iter()
                .map(|r| format!("{}.{}:{:?}", r.dataset, r.field, r.transform))
                .collect(),
        }
    }
}
