//! Synthetic persons: resident IDs that validate (GB 11643), real Changsha district codes,
//! plausible names, and birth dates and sexes that agree with the ID.
//!
//! IDs are unique without remembering anyone: each (district, birth date) cell keeps a
//! counter per sex (a fixed-size table, whatever the number of persons), and the counter
//! is mapped to a sequence number of the right parity.

use rand_pcg::rand_core::Rng;

use crate::rng::{below, chance, mix64, pick_weighted, Cumulative};
use crate::SynthError;

/// A district of Changsha (长沙市辖区、县、县级市) with the offices that serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct District {
    /// Administrative division code, the first six digits of a resident ID.
    pub code: &'static str,
    /// Its name, e.g. 岳麓区.
    pub name: &'static str,
    /// The address prefix, e.g. 湖南省长沙市岳麓区.
    pub(crate) admin: &'static str,
    /// Population weight (2020 census, ten thousands).
    pub(crate) weight: u32,
    /// Main roads, for addresses.
    pub(crate) roads: &'static [&'static str],
}

/// The nine districts named in issue 6, in code order.
pub const DISTRICTS: [District; 9] = [
    District {
        code: "430102",
        name: "芙蓉区",
        admin: "湖南省长沙市芙蓉区",
        weight: 52,
        roads: &["五一大道", "解放西路", "八一路", "人民东路", "远大一路"],
    },
    District {
        code: "430103",
        name: "天心区",
        admin: "湖南省长沙市天心区",
        weight: 78,
        roads: &["书院路", "芙蓉南路", "劳动西路", "湘府西路", "新姚南路"],
    },
    District {
        code: "430104",
        name: "岳麓区",
        admin: "湖南省长沙市岳麓区",
        weight: 156,
        roads: &["麓山南路", "桐梓坡路", "枫林三路", "岳麓大道", "潇湘北路"],
    },
    District {
        code: "430105",
        name: "开福区",
        admin: "湖南省长沙市开福区",
        weight: 80,
        roads: &["湘江中路", "芙蓉北路", "三一大道", "湘雅路", "福城路"],
    },
    District {
        code: "430111",
        name: "雨花区",
        admin: "湖南省长沙市雨花区",
        weight: 139,
        roads: &["韶山中路", "劳动东路", "万家丽中路", "湘府东路", "圭塘路"],
    },
    District {
        code: "430112",
        name: "望城区",
        admin: "湖南省长沙市望城区",
        weight: 88,
        roads: &["雷锋大道", "郭亮路", "金星北路", "旺旺路", "月亮岛路"],
    },
    District {
        code: "430121",
        name: "长沙县",
        admin: "湖南省长沙县",
        weight: 138,
        roads: &["开元路", "星沙大道", "人民路", "漓湘路", "东四路"],
    },
    District {
        code: "430181",
        name: "浏阳市",
        admin: "湖南省浏阳市",
        weight: 143,
        roads: &["金沙路", "劳动路", "白沙路", "北正路", "花炮大道"],
    },
    District {
        code: "430182",
        name: "宁乡市",
        admin: "湖南省宁乡市",
        weight: 127,
        roads: &["玉潭路", "花明路", "一环路", "金洲大道", "新康路"],
    },
];

/// The district whose code is `code`.
pub fn district_by_code(code: &str) -> Option<&'static District> {
    DISTRICTS.iter().find(|d| d.code == code)
}

/// Sex, as the parity of the ID's sequence number says (odd = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// Odd sequence number.
    Male,
    /// Even sequence number.
    Female,
}

