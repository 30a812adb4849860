//! Every learner, a few epochs on real mfeat data: its loss falls and its codes
//! retrieve far above chance. Plus the memory's balance and budget.

use std::path::Path;

use seqmodal_hamming::Metric;
use seqmodal_learner::{run, EvalRow, Experiment, Memory, ModalityTrain, Observer, Registry, RunOptions};

/// Whether learner `name` keeps a memory (declares the `memory` key).
fn uses_memory(name: &str) -> bool {
    (Registry::builtin().get(name).unwrap().keys)().iter().any(|k| k.name == "memory")
}

fn mfeat() -> seqmodal_data::Dataset {
    let mut ds =
        seqmodal_data::load_mfeat(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mfeat"))
            .unwrap();
    ds.standardize();
    ds
}

#[derive(Default)]
struct Losses(Vec<(usize, f64)>);
impl Observer for Losses {
    fn on_epoch(&mut self, stage: usize, _epoch: usize, loss: f64) {
        self.0.push((stage, loss));
    }
}

fn experiment(kind: &str) -> Experiment {
    let memory = if uses_memory(kind) { "memory = 60\nreplay_batch = 32\n" } else { "" };
    let text = format!(
        "name = \"t\"\nseed = 5\n[dataset]\nkind = \"mfeat\"\npath = \"datasets/mfeat\"\n[model]\nbits = 16\nhidden = 64\n\
         adapter = \"shared-pad\"\n[learner]\nkind = \"{}\"\n{memory}[train]\nepochs = 3\nbatch = 64\nlr = 3e-3\n\
         [[stages]]\nmodality = \"kar\"\n[[stages]]\nmodality = \"pix\"\n[[stages]]\nmodality = \"zer\"\n",
        kind
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.toml");
    std::fs::write(&p, text).unwrap();
    Experiment::load(&p, &[]).unwrap()
}

fn map(rows: &[EvalRow], stage: usize, q: &str, d: &str) -> f64 {
    rows.iter()
        .find(|r| r.stage == stage && r.query == q && r.database == d && r.metric == Metric::Map)
        .unwrap()
        .value
}

#[test]
fn every_learner_learns() {
    let ds = mfeat();
    for entry in Registry::builtin().entries() {
        let kind = entry.name;
        let exp = experiment(kind);
        let mut losses = Losses::default();
        let res = run(&exp, &ds, &RunOptions::default(), &mut losses).unwrap();
        let name = kind;
        // Loss falls within the first stage (3 epochs).
        let s1: Vec<f64> = losses.0.iter().filter(|(s, _)| *s == 1).map(|(_, l)| *l).collect();
        assert_eq!(s1.len(), 3, "{name}");
        assert!(s1[2] < s1[0], "{name}: stage-1 loss {s1:?} does not fall");
        // Balanced 10-class data: chance mAP is about 0.1.
        let last = exp.stages.len();
        let zz = map(&res.rows, last, "zer", "zer");
        let cross = map(&res.rows, last, "pix", "zer");
        assert!(zz > 0.3, "{name}: zer->zer mAP {zz}");
        assert!(cross > 0.2, "{name}: pix->zer mAP {cross}");
        assert!(
            res.passes >= res.stage_samples,
            "{name}: passes {} < stage samples {}",
            res.passes,
            res.stage_samples
        );
        let uses_memory = uses_memory(kind);
        assert_eq!(res.footprint.memory_samples > 0, uses_memory, "{name}: {:?}", res.footprint);
        assert!(res.footprint.memory_samples <= 60, "{name}");
    }
}

#[test]
fn replay_forgets_less_than_finetune() {
    let ds = mfeat();
    let ft = run(&experiment("finetune"), &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
    let er = run(&experiment("er"), &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
    // kar->kar after its own stage vs at the end.
    let drop = |rows: &[EvalRow]| map(rows, 1, "kar", "kar") - map(rows, 3, "kar", "kar");
    assert!(drop(&er.rows) < drop(&ft.rows), "er drop {} vs finetune {}", drop(&er.rows), drop(&ft.rows));
}

/// `experiment(kind)` with `extra` lines added to its `[learner]` table.
fn experiment_with(kind: &str, extra: &str) -> Experiment {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.toml");
    std::fs::write(&p, experiment(kind).to_toml().replace("[train]", &format!("{extra}\n[train]"))).unwrap();
    Experiment::load(&p, &[]).unwrap()
}

#[test]
fn every_replay_learner_has_the_replay_options_off_by_default() {
    let ds = mfeat();
    for kind in ["er", "agem", "der", "mer"] {
        let plain = run(&experiment(kind), &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
        let zero = experiment_with(kind, "");
        assert_eq!(zero.learner.values.float("replay_noise").unwrap(), 0.0, "{kind}");
        let on = experiment_with(kind, "").to_toml().replace("replay_distill = 0.0", "replay_distill = 5.0");
        let on = on.replace("replay_noise = 0.0", "replay_noise = 0.5");
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.toml");
        std::fs::write(&p, on).unwrap();
        let on =
            run(&Experiment::load(&p, &[]).unwrap(), &ds, &RunOptions::default(), &mut Losses::default())
                .unwrap();
        // The options change the training (noise and a distillation term on replayed rows) and
        // distillation keeps the previous model.
        assert_ne!(plain.rows, on.rows, "{kind}");
        assert_eq!((plain.footprint.extra_param_copies, on.footprint.extra_param_copies), (0, 1), "{kind}");
    }
}

#[test]
fn ewc_at_its_default_strength_forgets_less_than_finetune() {
    // With a per-batch Fisher (about `batch` times too small) EWC at lambda = 100 forgot as
    // much as finetune did.
    let ds = mfeat();
    let ft = run(&experiment("finetune"), &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
    let ewc = run(&experiment("ewc"), &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
    let drop = |rows: &[EvalRow]| map(rows, 1, "kar", "kar") - map(rows, 3, "kar", "kar");
    assert!(
        drop(&ewc.rows) < 0.5 * drop(&ft.rows),
        "ewc drop {} vs finetune {}",
        drop(&ewc.rows),
        drop(&ft.rows)
    );
}

#[test]
fn memory_is_balanced_across_modalities_and_classes_and_keeps_its_budget() {
    let ds = mfeat();
    let data = ModalityTrain::from_dataset(&ds);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
    let mut mem = Memory::new(200);
    let stage = |m: u32| -> Vec<(u32, u32)> { (0..1500).map(|r| (m, r)).collect() };
    mem.add_stage(&stage(2), &data, &mut rng);
    assert_eq!(mem.len(), 200);
    let class_of = |it: (u32, u32)| {
        let md = &data[it.0 as usize];
        (0..md.classes).find(|&c| md.y[it.1 as usize * md.classes + c] > 0.0).unwrap()
    };
    let mut per_class = [0usize; 10];
    mem.stored().iter().for_each(|s| per_class[class_of(s.item)] += 1);
    assert_eq!(per_class, [20; 10]);
    let first: Vec<_> = mem.stored().iter().map(|s| s.item).collect();
    mem.add_stage(&stage(4), &data, &mut rng);
    assert_eq!(mem.len(), 200);
    let per_mod = mem.per_modality();
    assert_eq!((per_mod[&2], per_mod[&4]), (100, 100));
    // Re-selection keeps samples that were already stored (no churn of old memories).
    assert!(mem.stored().iter().filter(|s| s.item.0 == 2).all(|s| first.contains(&s.item)));
    let mut per_class = [0usize; 10];
    mem.stored().iter().filter(|s| s.item.0 == 4).for_each(|s| per_class[class_of(s.item)] += 1);
    assert_eq!(per_class, [10; 10]);
    // A batch draws without replacement.
    let b = mem.sample(50, &mut rng);
    let mut items: Vec<_> = b.iter().map(|s| s.item).collect();
    items.sort();
    items.dedup();
    assert_eq!(items.len(), 50);
}

#[test]
fn paired_needs_aligned_data() {
    let mut ds = mfeat();
    ds.aligned = false;
    let err = run(&experiment("paired"), &ds, &RunOptions::default(), &mut Losses::default()).unwrap_err();
    assert!(err.to_string().contains("aligned"), "{err}");
}

#[test]
fn learner_keys_are_checked_per_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("e.toml");
    let base = "name = \"t\"\n[dataset]\nkind = \"mfeat\"\npath = \"x\"\n[learner]\nkind = \"finetune\"\n";
    std::fs::write(&p, format!("{base}lambda = 3.0\n[[stages]]\nmodality = \"fac\"\n")).unwrap();
    let e = Experiment::load(&p, &[]).unwrap_err().to_string();
    assert!(e.contains("e.toml:7: learner.lambda") && e.contains("not a key of learner 'finetune'"), "{e}");
    std::fs::write(&p, format!("{base}[[stages]]\nmodality = \"fac\"\n")).unwrap();
    // Second order is real for maml, and rejected where the objective has no Hessian term.
    let e = Experiment::load(&p, &["learner.kind=meta".into(), "learner.first_order=false".into()]).unwrap();
    assert!(!e.learner.values.flag("first_order").unwrap() && e.learner.values.flag("meta_step").unwrap());
    let e = Experiment::load(
        &p,
        &[
            "learner.kind=meta".into(),
            "learner.first_order=false".into(),
            "learner.meta_objective=alternating".into(),
        ],
    )
    .unwrap_err();
    assert!(e.to_string().contains("learner.first_order") && e.to_string().contains("first-order"), "{e}");
    let e = Experiment::load(&p, &["learner.kind=meta".into(), "learner.meta_objective=reptile".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("learner.meta_objective") && e.contains("maml, alternating"), "{e}");
    let e = Experiment::load(&p, &["learner.kind=er".into(), "learner.meta_step=false".into()]).unwrap_err();
    assert!(e.to_string().contains("not a key of learner 'er'"), "{e}");
    let e = Experiment::load(&p, &["learner.kind=er".into()]).unwrap();
    assert_eq!(e.learner.values.count("memory").unwrap(), 200);
    let e = Experiment::load(&p, &["learner.kind=ewc".into(), "learner.lambda=-1".into()]).unwrap_err();
    assert!(e.to_string().contains("learner.lambda") && e.to_string().contains(">= 0"), "{e}");
    let e =
        Experiment::load(&p, &["learner.kind=ewc".into(), "learner.fisher_samples=0".into()]).unwrap_err();
    assert!(e.to_string().contains("learner.fisher_samples"), "{e}");
    let e = Experiment::load(&p, &["learner.kind=ewc".into()]).unwrap();
    assert_eq!(e.learner.values.count("fisher_samples").unwrap(), 1000);
    let e =
        Experiment::load(&p, &["learner.kind=si".into(), "learner.fisher_samples=10".into()]).unwrap_err();
    assert!(e.to_string().contains("not a key of learner 'si'"), "{e}");
}

#[test]
fn frozen_database_keeps_codes_of_trained_modalities() {
    let ds = mfeat();
    let mut exp = experiment("finetune");
    let reenc = run(&exp, &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
    exp.database = seqmodal_learner::experiment::DatabasePolicy::Frozen;
    let frozen = run(&exp, &ds, &RunOptions::default(), &mut Losses::default()).unwrap();
    // Same training (same seed), so stage 1 values agree where the database is the
    // just-trained modality, and the final kar->kar differs (old codes vs re-encoded).
    assert_eq!(map(&reenc.rows, 1, "kar", "kar"), map(&frozen.rows, 1, "kar", "kar"));
    assert_ne!(map(&reenc.rows, 3, "kar", "kar"), map(&frozen.rows, 3, "kar", "kar"));
    // Untrained database modality: re-encoded in both.
    assert_eq!(map(&reenc.rows, 1, "kar", "zer"), map(&frozen.rows, 1, "kar", "zer"));
}
