//! The Admin API for spend caps, in the wire shapes of Anthropic's Admin API:
//! `/v1/organizations/spend_limits` (list, create-or-replace, get, delete), `/effective` and
//! `/audit`. Callers authenticate with an `x-api-key` (read or write key) or a session token of an
//! `admin_groups` member; every refusal is audited, every change too (in the store).

use axum::extract::{FromRequestParts, MatchedPath, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::caps::{self, Scope};
use super::periods::Period;
use crate::auth::bearer::bearer;
use crate::auth::codes::{same, token};
use crate::http::access::ClientIp;
use crate::state::AppState;
use crate::store::spend::{LimitRow, MICROS_PER_CENT};

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// `admin-key:<id>` or `oidc:<sub>`.
    pub actor: String,
    /// May change caps.
    pub write: bool,
    /// The signed-in person behind a session token, as verified here: (subject, email). None for
    /// an admin key.
    pub person: Option<(String, Option<String>)>,
}

/// Admin API errors, in the Anthropic envelope with an admin `request-id`.
#[derive(Debug)]
pub struct AdminError(StatusCode, &'static str, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let id = format!(
            "req_{}",
            crate::config::hex(token(16).unwrap_or_default().as_bytes())
                .chars()
                .take(32)
                .collect::<String>()
        );
        let body = json!({"type": "error", "error": {"type": self.1, "message": self.2}, "request_id": id});
        let mut res = (self.0, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert("request-id", v);
        }
        res
    }
}

impl AdminError {
    /// An error with this status, type and message.
    pub fn new(status: StatusCode, kind: &'static str, message: &str) -> Self {
        Self(status, kind, message.to_owned())
    }

    /// A `400 invalid_request_error`.
    pub fn bad(message: &str) -> Self {
        bad(message)
    }
}

fn bad(msg: impl Into<String>) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, "invalid_request_error", msg.into())
}

/// A `500 api_error`, its cause logged.
pub fn internal(e: impl std::fmt::Display) -> AdminError {
    tracing::error!("admin API: {e}");
    AdminError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "api_error",
        "internal error".into(),
    )
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let Some(cfg) = &state.config.admin else {
            return Err(AdminError(
                StatusCode::NOT_FOUND,
                "not_found_error",
                "the Admin API is not configured on this gateway".into(),
            ));
        };
        let deny = |reason: &str| {
            let ip = parts
                .extensions
                .get::<ClientIp>()
                .and_then(|c| c.0)
                .map(|i| i.to_string());
            // The route's pattern, not the client's path: ids in it are of any length.
            let path = parts
                .extensions
                .get::<MatchedPath>()
                .map_or("(unmatched)", MatchedPath::as_str);
            state.audit.emit("admin.denied", state.clock.now(), json!({"reason": reason, "method": parts.method.as_str(), "path": path, "client_ip": ip}));
            AdminError(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "missing or invalid admin credentials".into(),
            )
        };
        if let Some(key) = parts.headers.get("x-api-key") {
            // With a key, only the key counts (a key that is not text matches none).
            let key = key.to_str().unwrap_or_default();
            for (k, write) in cfg
                .write_keys
                .iter()
                .map(|k| (k, true))
                .chain(cfg.read_keys.iter().map(|k| (k, false)))
            {
                if same(k.key.expose(), key) {
                    return Ok(Admin {
                        actor: format!("admin-key:{}", k.id),
                        write,
                        person: None,
                    });
                }
            }
            return Err(deny("invalid_key"));
        }
        let Some(t) = bearer(&parts.headers) else {
            return Err(deny("no_credentials"));
        };
        match state.keys.verify(t, state.clock.now()) {
            Ok(c)
                if c.identity
                    .groups
                    .iter()
                    .any(|g| cfg.admin_groups.contains(g)) =>
            {
                Ok(Admin {
                    actor: format!("oidc:{}", c.identity.sub),
                    write: true,
                    person: Some((c.identity.sub, c.identity.email)),
                })
            }
            _ => Err(deny("bearer_rejected")),
        }
    }
}

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/organizations/spend_limits", get(list).post(upsert))
        .route("/v1/organizations/spend_limits/effective", get(effective))
        .route("/v1/organizations/spend_limits/audit", get(audit))
        .route(
            "/v1/organizations/spend_limits/{id}",
            get(fetch).delete(remove),
        )
        .route(
            "/v1/organizations/analytics/cost",
            get(super::cost_report::cost),
        )
}

