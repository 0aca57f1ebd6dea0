//! How real each dataset looks: record rates, who can have a record, and sensible values
//! for the fields the catalogue leaves free (court names, case numbers, licence types…).
//!
//! The catalogue decides *what* is written (fields, types, enum values, required); this
//! table only colours it in. A dataset missing here still gets data from [`DEFAULT`],
//! and a rule that does not fit its field (wrong type, enum value not declared) is
//! ignored in favour of the generic generator, so any valid catalogue yields importable
//! data.

/// Share of repairable negative records that carry a repaired status (长政办发〔2017〕62号 §十: credit
/// repair ends disclosure early).
pub const REPAIR_SHARE: f64 = 0.2;

/// Years over which the dates that start the disclosure window are spread, so that the
/// 3-year window cuts the data roughly in half.
pub const WINDOW_SPREAD_YEARS: i32 = 6;

/// A court or regulator's office; one per district, then the city level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Office {
    pub court: &'static str,
    pub court_code: &'static str,
    pub regulator: &'static str,
    /// Prefix of the regulator's document numbers, e.g. 长岳 for 长沙市岳麓区.
    pub short: &'static str,
    /// The district name for templates.
    pub place: &'static str,
}

/// Indexed like [`crate::person::DISTRICTS`], then the city's offices last.
pub(crate) const OFFICES: [Office; 10] = [
    office(
        "长沙市芙蓉区人民法院",
        "湘0102",
        "长沙市芙蓉区市场监督管理局",
        "长芙",
        "芙蓉区",
    ),
    office(
        "长沙市天心区人民法院",
        "湘0103",
        "长沙市天心区市场监督管理局",
        "长天",
        "天心区",
    ),
    office(
        "长沙市岳麓区人民法院",
        "湘0104",
        "长沙市岳麓区市场监督管理局",
        "长岳",
        "岳麓区",
    ),
    office(
        "长沙市开福区人民法院",
        "湘0105",
        "长沙市开福区市场监督管理局",
        "长开",
        "开福区",
    ),
    office(
        "长沙市雨花区人民法院",
        "湘0111",
        "长沙市雨花区市场监督管理局",
        "长雨",
        "雨花区",
    ),
    office(
        "长沙市望城区人民法院",
        "湘0112",
        "长沙市望城区市场监督管理局",
        "长望",
        "望城区",
    ),
    office(
        "长沙县人民法院",
        "湘0121",
        "长沙县市场监督管理局",
        "长县",
        "长沙县",
    ),
    office(
        "浏阳市人民法院",
        "湘0181",
        "浏阳市市场监督管理局",
        "浏",
        "浏阳市",
    ),
    office(
        "宁乡市人民法院",
        "湘0182",
        "宁乡市市场监督管理局",
        "宁",
        "宁乡市",
    ),
    office(
        "长沙市中级人民法院",
        "湘01",
        "长沙市市场监督管理局",
        "长",
        "长沙市",
    ),
];

/// Index of the city-level office in [`OFFICES`].
pub(crate) const CITY_OFFICE: usize = 9;

const fn office(
    court: &'static str,
    court_code: &'static str,
    regulator: &'static str,
    short: &'static str,
    place: &'static str,
) -> Office {
    Office {
        court,
        court_code,
        regulator,
        short,
        place,
    }
}

