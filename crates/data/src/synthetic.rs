//! The synthetic multimodal benchmark: M modalities, each a seeded nonlinear map of
//! one shared, class-driven latent plus noise. Difficulty is dialled by the noise,
//! the nonlinearity and the latent spread; sizes scale to 100 000s of rows.
//!
//! For item i with label set Y_i (one class, or 1..=k classes for multi-label):
//!
//! ```text
//! z_i   = mean_{c ∈ Y_i} μ_c + spread · ε_i              (latent, shared by all modalities)
//! x_i^m = A_m z_i + nonlinearity · tanh(2 B_m z_i) + noise · η_i^m
//! ```
//!
//! with class prototypes μ_c ~ N(0, I_L), A_m, B_m ∈ R^{d_m × L} with N(0, 1/L)
//! entries, ε, η standard normal. Row i of every modality is the same item, so the
//! dataset has aligned pairs (the `paired` learner can use them).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::matrix::{Labels, Matrix};

/// Parameters of a synthetic dataset (checked by [`SyntheticParams::check`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticParams {
    /// Modality names, in order.
    pub modalities: Vec<String>,
    /// Feature width of each modality.
    pub dims: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// Labels per item: `(min, max)`, both inclusive; `(1, 1)` is single-label.
    pub labels_per_item: (usize, usize),
    /// Training (database) rows per modality.
    pub train: usize,
    /// Test (query) rows per modality.
    pub test: usize,
    /// Latent width L.
    pub latent: usize,
    /// Std of the latent noise around the class prototypes.
    pub spread: f64,
    /// Std of each modality's own feature noise.
    pub noise: f64,
    /// Weight of the tanh term of each modality's map.
    pub nonlinearity: f64,
    /// Seed of the dataset (independent of the run's seed, so runs share one dataset).
    pub seed: u64,
}

impl Default for SyntheticParams {
    fn default() -> Self {
        Self {
            modalities: vec!["a".into(), "b".into(), "c".into()],
            dims: vec![32, 64, 16],
            classes: 10,
            labels_per_item: (1, 1),
            train: 1000,
            test: 200,
            latent: 16,
            spread: 1.0,
            noise: 1.5,
            nonlinearity: 1.0,
            seed: 0,
        }
    }
}

