//! Small, version-stable sampling helpers over any [`Rng`]: the same seed gives the same
//! data whatever `rand` release is current, and nothing here can panic.

use rand_pcg::rand_core::Rng;
use rand_pcg::Pcg64Mcg;

/// SplitMix64's finalizer: a good 64-bit mix.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for one stream (`seed`, `stream`): persons are generated each from
/// their own stream, so person *i* is the same whatever `--persons` is.
pub(crate) fn stream_rng(seed: u64, stream: u64) -> Pcg64Mcg {
    let hi = mix64(seed ^ 0x5EED_0000_0000_0000);
    let lo = mix64(hi ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut rng = Pcg64Mcg::new((u128::from(hi) << 64) | u128::from(lo));
    let _ = rng.next_u64();
    rng
}

/// Uniform in `0..n` (0 when `n` is 0), by multiply-shift.
pub(crate) fn below<R: Rng>(rng: &mut R, n: u32) -> u32 {
    ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32
}

/// Uniform in `lo..=hi` (`lo` when the range is empty).
pub(crate) fn between<R: Rng>(rng: &mut R, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).unsigned_abs().saturating_add(1);
    let x = ((u128::from(rng.next_u64()) * u128::from(span)) >> 64) as u64;
    lo.saturating_add(i64::try_from(x).unwrap_or(0))
}

/// Uniform in `[0, 1)`.
pub(crate) fn unit<R: Rng>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p`.
pub(crate) fn chance<R: Rng>(rng: &mut R, p: f64) -> bool {
    unit(rng) < p
}

/// Index drawn in proportion to `weights` (`None` if they are all zero).
pub(crate) fn pick_weighted<R: Rng>(
    rng: &mut R,
    weights: impl Iterator<Item = u32> + Clone,
) -> Option<usize> {
    let total: u32 = weights.clone().sum();
    if total == 0 {
        return None;
    }
    let mut x = below(rng, total);
    for (i, w) in weights.enumerate() {
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    None
}

/// A prepared weighted choice (binary search over cumulative weights).
#[derive(Debug, Clone)]
pub(crate) struct Cumulative(Vec<u32>);

impl Cumulative {
    pub(crate) fn new(weights: impl Iterator<Item = u32>) -> Cumulative {
        let mut acc = 0u32;
        Cumulative(
            weights
                .map(|w| {
                    acc = acc.saturating_add(w);
                    acc
                })
                .collect(),
        )
    }

    pub(crate) fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let total = self.0.last().copied().unwrap_or(0);
        let x = below(rng, total);
        self.0.partition_point(|&c| c <= x)
    }
}