/// How a field's value is made.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gen {
    /// One of these, uniformly.
    Pick(&'static [&'static str]),
    /// One of these, by weight.
    Weighted(&'static [(&'static str, u32)]),
    /// One of these, with `{year}` the record's year and `{place}` its office's district.
    Template(&'static [&'static str]),
    /// The subject's name.
    PersonName,
    /// The subject's sex (`male`/`female`).
    Gender,
    /// The subject's birth date.
    BirthDate,
    /// A household address in the subject's district.
    Address,
    /// The record's court.
    Court,
    /// The record's market-regulation authority.
    Regulator,
    /// An enterprise name.
    Enterprise,
    /// Yuan, log-uniform in `lo..hi`, with fen.
    Amount { lo: u32, hi: u32 },
    /// A whole number, log-uniform in `lo..=hi`.
    Int { lo: i64, hi: i64 },
    /// A date in the last `years` years, once the subject is of age.
    Recent { years: i32 },
    /// A date `min_days..=max_days` after the date in `field`; never after today when
    /// `until_today`.
    DateAfter {
        field: &'static str,
        min_days: i64,
        max_days: i64,
        until_today: bool,
    },
    /// A span of months ending before the record's date: `2024-01..2024-06`.
    Months,
    /// The quarter before the record's date: `2024Q3`.
    Quarter,
    /// Chosen by the value of an earlier field.
    ByValue {
        field: &'static str,
        table: &'static [(&'static str, &'static [&'static str])],
    },
    /// `expired` once the date in `expires` is past, else mostly `valid`.
    LicenceStatus { expires: &'static str },
}

/// When an optional field has a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Presence {
    /// With this probability.
    Sometimes(f64),
    /// Only on repaired records (e.g. the date a debtor was taken off the list).
    IfRepaired,
    /// Unless the earlier field `field` holds `value` (no fine for a warning).
    Unless {
        field: &'static str,
        value: &'static str,
    },
}

/// Colour for one field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub field: &'static str,
    pub gen: Gen,
    pub presence: Presence,
}

const fn rule(field: &'static str, gen: Gen) -> Rule {
    Rule {
        field,
        gen,
        presence: Presence::Sometimes(0.9),
    }
}

const fn rule_if(field: &'static str, gen: Gen, presence: Presence) -> Rule {
    Rule {
        field,
        gen,
        presence,
    }
}

/// How record keys look. All are unique within their dataset.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyGen {
    /// `(2023)湘0104执1234号`: year, court, a number counted per court and year.
    CourtCase { word: &'static str },
    /// `长岳市监处罚〔2024〕123号` (by office) or `长人社监罚〔2024〕12号`.
    Document {
        prefix: &'static str,
        by_office: bool,
    },
    /// `{prefix}{year}{serial:07}`.
    Serial { prefix: &'static str },
    /// `JY14301040001234`: a prefix by licence type, the district code, a serial.
    Licence {
        type_field: &'static str,
        prefixes: &'static [(&'static str, &'static str)],
    },
    /// An enterprise's unified social credit code (valid check characters) and a role
    /// number: `91430104MA4L1B2C3X-01`.
    CreditCode,
}

/// Realism for one dataset.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// `department.dataset`, or empty for [`DEFAULT`].
    pub qualified: &'static str,
    /// Declared range of the share of eligible persons with at least one record; the
    /// generator aims at the middle.
    pub share: (f64, f64),
    /// Probability of each further record for a person who has one (geometric).
    pub(crate) repeat: f64,
    /// At most this many records per person.
    pub(crate) max_records: u32,
    /// Years of age before a person can have a record.
    pub min_age: i32,
    /// Birth years of the persons who can have a record.
    pub born: (i32, i32),
    /// Weights of the repair field's unrepaired values.
    pub(crate) unrepaired: &'static [(&'static str, u32)],
    /// Record keys.
    pub(crate) key: Option<KeyGen>,
    /// Field colour.
    pub(crate) rules: &'static [Rule],
}

impl Profile {
    /// Whether a person born on `birth` can have a record by `today`.
    pub fn eligible(&self, birth: time::Date, today: time::Date) -> bool {
        let year = birth.year();
        year >= self.born.0 && year <= self.born.1 && add_years(birth, self.min_age) <= today
    }

    /// The middle of the declared share.
    pub fn target_share(&self) -> f64 {
        (self.share.0 + self.share.1) / 2.0
    }
}