impl SyntheticParams {
    /// Rejects empty or inconsistent settings; the message names the offending key.
    pub fn check(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(DataError::Synthetic { key: key.into(), message });
        if self.modalities.is_empty() {
            return bad("modalities", "at least one modality is needed".into());
        }
        if self.dims.len() != self.modalities.len() {
            return bad(
                "dims",
                format!("{} widths for {} modalities", self.dims.len(), self.modalities.len()),
            );
        }
        for (i, name) in self.modalities.iter().enumerate() {
            if name.trim().is_empty() || self.modalities[..i].contains(name) {
                return bad("modalities", format!("names must be non-empty and distinct ('{name}')"));
            }
        }
        if self.dims.contains(&0) {
            return bad("dims", "every width must be at least 1".into());
        }
        if self.classes == 0 || self.train == 0 || self.test == 0 || self.latent == 0 {
            let key = [("classes", self.classes), ("train", self.train), ("test", self.test)]
                .into_iter()
                .find(|(_, v)| *v == 0)
                .map_or("latent", |(k, _)| k);
            return bad(key, "must be at least 1".into());
        }
        let (lo, hi) = self.labels_per_item;
        if lo == 0 || lo > hi || hi > self.classes {
            return bad(
                "labels_per_item",
                format!("need 1 <= min <= max <= classes ({}), got [{lo}, {hi}]", self.classes),
            );
        }
        for (key, v) in [("spread", self.spread), ("noise", self.noise), ("nonlinearity", self.nonlinearity)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, format!("must be a finite number >= 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// Generates the dataset (deterministic in `params.seed`).
pub fn generate(params: &SyntheticParams) -> Result<Dataset> {
    params.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let l = params.latent;
    let prototypes: Vec<f64> = (0..params.classes * l).map(|_| gauss(&mut rng)).collect();
    // Maps first, then items: adding rows never changes the maps.
    let maps: Vec<(Vec<f64>, Vec<f64>)> = params
        .dims
        .iter()
        .map(|&d| {
            let s = 1.0 / (l as f64).sqrt();
            let a = (0..d * l).map(|_| gauss(&mut rng) * s).collect();
            let b = (0..d * l).map(|_| gauss(&mut rng) * s).collect();
            (a, b)
        })
        .collect();
    let split = |rows: usize, rng: &mut ChaCha8Rng| -> Result<Vec<Split>> {
        let (latents, labels) = items(params, &prototypes, rows, rng)?;
        params
            .dims
            .iter()
            .zip(&maps)
            .map(|(&d, (a, b))| {
                let mut x = Vec::with_capacity(rows * d);
                for z in latents.chunks_exact(l) {
                    for j in 0..d {
                        let (aj, bj) = (&a[j * l..(j + 1) * l], &b[j * l..(j + 1) * l]);
                        let lin: f64 = aj.iter().zip(z).map(|(w, v)| w * v).sum();
                        let pre: f64 = bj.iter().zip(z).map(|(w, v)| w * v).sum();
                        let v = lin + params.nonlinearity * (2.0 * pre).tanh() + params.noise * gauss(rng);
                        x.push(v as f32);
                    }
                }
                Ok(Split { features: Matrix::new(rows, d, x)?, labels: labels.clone() })
            })
            .collect()
    };
    let train = split(params.train, &mut rng)?;
    let test = split(params.test, &mut rng)?;
    let modalities = params
        .modalities
        .iter()
        .zip(train.into_iter().zip(test))
        .map(|(name, (train, test))| Modality::new(name.clone(), train, test))
        .collect();
    let ds = Dataset {
        name: "synthetic".into(),
        class_names: (0..params.classes).map(|c| format!("class{c}")).collect(),
        modalities,
        aligned: true,
    };
    ds.validate()?;
    Ok(ds)
}

/// Latents (rows × L, row-major) and multi-hot labels of `rows` items.
fn items(
    params: &SyntheticParams,
    prototypes: &[f64],
    rows: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<f64>, Labels)> {
    let (l, c) = (params.latent, params.classes);
    let (lo, hi) = params.labels_per_item;
    let mut z = vec![0f64; rows * l];
    let mut y = vec![0u8; rows * c];
    let mut pool: Vec<usize> = (0..c).collect();
    for (zi, yi) in z.chunks_exact_mut(l).zip(y.chunks_exact_mut(c)) {
        let k = rng.random_range(lo..=hi);
        // Partial Fisher–Yates: k distinct classes.
        for j in 0..k {
            let pick = rng.random_range(j..c);
            pool.swap(j, pick);
            yi[pool[j]] = 1;
            let proto = &prototypes[pool[j] * l..(pool[j] + 1) * l];
            zi.iter_mut().zip(proto).for_each(|(v, p)| *v += p / k as f64);
        }
        zi.iter_mut().for_each(|v| *v += params.spread * gauss(rng));
    }
    Ok((z, Labels::from_multi_hot(rows, c, y)?))
}

/// A standard normal draw (Box–Muller); shared with the drift transforms.
pub(crate) fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let p = SyntheticParams { labels_per_item: (1, 3), ..Default::default() };
        let a = generate(&p).unwrap();
        assert_eq!(a, generate(&p).unwrap());
        assert_ne!(a, generate(&SyntheticParams { seed: 1, ..p.clone() }).unwrap());
        assert_eq!(a.modality_names(), ["a", "b", "c"]);
        assert_eq!(a.modality("b").unwrap().dim(), 64);
        let labels = &a.modality("a").unwrap().train.labels;
        assert_eq!((labels.rows(), labels.classes()), (1000, 10));
        let counts: Vec<usize> = (0..labels.rows()).map(|r| labels.classes_of(r).count()).collect();
        assert!(counts.iter().all(|&k| (1..=3).contains(&k)));
        assert!(counts.contains(&1) && counts.contains(&3));
        // Aligned: every modality shares the label rows.
        assert_eq!(a.modality("a").unwrap().test.labels, a.modality("c").unwrap().test.labels);
    }

    #[test]
    fn classes_are_separable_at_low_noise_and_not_at_high() {
        // Nearest class mean on the raw features: the generator's difficulty dial works.
        let acc = |noise: f64, spread: f64| {
            let p = SyntheticParams { noise, spread, nonlinearity: 0.0, ..Default::default() };
            let ds = generate(&p).unwrap();
            let m = ds.modality("b").unwrap();
            let (d, c) = (m.dim(), 10);
            let mut means = vec![0f64; c * d];
            let mut n = vec![0f64; c];
            for r in 0..m.train.features.rows() {
                let k = m.train.labels.classes_of(r).next().unwrap();
                n[k] += 1.0;
                for (j, &v) in m.train.features.row(r).iter().enumerate() {
                    means[k * d + j] += v as f64;
                }
            }
            (0..c).for_each(|k| (0..d).for_each(|j| means[k * d + j] /= n[k]));
            let hits = (0..m.test.features.rows())
                .filter(|&r| {
                    let x = m.test.features.row(r);
                    let best = (0..c)
                        .min_by(|&a, &b| {
                            let da: f64 = x
                                .iter()
                                .enumerate()
                                .map(|(j, &v)| (v as f64 - means[a * d + j]).powi(2))
                                .sum();
                            let db: f64 = x
                                .iter()
                                .enumerate()
                                .map(|(j, &v)| (v as f64 - means[b * d + j]).powi(2))
                                .sum();
                            da.total_cmp(&db)
                        })
                        .unwrap();
                    m.test.labels.has(r, best)
                })
                .count();
            hits as f64 / m.test.features.rows() as f64
        };
        let (easy, hard) = (acc(0.1, 0.1), acc(3.0, 2.0));
        assert!(easy > 0.95, "easy setting only {easy}");
        assert!(hard < 0.6, "hard setting still {hard}");
    }

    #[test]
    fn bad_params_name_the_key() {
        let cases = [
            (SyntheticParams { dims: vec![4], ..Default::default() }, "dims"),
            (SyntheticParams { classes: 0, ..Default::default() }, "classes"),
            (SyntheticParams { labels_per_item: (2, 1), ..Default::default() }, "labels_per_item"),
            (SyntheticParams { noise: f64::NAN, ..Default::default() }, "noise"),
            (
                SyntheticParams {
                    modalities: vec!["a".into(), "a".into(), "b".into()],
                    ..Default::default()
                },
                "modalities",
            ),
        ];
        for (p, key) in cases {
            let e = generate(&p).unwrap_err().to_string();
            assert!(e.contains(key), "{e} does not name {key}");
        }
    }
}
