//! Every placement on the demo's real data: MovieLens-100K (scripts/fetch-data.sh, which `make
//! test` runs), a recommender trained by `foresight-export train`, checked by properties over
//! many random sessions.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::OnceLock;

use foresight::client::{Config, RecommenderConfig};
use foresight::platform::{ManualClock, MemoryStorage};
use foresight::platform::{Randomness, SeededRandomness};
use foresight::recommend::placement::Placement;
use foresight::recommend::{CatalogItem, Explanation, Recommendations, Source};
use foresight::Client;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_foresight-export");
const T0: f64 = 1_700_000_000_000.0;

struct Trained {
    model: Vec<u8>,
    catalog: Vec<CatalogItem>,
    genres: HashMap<String, HashSet<String>>,
}

/// Trains once per test binary (about half a minute in a debug build).
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ml-100k");
        assert!(data.join("ml-100k.inter").exists(), "MovieLens-100K is missing: run scripts/fetch-data.sh (make test does)");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("placements");
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(BIN)
            .args(["train", "--quiet", "--dim", "32"])
            .arg("--interactions")
            .arg(data.join("ml-100k.inter"))
            .arg("--items")
            .arg(data.join("ml-100k.item"))
            .arg("--out-model")
            .arg(dir.join("model.onnx"))
            .arg("--out-catalog")
            .arg(dir.join("catalog.json"))
            .arg("--out-titles")
            .arg(dir.join("titles.json"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let read = |name: &str| -> Value { serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap() };
        let catalog: Vec<CatalogItem> = serde_json::from_value(read("catalog.json")["items"].clone()).unwrap();
        let genres = read("titles.json")["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_owned(),
                    t["genres"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_owned()).collect(),
                )
            })
            .collect();
        Trained { model: std::fs::read(dir.join("model.onnx")).unwrap(), catalog, genres }
    })
}

type TestClient = Client<MemoryStorage, Rc<ManualClock>>;

fn client(rules: Value) -> (TestClient, Rc<ManualClock>) {
    let t = trained();
    let config = Config {
        catalog: t.catalog.clone(),
        recommender: Some(RecommenderConfig::new(t.model.clone())),
        rules: serde_json::from_value(rules).expect("rules JSON"),
        ..Config::default()
    };
    let clock = Rc::new(ManualClock::new(T0));
    let (c, _) = Client::new(config, MemoryStorage::default(), clock.clone()).expect("valid config");
    (c, clock)
}

fn ids(r: &Recommendations) -> Vec<&str> {
    r.items.iter().map(|i| i.item_id.as_str()).collect()
}

fn shares_genre(a: &str, b: &str) -> bool {
    let g = &trained().genres;
    g[a].intersection(&g[b]).next().is_some()
}

#[test]
fn similar_to_stays_mostly_in_the_films_genres() {
    let (mut c, _) = client(json!({}));
    let t = trained();
    let mut by_popularity: Vec<&CatalogItem> = t.catalog.iter().collect();
    by_popularity.sort_by(|a, b| b.popularity.total_cmp(&a.popularity));
    let (mut similar_same, mut popular_same, mut total) = (0, 0, 0);
    for film in by_popularity.iter().take(60) {
        let sim = c.place(&Placement::SimilarTo { item_id: film.id.clone(), k: Some(10), exclude: vec![] }).expect("similarTo");
        assert_eq!(sim.source, Source::Model);
        assert_eq!(sim.items.len(), 10);
        assert!(!ids(&sim).contains(&film.id.as_str()), "never the film itself");
        assert!(matches!(&sim.items[0].because, Explanation::SimilarTo { item_id, .. } if *item_id == film.id));
        let pop = c.place(&Placement::Popular { category: None, k: Some(10), exclude: vec![film.id.clone()] }).expect("popular");
        similar_same += ids(&sim).iter().filter(|id| shares_genre(id, &film.id)).count();
        popular_same += ids(&pop).iter().filter(|id| shares_genre(id, &film.id)).count();
        total += 10;
    }
    let (s, p) = (similar_same as f64 / total as f64, popular_same as f64 / total as f64);
    println!("similarTo shares a genre with the film {:.0}% of the time, popular {:.0}%", s * 100.0, p * 100.0);
    assert!(s >= 0.6 && s > p + 0.1, "similarTo {s:.2} vs popular {p:.2}");
}

