//! Drift transforms: how one stage's data differs from the modality's base data.
//!
//! Applied in this order to (standardised) features, each seeded so a run is
//! reproducible: rotation, scale, shift, additive noise, feature dropout. The class
//! prior reweights which training rows a stage sees. All values are for one stage;
//! ramps across stages are resolved by the experiment file into per-stage values.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::matrix::{Labels, Matrix};
use crate::synthetic::gauss;

/// The drift of one stage. `Drift::default()` changes nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    /// Std of Gaussian noise added to every feature (features are standardised, so in std units).
    pub noise: f64,
    /// Rotation angle in degrees: x ↦ (cos θ · I + sin θ · Q) x with Q = U J Uᵀ, U a random
    /// orthonormal basis of the modality and J a quarter turn in each of ⌊d/2⌋ planes (with
    /// odd d one basis direction stays fixed). The map is exactly orthogonal (norms and
    /// distances kept) and is the identity at 0°.
    pub rotation: f64,
    /// Multiplies every feature.
    pub scale: f64,
    /// Adds `shift · s` with s a fixed random direction of the modality with unit-variance
    /// entries: every feature moves by about `shift` standard deviations.
    pub shift: f64,
    /// Probability that a feature of a row is set to zero.
    pub dropout: f64,
    /// Relative class frequencies of the stage's training rows (one weight per class): a
    /// row is kept with probability w_c / max w, c its first class. `None` keeps all.
    pub class_prior: Option<Vec<f64>>,
}

impl Default for Drift {
    fn default() -> Self {
        Self { noise: 0.0, rotation: 0.0, scale: 1.0, shift: 0.0, dropout: 0.0, class_prior: None }
    }
}

impl Drift {
    /// True when the features are left unchanged (the class prior aside).
    pub fn is_feature_identity(&self) -> bool {
        self.noise == 0.0
            && self.rotation == 0.0
            && self.scale == 1.0
            && self.shift == 0.0
            && self.dropout == 0.0
    }

    /// The drifted copy of `x`. `seed` fixes the modality's rotation basis and shift
    /// direction (pass the same for every stage of one modality, so a ramp turns one
    /// rotation further); `draw_seed` fixes this stage's noise and dropout draws.
    pub fn apply(&self, x: &Matrix, seed: u64, draw_seed: u64) -> Matrix {
        let mut out = x.clone();
        if self.is_feature_identity() {
            return out;
        }
        let d = x.cols();
        let mut basis_rng = ChaCha8Rng::seed_from_u64(seed);
        if self.rotation != 0.0 {
            let (q, fixed) = quarter_turn(d, &mut basis_rng);
            let (c, s) = (self.rotation.to_radians().cos(), self.rotation.to_radians().sin());
            for (i, row) in out.data_mut().chunks_exact_mut(d).enumerate() {
                let src = x.row(i);
                // With odd d the basis vector left out of every plane stays put.
                let along =
                    fixed.as_ref().map_or(0.0, |u| u.iter().zip(src).map(|(a, &b)| a * b as f64).sum());
                for (j, v) in row.iter_mut().enumerate() {
                    let qx: f64 = q[j * d..(j + 1) * d].iter().zip(src).map(|(a, &b)| a * b as f64).sum();
                    let keep = fixed.as_ref().map_or(0.0, |u| (1.0 - c) * along * u[j]);
                    *v = (c * src[j] as f64 + s * qx + keep) as f32;
                }
            }
        }
        // Its own stream of the modality's seed: whether or how far the stage rotates never
        // changes the shift direction (drawn after the basis, it moved when the angle was 0).
        let mut shift_rng = ChaCha8Rng::seed_from_u64(seed);
        shift_rng.set_stream(1);
        let direction: Vec<f64> = (0..d).map(|_| gauss(&mut shift_rng)).collect();
        let mut draws = ChaCha8Rng::seed_from_u64(draw_seed);
        for row in out.data_mut().chunks_exact_mut(d) {
            for (v, dir) in row.iter_mut().zip(&direction) {
                let mut y = *v as f64 * self.scale + self.shift * dir;
                if self.noise > 0.0 {
                    y += self.noise * gauss(&mut draws);
                }
                if self.dropout > 0.0 && draws.random::<f64>() < self.dropout {
                    y = 0.0;
                }
                *v = y as f32;
            }
        }
        out
    }