/// `date` moved by `years` years (29 February becomes 28 February).
pub fn add_years(date: time::Date, years: i32) -> time::Date {
    let year = date.year().saturating_add(years);
    time::Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| time::Date::from_calendar_date(year, date.month(), 28))
        .unwrap_or(if years < 0 {
            time::Date::MIN
        } else {
            time::Date::MAX
        })
}

/// The profile of `qualified` (`department.dataset`), or [`DEFAULT`].
pub fn profile(qualified: &str) -> &'static Profile {
    PROFILES
        .iter()
        .find(|p| p.qualified == qualified)
        .unwrap_or(&DEFAULT)
}

/// For datasets this table does not know.
pub const DEFAULT: Profile = Profile {
    qualified: "",
    share: (0.01, 0.03),
    repeat: 0.1,
    max_records: 3,
    min_age: 18,
    born: (1900, 2100),
    unrepaired: &[],
    key: None,
    rules: &[],
};

const ADULT: (i32, i32) = (1900, 2100);

const OBLIGATIONS: &[&str] = &[
    "偿还借款本金及利息",
    "支付货款及违约金",
    "支付工程款",
    "给付房屋租金",
    "赔偿经济损失",
    "支付抚养费",
    "返还购房款",
    "支付劳动报酬",
    "偿还信用卡透支款及利息",
    "支付民间借贷本息",
];

const EXAMS: &[&str] = &[
    "{year}年普通高等学校招生全国统一考试",
    "{year}年全国硕士研究生招生考试",
    "{year}年湖南省公务员录用考试",
    "{year}年全国大学英语四、六级考试",
    "{year}年高等教育自学考试",
    "{year}年全国会计专业技术资格考试",
    "{year}年国家医师资格考试",
    "{year}年机动车驾驶人科目一考试",
    "{year}年全国计算机等级考试",
];

const EXAM_SANCTIONS: &[&str] = &[
    "当次考试各科成绩无效",
    "当次考试各科成绩无效，三年内不得报名参加",
    "取消考试资格，记入考试诚信档案",
    "移送公安机关处理",
];

const UNIVERSITIES: &[&str] = &[
    "中南大学",
    "湖南大学",
    "湖南师范大学",
    "长沙理工大学",
    "中南林业科技大学",
    "湖南农业大学",
    "湖南中医药大学",
    "长沙学院",
    "湖南第一师范学院",
    "湖南商学院",
];

const ACADEMIC_SANCTIONS: &[&str] = &[
    "撤销学位",
    "撤回论文并通报批评",
    "取消评优评先资格三年",
    "解除聘用合同",
    "警告处分",
    "取消项目申报资格五年",
];

const LENDERS: &[&str] = &[
    "国家开发银行湖南省分行",
    "中国银行长沙市分行",
    "中国建设银行长沙分行",
    "长沙银行",
    "湖南省农村信用社联合社",
];

const VIOLATIONS_MARKET: &[&str] = &[
    "销售假冒注册商标的商品",
    "销售超过保质期的食品",
    "未取得营业执照从事经营活动",
    "发布虚假广告",
    "价格欺诈",
    "未按规定公示年度报告",
    "销售不合格产品",
    "使用未经检定的计量器具",
    "未取得食品经营许可从事食品经营",
    "虚假宣传",
];

const TRAFFIC_PENALTIES: &[(&str, &[&str])] = &[
    (
        "drunk_driving",
        &[
            "吊销机动车驾驶证，五年内不得重新取得",
            "拘役三个月，并处罚金，吊销机动车驾驶证",
        ],
    ),
    ("drugged_driving", &["注销机动车驾驶证，强制隔离戒毒"]),
    (
        "hit_and_run",
        &[
            "吊销机动车驾驶证，终生不得重新取得",
            "罚款二千元，吊销机动车驾驶证",
        ],
    ),
    (
        "serious_speeding",
        &["罚款二千元，吊销机动车驾驶证", "罚款一千元，记12分"],
    ),
    (
        "unlicensed_driving",
        &["罚款二千元，行政拘留十五日", "罚款一千元"],
    ),
];

