//! What converts to which format: runs `foresight-export convert --json` on every model of an
//! export corpus (a folder with `manifest.json`, as `tests/fixtures/exports/make_exports.py`
//! writes) and prints a markdown table — variant, exporter, format taken, the CLI's parity
//! against onnxruntime (max |Δ|, top-10 agreement over its 64 generated sequences), whether the
//! bundle, loaded as the SDK loads it, gives the top-20 onnxruntime stored in the manifest for
//! each of its fixed sequences, and the converter's notes. The README's table is this output:
//!
//! ```sh
//! cargo run -q -p foresight-export --example conversion_table -- tests/fixtures/exports
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn main() -> Result<(), String> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "tests/fixtures/exports".into()));
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).map_err(|e| format!("{}: {e}", dir.display()))?)
        .map_err(|e| format!("manifest.json: {e}"))?;
    let models = manifest["models"].as_object().ok_or("manifest.json has no models")?;
    let items = manifest["items"].as_u64().ok_or("manifest.json has no item count")?;
    let bin = converter()?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let catalog = work.path().join("catalog.csv");
    let ids: String = (0..items).map(|i| format!("item-{i}\n")).collect();
    std::fs::write(&catalog, format!("id\n{ids}")).map_err(|e| e.to_string())?;

    println!("| variant | exporter | format | max \\|Δ\\| vs onnxruntime | top-10 agreement | same top-20 | note |");
    println!("|---|---|---|---|---|---|---|");
    for (file, entry) in models {
        let out = Command::new(&bin)
            .arg("convert")
            .arg(dir.join(file))
            .arg("--catalog")
            .arg(&catalog)
            .arg("--out")
            .arg(work.path().join("out.fsb"))
            .arg("--json")
            .output()
            .map_err(|e| format!("running {}: {e}", bin.display()))?;
        let (variant, exporter) = (entry["variant"].as_str().unwrap_or(file), entry["exporter"].as_str().unwrap_or("?"));
        if !out.status.success() {
            // The first reason, up to its node: the rest is the fix, in the CLI's own message.
            let err = String::from_utf8_lossy(&out.stderr);
            let why = err.lines().find(|l| l.trim_start().starts_with("- ")).or_else(|| err.lines().next()).unwrap_or("");
            let why = why.trim().trim_start_matches("- ").trim_start_matches("error: ");
            let why = why.split_once("): ").map_or(why.to_owned(), |(node, _)| format!("{node})"));
            println!("| {variant} | {exporter} | refused | – | – | – | {} |", cell(&why));
            continue;
        }
        let summary: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{file}: --json output: {e}"))?;
        let ort = summary["parity"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["reference"].as_str().is_some_and(|r| r.starts_with("onnxruntime"))));
        let (delta, agree) = match ort {
            Some(p) => (format!("{:.1e}", p["maxAbsDelta"].as_f64().unwrap_or(f64::NAN)), p["topKAgreement"].to_string()),
            None => ("no onnxruntime".into(), "–".into()),
        };
        let top20 = same_top20(&work.path().join("out.fsb"), entry);
        let notes: Vec<String> = summary["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            // Said of every model in the corpus: not what tells the variants apart.
            .filter(|n| !n.starts_with("--kind") && !n.starts_with("max_seq_len"))
            .map(|n| n.split(": stripped").next().map_or(n.to_owned(), |head| format!("{head}: stripped")))
            .collect();
        let format = summary["format"].as_str().unwrap_or("?");
        println!("| {variant} | {exporter} | {format} | {delta} | {agree} | {top20} | {} |", cell(&notes.join("; ")));
    }
    Ok(())
}

/// For how many of the manifest's fixed sequences the bundle, run as the SDK runs it, ranks
/// the same 20 items first, in the same order, as onnxruntime did.
fn same_top20(bundle: &Path, entry: &Value) -> String {
    let run = || -> Result<String, String> {
        let b = foresight::contract::bundle::Bundle::parse(std::fs::read(bundle).map_err(|e| e.to_string())?, None)
            .map_err(|e| e.to_string())?;
        let bytes = b.model_bytes().map_err(|e| e.to_string())?;
        let mut m = match b.manifest.model.format {
            foresight::contract::manifest::ModelFormat::Nnef => foresight::infer::model::RecommenderModel::load_nnef(bytes, 50),
            foresight::contract::manifest::ModelFormat::Onnx => {
                foresight::infer::model::RecommenderModel::load(bytes, &Default::default(), 50)
            }
            _ => foresight::infer::model::RecommenderModel::from_kernel_bundle(&b.manifest, bytes)
                .map_err(|e| foresight::ModelError::Run { model: "recommender", detail: e.to_string() }),
        }
        .map_err(|e| e.to_string())?;
        let cases = entry["cases"].as_array().ok_or("no cases")?;
        let mut same = 0;
        for case in cases {
            let seq: Vec<usize> = serde_json::from_value(case["indices"].clone()).map_err(|e| e.to_string())?;
            let want: Vec<usize> = serde_json::from_value(case["top20"].clone()).map_err(|e| e.to_string())?;
            let mut scores = Vec::new();
            m.scores_into(&seq, &mut scores).map_err(|e| e.to_string())?;
            let mut idx: Vec<usize> = (0..scores.len()).collect();
            idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            same += usize::from(idx[..want.len().min(idx.len())] == want[..]);
        }
        Ok(format!("{same}/{} sequences", cases.len()))
    };
    run().unwrap_or_else(|e| format!("not run: {e}"))
}

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The converter binary of this build profile, built first (an example does not build its
/// package's binaries).
fn converter() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/examples/conversion_table -> target/<profile>/foresight-export
    let profile_dir = exe.parent().and_then(Path::parent).ok_or("no build directory")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", "foresight-export", "--bin", "foresight-export"]);
    if release {
        build.arg("--release");
    }
    let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("building foresight-export failed".into());
    }
    Ok(profile_dir.join(format!("foresight-export{}", std::env::consts::EXE_SUFFIX)))
}