#[test]
fn rules_hold_on_every_placement_over_random_sessions() {
    let t = trained();
    // The rules a shop might declare: a price range, a buried genre, a cap, a pin.
    let pinned =
        t.catalog.iter().find(|i| i.price.is_some_and(|p| (8.0..=12.0).contains(&p)) && i.category.as_deref() != Some("Horror")).unwrap();
    let rules = json!({
        "filter": {"minPrice": 5.0, "maxPrice": 12.0, "excludeCategories": ["Horror"]},
        "boosts": [{"category": "Documentary", "factor": 3.0}],
        "maxPerCategory": 3,
        "pins": [{"itemId": pinned.id, "position": 2}],
    });
    let (mut c, clock) = client(rules);
    let price = |id: &str| t.catalog.iter().find(|i| i.id == id).and_then(|i| i.price).unwrap();
    let category = |id: &str| t.catalog.iter().find(|i| i.id == id).and_then(|i| i.category.clone());
    let mut rng = SeededRandomness(99);
    for session in 0..40 {
        c.forget().unwrap();
        let n = 1 + rng.below(8) as usize;
        let mut cart = Vec::new();
        for _ in 0..n {
            let item = &t.catalog[rng.below(t.catalog.len() as u64) as usize].id;
            clock.advance_ms(10_000.0);
            c.track(&json!({"type": "product_view", "itemId": item})).unwrap();
            if rng.below(4) == 0 {
                c.track(&json!({"type": "add_to_cart", "itemId": item, "quantity": 1})).unwrap();
                cart.push(item.clone());
            }
        }
        let seed = t.catalog[rng.below(t.catalog.len() as u64) as usize].id.clone();
        let placements = [
            Placement::ForYou { k: Some(10), exclude: vec![] },
            Placement::SimilarTo { item_id: seed.clone(), k: Some(10), exclude: vec![] },
            Placement::BoughtTogether { item_ids: vec![seed.clone()], k: Some(10), exclude: vec![] },
            Placement::Popular { category: None, k: Some(10), exclude: vec![] },
            Placement::Popular { category: Some("Drama".into()), k: Some(10), exclude: vec![] },
            Placement::Trending { category: None, k: Some(10), exclude: vec![] },
            Placement::RecentlyViewed { k: Some(10), exclude: vec![] },
        ];
        for p in &placements {
            let r = c.place(p).unwrap();
            assert!(!r.items.is_empty(), "{} is never empty (session {session})", p.name());
            assert_eq!(r.placement, p.name());
            for item in &r.items {
                let id = item.item_id.as_str();
                assert!((5.0..=12.0).contains(&price(id)), "{}: {id} costs {}", p.name(), price(id));
                assert_ne!(category(id).as_deref(), Some("Horror"), "{}: {id}", p.name());
                if p.name() != "recentlyViewed" {
                    assert!(!cart.iter().any(|c| c == id), "{}: cart item {id} recommended", p.name());
                }
            }
            let mut per: HashMap<Option<String>, usize> = HashMap::new();
            for item in r.items.iter().filter(|i| !matches!(i.because, Explanation::Pinned { .. })) {
                *per.entry(category(&item.item_id)).or_default() += 1;
            }
            assert!(per.values().all(|&n| n <= 3), "{}: {per:?}", p.name());
            let unique: HashSet<&str> = ids(&r).into_iter().collect();
            assert_eq!(unique.len(), r.items.len(), "no duplicates");
            // A pin shows wherever its item may: not in the visitor's own history list, not in
            // a list of another category, not when it is in the cart or the seed itself.
            let other_category = matches!(p, Placement::Popular { category: Some(c), .. } if pinned.category.as_ref() != Some(c));
            if p.name() != "recentlyViewed" && !other_category && !cart.contains(&pinned.id) && seed != pinned.id {
                assert_eq!(r.items[1].item_id, pinned.id, "{}: the pin holds position 2", p.name());
            }
        }
    }
}

#[test]
fn rerank_is_a_personal_permutation_and_cold_starts_are_never_empty() {
    let t = trained();
    let (mut c, clock) = client(json!({}));
    let list: Vec<String> = t.catalog.iter().skip(100).take(30).map(|i| i.id.clone()).collect();
    // No history: the shop's order, said so; the other placements still answer.
    let r = c.place(&Placement::Rerank { item_ids: list.clone(), blend: None }).unwrap();
    assert_eq!(ids(&r), list.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.fallback_reason.is_some());
    for p in [
        Placement::ForYou { k: None, exclude: vec![] },
        Placement::RecentlyViewed { k: None, exclude: vec![] },
        Placement::SimilarTo { item_id: "no-such-film".into(), k: None, exclude: vec![] },
        Placement::BoughtTogether { item_ids: vec!["no-such-film".into()], k: None, exclude: vec![] },
        Placement::Popular { category: Some("No-such-genre".into()), k: None, exclude: vec![] },
    ] {
        let r = c.place(&p).unwrap();
        assert_eq!(r.items.len(), 10, "{} with no history / unknown input", p.name());
        assert_eq!(r.source, Source::Popularity);
        assert!(r.fallback_reason.is_some(), "{} says why", p.name());
    }
    // With a history: a permutation; blend 0 is the shop's order, blend 1 follows the model.
    for id in ["1", "50", "181", "172"] {
        clock.advance_ms(10_000.0);
        c.track(&json!({"type": "product_view", "itemId": id})).unwrap();
    }
    let personal = c.place(&Placement::Rerank { item_ids: list.clone(), blend: Some(1.0) }).unwrap();
    let mut sorted: Vec<&str> = ids(&personal);
    sorted.sort();
    let mut expected: Vec<&str> = list.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(sorted, expected, "a permutation of the page's list");
    assert_ne!(ids(&personal), list.iter().map(String::as_str).collect::<Vec<_>>(), "the model reorders it");
    let kept = c.place(&Placement::Rerank { item_ids: list.clone(), blend: Some(0.0) }).unwrap();
    assert_eq!(ids(&kept), list.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(c.place(&Placement::Rerank { item_ids: list, blend: Some(1.5) }).is_err());
    // Recently viewed: the visitor's own films, newest first.
    let recent = c.place(&Placement::RecentlyViewed { k: Some(3), exclude: vec![] }).unwrap();
    assert_eq!(ids(&recent), ["172", "181", "50"]);
    assert_eq!(recent.source, Source::History);
    // Trending is the last month's popularity, not the all-time one.
    let trending = c.place(&Placement::Trending { category: None, k: Some(10), exclude: vec![] }).unwrap();
    let popular = c.place(&Placement::Popular { category: None, k: Some(10), exclude: vec![] }).unwrap();
    assert_eq!(trending.source, Source::Trend);
    assert_ne!(ids(&trending), ids(&popular));
}
