//! Summaries of timing samples: median, percentiles and spread, printed in
//! the unit that suits their size. No clock, no I/O.

use std::time::Duration;

/// A set of durations, sorted on demand.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<Duration>,
    sorted: bool,
}

impl Samples {
    pub fn new() -> Samples {
        Samples::default()
    }

    pub fn push(&mut self, value: Duration) {
        self.values.push(value);
        self.sorted = false;
    }

    pub fn extend(&mut self, other: &Samples) {
        self.values.extend_from_slice(&other.values);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.values.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `q` quantile (0.0–1.0), nearest rank. Zero when empty.
    pub fn quantile(&mut self, q: f64) -> Duration {
        self.sort();
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.values.len() as f64).ceil() as usize;
        self.values[rank.clamp(1, self.values.len()) - 1]
    }

    pub fn median(&mut self) -> Duration {
        self.quantile(0.5)
    }

    pub fn min(&mut self) -> Duration {
        self.quantile(0.0)
    }

    pub fn max(&mut self) -> Duration {
        self.quantile(1.0)
    }

    /// "median (min–max, n=N)": the spread of a small set.
    pub fn range_summary(&mut self) -> String {
        format!(
            "{} (min {}, max {}, n={})",
            human(self.median()),
            human(self.min()),
            human(self.max()),
            self.len()
        )
    }

    /// "p50 X, p99 Y (n=N)": for large sets.
    pub fn tail_summary(&mut self) -> String {
        format!(
            "p50 {}, p99 {} (n={})",
            human(self.median()),
            human(self.quantile(0.99)),
            self.len()
        )
    }
}

/// A duration in µs below a millisecond, in ms below ten seconds, else s.
pub fn human(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 10_000_000.0 {
        format!("{:.1} ms", micros / 1000.0)
    } else {
        format!("{:.1} s", micros / 1e6)
    }
}

/// A signed difference `a - b` in the same units as [`human`].
pub fn human_diff(a: Duration, b: Duration) -> String {
    if a >= b {
        format!("+{}", human(a - b))
    } else {
        format!("−{}", human(b - a))
    }
}

/// Median of plain numbers (rates, ratios); zero when empty.
pub fn median_f64(values: &[f64]) -> f64 {
    quantile_f64(values, 0.5)
}

/// The `q` quantile (0.0–1.0) of plain numbers, nearest rank; zero when
/// empty.
pub fn quantile_f64(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A distribution-free 95% confidence interval for the median of `values`:
/// the order statistics whose ranks bracket n/2 by 1.96·√n/2 (the normal
/// approximation to the binomial), so no shape of the values is assumed.
pub fn median_interval(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let half_width = 0.98 * (n as f64).sqrt();
    let low = ((n as f64 / 2.0 - half_width).floor() as usize).clamp(1, n);
    let high = ((n as f64 / 2.0 + 1.0 + half_width).ceil() as usize).clamp(1, n);
    (sorted[low - 1], sorted[high - 1])
}

pub fn min_f64(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max_f64(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let mut samples = Samples::new();
        for micros in [5, 1, 4, 2, 3] {
            samples.push(Duration::from_micros(micros));
        }
        assert_eq!(samples.median(), Duration::from_micros(3));
        assert_eq!(samples.min(), Duration::from_micros(1));
        assert_eq!(samples.max(), Duration::from_micros(5));
        assert_eq!(samples.quantile(0.99), Duration::from_micros(5));
        assert_eq!(human(Duration::from_micros(42)), "42 µs");
        assert_eq!(human(Duration::from_micros(4200)), "4.2 ms");
        assert_eq!(
            human_diff(Duration::from_micros(10), Duration::from_micros(30)),
            "−20 µs"
        );
        assert_eq!(median_f64(&[3.0, 1.0, 2.0, 4.0]), 2.0);
    }

    #[test]
    fn the_median_interval_brackets_the_median_by_the_binomial_ranks() {
        // 100 values 1..=100: ranks 50 ± 9.8 → the 40th and 61st values.
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(median_interval(&values), (40.0, 61.0));
        // Too few values to bracket anything: the extremes.
        assert_eq!(median_interval(&[2.0, 1.0]), (1.0, 2.0));
        assert_eq!(median_interval(&[]), (0.0, 0.0));
    }
}