const HONOURS: &[&str] = &[
    "优秀青年志愿者",
    "五星级志愿者",
    "长沙市道德模范",
    "最美长沙人",
    "见义勇为先进个人",
    "诚信经营示范户",
    "三八红旗手",
    "五一劳动奖章",
    "优秀共青团员",
    "文明家庭",
];

const AWARDING: &[(&str, &[&str])] = &[
    (
        "national",
        &["中央精神文明建设指导委员会", "共青团中央", "中华全国总工会"],
    ),
    (
        "provincial",
        &[
            "湖南省精神文明建设指导委员会",
            "共青团湖南省委员会",
            "湖南省总工会",
        ],
    ),
    (
        "municipal",
        &[
            "长沙市精神文明建设指导委员会",
            "共青团长沙市委员会",
            "长沙市民政局",
        ],
    ),
    (
        "district",
        &[
            "{place}精神文明建设指导委员会",
            "共青团{place}委员会",
            "{place}民政局",
        ],
    ),
];

const VOLUNTEER_ORGS: &[&str] = &[
    "长沙市青年志愿者协会",
    "长沙市志愿服务联合会",
    "{place}志愿者协会",
    "{place}社区志愿服务队",
    "长沙市红十字会志愿服务队",
    "湖南省博物馆志愿者团队",
    "长沙图书馆志愿服务队",
    "橘子洲景区志愿服务队",
    "长沙南站志愿服务站",
    "{place}关爱留守儿童志愿服务队",
];

const LICENCE_TYPES: &[(&str, u32)] = &[
    ("食品经营许可证", 50),
    ("食品生产许可证", 8),
    ("药品经营许可证", 8),
    ("第二类医疗器械经营备案凭证", 6),
    ("特种设备使用登记证", 6),
    ("出版物经营许可证", 4),
    ("工业产品生产许可证", 4),
    ("个体工商户营业执照", 14),
];

const LICENCE_PREFIXES: &[(&str, &str)] = &[
    ("食品经营许可证", "JY"),
    ("食品生产许可证", "SC"),
    ("药品经营许可证", "YP"),
    ("第二类医疗器械经营备案凭证", "XB"),
    ("特种设备使用登记证", "TS"),
    ("出版物经营许可证", "CB"),
    ("工业产品生产许可证", "GY"),
    ("个体工商户营业执照", "GT"),
];

