//! `foresight-export train` as a data scientist runs it: a real process on files it writes, and
//! the emitted model loaded by the SDK's own runtime.

mod common;

use std::path::{Path, PathBuf};

use common::{run, Lcg};
use foresight::infer::model::{RecommenderIo, RecommenderModel};
use foresight::recommend::CatalogItem;
use serde_json::Value;

/// A fresh directory per test (tests run in parallel).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("foresight-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const ITEMS: u64 = 30;

fn item_id(k: u64) -> String {
    format!("item-{k:03}")
}

/// 200 users; item k is followed by item k+1 (mod 30) four times in five, else by a random item.
fn planted_csv(dir: &Path) -> PathBuf {
    let mut rng = Lcg(7);
    let mut text = String::from("user_id,item_id,timestamp\n");
    for user in 0..200 {
        let mut k = rng.below(ITEMS);
        let mut t = 1_700_000_000u64;
        for _ in 0..6 + rng.below(9) {
            text.push_str(&format!("u{user},{},{t}\n", item_id(k)));
            t += 1 + rng.below(600);
            k = if rng.below(5) < 4 { (k + 1) % ITEMS } else { rng.below(ITEMS) };
        }
    }
    let path = dir.join("planted.csv");
    std::fs::write(&path, text).expect("write");
    path
}

fn train(dir: &Path, interactions: &Path, extra: &[&str]) -> (i32, String, String) {
    let model = dir.join("model.onnx");
    let catalog = dir.join("catalog.json");
    let mut args = vec![
        "train",
        "--interactions",
        interactions.to_str().expect("utf-8"),
        "--out-model",
        model.to_str().expect("utf-8"),
        "--out-catalog",
        catalog.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn catalog(dir: &Path) -> Vec<CatalogItem> {
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join("catalog.json")).expect("catalog")).expect("JSON");
    serde_json::from_value(json["items"].clone()).expect("the SDK's catalog item format")
}