    /// The training rows kept under the class prior (all of `rows` when there is none).
    pub fn reweight(&self, labels: &Labels, rows: &[u32], draw_seed: u64) -> Vec<u32> {
        let Some(w) = &self.class_prior else { return rows.to_vec() };
        let max = w.iter().cloned().fold(0.0, f64::max);
        if max <= 0.0 {
            return Vec::new();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(draw_seed ^ 0x5eed_c1a5);
        rows.iter()
            .copied()
            .filter(|&r| {
                let keep =
                    labels.classes_of(r as usize).next().and_then(|c| w.get(c)).map_or(0.0, |v| v / max);
                rng.random::<f64>() < keep
            })
            .collect()
    }
}

/// Q = U J Uᵀ (d × d, row-major): U a random orthonormal basis (Gram–Schmidt of a
/// Gaussian matrix), J a quarter turn in the planes (u₀,u₁), (u₂,u₃), …; Q² = −I on
/// those planes, so cos θ·I + sin θ·Q is a rotation by θ in each of them. With odd d
/// the last basis vector is in no plane; it is returned so the caller keeps it fixed.
fn quarter_turn(d: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Option<Vec<f64>>) {
    let mut u: Vec<Vec<f64>> = Vec::with_capacity(d);
    while u.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| gauss(rng)).collect();
        for b in &u {
            let dot: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(b).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        // A draw nearly inside the span so far is redrawn (probability ~0).
        if norm > 1e-6 {
            u.push(v.into_iter().map(|a| a / norm).collect());
        }
    }
    let mut q = vec![0f64; d * d];
    for k in (0..d - d % 2).step_by(2) {
        let (a, b) = (&u[k], &u[k + 1]);
        // J maps a ↦ b and b ↦ −a:  Q += b aᵀ − a bᵀ.
        for i in 0..d {
            for j in 0..d {
                q[i * d + j] += b[i] * a[j] - a[i] * b[j];
            }
        }
    }
    let fixed = (d % 2 == 1).then(|| u[d - 1].clone());
    (q, fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Matrix {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        Matrix::new(50, 7, (0..350).map(|_| gauss(&mut rng) as f32).collect()).unwrap()
    }

    fn norm(r: &[f32]) -> f64 {
        r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt()
    }

    #[test]
    fn identity_changes_nothing() {
        let x = data();
        assert_eq!(Drift::default().apply(&x, 1, 2), x);
    }

    #[test]
    fn rotation_keeps_norms_and_turns_by_the_angle() {
        let x = data();
        for deg in [30.0, 90.0, 180.0] {
            let y = Drift { rotation: deg, ..Default::default() }.apply(&x, 1, 2);
            let (mut cos_sum, mut n) = (0.0, 0.0);
            for i in 0..x.rows() {
                assert!((norm(x.row(i)) - norm(y.row(i))).abs() < 1e-4, "norm changed at {deg}°");
                // d = 7: six coordinates (in the U basis) turn by θ, one stays; the mean
                // cosine between x and its image sits between cos θ and 1.
                let dot: f64 = x.row(i).iter().zip(y.row(i)).map(|(&a, &b)| a as f64 * b as f64).sum();
                cos_sum += dot / (norm(x.row(i)) * norm(y.row(i)));
                n += 1.0;
            }
            let mean = cos_sum / n;
            let c = deg.to_radians().cos();
            assert!(mean >= c - 1e-6 && mean < 1.0 - 1e-3, "{deg}°: mean cosine {mean}");
        }
        // Two 45° turns make one 90° turn: the ramp turns one rotation further.
        let half = Drift { rotation: 45.0, ..Default::default() };
        let twice = half.apply(&half.apply(&x, 1, 2), 1, 2);
        let once = Drift { rotation: 90.0, ..Default::default() }.apply(&x, 1, 2);
        for (a, b) in twice.data().iter().zip(once.data()) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn noise_scale_shift_dropout_do_what_they_say() {
        let x = data();
        let y = Drift { scale: 2.0, ..Default::default() }.apply(&x, 1, 2);
        assert!(x.data().iter().zip(y.data()).all(|(a, b)| (2.0 * a - b).abs() < 1e-6));
        let y = Drift { dropout: 0.5, ..Default::default() }.apply(&x, 1, 2);
        let zeros = y.data().iter().filter(|&&v| v == 0.0).count() as f64 / 350.0;
        assert!((0.35..0.65).contains(&zeros), "dropout zeroed {zeros}");
        let y = Drift { noise: 0.5, ..Default::default() }.apply(&x, 1, 2);
        let var: f64 =
            x.data().iter().zip(y.data()).map(|(a, b)| ((b - a) as f64).powi(2)).sum::<f64>() / 350.0;
        assert!((0.15..0.35).contains(&var), "noise variance {var}");
        assert_eq!(y, Drift { noise: 0.5, ..Default::default() }.apply(&x, 1, 2), "seeded");
        let y = Drift { shift: 1.0, ..Default::default() }.apply(&x, 1, 2);
        let moved: Vec<f32> = (0..7).map(|j| y.row(0)[j] - x.row(0)[j]).collect();
        assert!((0..50).all(|i| (0..7).all(|j| (y.row(i)[j] - x.row(i)[j] - moved[j]).abs() < 1e-5)));
    }

    #[test]
    fn shift_direction_does_not_depend_on_the_rotation() {
        let x = data();
        let moved = |rotation: f64| {
            let rotated = Drift { rotation, ..Default::default() }.apply(&x, 3, 4);
            let both = Drift { rotation, shift: 1.5, ..Default::default() }.apply(&x, 3, 4);
            both.row(0).iter().zip(rotated.row(0)).map(|(b, r)| b - r).collect::<Vec<f32>>()
        };
        let (still, turned, far) = (moved(0.0), moved(30.0), moved(60.0));
        for ((a, b), c) in still.iter().zip(&turned).zip(&far) {
            assert!((a - b).abs() < 1e-4 && (a - c).abs() < 1e-4, "{still:?} {turned:?} {far:?}");
        }
    }

    #[test]
    fn class_prior_keeps_rows_in_proportion() {
        let ids: Vec<usize> = (0..2000).map(|i| i % 2).collect();
        let labels = Labels::from_class_ids(&ids, 2).unwrap();
        let rows: Vec<u32> = (0..2000).collect();
        let kept =
            Drift { class_prior: Some(vec![1.0, 0.25]), ..Default::default() }.reweight(&labels, &rows, 9);
        let ones = kept.iter().filter(|&&r| r % 2 == 1).count() as f64;
        let zeros = kept.len() as f64 - ones;
        assert_eq!(zeros, 1000.0);
        assert!((200.0..300.0).contains(&ones), "class 1 kept {ones}");
    }
}