impl Sex {
    /// `male` or `female`, as the catalogues spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// Common surnames with rough frequencies (per ten thousand), leaning Hunanese.
const SURNAMES: &[(&str, u32)] = &[
    ("王", 620),
    ("李", 700),
    ("张", 560),
    ("刘", 720),
    ("陈", 560),
    ("杨", 300),
    ("黄", 260),
    ("赵", 160),
    ("吴", 220),
    ("周", 300),
    ("徐", 130),
    ("孙", 100),
    ("马", 80),
    ("朱", 130),
    ("胡", 170),
    ("郭", 90),
    ("何", 150),
    ("高", 90),
    ("林", 100),
    ("罗", 200),
    ("郑", 80),
    ("梁", 70),
    ("谢", 160),
    ("宋", 70),
    ("唐", 220),
    ("许", 70),
    ("韩", 50),
    ("冯", 60),
    ("邓", 200),
    ("曹", 70),
    ("彭", 230),
    ("曾", 190),
    ("肖", 170),
    ("田", 60),
    ("董", 50),
    ("袁", 90),
    ("潘", 60),
    ("蒋", 110),
    ("蔡", 60),
    ("余", 70),
    ("杜", 40),
    ("叶", 50),
    ("程", 50),
    ("苏", 40),
    ("魏", 40),
    ("丁", 40),
    ("任", 40),
    ("姚", 60),
    ("卢", 40),
    ("钟", 60),
    ("谭", 180),
    ("汪", 40),
    ("范", 50),
    ("石", 60),
    ("廖", 90),
    ("贺", 110),
    ("夏", 60),
    ("易", 120),
    ("龙", 80),
    ("文", 90),
    ("戴", 60),
    ("邹", 90),
    ("熊", 70),
    ("秦", 30),
    ("雷", 50),
    ("颜", 50),
    ("黎", 60),
    ("陶", 50),
    ("龚", 50),
    ("毛", 40),
    ("尹", 50),
    ("汤", 50),
    ("欧阳", 60),
    ("向", 60),
    ("万", 30),
    ("严", 30),
];

const MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "龙", "林", "洋", "峰", "建", "国", "志",
    "文", "海", "亮", "晨", "博", "轩", "睿", "泽", "子", "然", "航", "天", "家", "思", "远", "嘉",
    "诚", "昊", "湘", "岳", "卫", "兵", "德", "永", "春", "毅", "锋", "新",
];

const FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "华", "玲", "燕", "萍", "红", "婷",
    "雪", "琳", "晶", "颖", "倩", "洁", "慧", "莉", "梅", "兰", "琴", "云", "欣", "怡", "佳", "雨",
    "涵", "诗", "悦", "萱", "梓", "可", "馨", "婉", "思", "月", "彤", "瑶", "湘", "蓉", "芬", "丹",
];

/// First and last year of birth.
pub const BIRTH_YEARS: (i32, i32) = (1950, 2006);

/// Relative number of living persons born in each year 1950..=2006 (births, less
/// mortality for the oldest): the 1962–1975 and 1985–1990 bulges show.
const BIRTH_YEAR_WEIGHTS: [u32; 57] = [
    12, 13, 13, 14, 15, 14, 14, 16, 14, 12, // 1950s
    11, 10, 21, 26, 25, 24, 24, 24, 26, 25, // 1960s
    25, 25, 25, 24, 21, 20, 18, 17, 17, 17, // 1970s
    18, 21, 22, 21, 21, 22, 24, 25, 25, 24, // 1980s
    26, 23, 21, 21, 21, 21, 21, 20, 20, 19, // 1990s
    18, 17, 16, 16, 16, 16, 16, // 2000–2006
];

/// One generated person. Buffers are reused from person to person.
#[derive(Debug, Clone)]
pub struct Person {
    /// The 18-character resident ID.
    pub id: [u8; 18],
    /// Full name.
    pub name: String,
    /// Sex, agreeing with the ID.
    pub sex: Sex,
    /// Birth date, agreeing with the ID.
    pub birth: time::Date,
    /// District, agreeing with the ID.
    pub district: &'static District,
}

impl Person {
    /// The resident ID as text.
    pub fn id_str(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap_or_default()
    }
}

/// A fixed person (the demo's scenario) to allocate before the random ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedPerson {
    pub name: &'static str,
    pub sex: Sex,
    pub birth: (i32, u8, u8),
    pub district: usize,
}

