//! Continual-learning metrics over an [`AccuracyMatrix`].
//!
//! Notation: `R[t][p]` is the metric (mAP) of ordered pair p = (query, database)
//! after stage t, t = 0..=T with stage 0 the evaluation before training and T
//! the last stage. t_p ([`AccuracyMatrix::both_trained_at`]) is the first stage
//! after which both modalities of p have been trained. A pair is cross-modal
//! when query != database. Every function returns `None` (JSON `null`), never
//! NaN, when no pair qualifies. The function names are the JSON keys of
//! `summary.json`.

use crate::matrix::AccuracyMatrix;

/// Mean of the values, `None` when there are none.
fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Pairs with t_p defined, as (pair index, t_p).
fn learned_pairs(m: &AccuracyMatrix) -> impl Iterator<Item = (usize, usize)> + '_ {
    m.pairs.iter().enumerate().filter_map(|(i, (q, d))| m.both_trained_at(q, d).map(|t| (i, t)))
}

/// Pairs learned strictly before the last stage, so they can have been forgotten since.
fn forgettable_pairs(m: &AccuracyMatrix) -> impl Iterator<Item = (usize, usize)> + '_ {
    let last = m.last_stage();
    learned_pairs(m).filter(move |&(_, t)| t < last)
}

fn is_cross(m: &AccuracyMatrix, p: usize) -> bool {
    m.pairs[p].0 != m.pairs[p].1
}

/// Final row `R[T]`.
fn last_row(m: &AccuracyMatrix) -> &[f64] {
    m.values.last().map(Vec::as_slice).unwrap_or(&[])
}

/// `acc`: mean over cross-modal pairs (query != database) of `R[T][p]`.
pub fn acc(m: &AccuracyMatrix) -> Option<f64> {
    let last = last_row(m);
    mean((0..last.len()).filter(|&p| is_cross(m, p)).map(|p| last[p]))
}

/// `acc_all_pairs`: mean over all pairs, intra-modal (query == database) included, of `R[T][p]`.
pub fn acc_all_pairs(m: &AccuracyMatrix) -> Option<f64> {
    mean(last_row(m).iter().copied())
}

/// `bwt` (backward transfer, Lopez-Paz & Ranzato 2017): mean over all pairs with
/// t_p defined and t_p < T of `R[T][p]` − `R[t_p][p]`. Negative means forgetting.
pub fn bwt(m: &AccuracyMatrix) -> Option<f64> {
    let last = last_row(m);
    mean(forgettable_pairs(m).map(|(p, t)| last[p] - m.values[t][p]))
}

/// `bwt_cross`: [`bwt`] restricted to cross-modal pairs (query != database).
pub fn bwt_cross(m: &AccuracyMatrix) -> Option<f64> {
    let last = last_row(m);
    mean(forgettable_pairs(m).filter(|&(p, _)| is_cross(m, p)).map(|(p, t)| last[p] - m.values[t][p]))
}

/// `forgetting_max_prev` (Chaudhry et al. 2018): mean over pairs with t_p defined
/// and t_p < T of max_{t in t_p..=T−1} `R[t][p]` − `R[T][p]`: the drop from the best
/// value reached once the pair was learned.
pub fn forgetting_max_prev(m: &AccuracyMatrix) -> Option<f64> {
    let last = last_row(m);
    let t_last = m.last_stage();
    mean(forgettable_pairs(m).map(|(p, tp)| max_over(m, p, tp, t_last) - last[p]))
}

/// `forgetting_initial`: mean over pairs with t_p defined and t_p < T of
/// `R[t_p][p]` − `R[T][p]`: the drop from the value right after the pair was learned
/// (equals −[`bwt`]).
pub fn forgetting_initial(m: &AccuracyMatrix) -> Option<f64> {
    let last = last_row(m);
    mean(forgettable_pairs(m).map(|(p, t)| m.values[t][p] - last[p]))
}

/// `forgetting_max_all`: mean over pairs with t_p defined and t_p < T of
/// max_{t in 0..=T−1} `R[t][p]` − `R[T][p]`: the drop from the best value at any
/// earlier stage, stage 0 and stages before t_p included.
pub fn forgetting_max_all(m: &AccuracyMatrix) -> Option<f64> {
    let last = last_row(m);
    let t_last = m.last_stage();
    mean(forgettable_pairs(m).map(|(p, _)| max_over(m, p, 0, t_last) - last[p]))
}

/// `fwt` (forward transfer, Lopez-Paz & Ranzato 2017): mean over pairs with t_p
/// defined and t_p ≥ 2 of `R[t_p − 1][p]` − `R[0][p]`: how much the stages before
/// the pair was complete already helped it, relative to the untrained model.
/// Pairs with t_p = 1 are left out because their term is `R[0][p]` − `R[0][p]` = 0
/// by construction (GEM's definition likewise skips the first task).
pub fn fwt(m: &AccuracyMatrix) -> Option<f64> {
    let first = m.values.first()?;
    mean(learned_pairs(m).filter(|&(_, t)| t >= 2).map(|(p, t)| m.values[t - 1][p] - first[p]))
}