/// The Changsha reference catalogues, dataset by dataset.
pub const PROFILES: &[Profile] = &[
    Profile {
        qualified: "court.dishonest_debtors",
        share: (0.01, 0.02),
        repeat: 0.15,
        max_records: 4,
        min_age: 20,
        born: (1950, 2004),
        unrepaired: &[("unperformed", 80), ("partially_performed", 20)],
        key: Some(KeyGen::CourtCase { word: "执" }),
        rules: &[
            rule_if("name", Gen::PersonName, Presence::Sometimes(1.0)),
            rule_if("court", Gen::Court, Presence::Sometimes(1.0)),
            rule("obligation", Gen::Pick(OBLIGATIONS)),
            rule(
                "amount_owed",
                Gen::Amount {
                    lo: 2_000,
                    hi: 3_000_000,
                },
            ),
            rule_if(
                "removed_on",
                Gen::DateAfter {
                    field: "listed_on",
                    min_days: 30,
                    max_days: 900,
                    until_today: true,
                },
                Presence::IfRepaired,
            ),
        ],
    },
    Profile {
        qualified: "court.enforcement_cases",
        share: (0.02, 0.04),
        repeat: 0.25,
        max_records: 5,
        min_age: 20,
        born: (1950, 2004),
        unrepaired: &[("ongoing", 70), ("terminated", 30)],
        key: Some(KeyGen::CourtCase { word: "执" }),
        rules: &[
            rule_if("court", Gen::Court, Presence::Sometimes(1.0)),
            rule(
                "amount",
                Gen::Amount {
                    lo: 1_000,
                    hi: 5_000_000,
                },
            ),
        ],
    },
    Profile {
        qualified: "education.exam_cheating",
        share: (0.001, 0.004),
        repeat: 0.05,
        max_records: 2,
        min_age: 16,
        born: (1975, 2006),
        unrepaired: &[],
        key: Some(KeyGen::Serial { prefix: "KSWJ" }),
        rules: &[
            rule_if("exam", Gen::Template(EXAMS), Presence::Sometimes(1.0)),
            rule_if(
                "conduct",
                Gen::Weighted(&[
                    ("cheating", 85),
                    ("impersonation", 10),
                    ("organised_cheating", 5),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule("sanction", Gen::Pick(EXAM_SANCTIONS)),
        ],
    },
    Profile {
        qualified: "education.academic_fraud",
        share: (0.0002, 0.0015),
        repeat: 0.0,
        max_records: 1,
        min_age: 22,
        born: (1955, 2000),
        unrepaired: &[],
        key: Some(KeyGen::Serial { prefix: "XSBD" }),
        rules: &[
            rule_if(
                "institution",
                Gen::Pick(UNIVERSITIES),
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "misconduct",
                Gen::Weighted(&[
                    ("plagiarism", 55),
                    ("fabrication", 15),
                    ("falsification", 15),
                    ("ghostwriting", 15),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule("sanction", Gen::Pick(ACADEMIC_SANCTIONS)),
        ],
    },
    Profile {
        qualified: "education.student_loan_default",
        share: (0.003, 0.01),
        repeat: 0.0,
        max_records: 1,
        min_age: 22,
        born: (1985, 2004),
        unrepaired: &[("overdue", 80), ("restructured", 20)],
        key: Some(KeyGen::Serial { prefix: "ZXDK" }),
        rules: &[
            rule_if("lender", Gen::Pick(LENDERS), Presence::Sometimes(1.0)),
            rule(
                "amount_overdue",
                Gen::Amount {
                    lo: 800,
                    hi: 40_000,
                },
            ),
        ],
    },
    Profile {
        qualified: "hrss.social_insurance_arrears",
        share: (0.01, 0.03),
        repeat: 0.15,
        max_records: 3,
        min_age: 22,
        born: (1950, 2004),
        unrepaired: &[],
        key: Some(KeyGen::Serial { prefix: "SBQJ" }),
        rules: &[
            rule_if(
                "insurance_type",
                Gen::Weighted(&[
                    ("pension", 45),
                    ("medical", 35),
                    ("unemployment", 8),
                    ("work_injury", 7),
                    ("maternity", 5),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule(
                "amount",
                Gen::Amount {
                    lo: 300,
                    hi: 60_000,
                },
            ),
            rule("period", Gen::Months),
        ],
    },
    Profile {
        qualified: "hrss.benefit_fraud",
        share: (0.001, 0.004),
        repeat: 0.0,
        max_records: 1,
        min_age: 20,
        born: ADULT,
        unrepaired: &[("no", 60), ("partial", 40)],
        key: Some(KeyGen::Document {
            prefix: "长人社监罚",
            by_office: false,
        }),
        rules: &[
            rule_if(
                "benefit",
                Gen::Weighted(&[
                    ("unemployment_benefit", 30),
                    ("pension", 25),
                    ("medical_insurance", 25),
                    ("employment_subsidy", 10),
                    ("social_assistance", 10),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule(
                "amount_involved",
                Gen::Amount {
                    lo: 1_000,
                    hi: 200_000,
                },
            ),
        ],
    },
    Profile {
        qualified: "hrss.wage_arrears",
        share: (0.002, 0.006),
        repeat: 0.1,
        max_records: 2,
        min_age: 25,
        born: (1950, 1998),
        unrepaired: &[],
        key: Some(KeyGen::Document {
            prefix: "人社监察",
            by_office: true,
        }),
        rules: &[
            rule_if("employer", Gen::Enterprise, Presence::Sometimes(1.0)),
            rule("workers_affected", Gen::Int { lo: 1, hi: 300 }),
            rule(
                "amount",
                Gen::Amount {
                    lo: 10_000,
                    hi: 3_000_000,
                },
            ),
        ],
    },
    Profile {
        qualified: "market-regulation.administrative_penalties",
        share: (0.005, 0.015),
        repeat: 0.1,
        max_records: 3,
        min_age: 20,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::Document {
            prefix: "市监处罚",
            by_office: true,
        }),
        rules: &[
            rule_if(
                "violation",
                Gen::Pick(VIOLATIONS_MARKET),
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "penalty_type",
                Gen::Weighted(&[
                    ("warning", 35),
                    ("fine", 45),
                    ("confiscation", 12),
                    ("licence_suspension", 5),
                    ("licence_revocation", 3),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "fine_amount",
                Gen::Amount {
                    lo: 500,
                    hi: 500_000,
                },
                Presence::Unless {
                    field: "penalty_type",
                    value: "warning",
                },
            ),
            rule_if("authority", Gen::Regulator, Presence::Sometimes(1.0)),
        ],
    },
    Profile {
        qualified: "market-regulation.licences",
        share: (0.05, 0.1),
        repeat: 0.2,
        max_records: 3,
        min_age: 20,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::Licence {
            type_field: "licence_type",
            prefixes: LICENCE_PREFIXES,
        }),
        rules: &[
            rule_if(
                "licence_type",
                Gen::Weighted(LICENCE_TYPES),
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "issued_on",
                Gen::Recent { years: 10 },
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "expires_on",
                Gen::DateAfter {
                    field: "issued_on",
                    min_days: 1825,
                    max_days: 1825,
                    until_today: false,
                },
                Presence::Sometimes(0.95),
            ),
            rule_if(
                "status",
                Gen::LicenceStatus {
                    expires: "expires_on",
                },
                Presence::Sometimes(1.0),
            ),
        ],
    },
    Profile {
        qualified: "market-regulation.legal_representative_roles",
        share: (0.06, 0.14),
        repeat: 0.25,
        max_records: 4,
        min_age: 22,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::CreditCode),
        rules: &[
            rule_if("enterprise_name", Gen::Enterprise, Presence::Sometimes(1.0)),
            rule_if(
                "role",
                Gen::Weighted(&[
                    ("legal_representative", 40),
                    ("director", 25),
                    ("supervisor", 15),
                    ("manager", 20),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule_if("since", Gen::Recent { years: 15 }, Presence::Sometimes(1.0)),
            rule_if(
                "until",
                Gen::DateAfter {
                    field: "since",
                    min_days: 180,
                    max_days: 3650,
                    until_today: true,
                },
                Presence::Sometimes(0.3),
            ),
        ],
    },
    Profile {
        qualified: "public-security.serious_traffic_violations",
        share: (0.008, 0.02),
        repeat: 0.1,
        max_records: 3,
        min_age: 18,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::Serial { prefix: "430100" }),
        rules: &[
            rule_if(
                "violation",
                Gen::Weighted(&[
                    ("drunk_driving", 55),
                    ("drugged_driving", 3),
                    ("hit_and_run", 7),
                    ("serious_speeding", 25),
                    ("unlicensed_driving", 10),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule(
                "penalty",
                Gen::ByValue {
                    field: "violation",
                    table: TRAFFIC_PENALTIES,
                },
            ),
        ],
    },
    Profile {
        qualified: "public-security.identity_basics",
        share: (1.0, 1.0),
        repeat: 0.0,
        max_records: 1,
        min_age: 0,
        born: (1900, 2100),
        unrepaired: &[],
        key: None,
        rules: &[
            rule_if("name", Gen::PersonName, Presence::Sometimes(1.0)),
            rule_if("gender", Gen::Gender, Presence::Sometimes(1.0)),
            rule_if("birth_date", Gen::BirthDate, Presence::Sometimes(1.0)),
            rule_if(
                "household_registration",
                Gen::Address,
                Presence::Sometimes(0.98),
            ),
        ],
    },
    Profile {
        qualified: "tax.arrears",
        share: (0.02, 0.04),
        repeat: 0.15,
        max_records: 3,
        min_age: 22,
        born: ADULT,
        unrepaired: &[("outstanding", 75), ("installment", 25)],
        key: Some(KeyGen::Serial { prefix: "QS" }),
        rules: &[
            rule_if(
                "tax_type",
                Gen::Weighted(&[
                    ("individual_income_tax", 40),
                    ("value_added_tax", 25),
                    ("property_tax", 10),
                    ("deed_tax", 10),
                    ("other", 15),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule(
                "amount",
                Gen::Amount {
                    lo: 200,
                    hi: 500_000,
                },
            ),
            rule("period", Gen::Quarter),
        ],
    },
    Profile {
        qualified: "tax.serious_violations",
        share: (0.0005, 0.002),
        repeat: 0.0,
        max_records: 1,
        min_age: 25,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::Document {
            prefix: "长税稽罚",
            by_office: false,
        }),
        rules: &[
            rule_if(
                "violation_type",
                Gen::Weighted(&[
                    ("tax_evasion", 40),
                    ("false_invoicing", 30),
                    ("refund_fraud", 10),
                    ("evading_recovery", 10),
                    ("other", 10),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule(
                "amount_involved",
                Gen::Amount {
                    lo: 50_000,
                    hi: 20_000_000,
                },
            ),
        ],
    },
    Profile {
        qualified: "civil-affairs.volunteer_service",
        share: (0.25, 0.4),
        repeat: 0.6,
        max_records: 12,
        min_age: 14,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::Serial { prefix: "ZYFW" }),
        rules: &[
            rule_if(
                "organisation",
                Gen::Template(VOLUNTEER_ORGS),
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "hours",
                Gen::Int { lo: 1, hi: 120 },
                Presence::Sometimes(1.0),
            ),
        ],
    },
    Profile {
        qualified: "civil-affairs.honours",
        share: (0.005, 0.015),
        repeat: 0.1,
        max_records: 3,
        min_age: 18,
        born: ADULT,
        unrepaired: &[],
        key: Some(KeyGen::Serial { prefix: "RY" }),
        rules: &[
            rule_if("honour", Gen::Pick(HONOURS), Presence::Sometimes(1.0)),
            rule_if(
                "level",
                Gen::Weighted(&[
                    ("district", 50),
                    ("municipal", 30),
                    ("provincial", 15),
                    ("national", 5),
                ]),
                Presence::Sometimes(1.0),
            ),
            rule_if(
                "awarded_by",
                Gen::ByValue {
                    field: "level",
                    table: AWARDING,
                },
                Presence::Sometimes(1.0),
            ),
        ],
    },
];

/// Enterprise-name parts: 长沙 + trade name + industry + form.
pub(crate) const TRADE_NAME_CHARS: &[&str] = &[
    "湘", "麓", "星", "楚", "潇", "岳", "芙", "蓉", "融", "创", "华", "鑫", "盛", "达", "恒", "泰",
    "兴", "源", "宏", "博", "瑞", "锦", "丰", "德", "信", "诚", "联", "智", "汇", "和", "银", "金",
];

pub(crate) const INDUSTRIES: &[&str] = &[
    "餐饮管理",
    "商贸",
    "建筑工程",
    "装饰设计",
    "电子科技",
    "物流",
    "房地产开发",
    "农业科技",
    "文化传媒",
    "汽车服务",
    "信息技术",
    "劳务",
    "医药",
    "教育咨询",
    "物业管理",
    "湘菜餐饮",
];
