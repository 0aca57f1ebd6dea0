//! The console's words in Chinese and English. The policy's own text (rationales, names)
//! is shown as written; only the console's labels change with the language.

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 简体中文 (the default: the policy's own language).
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From a `lang` query parameter or cookie value; anything else is `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The value of the `lang` parameter for this language.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The other language (the switch in the header).
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The language's own name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    /// The console's word for `key` (the key itself when no text is known, so a missing
    /// text shows rather than hides).
    pub fn t(self, key: &str) -> &str {
        match TEXTS.iter().find(|(k, _, _)| *k == key) {
            Some((_, zh, en)) => match self {
                Lang::Zh => zh,
                Lang::En => en,
            },
            None => key,
        }
    }
}

/// (key, 中文, English).
const TEXTS: &[(&str, &str, &str)] = &[
    ("title", "安全员控制台", "Security officers' console"),
    ("skip", "跳到正文", "Skip to content"),
    ("signed-in-as", "当前安全员", "Signed in as"),
    ("nav.policy", "策略", "Policy"),
    ("nav.changes", "变更", "What changes"),
    ("nav.approve", "审批", "Approve"),
    ("nav.audit", "审计", "Audit"),
    ("nav.citizens", "公民权利", "Citizens"),
    // Policy page.
    ("policy.heading", "策略与目录", "Policy and catalogues"),
    ("policy.file", "文件", "File"),
    ("policy.open", "打开", "Open"),
    ("policy.editor", "编辑区（输入时即检查）", "Editor (checked as you type)"),
    ("policy.ok", "检查通过", "Checks"),
    ("policy.invalid", "有错误", "Has errors"),
    ("policy.errors", "错误", "Errors"),
    ("policy.line", "行", "line"),
    ("policy.column", "列", "column"),
    ("policy.check", "检查", "Check"),
    ("policy.save", "保存", "Save"),
    ("policy.run-tests", "运行内嵌测试", "Run the embedded tests"),
    ("policy.tests", "测试结果", "Test results"),
    ("policy.passed", "通过", "passed"),
    ("policy.failed", "失败", "failed"),
    ("policy.saved", "已保存", "Saved"),
    ("policy.not-saved", "未保存：请先改正错误，文件未被修改", "Not saved: fix the errors first; the file was not changed"),
    ("policy.summary", "概要", "Summary"),
    // Changes page.
    ("changes.heading", "与现行版本相比的变更", "What changes against the version in force"),
    ("changes.in-force", "现行版本", "In force"),
    ("changes.against-setup", "差异以 --in-force 文件为准", "the diff is against the --in-force file"),
    ("changes.working", "工作副本", "Working copy"),
    ("changes.none", "访问权限没有变化：每个请求方得到的与之前完全相同", "No change in access: every requester gets exactly what it got before"),
    ("changes.requester", "请求方", "Requester"),
    ("changes.purpose", "用途", "Purpose"),
    ("changes.dataset", "数据集", "Dataset"),
    ("changes.field", "字段", "Field"),
    ("changes.before", "之前", "Before"),
    ("changes.after", "之后", "After"),
    ("changes.conditions", "条件", "Conditions"),
    ("changes.gain", "获得", "gains"),
    ("changes.loss", "失去", "loses"),
    ("changes.full", "完整差异（与命令行相同）", "The whole diff (as the command line prints it)"),
    ("explain.heading", "解释一个决定", "Explain one decision"),
    ("explain.view", "视图", "View"),
    ("explain.dataset", "或数据集", "or dataset"),
    ("explain.basis", "法律依据", "Legal basis"),
    ("explain.consent", "附有经核验的同意", "Carries a verified consent"),
    ("explain.case", "案件编号", "Case reference"),
    ("explain.at", "日期", "Date"),
    ("explain.submit", "解释", "Explain"),
    ("who-can.heading", "谁能看到", "Who can see"),
    ("who-can.field", "字段（部门.数据集.字段）", "Field (department.dataset.field)"),
    ("who-can.submit", "查询", "Look up"),
    ("who-can.best", "最多能看到的形式", "Most revealing form"),
    ("who-can.nobody", "没有任何请求方能看到此字段", "No requester can ever see this field"),
    // Approve page.
    ("approve.heading", "打包、签署与发布", "Bundle, sign and publish"),
    ("approve.new", "把工作副本打包", "Bundle the working copy"),
    ("approve.version", "包版本", "Bundle version"),
    ("approve.threshold", "下一个包所需的安全员人数", "Officers the next bundle needs"),
    ("approve.create", "打包", "Create bundle"),
    ("approve.pending", "待签署与发布的包", "Bundles waiting for signatures or publication"),
    ("approve.file", "文件", "File"),
    ("approve.signatures", "已核验的签名", "Verified signatures"),
    ("approve.signers", "已签署", "Signed by"),
    ("approve.forged", "签名未通过核验", "signature does not verify"),
    ("approve.unchecked", "未核验：未提供 --ca", "not checked: no --ca"),
    ("approve.review", "审阅并签署", "Review and sign"),
    ("approve.publish", "发布", "Publish"),
    ("approve.none", "没有待处理的包", "No bundles waiting"),
    ("approve.review-heading", "签署前审阅：此包改变了什么", "Review before signing: what this bundle changes"),
    ("approve.sign", "以本人身份签署", "Sign as me"),
    ("approve.cancel", "返回", "Back"),
    ("approve.signed", "已签署", "Signed"),
    ("approve.created", "已打包", "Bundle written"),
    ("approve.publication", "发布结果", "Publication"),
    ("approve.node", "节点", "Node"),
    ("approve.applied", "已生效", "Applied"),
    ("approve.outcome", "结果", "Outcome"),
    ("approve.status", "各进程的策略状态", "Policy status of every process"),
    ("approve.process", "进程", "Process"),
    ("approve.reachable", "可达", "Reachable"),
    ("approve.label", "现行版本", "Version in force"),
    ("approve.hash", "内容哈希", "Content hash"),
    ("approve.last-refusal", "最近一次拒绝", "Last refusal"),
    ("approve.skew", "与协调器一致", "In step with the coordinator"),
    ("approve.no-coordinator", "未配置协调器（--coordinator）：无法发布或查看状态", "No coordinator configured (--coordinator): cannot publish or show status"),
    ("approve.in-step", "所有节点运行协调器的版本", "Every node runs the coordinator's version"),
    ("approve.not-in-step", "有节点未运行协调器的版本", "Some node does not run the coordinator's version"),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    // Audit page.
    ("audit.heading", "审计日志", "Audit log"),
    ("audit.source", "日志", "Log"),
    ("audit.coordinator", "协调器", "Coordinator"),
    ("audit.requester", "请求方", "Requester"),
    ("audit.purpose", "用途", "Purpose"),
    ("audit.case", "案件编号", "Case"),
    ("audit.outcome", "结果", "Outcome"),
    ("audit.since", "起始日期", "From"),
    ("audit.until", "截止日期", "Until"),
    ("audit.filter", "筛选", "Filter"),
    ("audit.entries", "条记录", "entries"),
    ("audit.seq", "序号", "Seq"),
    ("audit.at", "时间", "Time"),
    ("audit.kind", "类型", "Kind"),
    ("audit.target", "目标", "Target"),
    ("audit.policy", "策略版本", "Policy"),
    ("audit.per-office", "每个办公室每天的查询数", "Queries per office per day"),
    ("audit.refusals", "拒绝", "Refusals"),
    ("audit.rate-limited", "超出限速", "Rate-limit hits"),
    ("audit.verification", "核验", "Verification"),
    ("audit.witnesses", "见证节点", "Witnesses"),
    ("audit.no-log", "未配置此日志", "This log is not configured"),
    ("audit.shown", "只显示最新的", "Showing the newest"),
    // Citizens page.
    ("citizens.heading", "异议、信用修复申请与投诉", "Objections, repair applications and complaints"),
    ("citizens.complaints", "投诉", "Complaints"),
    ("citizens.objections", "异议", "Objections"),
    ("citizens.repairs", "信用修复申请", "Repair applications"),
    ("citizens.id", "编号", "Id"),
    ("citizens.status", "状态", "Status"),
    ("citizens.about", "事由", "About"),
    ("citizens.filed", "提出时间", "Filed"),
    ("citizens.departments", "部门", "Departments"),
    ("citizens.node", "部门", "Department"),
    ("citizens.record", "记录", "Record"),
    ("citizens.reason", "理由", "Reason"),
    ("citizens.action", "操作", "Action"),
    ("citizens.note", "处理说明（投诉人可见）", "Note (the filer reads it)"),
    ("citizens.set-status", "更改状态", "Change status"),
    ("citizens.none", "无", "None"),
    ("citizens.no-queue", "未配置协调器配置（--coordinator-config）：看不到投诉队列", "No coordinator config (--coordinator-config): the complaint queue is not readable here"),
    ("citizens.decide", "决定用本人的安全员密钥签署，并在该部门记录（与 `fedq decision sign` 和 `fedq node resolve` / `fedq node repair` 相同）；部门核验签名和签署人的角色", "A decision is signed with your officer key and recorded at the department (as `fedq decision sign` and `fedq node resolve` / `fedq node repair` do); the department verifies the signature and the signer's role"),
    ("citizens.updated", "投诉状态已更改", "Complaint status changed"),
    ("citizens.text", "投诉内容与处理记录", "What was complained of, and what was done"),
    ("citizens.decided", "决定已签署并记录", "Decision signed and recorded"),
    ("citizens.decision", "决定", "Decision"),
    ("citizens.corrections", "更正（每行 字段=值）", "Corrections (FIELD=VALUE, one per line)"),
    ("citizens.sign-decision", "签署并记录", "Sign and record"),
    ("error", "错误", "Error"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_keys_are_unique() {
        let mut keys = std::collections::BTreeSet::new();
        for (k, zh, en) in TEXTS {
            assert!(keys.insert(*k), "key {k} twice");
            assert!(!zh.is_empty() && !en.is_empty(), "{k} lacks a language");
            assert_ne!(zh, en, "{k} is not translated");
        }
        assert_eq!(Lang::Zh.t("nav.policy"), "策略");
        assert_eq!(Lang::En.t("nav.policy"), "Policy");
        assert_eq!(Lang::En.t("no-such-key"), "no-such-key");
    }
}
