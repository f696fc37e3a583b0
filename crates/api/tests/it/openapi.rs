//! `GET /v1/api/openapi.json` and real answers checked against it: every answer of the
//! routes below must match the schema the document gives for its path, method and status.

use super::ops::*;
use super::*;

/// The schema of `(path, method, status)`'s JSON answer, `$ref`s resolved later.
fn answer_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path} in the document");
    let resp = &op["responses"][status.to_string()];
    assert!(resp.is_object(), "{method} {path}: no {status} answer in the document");
    let schema = &resp["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} {status}: no JSON schema");
    schema
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
            let s = &doc["components"]["schemas"][name];
            assert!(s.is_object(), "dangling $ref {r}");
            s
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        other => panic!("unexpected schema type {other}"),
    }
}

/// A small JSON-schema check: types (one or a list), required and known properties,
/// `additionalProperties`, array items, `$ref`.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    let schema = resolve(doc, schema);
    match &schema["type"] {
        Value::String(t) => assert!(type_ok(t, v), "{at}: {v} is not {t}"),
        Value::Array(ts) => {
            assert!(ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)), "{at}: {v} is none of {ts:?}")
        }
        _ => {}
    }
    if let (Some(obj), Some(props)) = (v.as_object(), schema["properties"].as_object()) {
        for req in schema["required"].as_array().into_iter().flatten() {
            assert!(obj.contains_key(req.as_str().unwrap()), "{at}: missing required {req} in {v}");
        }
        for (k, val) in obj {
            let p = props.get(k).unwrap_or_else(|| panic!("{at}: key {k} is not in the schema"));
            check(doc, p, val, &format!("{at}.{k}"));
        }
    } else if let (Some(obj), Some(extra)) = (v.as_object(), schema.get("additionalProperties")) {
        if extra.is_object() {
            for (k, val) in obj {
                check(doc, extra, val, &format!("{at}.{k}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"));
        }
    }
}

async fn answer(app: &axum::Router, req: Request<Body>) -> (u16, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes))))
}

fn req(method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        r = r.header("X-Auth-Token", t);
    }
    r.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default()).unwrap()
}

#[tokio::test]
async fn real_answers_match_the_openapi_document() {
    let (app, _dir) = ops_app(Opts::default()).await;
    let (code, doc) = answer(&app, req("GET", "/v1/api/openapi.json", None, None)).await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for p in ["/v1/api/job", "/v1/api/job/{jobID}", "/v1/api/job/kill/{jobID}", "/v1/api/health", "/v1/api/readyz"] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }

    let mut seen = 0;
    let mut expect = |path: &str, method: &str, code: u16, v: &Value| {
        check(&doc, answer_schema(&doc, path, method, code), v, &format!("{method} {path} {code}"));
        seen += 1;
    };

    let submit = json!({"qname": "Api", "wrap_secret_id": "w", "container_image": "busybox", "run": ["true"]});
    let (code, v) = answer(&app, req("POST", "/v1/api/job", Some("good"), Some(submit))).await;
    expect("/v1/api/job", "post", code, &v);
    let id = v["_id"].as_str().unwrap().to_string();
    let (code, v) = answer(&app, req("POST", "/v1/api/job", None, Some(json!({})))).await;
    expect("/v1/api/job", "post", code, &v);
    let (code, v) = answer(&app, req("POST", "/v1/api/job", Some("bad"), Some(json!({})))).await;
    expect("/v1/api/job", "post", code, &v);
    let (code, v) = answer(&app, req("POST", "/v1/api/job", Some("good"), Some(json!({"qname": 1})))).await;
    expect("/v1/api/job", "post", code, &v);

    let (code, v) = answer(&app, req("GET", &format!("/v1/api/job/{id}"), Some("good"), None)).await;
    assert_eq!(code, 200);
    expect("/v1/api/job/{jobID}", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/job/0123456789abcdef01234567", Some("good"), None)).await;
    assert_eq!(code, 404);
    expect("/v1/api/job/{jobID}", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/job/nothex", Some("good"), None)).await;
    expect("/v1/api/job/{jobID}", "get", code, &v);

    let (code, v) = answer(&app, req("GET", "/v1/api/job?skip=0", Some("good"), None)).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    expect("/v1/api/job", "get", code, &v);

    let (code, v) = answer(&app, req("POST", &format!("/v1/api/job/kill/{id}"), Some("good"), None)).await;
    assert_eq!(code, 200);
    expect("/v1/api/job/kill/{jobID}", "post", code, &v);
    let (code, v) = answer(&app, req("DELETE", &format!("/v1/api/job/{id}"), Some("good"), None)).await;
    assert_eq!(code, 200);
    expect("/v1/api/job/{jobID}", "delete", code, &v);

    let (code, v) = answer(&app, req("GET", "/v1/api/health", None, None)).await;
    expect("/v1/api/health", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/health?k=nope", None, None)).await;
    expect("/v1/api/health", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/tenants", Some("good"), None)).await;
    assert_eq!(code, 200, "{v}");
    expect("/v1/api/tenants", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/tenants", None, None)).await;
    assert_eq!(code, 400, "{v}");
    expect("/v1/api/tenants", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/vault/info", None, None)).await;
    expect("/v1/api/vault/info", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/livez", None, None)).await;
    expect("/v1/api/livez", "get", code, &v);
    let (code, v) = answer(&app, req("GET", "/v1/api/readyz", None, None)).await;
    expect("/v1/api/readyz", "get", code, &v);
    assert_eq!(seen, 17, "every answer above was checked");

    // The checker can fail: a key the schema does not know is caught.
    let view = answer_schema(&doc, "/v1/api/job/{jobID}", "get", 200);
    let r = std::panic::catch_unwind(|| check(&doc, view, &json!({"_id": "x", "surprise": 1}), "probe"));
    assert!(r.is_err(), "an unknown key must fail the check");
}
