//! DOM autocapture: events from `data-fs-*` attributes, by event delegation on the document,
//! so tiles added later are covered without re-binding.
//!
//! - `data-fs-event="add_to_cart" data-fs-item="sku-1" [data-fs-price] [data-fs-category]
//!   [data-fs-quantity]` on a button: that event on click (any type `track` takes that is keyed
//!   by an item: add_to_cart, remove_from_cart, click, product_view).
//! - `data-fs-item="sku-1"` on a product tile: a `click`, with `placement` from the closest
//!   `data-fs-placement`.
//! - `data-fs-search[="q"]` on a form: a `search` with the value of the named input on submit.
//! - `data-fs-product="sku-1" [data-fs-category] [data-fs-price]` anywhere on a product page: a
//!   `product_view` at start, and a `dwell` with the visible time when the page is hidden.
//!
//! Nothing here throws into the page: a bad attribute is a console warning.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_events::EventListener;
use serde_json::{json, Map, Value};
use wasm_bindgen::JsCast;

pub type Sink = Rc<dyn Fn(Value)>;

/// The listeners; dropping it removes them.
#[must_use = "autocapture stops when the handle is dropped"]
pub struct Autocapture {
    _listeners: Vec<EventListener>,
}

pub fn start(sink: Sink) -> Option<Autocapture> {
    let document = web_sys::window()?.document()?;
    let mut listeners = Vec::new();

    let click_sink = sink.clone();
    listeners.push(EventListener::new(&document, "click", move |e| {
        if let Some(event) = target_element(e).and_then(|el| click_event(&el)) {
            click_sink(event);
        }
    }));

    let submit_sink = sink.clone();
    listeners.push(EventListener::new(&document, "submit", move |e| {
        let Some(form) = target_element(e).and_then(|el| el.closest("form[data-fs-search]").ok().flatten()) else { return };
        let field = form.get_attribute("data-fs-search").filter(|s| !s.is_empty()).unwrap_or_else(|| "q".into());
        let query = form
            .query_selector(&format!("[name=\"{}\"]", field.replace('"', "")))
            .ok()
            .flatten()
            .and_then(|el| el.dyn_into::<web_sys::HtmlInputElement>().ok())
            .map(|input| input.value());
        match query {
            Some(q) if !q.trim().is_empty() => submit_sink(json!({"type": "search", "query": q})),
            _ => {}
        }
    }));

    if let Some(product) = document.query_selector("[data-fs-product]").ok().flatten() {
        if let Some(item) = product.get_attribute("data-fs-product") {
            let mut view = Map::new();
            view.insert("type".into(), "product_view".into());
            view.insert("itemId".into(), item.clone().into());
            copy_details(&product, &mut view);
            sink(Value::Object(view));
            let visible_since = Rc::new(RefCell::new(Some(js_sys::Date::now())));
            let dwell_sink = sink.clone();
            let doc = document.clone();
            listeners.push(EventListener::new(&document, "visibilitychange", move |_| {
                let mut since = visible_since.borrow_mut();
                if doc.hidden() {
                    if let Some(start) = since.take() {
                        let seconds = ((js_sys::Date::now() - start) / 1000.0).min(86_400.0);
                        dwell_sink(json!({"type": "dwell", "itemId": item, "seconds": seconds}));
                    }
                } else {
                    *since = Some(js_sys::Date::now());
                }
            }));
        }
    }
    Some(Autocapture { _listeners: listeners })
}

fn target_element(e: &web_sys::Event) -> Option<web_sys::Element> {
    e.target()?.dyn_into::<web_sys::Element>().ok()
}

/// The event a click on `el` (or an ancestor with `data-fs-*`) stands for.
fn click_event(el: &web_sys::Element) -> Option<Value> {
    let tagged = el.closest("[data-fs-event], [data-fs-item]").ok().flatten()?;
    let item = tagged.get_attribute("data-fs-item");
    let mut event = Map::new();
    match tagged.get_attribute("data-fs-event") {
        Some(kind) => {
            event.insert("type".into(), kind.into());
            if let Some(item) = item {
                event.insert("itemId".into(), item.into());
            }
            copy_details(&tagged, &mut event);
            if let Some(q) = tagged.get_attribute("data-fs-quantity") {
                event.insert("quantity".into(), number_or_text(&q));
            }
        }
        None => {
            event.insert("type".into(), "click".into());
            event.insert("itemId".into(), item?.into());
            if let Some(p) = tagged.closest("[data-fs-placement]").ok().flatten().and_then(|p| p.get_attribute("data-fs-placement")) {
                event.insert("placement".into(), p.into());
            }
        }
    }
    Some(Value::Object(event))
}

fn copy_details(el: &web_sys::Element, event: &mut Map<String, Value>) {
    if let Some(c) = el.get_attribute("data-fs-category") {
        event.insert("category".into(), c.into());
    }
    if let Some(p) = el.get_attribute("data-fs-price") {
        event.insert("price".into(), number_or_text(&p));
    }
}

/// Numbers from attributes; text that is not a number is passed on so validation names it.
fn number_or_text(s: &str) -> Value {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return json!(n);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => json!(f),
        _ => Value::String(s.to_owned()),
    }
}
