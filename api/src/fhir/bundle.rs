//! Bundles: a search's page (`searchset`, with `self`, `first`, `next`
//! and `previous` links carrying the same parameters) and a resource's
//! history (`history`, one entry per version, newest first).

use axum::http::{header, HeaderMap};
use serde_json::{json, Value};

use super::{nhs_token, referenced_id, BASE};
use crate::error::ApiError;

/// Entries per page unless `_count` says otherwise.
pub const DEFAULT_COUNT: usize = 20;
/// The most entries one page holds.
pub const MAX_COUNT: usize = 100;

/// A search's parameters, in the order given, and its page.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Every `name=value` other than the paging ones.
    pub params: Vec<(String, String)>,
    /// Entries per page.
    pub count: usize,
    /// Entries skipped.
    pub offset: usize,
}

impl Search {
    /// Reads a query string, refusing any parameter not in `known` (a
    /// search Baton cannot do is not answered as one it can).
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let mut search = Search {
            count: DEFAULT_COUNT,
            ..Search::default()
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let (name, value) = (name.into_owned(), value.into_owned());
            match name.as_str() {
                "_count" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| ApiError::field("_count", "must be a whole number"))?;
                    search.count = n.min(MAX_COUNT);
                }
                "_offset" => {
                    search.offset = value
                        .parse()
                        .map_err(|_| ApiError::field("_offset", "must be a whole number"))?;
                }
                "_format"
                    if matches!(
                        value.as_str(),
                        "json" | "application/fhir+json" | "application/json"
                    ) => {}
                _ if known.contains(&name.as_str()) => search.params.push((name, value)),
                _ => {
                    return Err(ApiError::field(
                        &name,
                        "is not a search parameter Baton supports here (see /fhir/R4/metadata)",
                    ))
                }
            }
        }
        Ok(search)
    }

    /// The values given for a parameter.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The one value of a parameter, if given.
    pub fn one(&self, names: &[&str]) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// The NHS number a search names its patient by: a token under one of
    /// `tokens`, else a `Patient/{nhs}` reference under one of `references`.
    /// A token of another system is kept as `-`, which no patient has.
    pub fn patient(&self, tokens: &[&str], references: &[&str]) -> Option<String> {
        match self.one(tokens) {
            Some(token) => Some(nhs_token(token).unwrap_or("-").to_owned()),
            None => self
                .one(references)
                .map(|v| referenced_id("Patient", v).to_owned()),
        }
    }

    /// The page of `items`, sorted already.
    pub fn page<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.count)
            .collect()
    }

    fn url(&self, root: &str, kind: &str, offset: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            query.append_pair(name, value);
        }
        query.append_pair("_count", &self.count.to_string());
        query.append_pair("_offset", &offset.to_string());
        format!("{root}{BASE}/{kind}?{}", query.finish())
    }
}

/// Where this server is, as the client reached it, for absolute URLs in
/// links and `fullUrl`s.
pub fn root(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// One entry of a searchset or transaction answer.
pub fn entry(root: &str, resource: Value) -> Value {
    let kind = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    json!({
        "fullUrl": format!("{root}{BASE}/{kind}/{id}"),
        "resource": resource,
        "search": { "mode": "match" },
    })
}

/// A page of a search: `total` matches in all, `resources` on this page.
pub fn searchset(
    root: &str,
    kind: &str,
    search: &Search,
    total: usize,
    resources: Vec<Value>,
) -> Value {
    let mut links = vec![
        json!({ "relation": "self", "url": search.url(root, kind, search.offset) }),
        json!({ "relation": "first", "url": search.url(root, kind, 0) }),
    ];
    let next = search.offset.saturating_add(search.count);
    if search.count > 0 && next < total {
        links.push(json!({ "relation": "next", "url": search.url(root, kind, next) }));
    }
    if search.offset > 0 {
        let previous = search.offset.saturating_sub(search.count.max(1));
        links.push(json!({ "relation": "previous", "url": search.url(root, kind, previous) }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": resources.into_iter().map(|r| entry(root, r)).collect::<Vec<_>>(),
    })
}

/// A resource's history: `versions` oldest first, answered newest first.
pub fn history(root: &str, versions: Vec<Value>) -> Value {
    let total = versions.len();
    let entries: Vec<Value> = versions
        .into_iter()
        .rev()
        .enumerate()
        .map(|(i, resource)| {
            let kind = resource["resourceType"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let id = resource["id"].as_str().unwrap_or_default().to_owned();
            let version = resource["meta"]["versionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let method = if i + 1 == total { "POST" } else { "PUT" };
            let url = if method == "POST" {
                kind.clone()
            } else {
                format!("{kind}/{id}")
            };
            json!({
                "fullUrl": format!("{root}{BASE}/{kind}/{id}"),
                "resource": resource,
                "request": { "method": method, "url": url },
                "response": {
                    "status": if method == "POST" { "201 Created" } else { "200 OK" },
                    "etag": format!("W/\"{version}\""),
                },
            })
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "history", "total": total, "entry": entries })
}