/// Makes persons and hands out unique IDs.
#[derive(Debug)]
pub(crate) struct PersonFactory {
    surnames: Cumulative,
    districts: Cumulative,
    years: Cumulative,
    /// Julian day of 1950-01-01.
    first_day: i32,
    /// Days from 1950-01-01 to 2006-12-31 inclusive.
    days: u32,
    /// Issued sequence numbers per (district, birth day), male and female.
    counters: Vec<[u16; 2]>,
}

/// Sequence numbers per cell and sex: odd 001..999 (500) for men, even 002..998 (499)
/// for women.
const CAPACITY: [u16; 2] = [500, 499];

impl PersonFactory {
    pub(crate) fn new() -> Result<PersonFactory, SynthError> {
        let first = date(BIRTH_YEARS.0, 1, 1)?;
        let last = date(BIRTH_YEARS.1, 12, 31)?;
        let days = u32::try_from(last.to_julian_day() - first.to_julian_day() + 1).unwrap_or(0);
        let cells = DISTRICTS.len() * days as usize;
        Ok(PersonFactory {
            surnames: Cumulative::new(SURNAMES.iter().map(|(_, w)| *w)),
            districts: Cumulative::new(DISTRICTS.iter().map(|d| d.weight)),
            years: Cumulative::new(BIRTH_YEAR_WEIGHTS.iter().copied()),
            first_day: first.to_julian_day(),
            days,
            counters: vec![[0, 0]; cells],
        })
    }

    /// How many persons the ID space holds at most (every cell full).
    pub(crate) fn capacity(&self) -> u64 {
        self.counters.len() as u64 * u64::from(CAPACITY[0] + CAPACITY[1])
    }

    /// A random person.
    pub(crate) fn random<R: Rng>(
        &mut self,
        rng: &mut R,
        person: &mut Person,
    ) -> Result<(), SynthError> {
        let sex = if chance(rng, 0.505) {
            Sex::Male
        } else {
            Sex::Female
        };
        // A cell may be full only with far more persons than Changsha has; try others.
        for _ in 0..256 {
            let district = self.districts.sample(rng);
            let year_index = self.years.sample(rng);
            let year = BIRTH_YEARS.0 + i32::try_from(year_index).unwrap_or(0);
            let year_start = date(year, 1, 1)?.to_julian_day();
            let len = if time::util::is_leap_year(year) {
                366
            } else {
                365
            };
            let day = year_start + i32::try_from(below(rng, len)).unwrap_or(0);
            if self.assign(person, district, day, sex)? {
                self.name(rng, person);
                return Ok(());
            }
        }
        Err(SynthError::TooManyPersons {
            capacity: self.capacity(),
        })
    }

    /// A fixed person; its ID depends only on the fixed facts and the order of calls.
    pub(crate) fn fixed(
        &mut self,
        fixed: &FixedPerson,
        person: &mut Person,
    ) -> Result<(), SynthError> {
        let (y, m, d) = fixed.birth;
        let day = date(y, m, d)?.to_julian_day();
        if !self.assign(person, fixed.district, day, fixed.sex)? {
            return Err(SynthError::TooManyPersons {
                capacity: self.capacity(),
            });
        }
        person.name.clear();
        person.name.push_str(fixed.name);
        Ok(())
    }

