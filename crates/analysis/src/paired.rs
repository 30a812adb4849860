//! Paired comparisons over seeds: is a variant's difference from a reference more than noise?
//!
//! Runs of an ablation share their seeds (same data split, same initial model), so the fair
//! test pairs them: the per-seed differences d_i, their mean, its standard error
//! s_d / √n, and Student's t with n − 1 degrees of freedom. Reports mark a difference only
//! when |t| exceeds the two-sided 5 % critical value.

/// Two-sided 5 % critical values of Student's t, `T_975[df - 1]` for df = 1..=30 (the usual
/// table, 3 decimals; the test integrates the density to check every entry).
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// The two-sided 5 % critical value of Student's t with `df` degrees of freedom (`df >= 1`).
/// Above 30 the value for 30 is returned: a little stricter than exact (1.96 in the limit).
pub fn t_critical_95(df: usize) -> f64 {
    T_975[df.clamp(1, T_975.len()) - 1]
}

/// The paired difference of matched (variant, reference) values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedDiff {
    /// Mean of variant − reference.
    pub mean: f64,
    /// Standard error of that mean (sample std of the differences / √n).
    pub se: f64,
    /// Number of pairs.
    pub n: usize,
    /// |mean / se| above [`t_critical_95`]`(n - 1)`; never with fewer than 2 pairs.
    pub significant: bool,
}

/// The paired difference of `pairs` (variant, reference); None when there is no pair.
pub fn paired_diff(pairs: &[(f64, f64)]) -> Option<PairedDiff> {
    let n = pairs.len();
    if n == 0 {
        return None;
    }
    let d: Vec<f64> = pairs.iter().map(|(v, r)| v - r).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(PairedDiff { mean, se: 0.0, n, significant: false });
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    // Identical differences (se = 0): a nonzero mean is as certain as it gets.
    let significant = if se == 0.0 { mean != 0.0 } else { (mean / se).abs() > t_critical_95(n - 1) };
    Some(PairedDiff { mean, se, n, significant })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(|T| <= t) for Student's t with `df` degrees of freedom, by Simpson's rule in the
    /// angle θ = atan(x / √df), where the density is proportional to cos^(df-1) θ: an
    /// independent route to the table's values.
    fn coverage(t: f64, df: usize) -> f64 {
        let integral = |a: f64| {
            let steps = 20_000;
            let h = 2.0 * a / steps as f64;
            let f = |th: f64| th.cos().powi(df as i32 - 1);
            let mut s = f(-a) + f(a);
            for i in 1..steps {
                s += f(-a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            s * h / 3.0
        };
        integral((t / (df as f64).sqrt()).atan()) / integral(std::f64::consts::FRAC_PI_2)
    }

    #[test]
    fn every_table_value_leaves_five_percent_in_the_tails() {
        for df in 1..=30 {
            let c = coverage(t_critical_95(df), df);
            // 3 decimals of t move the coverage by less than 2e-4 for df >= 2 (4e-5 at df 1).
            assert!((c - 0.95).abs() < 2e-4, "df {df}: coverage {c}");
        }
        assert_eq!(t_critical_95(200), t_critical_95(30));
    }

    #[test]
    fn paired_difference_by_hand() {
        // d = 0.010, 0.012, 0.009, 0.011, 0.008: mean 0.010, sample var 2.5e-6, se = sqrt(5e-7).
        let pairs = [(0.51, 0.50), (0.522, 0.51), (0.499, 0.49), (0.531, 0.52), (0.488, 0.48)];
        let d = paired_diff(&pairs).unwrap();
        assert!((d.mean - 0.010).abs() < 1e-12);
        assert!((d.se - 5e-7f64.sqrt()).abs() < 1e-12);
        assert_eq!(d.n, 5);
        assert!(d.significant, "t = 14: significant");
    }

    #[test]
    fn noise_around_zero_is_not_significant() {
        // d = 0.01, -0.01, 0.005, -0.004, 0.0: mean 0.0002, t far below 2.776.
        let pairs = [(0.51, 0.50), (0.49, 0.50), (0.505, 0.50), (0.496, 0.50), (0.5, 0.5)];
        let d = paired_diff(&pairs).unwrap();
        assert!(!d.significant);
        // t just above and just below the df = 4 critical value (the spread, so the standard
        // error, is the same whatever the mean m).
        let make = |m: f64| [m + 0.001, m - 0.001, m + 0.001, m - 0.001, m].map(|d| (d, 0.0));
        let s = paired_diff(&make(0.0)).unwrap().se;
        assert!(paired_diff(&make(2.80 * s)).unwrap().significant);
        assert!(!paired_diff(&make(2.75 * s)).unwrap().significant);
    }

    #[test]
    fn too_few_pairs_are_never_significant() {
        assert_eq!(paired_diff(&[]), None);
        let one = paired_diff(&[(0.9, 0.1)]).unwrap();
        assert!(!one.significant && one.se == 0.0 && (one.mean - 0.8).abs() < 1e-12);
        let same = paired_diff(&[(0.6, 0.5), (0.7, 0.6)]).unwrap();
        assert!(same.significant, "identical nonzero differences");
        assert!(!paired_diff(&[(0.5, 0.5), (0.6, 0.6)]).unwrap().significant);
    }
}
