//! The person's rights answer as a person reads it (issue 19): every department's
//! register of queries about them — who asked, when, for what purpose, on what legal
//! basis and case, what was asked and whether anything was released —, the entries a
//! covert purpose still hides (counted, with the date they show and why), and their
//! objections and repair applications with their status. In Chinese (the default) or
//! English. A plain function over the answer's JSON, as `fedq query` prints it.

use std::collections::BTreeMap;

use fedq_wire::rights::{ObjectionStatus, RepairStatus, RightsAnswer};

/// The language a person reads the answer in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// 中文.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// `zh` or `en`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

fn objection_status(lang: Lang, s: ObjectionStatus) -> &'static str {
    match (lang, s) {
        (Lang::Zh, ObjectionStatus::Open) => "处理中（该记录标注为异议，不用于任何核查结论）",
        (Lang::Zh, ObjectionStatus::Upheld) => "已处理：维持原记录",
        (Lang::Zh, ObjectionStatus::Corrected) => "已处理：记录已更正",
        (Lang::Zh, ObjectionStatus::Removed) => "已处理：记录已删除",
        (Lang::En, ObjectionStatus::Open) => {
            "open (the record is flagged as disputed and counts in no check)"
        }
        (Lang::En, ObjectionStatus::Upheld) => "resolved: the record stands",
        (Lang::En, ObjectionStatus::Corrected) => "resolved: the record was corrected",
        (Lang::En, ObjectionStatus::Removed) => "resolved: the record was removed",
    }
}

fn repair_status(lang: Lang, s: RepairStatus) -> &'static str {
    match (lang, s) {
        (Lang::Zh, RepairStatus::Applied) => "已受理，待信用修复审核",
        (Lang::Zh, RepairStatus::Repaired) => "已修复：该记录不再公开或提供",
        (Lang::Zh, RepairStatus::Rejected) => "未予修复",
        (Lang::Zh, RepairStatus::Reversed) => "修复已撤销（经两名审核人员批准）",
        (Lang::En, RepairStatus::Applied) => "applied, waiting for the credit-repair review",
        (Lang::En, RepairStatus::Repaired) => "repaired: the record is no longer disclosed",
        (Lang::En, RepairStatus::Rejected) => "rejected",
        (Lang::En, RepairStatus::Reversed) => "repair reversed (approved by two reviewers)",
    }
}

/// The rights part of a query's answer (`rights`, by node), if it has one.
pub fn rights_of(answer: &serde_json::Value) -> Option<BTreeMap<String, RightsAnswer>> {
    serde_json::from_value(answer.get("rights")?.clone()).ok()
}