/// `intransigence` (Chaudhry et al. 2018): mean over pairs with t_p defined (in
/// `m`) and present in `joint` of `R_joint[t_p][p]` − `R[t_p][p]`: how far the learner is,
/// at the moment it completes each pair, from the model trained jointly on the same stages
/// 1..t_p (the `joint` learner at stage t has seen the data of stages 1..t, so its row t_p
/// is the paper's reference a*_k). `joint` must follow the same schedule; pairs whose
/// stage it lacks are left out.
pub fn intransigence(m: &AccuracyMatrix, joint: &AccuracyMatrix) -> Option<f64> {
    mean(learned_pairs(m).filter_map(|(p, t)| {
        let (q, d) = &m.pairs[p];
        joint.get(t, q, d).map(|reference| reference - m.values[t][p])
    }))
}

/// max over stages `from..to` (exclusive end) of `R[t][p]`; `R[from][p]` if the range is empty.
fn max_over(m: &AccuracyMatrix, p: usize, from: usize, to: usize) -> f64 {
    m.values[from..to.max(from + 1)].iter().map(|row| row[p]).fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("metric should be defined");
        assert!((a - b).abs() < EPS, "{a} != {b}");
    }

    /// Matrix over modalities with the given per-stage trained modality and
    /// rows given in pair order (q major, d minor over `mods`).
    fn matrix(mods: &[&str], trained: &[&str], rows: &[&[f64]]) -> AccuracyMatrix {
        let pairs: Vec<(String, String)> =
            mods.iter().flat_map(|q| mods.iter().map(move |d| (q.to_string(), d.to_string()))).collect();
        assert_eq!(rows.len(), trained.len() + 1);
        assert!(rows.iter().all(|r| r.len() == pairs.len()));
        AccuracyMatrix {
            metric: "map".into(),
            modalities: mods.iter().map(|s| s.to_string()).collect(),
            trained: std::iter::once(None).chain(trained.iter().map(|t| Some(t.to_string()))).collect(),
            values: rows.iter().map(|r| r.to_vec()).collect(),
            pairs,
        }
    }

    /// Three modalities a, b, c trained at stages 1, 2, 3.
    /// Pair order: aa ab ac ba bb bc ca cb cc.
    /// t_p: aa 1; ab ba bb 2; ac bc ca cb cc 3 (= T).
    fn abc() -> AccuracyMatrix {
        matrix(
            &["a", "b", "c"],
            &["a", "b", "c"],
            &[
                //  aa   ab   ac   ba   bb   bc   ca   cb   cc
                &[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], // stage 0
                &[0.8, 0.2, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1], // stage 1 (a)
                &[0.6, 0.7, 0.2, 0.5, 0.9, 0.1, 0.2, 0.2, 0.1], // stage 2 (b)
                &[0.5, 0.6, 0.5, 0.4, 0.7, 0.6, 0.4, 0.5, 0.9], // stage 3 (c)
            ],
        )
    }

    #[test]
    fn acc_on_abc() {
        let m = abc();
        // cross: ab .6 ac .5 ba .4 bc .6 ca .4 cb .5 -> 3.0 / 6
        close(acc(&m), 3.0 / 6.0);
        // all: 3.0 + aa .5 + bb .7 + cc .9 = 5.1 -> 5.1 / 9
        close(acc_all_pairs(&m), 5.1 / 9.0);
    }

    #[test]
    fn bwt_and_forgetting_on_abc() {
        let m = abc();
        // Forgettable (t_p < 3): aa (t=1), ab ba bb (t=2).
        // aa: R3 .5 - R1 .8 = -.3 ; ab: .6-.7 = -.1 ; ba: .4-.5 = -.1 ; bb: .7-.9 = -.2
        close(bwt(&m), (-0.3 - 0.1 - 0.1 - 0.2) / 4.0);
        // cross only: ab, ba -> (-.1 - .1) / 2
        close(bwt_cross(&m), -0.2 / 2.0);
        close(forgetting_initial(&m), 0.7 / 4.0);
        // max_prev: aa max(R1 .8, R2 .6) - .5 = .3 ; ab max(R2 .7) - .6 = .1 ;
        // ba .5 - .4 = .1 ; bb .9 - .7 = .2
        close(forgetting_max_prev(&m), 0.7 / 4.0);
        // max_all over stages 0..=2: same maxima here (stage 0 is all 0.1).
        close(forgetting_max_all(&m), 0.7 / 4.0);
    }

    #[test]
    fn fwt_on_abc() {
        let m = abc();
        // t_p >= 2: ab ba bb (t=2) use R1; ac bc ca cb cc (t=3) use R2; minus R0 = .1
        // ab .2-.1=.1 ba .2-.1=.1 bb .1-.1=0 ac .2-.1=.1 bc .1-.1=0
        // ca .2-.1=.1 cb .2-.1=.1 cc .1-.1=0 -> .5 / 8
        close(fwt(&m), 0.5 / 8.0);
    }

    #[test]
    fn intransigence_on_abc() {
        let m = abc();
        // Joint reference on the same schedule, a different value at every stage, so taking
        // any row but t_p's (e.g. the final one) gives another number.
        let joint =
            matrix(&["a", "b", "c"], &["a", "b", "c"], &[&[0.0; 9], &[0.85; 9], &[0.9; 9], &[0.95; 9]]);
        // R[t_p]: aa R1 .8 -> .05; ab .7 ba .5 bb .9 (R2, joint .9) -> .2 .4 0;
        //         ac .5 bc .6 ca .4 cb .5 cc .9 (R3, joint .95) -> .45 .35 .55 .45 .05
        close(intransigence(&m, &joint), 2.5 / 9.0);
        // The joint run scored against itself is 0.
        close(intransigence(&joint, &joint), 0.0);
        // A shorter joint run: pairs completed at stage 3 are left out (.65 over 4 pairs).
        let short = matrix(&["a", "b", "c"], &["a", "b"], &[&[0.0; 9], &[0.85; 9], &[0.9; 9]]);
        close(intransigence(&m, &short), 0.65 / 4.0);
    }

    #[test]
    fn max_prev_differs_from_max_all_and_initial() {
        // Two modalities x, y trained at stages 1, 2; T = 3 trains x again.
        // Pair order: xx xy yx yy.
        let m = matrix(
            &["x", "y"],
            &["x", "y", "x"],
            &[
                &[0.9, 0.2, 0.2, 0.3], // stage 0: xx happens to start high
                &[0.5, 0.3, 0.3, 0.3], // stage 1 (x)
                &[0.7, 0.6, 0.4, 0.8], // stage 2 (y)
                &[0.6, 0.5, 0.5, 0.4], // stage 3 (x again)
            ],
        );
        // t_p: xx 1 (first training counts), xy yx yy 2.
        assert_eq!(m.both_trained_at("x", "x"), Some(1));
        assert_eq!(m.both_trained_at("y", "x"), Some(2));
        // initial: xx .5-.6=-.1 xy .6-.5=.1 yx .4-.5=-.1 yy .8-.4=.4 -> .3/4
        close(forgetting_initial(&m), 0.3 / 4.0);
        close(bwt(&m), -0.3 / 4.0);
        // max_prev: xx max(.5,.7)-.6=.1 xy .6-.5=.1 yx .4-.5=-.1 yy .8-.4=.4 -> .5/4
        close(forgetting_max_prev(&m), 0.5 / 4.0);
        // max_all: xx max(.9,.5,.7)-.6=.3 xy max(.2,.3,.6)-.5=.1
        //          yx max(.2,.3,.4)-.5=-.1 yy max(.3,.3,.8)-.4=.4 -> .7/4
        close(forgetting_max_all(&m), 0.7 / 4.0);
        // fwt: t_p >= 2: xy .3-.2=.1 yx .3-.2=.1 yy .3-.3=0 -> .2/3
        close(fwt(&m), 0.2 / 3.0);
        // bwt_cross: xy R3-R2 .5-.6=-.1, yx .5-.4=.1 -> 0
        close(bwt_cross(&m), 0.0);
    }

    #[test]
    fn schedule_order_differs_from_modality_order() {
        // Modalities listed a, b but trained b first then a.
        // Pair order: aa ab ba bb. t_p: bb 1; aa ab ba 2 (= T).
        let m = matrix(
            &["a", "b"],
            &["b", "a"],
            &[&[0.1, 0.1, 0.1, 0.1], &[0.1, 0.2, 0.3, 0.9], &[0.8, 0.6, 0.7, 0.5]],
        );
        // Only bb is forgettable: .5 - .9
        close(bwt(&m), -0.4);
        assert_eq!(bwt_cross(&m), None);
        close(forgetting_max_prev(&m), 0.4);
        // fwt: aa .1-.1=0 ab .2-.1=.1 ba .3-.1=.2 -> .3/3
        close(fwt(&m), 0.1);
        close(acc(&m), (0.6 + 0.7) / 2.0);
    }

    #[test]
    fn undefined_metrics_are_none() {
        // Only stage 0: nothing trained.
        let m = matrix(&["a", "b"], &[], &[&[0.1, 0.2, 0.3, 0.4]]);
        close(acc(&m), 0.25);
        for f in [bwt, bwt_cross, forgetting_max_prev, forgetting_initial, forgetting_max_all, fwt] {
            assert_eq!(f(&m), None);
        }
        assert_eq!(intransigence(&m, &m), None);
        // One modality: no cross-modal pair.
        let m = matrix(&["a"], &["a"], &[&[0.1], &[0.5]]);
        assert_eq!(acc(&m), None);
        close(acc_all_pairs(&m), 0.5);
        // Learned only at the last stage: nothing to forget.
        assert_eq!(bwt(&m), None);
    }
}