fn ts(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn scope_json(scope_type: &str, scope_id: &str) -> Value {
    match scope_type {
        "user" => json!({"type": "user", "user_id": scope_id}),
        "rbac_group" => json!({"type": "rbac_group", "rbac_group_id": scope_id}),
        _ => json!({"type": "organization"}),
    }
}

fn limit_json(l: &LimitRow) -> Value {
    json!({
        "type": "spend_limit", "id": l.id, "created_at": ts(l.created_at), "updated_at": ts(l.updated_at),
        "scope": scope_json(&l.scope_type, &l.scope_id),
        "amount": l.amount_cents.map(|a| a.to_string()), "currency": "USD", "period": l.period,
    })
}

/// List query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    after_id: Option<String>,
    before_id: Option<String>,
    scope_type: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AdminError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit must be 1 to 1000"));
    }
    if q.after_id.is_some() && q.before_id.is_some() {
        return Err(bad("after_id and before_id are mutually exclusive"));
    }
    let mut all = state.store.limits().await.map_err(internal)?;
    if let Some(t) = &q.scope_type {
        all.retain(|l| &l.scope_type == t);
    }
    let page: Vec<&LimitRow> = match (&q.after_id, &q.before_id) {
        (Some(a), _) => all
            .iter()
            .skip_while(|l| &l.id != a)
            .skip(1)
            .take(limit + 1)
            .collect(),
        (_, Some(b)) => {
            let upto: Vec<&LimitRow> = all.iter().take_while(|l| &l.id != b).collect();
            upto.into_iter().rev().take(limit + 1).rev().collect()
        }
        _ => all.iter().take(limit + 1).collect(),
    };
    let has_more = page.len() > limit;
    let data: Vec<Value> = page.iter().take(limit).map(|l| limit_json(l)).collect();
    let first = data.first().map(|d| d["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|d| d["id"].clone()).unwrap_or(Value::Null);
    Ok(Json(
        json!({"data": data, "has_more": has_more, "first_id": first, "last_id": last}),
    ))
}

fn parse_body(v: &Value) -> Result<(String, String, Option<i64>, String), AdminError> {
    let scope = v.get("scope").ok_or_else(|| bad("scope: Required"))?;
    let (st, sid) = match scope.get("type").and_then(Value::as_str) {
        Some("user") => (
            "user",
            scope
                .get("user_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("scope.user_id: Required"))?,
        ),
        Some("rbac_group") => (
            "rbac_group",
            scope
                .get("rbac_group_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("scope.rbac_group_id: Required"))?,
        ),
        Some("organization") => ("organization", ""),
        _ => return Err(bad("scope.type must be user, rbac_group or organization")),
    };
    if st != "organization" && (sid.is_empty() || sid.len() > 256) {
        return Err(bad("the scope's id must be 1 to 256 characters"));
    }
    let amount = match v.get("amount") {
        None => return Err(bad("amount: Required")),
        Some(Value::Null) => None,
        Some(Value::String(a))
            if (1..=19).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(a.parse::<i64>().map_err(|_| bad("amount is too large"))?)
        }
        Some(_) => return Err(bad("amount must be a string of whole US cents, or null")),
    };
    let period = match v.get("period") {
        None | Some(Value::Null) => "monthly",
        Some(p) => p
            .as_str()
            .and_then(Period::parse)
            .map(Period::as_str)
            .ok_or_else(|| bad("period must be daily, weekly or monthly"))?,
    };
    if let Some(c) = v.get("currency") {
        if c.as_str() != Some("USD") {
            return Err(bad("currency must be USD"));
        }
    }
    Ok((st.to_owned(), sid.to_owned(), amount, period.to_owned()))
}

async fn upsert(
    State(state): State<AppState>,
    admin: Admin,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AdminError> {
    if !admin.write {
        return Err(AdminError(
            StatusCode::FORBIDDEN,
            "permission_error",
            "requires write:spend_limits".into(),
        ));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|_| bad("the body must be JSON"))?;
    let (st, sid, amount, period) = parse_body(&v)?;
    let id = format!(
        "spl_{}",
        crate::config::hex(token(16).map_err(internal)?.as_bytes())
            .chars()
            .take(32)
            .collect::<String>()
    );
    let row = state
        .store
        .upsert_limit(
            &id,
            &st,
            &sid,
            amount,
            &period,
            &admin.actor,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
    if let Some(m) = &state.meter {
        m.reload().await;
    }
    state.audit.emit("admin.limit.upsert", state.clock.now(), json!({"actor": admin.actor, "id": row.id, "scope_type": st, "scope_id": sid, "amount_cents": amount, "period": period}));
    Ok(Json(limit_json(&row)))
}

async fn fetch(
    State(state): State<AppState>,
    _a: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    match state.store.limit(&id).await.map_err(internal)? {
        Some(l) => Ok(Json(limit_json(&l))),
        None => Err(AdminError(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no spend limit {id}"),
        )),
    }
}

async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    if !admin.write {
        return Err(AdminError(
            StatusCode::FORBIDDEN,
            "permission_error",
            "requires write:spend_limits".into(),
        ));
    }
    if !state
        .store
        .delete_limit(&id, &admin.actor, state.clock.now())
        .await
        .map_err(internal)?
    {
        return Err(AdminError(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("no spend limit {id}"),
        ));
    }
    if let Some(m) = &state.meter {
        m.reload().await;
    }
    state.audit.emit(
        "admin.limit.delete",
        state.clock.now(),
        json!({"actor": admin.actor, "id": id}),
    );
    Ok(Json(json!({"type": "spend_limit_deleted", "id": id})))
}

fn cents(micros: i64) -> String {
    let whole = micros / MICROS_PER_CENT;
    let frac = (micros % MICROS_PER_CENT).abs();
    if frac == 0 {
        whole.to_string()
    } else {
        let f = format!("{frac:04}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
}

async fn effective(
    State(state): State<AppState>,
    _a: Admin,
    uri: http::Uri,
) -> Result<Json<Value>, AdminError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let users: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "user_ids[]" || k == "user_ids")
        .map(|(_, v)| v.clone())
        .collect();
    let asked: Vec<Period> = pairs
        .iter()
        .filter(|(k, _)| k == "period[]" || k == "period")
        .filter_map(|(_, v)| Period::parse(v))
        .collect();
    // Each period once, however often it is asked for: the answer is at most users × 3 rows.
    let periods: Vec<Period> = Period::ALL
        .iter()
        .copied()
        .filter(|p| asked.is_empty() || asked.contains(p))
        .collect();
    // Each user once, in the order asked.
    let mut once = std::collections::HashSet::new();
    let users: Vec<String> = users
        .into_iter()
        .filter(|u| once.insert(u.clone()))
        .collect();
    if users.len() > 100 {
        return Err(bad("at most 100 user_ids"));
    }
    let now = state.clock.now();
    let buckets: Vec<String> = Period::ALL.iter().map(|p| p.bucket(now)).collect();
    let users = if users.is_empty() {
        state
            .store
            .principals_with_spend(&buckets, 1000)
            .await
            .map_err(internal)?
    } else {
        users
    };
    let limits = caps::from_rows(state.store.limits().await.map_err(internal)?);
    let mode = state
        .config
        .admin
        .as_ref()
        .map(|a| a.group_limit_mode)
        .unwrap_or_default();
    let seen = state.store.identities(&users).await.map_err(internal)?;
    let totals_of = state
        .store
        .totals_of(&users, &buckets)
        .await
        .map_err(internal)?;
    let mut data = Vec::new();
    for u in &users {
        let (email, name, groups) = seen.get(u).cloned().unwrap_or((None, None, Vec::new()));
        let eff = caps::effective(&limits, u, &groups, mode);
        let totals = totals_of.get(u).map(Vec::as_slice).unwrap_or_default();
        for p in &periods {
            let i = Period::ALL.iter().position(|x| x == p).unwrap_or(0);
            let e = eff.iter().find(|e| e.period == *p);
            data.push(json!({
                "scope": {"type": "user", "user_id": u},
                "groups": groups,
                "actor": {"type": "user_actor", "user_id": u, "email_address": email, "name": name, "deleted": false},
                "amount": e.and_then(|e| e.amount_cents).map(|a| a.to_string()),
                "currency": "USD",
                "period": p.as_str(),
                "source": e.map(|e| match &e.source { Scope::User(id) => json!({"type": "user", "user_id": id}), Scope::Group(g) => json!({"type": "rbac_group", "rbac_group_id": g}), Scope::Organization => json!({"type": "organization"}) }),
                "spend_limit_id": e.map(|e| e.limit_id.clone()),
                "period_to_date_spend": cents(totals.get(i).map(|t| t.settled).unwrap_or(0)),
            }));
        }
    }
    Ok(Json(json!({"data": data, "next_page": null})))
}

/// Audit query.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    after_id: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, AdminError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let after = after_id(q.after_id.as_deref())?;
    let rows = state
        .store
        .admin_audit(limit + 1, after)
        .await
        .map_err(internal)?;
    Ok(page(rows, limit))
}

/// An audit list's `after_id`, an event id.
pub fn after_id(a: Option<&str>) -> Result<Option<i64>, AdminError> {
    a.map(|a| {
        a.parse::<i64>()
            .map_err(|_| bad("after_id must be an audit event id"))
    })
    .transpose()
}

/// One page of a list read with `limit + 1` rows: at most `limit` of them, and whether there
/// were more.
pub fn page<T: serde::Serialize>(mut rows: Vec<T>, limit: i64) -> Json<Value> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Json(json!({"data": rows, "has_more": has_more}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_keep_fractions() {
        assert_eq!(cents(0), "0");
        assert_eq!(cents(75_003_000), "7500.3");
        assert_eq!(cents(120_505_000), "12050.5");
        assert_eq!(cents(10_000), "1");
    }

    #[test]
    fn bodies_are_checked() {
        assert!(parse_body(&json!({})).is_err());
        assert!(
            parse_body(&json!({"scope": {"type": "user", "user_id": "u"}, "amount": 5})).is_err()
        );
        assert!(parse_body(
            &json!({"scope": {"type": "user", "user_id": "u"}, "amount": "5", "currency": "EUR"})
        )
        .is_err());
        let (st, sid, a, p) = parse_body(
            &json!({"scope": {"type": "rbac_group", "rbac_group_id": "eng"}, "amount": null}),
        )
        .unwrap();
        assert_eq!(
            (st.as_str(), sid.as_str(), a, p.as_str()),
            ("rbac_group", "eng", None, "monthly")
        );
    }
}

#[cfg(test)]
mod props {
    //! Any spend-limit body, JSON or not: a clear 400 or a well-formed limit, never a panic.

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    /// JSON of any shape, with the names and values a limit body uses among the rest.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "user|rbac_group|organization|USD|daily|weekly|monthly|[0-9]{0,22}|-1|"
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        let name = "scope|type|user_id|rbac_group_id|amount|period|currency|[a-z]{1,3}";
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(name, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn limit() -> impl Strategy<Value = Value> {
        (
            prop_oneof![
                ".{0,300}".prop_map(|id| json!({"type": "user", "user_id": id})),
                ".{0,300}".prop_map(|id| json!({"type": "rbac_group", "rbac_group_id": id})),
                Just(json!({"type": "organization"})),
            ],
            prop_oneof![
                Just(Value::Null),
                "[0-9]{1,20}".prop_map(Value::from),
            ],
            prop_oneof![
                Just(Value::Null),
                "daily|weekly|monthly|yearly".prop_map(Value::from)
            ],
        )
            .prop_map(|(scope, amount, period)| {
                json!({"scope": scope, "amount": amount, "period": period, "currency": "USD"})
            })
    }

    /// What an accepted body must mean.
    fn well_formed(parsed: &(String, String, Option<i64>, String)) -> Result<(), TestCaseError> {
        let (st, sid, amount, period) = parsed;
        match st.as_str() {
            "organization" => prop_assert_eq!(sid.as_str(), ""),
            "user" | "rbac_group" => prop_assert!((1..=256).contains(&sid.len())),
            other => prop_assert!(false, "scope type {}", other),
        }
        prop_assert!(amount.is_none_or(|a| a >= 0));
        prop_assert!(["daily", "weekly", "monthly"].contains(&period.as_str()));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_are_refused_or_well_formed(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                if let Ok(parsed) = parse_body(&v) {
                    well_formed(&parsed)?;
                }
            }
        }

        #[test]
        fn any_json_is_refused_or_well_formed(v in prop_oneof![value(), limit()]) {
            if let Ok(parsed) = parse_body(&v) {
                well_formed(&parsed)?;
            }
        }

        #[test]
        fn a_valid_limit_means_what_it_says(v in limit()) {
            let id_len = ["user_id", "rbac_group_id"]
                .iter()
                .find_map(|k| v["scope"][k].as_str())
                .map(str::len);
            let amount_ok = v["amount"]
                .as_str()
                .is_none_or(|a| a.len() <= 19 && a.parse::<i64>().is_ok());
            let period_ok = v["period"].as_str() != Some("yearly");
            let valid = id_len.is_none_or(|n| (1..=256).contains(&n)) && amount_ok && period_ok;
            match parse_body(&v) {
                Ok(parsed) => {
                    prop_assert!(valid, "accepted {}", v);
                    well_formed(&parsed)?;
                    prop_assert_eq!(parsed.2, v["amount"].as_str().map(|a| a.parse::<i64>().unwrap_or(-1)));
                    prop_assert_eq!(parsed.3.as_str(), v["period"].as_str().unwrap_or("monthly"));
                }
                Err(_) => prop_assert!(!valid, "refused {}", v),
            }
        }
    }
}