    /// Issues the next sequence number in the cell; false when the cell is full.
    fn assign(
        &mut self,
        person: &mut Person,
        district: usize,
        julian_day: i32,
        sex: Sex,
    ) -> Result<bool, SynthError> {
        let offset = u32::try_from(julian_day - self.first_day).unwrap_or(u32::MAX);
        if offset >= self.days {
            return Err(SynthError::Internal("birth date outside 1950–2006"));
        }
        let cell = district * self.days as usize + offset as usize;
        let s = usize::from(sex == Sex::Female);
        let Some(counter) = self.counters.get_mut(cell).and_then(|c| c.get_mut(s)) else {
            return Err(SynthError::Internal("district index out of range"));
        };
        let cap = CAPACITY.get(s).copied().unwrap_or(1);
        if *counter >= cap {
            return Ok(false);
        }
        let n = u64::from(*counter);
        *counter += 1;
        // A bijection of 0..cap (337 is prime to 500 and 499) from a per-cell start, so
        // sequence numbers look scattered rather than counted.
        let start = mix64(cell as u64) % u64::from(cap);
        let half = (n * 337 + start) % u64::from(cap);
        let seq = match sex {
            Sex::Male => 2 * half + 1,
            Sex::Female => 2 * half + 2,
        };
        let birth = time::Date::from_julian_day(julian_day)
            .map_err(|_| SynthError::Internal("birth date out of range"))?;
        let dist = DISTRICTS
            .get(district)
            .ok_or(SynthError::Internal("district index out of range"))?;
        let mut first17 = [0u8; 17];
        let mut w = Digits(&mut first17, 0);
        w.text(dist.code);
        w.num(u64::try_from(birth.year()).unwrap_or(0), 4);
        w.num(u64::from(u8::from(birth.month())), 2);
        w.num(u64::from(birth.day()), 2);
        w.num(seq, 3);
        let check = fedq_wire::resident_id::check_character(&first17);
        for (dst, src) in person.id.iter_mut().zip(first17) {
            *dst = src;
        }
        if let Some(last) = person.id.last_mut() {
            *last = check;
        }
        person.sex = sex;
        person.birth = birth;
        person.district = dist;
        Ok(true)
    }

    fn name<R: Rng>(&self, rng: &mut R, person: &mut Person) {
        person.name.clear();
        let surname = SURNAMES
            .get(self.surnames.sample(rng))
            .map_or("王", |(s, _)| *s);
        person.name.push_str(surname);
        let pool = match person.sex {
            Sex::Male => MALE_CHARS,
            Sex::Female => FEMALE_CHARS,
        };
        // Single-character given names were commoner for the older generations.
        let single = if person.birth.year() < 1980 {
            0.35
        } else {
            0.15
        };
        let chars = if chance(rng, single) { 1 } else { 2 };
        for _ in 0..chars {
            person.name.push_str(pick(rng, pool).unwrap_or("明"));
        }
    }
}

impl Default for Person {
    fn default() -> Self {
        Person {
            id: [b'0'; 18],
            name: String::new(),
            sex: Sex::Male,
            birth: time::Date::MIN,
            district: &DISTRICTS[0],
        }
    }
}

/// Uniform choice from a slice.
pub(crate) fn pick<'a, R: Rng>(rng: &mut R, items: &[&'a str]) -> Option<&'a str> {
    let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
    items.get(below(rng, n) as usize).copied()
}

/// Weighted choice from `(value, weight)` pairs.
pub(crate) fn pick_pairs<'a, R: Rng>(rng: &mut R, items: &[(&'a str, u32)]) -> Option<&'a str> {
    pick_weighted(rng, items.iter().map(|(_, w)| *w)).and_then(|i| items.get(i).map(|(v, _)| *v))
}

pub(crate) fn date(y: i32, m: u8, d: u8) -> Result<time::Date, SynthError> {
    time::Month::try_from(m)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(y, m, d).ok())
        .ok_or(SynthError::Internal("invalid calendar date"))
}

/// Writes ASCII digits into a fixed buffer.
struct Digits<'a>(&'a mut [u8; 17], usize);

impl Digits<'_> {
    fn text(&mut self, s: &str) {
        for b in s.bytes() {
            if let Some(slot) = self.0.get_mut(self.1) {
                *slot = b;
            }
            self.1 += 1;
        }
    }
    fn num(&mut self, mut n: u64, width: usize) {
        for i in (0..width).rev() {
            if let Some(slot) = self.0.get_mut(self.1 + i) {
                *slot = b'0' + (n % 10) as u8;
            }
            n /= 10;
        }
        self.1 += width;
    }
}