/// Renders a rights answer for the person, in `lang`. Every node asked is named, with
/// what it answered or why it did not.
pub fn render(answer: &serde_json::Value, lang: Lang) -> String {
    let mut out = String::new();
    let by_node = rights_of(answer).unwrap_or_default();
    let query = answer
        .get("query_id")
        .and_then(|v| v.as_str())
        .unwrap_or("-");
    out.push_str(&format!(
        "{}  ({} {query})\n",
        lang.pick(
            "本人信用信息查询记录、异议与信用修复",
            "Who looked at my data, my objections and my credit repairs"
        ),
        lang.pick("查询编号", "query"),
    ));
    if answer.get("complete").and_then(|v| v.as_bool()) == Some(false) {
        out.push_str(lang.pick(
            "注意：部分部门未能答复（见下），其记录不在本次结果中。\n",
            "NOTE: some departments did not answer (see below); their records are not in this answer.\n",
        ));
    }
    let nodes = answer
        .get("nodes")
        .and_then(|n| n.as_array())
        .cloned()
        .unwrap_or_default();
    for node in nodes {
        let name = node.get("node").and_then(|v| v.as_str()).unwrap_or("-");
        out.push_str(&format!("\n[{name}]\n"));
        let Some(a) = by_node.get(name) else {
            let status = node.get("status").and_then(|v| v.as_str()).unwrap_or("-");
            let reason = node.get("reason").and_then(|v| v.as_str()).unwrap_or("");
            out.push_str(&format!(
                "  {} ({status}) {reason}\n",
                lang.pick("未答复", "no answer")
            ));
            continue;
        };
        if let Some(id) = &a.filed {
            out.push_str(&format!(
                "  {} {id}\n",
                lang.pick("已提交，受理编号", "filed, reference")
            ));
        }
        if a.entries.is_empty() && a.hidden.is_empty() && a.filed.is_none() {
            out.push_str(&format!(
                "  {}\n",
                lang.pick(
                    "没有关于您的查询记录。",
                    "No query about you is registered here."
                )
            ));
        }
        for e in &a.entries {
            let when = e.at.get(..16).unwrap_or(&e.at).replace('T', " ");
            out.push_str(&format!("  {when} UTC  {}\n", e.requester));
            out.push_str(&format!(
                "      {} {}",
                lang.pick("用途", "purpose"),
                e.purpose
            ));
            if let Some(b) = &e.legal_basis {
                out.push_str(&format!("  {} {b}", lang.pick("依据", "legal basis")));
            }
            if let Some(c) = &e.case_reference {
                out.push_str(&format!("  {} {c}", lang.pick("案号", "case")));
            }
            out.push('\n');
            out.push_str(&format!(
                "      {} {}  {} {}\n",
                lang.pick("查询内容", "asked"),
                e.target,
                lang.pick("结果", "outcome"),
                match (e.released, lang) {
                    (true, Lang::Zh) => "已答复",
                    (true, Lang::En) => "answered",
                    (false, Lang::Zh) => "已拒绝，未提供任何信息",
                    (false, Lang::En) => "refused, nothing released",
                }
            ));
            out.push_str(&format!(
                "      {} {}\n",
                lang.pick(
                    "查询编号（投诉时引用）",
                    "query id (name it in a complaint)"
                ),
                e.query_id
            ));
        }
        if a.older_entries > 0 {
            out.push_str(&format!(
                "  {} {}\n",
                a.older_entries,
                lang.pick("条更早的记录未列出", "older entries not listed")
            ));
        }
        for h in &a.hidden {
            match lang {
                Lang::Zh => out.push_str(&format!(
                    "  另有 {} 条「{}」查询暂不显示，{} 起可见：{}\n",
                    h.count, h.purpose, h.until, h.reason
                )),
                Lang::En => out.push_str(&format!(
                    "  {} more {} queries hidden until {}: {}\n",
                    h.count, h.purpose, h.until, h.reason
                )),
            }
        }
        for o in &a.objections {
            out.push_str(&format!(
                "  {} {}  {} {}  {}\n",
                lang.pick("异议", "objection"),
                o.id,
                o.dataset,
                o.record,
                objection_status(lang, o.status)
            ));
            if let Some(r) = &o.resolution {
                out.push_str(&format!(
                    "      {} {}  {}  {}\n",
                    lang.pick("处理人", "by"),
                    r.officer,
                    r.at,
                    r.note
                ));
            }
        }
        for r in &a.repairs {
            out.push_str(&format!(
                "  {} {}  {} {}  {}\n",
                lang.pick("信用修复", "credit repair"),
                r.id,
                r.dataset,
                r.record,
                repair_status(lang, r.status)
            ));
            for d in &r.decisions {
                out.push_str(&format!(
                    "      {} {}  {}  {}  {}\n",
                    d.decision,
                    lang.pick("审核人", "by"),
                    d.officer,
                    d.at,
                    d.note
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_wire::rights::{HiddenEntries, RegisterEntry};

    #[test]
    fn a_register_reads_in_both_languages_with_hidden_entries_counted() {
        let answer = RightsAnswer {
            entries: vec![RegisterEntry {
                at: "2026-11-20T06:03:00Z".into(),
                query_id: "9f2c4e1a".into(),
                requester: "market-regulation.licensing".into(),
                purpose: "administrative-licensing".into(),
                legal_basis: Some("行政许可法".into()),
                case_reference: Some("长市监许申〔2026〕001234号".into()),
                target: "view:blacklist-check".into(),
                kind: "answer".into(),
                released: true,
                index: 3,
                entry_hash: "ab".into(),
                proof: Vec::new(),
            }],
            hidden: vec![HiddenEntries {
                purpose: "judgment-enforcement".into(),
                count: 3,
                until: "2027-05-01".into(),
                reason: "执行查询".into(),
            }],
            ..RightsAnswer::default()
        };
        let json = serde_json::json!({
            "query_id": "q-1",
            "complete": false,
            "nodes": [{"node": "court", "status": "ok"}, {"node": "tax", "status": "unavailable", "reason": "down"}],
            "rights": {"court": answer},
        });
        let zh = render(&json, Lang::Zh);
        assert!(
            zh.contains("另有 3 条「judgment-enforcement」查询暂不显示，2027-05-01 起可见"),
            "{zh}"
        );
        assert!(zh.contains("market-regulation.licensing"), "{zh}");
        assert!(zh.contains("案号 长市监许申〔2026〕001234号"), "{zh}");
        assert!(zh.contains("[tax]\n  未答复 (unavailable) down"), "{zh}");
        let en = render(&json, Lang::En);
        assert!(
            en.contains("3 more judgment-enforcement queries hidden until 2027-05-01"),
            "{en}"
        );
        assert!(en.contains("outcome answered"), "{en}");
        assert!(
            en.contains("query id (name it in a complaint) 9f2c4e1a"),
            "{en}"
        );
        assert!(en.contains("NOTE: some departments did not answer"), "{en}");
    }
}