#[test]
fn the_model_learns_the_planted_successor_and_runs_in_the_sdk() {
    let dir = temp_dir("planted");
    let data = planted_csv(&dir);
    // The default --dim (64) is capped at the 30 items: a near-permutation needs full rank (at
    // rank 16 the successor comes first for about 21 of the 30 items).
    let held_out = dir.join("held-out.onnx");
    let (code, out, err) = train(&dir, &data, &["--json", "--out-eval-model", held_out.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");

    let items = catalog(&dir);
    assert_eq!(items.len(), ITEMS as usize);
    let index = |id: &str| items.iter().position(|i| i.id == id).expect("in the catalog");
    let bytes = std::fs::read(dir.join("model.onnx")).expect("model");
    let mut model = RecommenderModel::load(&bytes, &RecommenderIo::default(), items.len()).expect("the SDK loads it");
    let mut scores = Vec::new();
    let mut first = 0;
    for k in 0..ITEMS {
        model.scores_into(&[index(&item_id(k))], &mut scores).expect("runs");
        let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).expect("scores");
        first += usize::from(best == index(&item_id((k + 1) % ITEMS)));
    }
    assert!(first >= 27, "k+1 ranked first after k for only {first} of {ITEMS} items");
    // Longer inputs (dynamic sequence axis, shorter and longer than the recent window) run too.
    for len in [2, 8, 9, 40] {
        let seq: Vec<usize> = (0..len).map(|i| i % ITEMS as usize).collect();
        model.scores_into(&seq, &mut scores).expect("runs");
        assert!(scores.iter().all(|s| s.is_finite()));
    }

    let report: Value = serde_json::from_str(&out).expect("--json prints JSON");
    let rows = report["evaluation"]["models"].as_array().expect("models");
    let metric = |name: &str, key: &str| {
        rows.iter().find(|r| r["model"].as_str().is_some_and(|m| m.starts_with(name))).expect(name)[key].as_f64().expect("number")
    };
    for key in ["hr@10", "ndcg@10", "mrr@20"] {
        assert!(metric("transition-svd", key) > metric("popularity", key) + 0.2, "{key}: {rows:?}");
    }
    assert_eq!(rows[2]["users"], 200);
    assert!(report["evaluation"]["onnx_vs_reference_max_abs_diff"].as_f64().expect("diff") < 1e-3);
    assert_eq!(report["model"]["rank"], ITEMS);
    // The evaluated model (without each user's last two interactions) is a different, loadable one.
    let evaluated = std::fs::read(&held_out).expect("evaluated model");
    assert_ne!(evaluated, bytes);
    assert_eq!(report["evaluation"]["evaluated_onnx_bytes"], evaluated.len());
    RecommenderModel::load(&evaluated, &RecommenderIo::default(), items.len()).expect("the SDK loads it");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recbole_atomic_files_give_categories_prices_and_titles() {
    let dir = temp_dir("recbole");
    // Typed RecBole headers, tab-separated, a rating column in between, timestamp ties.
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for user in 1..=20 {
        for (step, item) in [10, 20, 30, 40].iter().enumerate() {
            inter.push_str(&format!("{user}\t{}\t4\t{}\n", item + user % 2, 880000000 + step.min(2)));
        }
    }
    let inter_path = dir.join("tiny.inter");
    std::fs::write(&inter_path, inter).expect("write");
    let item_path = dir.join("tiny.item");
    let mut item = String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    for id in [10, 11, 20, 21, 30, 31, 40] {
        item.push_str(&format!("{id}\tFilm {id}\t{}\tDrama Comedy\n", 1990 + id / 10));
    }
    item.push_str("99\tunkonwn\tunkonwn\tunknown\n");
    std::fs::write(&item_path, item).expect("write");
    let titles = dir.join("titles.json");
    let (code, out, err) =
        train(&dir, &inter_path, &["--items", item_path.to_str().expect("utf-8"), "--out-titles", titles.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("line 9") && err.contains("not a year"), "the odd year is reported: {err}");
    assert!(out.contains("bytes"), "{out}");

    let items = catalog(&dir);
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    // Numeric ids in numeric order; 41 has no metadata, 99 no interactions.
    assert_eq!(ids, ["10", "11", "20", "21", "30", "31", "40", "41"]);
    assert_eq!(items[0].category.as_deref(), Some("Drama"));
    assert_eq!(items[7].category, None);
    assert_eq!(items[0].popularity, 10.0);
    // 3.99 + 0.10 * (1991 - 1930) + 4.00 * 10 / 10
    assert_eq!(items[0].price, Some(14.09));
    let t: Value = serde_json::from_slice(&std::fs::read(&titles).expect("titles")).expect("JSON");
    assert_eq!(t["items"][0]["title"], "Film 10");
    assert_eq!(t["items"][0]["year"], 1991);
    assert_eq!(t["items"][7]["title"], Value::Null);
    let bytes = std::fs::read(dir.join("model.onnx")).expect("model");
    RecommenderModel::load(&bytes, &RecommenderIo::default(), items.len()).expect("the SDK loads it");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_data_same_seed_same_model() {
    let dir = temp_dir("deterministic");
    let data = planted_csv(&dir);
    let (code, _, err) = train(&dir, &data, &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    let first = std::fs::read(dir.join("model.onnx")).expect("model");
    let (code, _, err) = train(&dir, &data, &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first, std::fs::read(dir.join("model.onnx")).expect("model"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_onnx_scores_another_model_on_the_same_targets_on_the_sdk_kernel() {
    let dir = temp_dir("eval-onnx");
    let data = planted_csv(&dir);
    let held_out = dir.join("held-out.onnx");
    let (code, _, err) = train(&dir, &data, &["--json", "--out-eval-model", common::s(&held_out)]);
    assert_eq!(code, 0, "{err}");
    // The evaluated model itself, given back: the kernel row must equal tract's row.
    let again = format!("again={}", held_out.display());
    let (code, out, err) = train(&dir, &data, &["--json", "--eval-onnx", &again]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let rows = report["evaluation"]["models"].as_array().expect("models");
    let row = |name: &str| rows.iter().find(|r| r["model"].as_str().is_some_and(|m| m.starts_with(name))).expect(name).clone();
    let (kernel, tract) = (row("again (transition kernel)"), row("transition-svd"));
    for key in ["hr@10", "ndcg@10", "mrr@20", "coverage@10"] {
        let (a, b) = (kernel[key].as_f64().expect(key), tract[key].as_f64().expect(key));
        assert!((a - b).abs() < 1e-3, "{key}: kernel {a} vs tract {b}");
    }
    assert_eq!(kernel["users"], tract["users"]);

    // A model of another catalog, a file that is not there, and a malformed argument.
    let gru = common::fixture("session_gru.onnx");
    let other = format!("gru={}", gru.display());
    let (code, _, err) = train(&dir, &data, &["--eval", "--eval-onnx", &other]);
    assert_ne!(code, 0);
    assert!(err.contains("--eval-onnx gru") && err.contains("the catalog has 30"), "{err}");
    let (code, _, err) = train(&dir, &data, &["--eval", "--eval-onnx", "x=/nonexistent/model.onnx"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
    let (code, _, err) = train(&dir, &data, &["--eval", "--eval-onnx", "model.onnx"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not NAME=PATH"), "{err}");
    let (code, _, err) = train(&dir, &data, &["--eval-onnx", &again]);
    assert_ne!(code, 0);
    assert!(err.contains("needs --eval"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_naming_the_file_and_line() {
    let dir = temp_dir("bad");
    let cases: [(&str, &str, &[&str]); 5] = [
        ("user_id,item_id\nu1,a\n", "missing column", &["line 1", "timestamp"]),
        ("user_id,item_id,timestamp\nu1,a,1\nu1,b,yesterday\n", "non-numeric timestamp", &["line 3", "column 3", "yesterday"]),
        ("", "empty file", &["line 1", "empty"]),
        ("user_id,item_id,timestamp\nu1,a,1\nu2,b\n", "short line", &["line 3", "2 field(s)", "`timestamp`"]),
        ("user_id\titem_id\ttimestamp\nu1\t\t5\n", "empty item id", &["line 2", "item_id"]),
    ];
    for (i, (text, what, needles)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.csv"));
        std::fs::write(&path, text).expect("write");
        let (code, _, err) = train(&dir, &path, &["--eval"]);
        assert_eq!(code, 2, "{what}: {err}");
        assert!(err.contains(path.to_str().expect("utf-8")), "{what}: names the file: {err}");
        for needle in *needles {
            assert!(err.contains(needle), "{what}: expected `{needle}` in: {err}");
        }
    }
    assert!(!dir.join("model.onnx").exists(), "nothing is written from bad input");
    let _ = std::fs::remove_dir_all(&dir);
}
