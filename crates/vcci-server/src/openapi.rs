//! The OpenAPI 3.1 document, generated from the router itself: every route is registered
//! through `Api` together with its description, so a route cannot exist without being
//! documented, nor be documented without existing.

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};

use crate::App;

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    Query,
    Path,
}

/// One parameter: name, place, JSON-schema type (`string`, `integer`, `date`) and meaning.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub place: In,
    pub kind: &'static str,
    pub description: &'static str,
    /// Path parameters always are; a query parameter when `query_required` added it.
    pub required: bool,
}

/// One operation's description.
#[derive(Clone, Debug)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// The least role that may call it; `None`: no authentication.
    pub role: Option<&'static str>,
    pub params: Vec<Param>,
    /// Request body: (media type, schema name in components, or "" for a raw body).
    pub body: Option<(&'static str, &'static str)>,
    /// Success: (status, media type — or several, comma-separated — and schema name or "").
    pub ok: (u16, &'static str, &'static str),
    /// Error statuses this operation documents (beyond 401/429 of authenticated routes).
    pub errors: Vec<u16>,
    /// The schema of its error responses: `Error`, or the success's own (`/ready` answers
    /// 503 with its usual body).
    pub error_schema: &'static str,
}

impl Op {
    pub fn new(id: &'static str, tag: &'static str, summary: &'static str) -> Op {
        Op {
            method: "",
            path: "",
            id,
            summary,
            tag,
            role: Some("viewer"),
            params: Vec::new(),
            body: None,
            ok: (200, "application/json", ""),
            errors: Vec::new(),
            error_schema: "Error",
        }
    }
    pub fn public(mut self) -> Op {
        self.role = None;
        self
    }
    pub fn role(mut self, role: &'static str) -> Op {
        self.role = Some(role);
        self
    }
    pub fn query(mut self, name: &'static str, kind: &'static str, d: &'static str) -> Op {
        self.params.push(Param {
            name,
            place: In::Query,
            kind,
            description: d,
            required: false,
        });
        self
    }
    /// A query parameter the operation cannot do without.
    pub fn query_required(mut self, name: &'static str, kind: &'static str, d: &'static str) -> Op {
        self.params.push(Param {
            name,
            place: In::Query,
            kind,
            description: d,
            required: true,
        });
        self
    }
    pub fn path_param(self, name: &'static str, d: &'static str) -> Op {
        self.path_param_of(name, "string", d)
    }
    /// A path parameter of a kind the schema states more closely (`year_or_undated`).
    pub fn path_param_of(mut self, name: &'static str, kind: &'static str, d: &'static str) -> Op {
        self.params.push(Param {
            name,
            place: In::Path,
            kind,
            description: d,
            required: true,
        });
        self
    }
    /// `limit`, `cursor` (keyset pagination).
    pub fn paged(self) -> Op {
        self.query(
            "limit",
            "integer",
            "Items per page, 1 to 1000 (default 100).",
        )
        .query(
            "cursor",
            "string",
            "Opaque cursor: `page_info.end_cursor` of the previous page.",
        )
    }
    pub fn fields(self) -> Op {
        self.query(
            "fields",
            "string",
            "Comma-separated fields to return of each item.",
        )
    }
    pub fn json_body(mut self, schema: &'static str) -> Op {
        self.body = Some(("application/json", schema));
        self
    }
    pub fn raw_body(mut self, media: &'static str) -> Op {
        self.body = Some((media, ""));
        self
    }
    pub fn ok(mut self, status: u16, media: &'static str, schema: &'static str) -> Op {
        self.ok = (status, media, schema);
        self
    }
    pub fn json(self, schema: &'static str) -> Op {
        self.ok(200, "application/json", schema)
    }
    pub fn errors(mut self, e: &[u16]) -> Op {
        self.errors.extend_from_slice(e);
        self
    }
    /// Error responses in `schema` instead of `Error`.
    pub fn error_schema(mut self, schema: &'static str) -> Op {
        self.error_schema = schema;
        self
    }
}

/// The router under construction and the description of every route in it.
#[derive(Debug, Default)]
pub struct Api {
    pub router: Router<Arc<App>>,
    pub ops: Vec<Op>,
}

impl Api {
    fn add(
        mut self,
        path: &'static str,
        method: &'static str,
        mr: MethodRouter<Arc<App>>,
        mut op: Op,
    ) -> Api {
        op.method = method;
        op.path = path;
        self.router = self.router.route(path, mr);
        self.ops.push(op);
        self
    }
    pub fn get<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, h: H, op: Op) -> Api {
        self.add(path, "get", axum::routing::get(h), op)
    }
    pub fn post<H: Handler<T, Arc<App>>, T: 'static>(
        self,
        path: &'static str,
        h: H,
        op: Op,
    ) -> Api {
        self.add(path, "post", axum::routing::post(h), op)
    }
    pub fn put<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, h: H, op: Op) -> Api {
        self.add(path, "put", axum::routing::put(h), op)
    }
    pub fn delete<H: Handler<T, Arc<App>>, T: 'static>(
        self,
        path: &'static str,
        h: H,
        op: Op,
    ) -> Api {
        self.add(path, "delete", axum::routing::delete(h), op)
    }
}

/// The route template in OpenAPI's spelling (`{*key}` → `{key}`).
fn openapi_path(p: &str) -> String {
    p.replace("{*", "{")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        304 => "Not modified (the `If-None-Match` ETag is current)",
        400 => "Invalid request; `details` name the failing parameter, path or line",
        401 => "Missing or wrong API key",
        403 => "The key's role may not do this",
        404 => "Not found (or another organization's)",
        409 => {
            "Conflict: not ready yet, already done, or a closed reporting period (`period_closed`)"
        }
        413 => "Body too large",
        415 => "Unsupported content type",
        429 => "Rate limited; see `Retry-After`",
        503 => "Unavailable (database down or the request timed out)",
        _ => "Response",
    }
}

/// The OpenAPI document for `ops`.
pub fn document(ops: &[Op]) -> Value {
    let mut paths = Map::new();
    for op in ops {
        let mut responses = Map::new();
        let ok = if op.ok.2.is_empty() {
            if op.ok.1.is_empty() {
                json!({"description": reason(op.ok.0)})
            } else if op.ok.1.contains(',') {
                // One of several media types (a report in the format it was asked for).
                let content: Map<String, Value> = op
                    .ok
                    .1
                    .split(',')
                    .map(|m| (m.trim().to_owned(), json!({"schema": {}})))
                    .collect();
                json!({"description": reason(op.ok.0), "content": content})
            } else {
                json!({"description": reason(op.ok.0), "content": {op.ok.1: {"schema": {"type": "string"}}}})
            }
        } else {
            json!({"description": reason(op.ok.0),
                   "content": {op.ok.1: {"schema": {"$ref": format!("#/components/schemas/{}", op.ok.2)}}}})
        };
        responses.insert(op.ok.0.to_string(), ok);
        let mut errors = op.errors.clone();
        if op.role.is_some() {
            errors.extend([401, 429]);
        }
        if !op.params.is_empty() {
            // A parameter of the wrong form, or one the route does not know.
            errors.push(400);
        }
        if op
            .body
            .is_some_and(|(media, _)| media == "application/json")
        {
            // A body that is not JSON, not the documented shape, too large, or not labelled
            // `application/json` (`extract::JsonBody`).
            errors.extend([400, 413, 415]);
        }
        if op.method == "get" && op.ok.1 == "application/json" {
            responses.insert("304".into(), json!({"description": reason(304)}));
        }
        errors.sort_unstable();
        errors.dedup();
        for e in errors {
            responses.insert(
                e.to_string(),
                json!({"description": reason(e), "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", op.error_schema)}}}}),
            );
        }
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|p| {
                let schema = match p.kind {
                    "date" => json!({"type": "string", "format": "date"}),
                    "year" => json!({"type": "integer", "minimum": 1990, "maximum": 2100}),
                    "year_or_undated" => {
                        json!({"type": "string", "pattern": "^(19[9][0-9]|20[0-9][0-9]|2100|undated)$"})
                    }
                    k => json!({"type": k}),
                };
                json!({
                    "name": p.name,
                    "in": if p.place == In::Path { "path" } else { "query" },
                    "required": p.required,
                    "description": p.description,
                    "schema": schema,
                })
            })
            .collect();
        let mut o = json!({
            "operationId": op.id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        });
        if !params.is_empty() {
            o["parameters"] = Value::Array(params);
        }
        match op.role {
            None => o["security"] = json!([]),
            Some(r) => o["x-vcci-role"] = json!(r),
        }
        if let Some((media, schema)) = op.body {
            let schema = if schema.is_empty() {
                json!({"type": "string"})
            } else {
                json!({"$ref": format!("#/components/schemas/{schema}")})
            };
            o["requestBody"] = json!({"required": true, "content": {media: {"schema": schema}}});
        }
        paths
            .entry(openapi_path(op.path))
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(op.method.into(), o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "vcci API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Scope 3 carbon accounting: load spend and activity lines, get every line's emissions with its audit trail, and the inventory by GHG Protocol category. Authenticate with `Authorization: Bearer <API key>` (create one with `vcci keys create`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key of one organization and role"}},
            "schemas": schemas(),
        },
    })
}

fn page_of(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data", "page_info"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "page_info": {"$ref": "#/components/schemas/PageInfo"},
        },
    })
}

fn schemas() -> Value {
    let num = json!({"type": "number"});
    let s = json!({"type": "string"});
    let opt_s = json!({"type": ["string", "null"]});
    let opt_n = json!({"type": ["number", "null"]});
    let int = json!({"type": "integer"});
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string", "description": "snake_case code"},
                    "message": s,
                    "details": {"type": "array", "items": {"type": "object", "description": "names the failing `field`/`parameter`/`path` or `line` and `column`, with a `message`"}},
                },
            }},
        },
        "PageInfo": {
            "type": "object",
            "required": ["has_next_page", "end_cursor"],
            "properties": {"has_next_page": {"type": "boolean"}, "end_cursor": opt_s},
        },
        "LineInput": {
            "type": "object",
            "description": "A spend or activity line. It needs either `amount` or `quantity`.",
            "properties": {
                "transaction_id": s, "date": {"type": "string", "format": "date"},
                "supplier_id": s, "supplier_name": s, "description": s,
                "amount": num, "currency": {"type": "string", "description": "ISO 4217, default USD"},
                "naics_code": s, "category": {"type": "integer", "minimum": 1, "maximum": 15},
                "quantity": num, "unit": s, "activity_id": {"type": "string", "description": "a DESNZ factor key"},
                "country": s, "price_basis": {"type": "string", "enum": ["purchaser", "producer"]},
                "capex": {"type": ["boolean", "string"], "description": "a capital purchase: category 2 whatever its NAICS code (true/false)"},
                "product_id": {"type": "string", "maxLength": 256, "description": "the product bought, as the supplier's PACT footprints name it (a URN): the line is calculated from the supplier's footprint of it, with quantity and unit"},
                "gl_account": {"type": "string", "maxLength": 128, "description": "the general-ledger account the spend was booked to: read by classification"},
                "gl_account_name": {"type": "string", "maxLength": 256, "description": "the account's name (\"Travel & Entertainment\"): read by classification"},
            },
        },
        "Factor": {
            "type": "object",
            "properties": {"set": s, "version": s, "key": s, "name": s, "region": s, "year": int, "unit": s, "value": num, "gwp": s,
                "scope": {"type": "string", "enum": ["Scope 1", "Scope 2", "Scope 3", "Outside of Scopes"], "description": "the GHG Protocol scope the factor set states (DESNZ)"}},
        },
        "Emission": {
            "type": "object",
            "required": ["co2e_kg", "category", "method", "data_quality", "factor", "conversions", "fallbacks"],
            "properties": {
                "co2e_kg": num, "category": int, "category_name": s, "category_source": {"type": "string", "enum": ["line", "naics", "activity", "default", "capex", "classification"]},
                "method": {"type": "string", "enum": ["supplier_specific", "average_data", "hybrid", "spend_based"]},
                "data_quality": {"type": "integer", "minimum": 1, "maximum": 5, "description": "the aggregate of data_quality_indicators"},
                "data_quality_indicators": {
                    "type": "object",
                    "description": "GHG Protocol data-quality indicators, 1 (very good) to 5 (very poor); absent on lines stored before they existed, until recalculated",
                    "properties": {
                        "technological": {"type": "integer", "minimum": 1, "maximum": 5},
                        "temporal": {"type": "integer", "minimum": 1, "maximum": 5},
                        "geographical": {"type": "integer", "minimum": 1, "maximum": 5},
                        "completeness": {"type": "integer", "minimum": 1, "maximum": 5},
                        "reliability": {"type": "integer", "minimum": 1, "maximum": 5},
                    },
                },
                "factor": {"$ref": "#/components/schemas/FactorUsed"},
                "conversions": {"type": "object", "description": "`spend`: FX and CPI steps; `unit`: unit conversion"},
                "fallbacks": {"type": "array", "items": {"type": "object", "properties": {"code": s, "message": s}}},
                "upstream": {
                    "type": "array",
                    "description": "An energy or fuel input (a Scope 1 or 2 factor): its category 3 parts, whose sum is co2e_kg",
                    "items": {"type": "object", "required": ["kind", "factor", "co2e_kg"], "properties": {
                        "kind": {"type": "string", "enum": ["wtt", "td_losses", "wtt_td_losses"]},
                        "factor": {"$ref": "#/components/schemas/FactorUsed"}, "co2e_kg": num,
                    }},
                },
                "gases": {"$ref": "#/components/schemas/Gases"},
                "supplier_data": {
                    "type": "object",
                    "description": "A supplier-specific or hybrid result: what is known of the supplier's intensity used, and a hybrid's two parts",
                    "required": ["boundary", "boundary_stated", "verified"],
                    "properties": {
                        "boundary": {"type": "string", "enum": ["scope_1_2", "scope_1_2_3_upstream", "cradle_to_gate"]},
                        "boundary_stated": {"type": "boolean", "description": "false: given without a boundary, read as cradle_to_gate"},
                        "verified": {"type": "boolean"},
                        "hybrid": {"type": "object", "description": "co2e_kg = supplier_scope_1_2_kg + upstream_kg", "properties": {
                            "supplier_scope_1_2_kg": num, "eeio_factor": {"$ref": "#/components/schemas/FactorUsed"},
                            "eeio_cpi_ratio": num, "eeio_amount_usd_price_year": num, "eeio_cradle_to_gate_kg": num, "upstream_kg": num,
                        }},
                    },
                },
                "biogenic_co2_kg": {"type": "number", "description": "biogenic CO2 of a fuel or electricity input, outside the scopes: not in co2e_kg"},
                "product_footprint": {
                    "type": "object",
                    "description": "A result from the supplier's product footprint (PACT v3): co2e_kg = the quantity in the declared unit × kg_co2e_per_declared_unit",
                    "required": ["id", "product_id", "company_name", "spec_version", "declared_unit", "declared_unit_amount", "pcf_excluding_biogenic_uptake", "kg_co2e_per_declared_unit", "biogenic_uptake_kg", "valid_on_line_date"],
                    "properties": {
                        "id": s, "product_id": s, "company_name": s, "spec_version": s,
                        "reference_period_start": s, "reference_period_end": s,
                        "validity_period_start": s, "validity_period_end": s,
                        "validity_stated": {"type": "boolean", "description": "false: the spec's default, 3 years from the reference period's end"},
                        "valid_on_line_date": {"type": "boolean", "description": "false: the nearest footprint was used (a temporal fallback)"},
                        "declared_unit": s, "declared_unit_amount": {"type": "string", "description": "a decimal string as received"},
                        "pcf_excluding_biogenic_uptake": s, "pcf_including_biogenic_uptake": s,
                        "kg_co2e_per_declared_unit": num,
                        "biogenic_uptake_kg": {"type": "number", "description": "(including − excluding) per declared unit × the quantity: kept apart, never in co2e_kg"},
                        "primary_data_share": num,
                        "dqi": {"type": "array", "items": num, "minItems": 3, "maxItems": 3, "description": "technological, geographical and temporal DQR"},
                        "verified": {"type": "boolean"},
                    },
                },
                "classification": {"$ref": "#/components/schemas/Classification"},
                "scope_1_2": {
                    "type": "object",
                    "description": "An energy or fuel input's own Scope 1 or 2 emissions, recorded apart: never in co2e_kg or any Scope 3 total",
                    "required": ["scope", "co2e_kg", "counted_in_scope_3"],
                    "properties": {"scope": {"type": "integer", "enum": [1, 2]}, "co2e_kg": num, "counted_in_scope_3": {"type": "boolean", "enum": [false]}},
                },
            },
        },
        "Classification": {
            "type": "object",
            "description": "The line had no NAICS code (nor its supplier): what classification gave it, from which source, how sure, and why",
            "required": ["naics", "category", "capex", "source", "confidence", "needs_review", "evidence"],
            "properties": {
                "naics": s, "category": int, "capex": {"type": "boolean"},
                "source": {"type": "string", "enum": ["rule", "supplier_history", "organization_model", "builtin_model", "review"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "needs_review": {"type": "boolean", "description": "confidence below the organization's review threshold: calculated, and flagged"},
                "evidence": {"type": "object", "description": "`kind` rule (rule_id, rule_kind, pattern), supplier_history (supplier, lines, share), terms (terms: field, term, weight) or review (verdict accepted or corrected, transaction_id of the reviewed line, reviewed_by, reviewed_at, previous: what the classifier had said)"},
            },
        },
        "FactorUsed": {
            "type": "object",
            "properties": {"set": s, "version": s, "key": s, "value": num, "unit": s,
                "scope": {"type": "string", "enum": ["Scope 1", "Scope 2", "Scope 3", "Outside of Scopes"]}},
        },
        "RecordedApart": {
            "type": "object",
            "description": "Scope 1 and 2 emissions of energy and fuel inputs, recorded apart: not part of any Scope 3 total",
            "required": ["scope_1_kg", "scope_2_kg"],
            "properties": {"scope_1_kg": num, "scope_2_kg": num},
        },
        "Transaction": {
            "type": "object",
            "description": "A stored line as given (absent fields are null) with its result.",
            "required": ["transaction_id", "date", "price_basis", "emission"],
            "properties": {
                "transaction_id": s, "date": {"type": "string", "format": "date"},
                "supplier_id": {"type": ["string", "null"], "description": "the supplier the line belongs to"}, "supplier_name": {"type": "string", "description": "present when the line named one"},
                "supplier_as_named": {"type": "string", "description": "the supplier the line named (its id, or its name) when it belongs to another: its name was linked to an existing supplier, or its supplier was merged"},
                "description": opt_s, "amount": opt_n, "currency": opt_s, "naics_code": opt_s,
                "category": {"type": ["integer", "null"], "minimum": 1, "maximum": 15},
                "quantity": opt_n, "unit": opt_s, "activity_id": opt_s, "country": opt_s,
                "price_basis": {"type": "string", "enum": ["purchaser", "producer"]},
                "capex": {"type": "boolean"},
                "product_id": {"type": "string", "description": "present when the line named one"},
                "gl_account": {"type": "string", "description": "present when the line named one"},
                "gl_account_name": {"type": "string", "description": "present when the line named one"},
                "emission": {"$ref": "#/components/schemas/Emission"},
            },
        },
        "TransactionPage": page_of("Transaction"),
        "UpsertTransactions": {
            "type": "object",
            "required": ["transactions"],
            "properties": {"transactions": {"type": "array", "maxItems": 10000, "items": {"$ref": "#/components/schemas/LineInput"}}},
        },
        "UpsertTransactionsResult": {
            "type": "object",
            "properties": {
                "accepted": int,
                "rejected": {"type": "array", "items": {"type": "object", "properties": {"index": int, "transaction_id": {}, "error": {"type": "object"}}}},
            },
        },
        "Supplier": {
            "type": "object",
            "required": ["supplier_id", "name"],
            "properties": {
                "supplier_id": s, "name": s, "country": opt_s, "naics_code": opt_s,
                "intensity_kg_per_usd": opt_n, "intensity_year": {"type": ["integer", "null"]}, "intensity_source": opt_s,
                "intensity_boundary": {"type": ["string", "null"], "enum": ["scope_1_2", "scope_1_2_3_upstream", "cradle_to_gate", null],
                    "description": "what the intensity covers; absent: cradle_to_gate, recorded as not stated"},
                "intensity_verified": {"type": ["boolean", "null"]},
                "intensities": {"type": "array", "readOnly": true, "description": "the intensity history, one value per year (year null: the undated value)",
                    "items": {"$ref": "#/components/schemas/SupplierIntensity"}},
            },
        },
        "Period": {
            "type": "object",
            "required": ["year", "status", "version", "closed_at", "closed_by", "versions"],
            "properties": {
                "year": int, "status": {"type": "string", "enum": ["closed", "open"]},
                "version": {"type": "integer", "description": "the latest inventory version"},
                "closed_at": s, "closed_by": {"type": "string", "description": "who: an API key's id and role, or the command line"},
                "reopened_at": opt_s, "reopened_by": opt_s, "reopen_reason": opt_s,
                "versions": {"type": "array", "items": {"$ref": "#/components/schemas/VersionInfo"}},
            },
        },
        "VersionInfo": {
            "type": "object",
            "required": ["version", "created_at", "created_by", "reason", "transaction_count", "total_co2e_kg"],
            "properties": {"version": int, "created_at": s, "created_by": s, "reason": s, "transaction_count": int, "total_co2e_kg": num,
                "audit_seq": {"type": ["integer", "null"], "description": "the audit log entry that made the version (its close or restatement)"},
                "audit_hash": {"type": ["string", "null"], "description": "that entry's hash (hex): `GET /api/v1/audit/verify` shows it still holds"}},
        },
        "AuditEntry": {
            "type": "object",
            "required": ["seq", "at", "actor", "key_id", "role", "request_id", "action", "subject", "detail", "lines", "lines_digest", "prev_hash", "hash"],
            "properties": {
                "seq": {"type": "integer", "description": "the entry's place in the organization's chain, from 1"},
                "at": s,
                "actor": {"type": "string", "description": "who: `key 12 (admin)`, `command line (alice)`, or vcci itself"},
                "key_id": {"type": ["integer", "null"]},
                "role": {"type": "string", "description": "the key's role, `cli`, or `system`"},
                "request_id": opt_s,
                "action": s,
                "subject": s,
                "detail": {"description": "what changed (the action's own fields)"},
                "lines": {"type": "integer", "description": "lines the change wrote (created, updated or deleted)"},
                "lines_digest": {"type": ["string", "null"], "description": "SHA-256 (hex) of the lines' digests (25 bytes each: change, transaction-id hash, content hash before and after)"},
                "prev_hash": s,
                "hash": {"type": "string", "description": "SHA-256 (hex) of prev_hash and the entry's fields"},
            },
        },
        "AuditPage": page_of("AuditEntry"),
        "AuditVerification": {
            "type": "object",
            "required": ["ok", "entries", "lines", "head_seq", "head_hash", "broken", "unsealed_imports"],
            "properties": {
                "ok": {"type": "boolean"},
                "entries": int, "lines": int, "head_seq": int, "head_hash": s,
                "broken": {"type": ["object", "null"], "required": ["seq", "reason"], "properties": {"seq": int, "reason": s}, "description": "the first entry that breaks the chain"},
                "unsealed_imports": {"type": "array", "items": int, "description": "imports whose line digests no entry seals yet (running, or stopped without an end)"},
            },
        },
        "ClassificationState": {
            "type": "object",
            "required": ["generation", "review_below", "examples", "trained_at", "rules"],
            "properties": {
                "generation": int, "review_below": {"type": "number", "minimum": 0, "maximum": 1},
                "examples": {"type": "integer", "description": "lines the organization model learned from"},
                "trained_at": opt_s, "rules": int,
            },
        },
        "ClassificationSettings": {
            "type": "object", "required": ["review_below"],
            "properties": {"review_below": {"type": "number", "minimum": 0, "maximum": 1}},
        },
        "ClassificationRuleInput": {
            "type": "object", "required": ["kind", "pattern", "naics_code"],
            "properties": {
                "kind": {"type": "string", "enum": ["gl_account", "supplier", "keyword"], "description": "gl_account: the account, exactly, or a prefix ending in `*`; supplier: its id, or its name however typed; keyword: words of the description or account name, in order"},
                "pattern": {"type": "string", "minLength": 1, "maxLength": 256},
                "naics_code": {"type": "string", "pattern": "^[1-9][0-9]{5}$"},
                "category": {"type": "integer", "minimum": 1, "maximum": 15, "description": "default: the category the code implies"},
                "capex": {"type": "boolean", "description": "a capital purchase: category 2"},
            },
        },
        "ClassificationRule": {
            "type": "object",
            "required": ["id", "kind", "pattern", "naics_code", "category", "capex", "created_at", "created_by"],
            "properties": {
                "id": int, "kind": {"type": "string", "enum": ["gl_account", "supplier", "keyword"]},
                "pattern": s, "naics_code": s, "category": int, "capex": {"type": "boolean"},
                "created_at": s, "created_by": s,
            },
        },
        "ClassificationRules": {"type": "object", "required": ["rules"], "properties": {"rules": {"type": "array", "items": {"$ref": "#/components/schemas/ClassificationRule"}}}},
        "ClassificationCoverage": {
            "type": "object",
            "required": ["lines", "spend_usd", "co2e_kg", "by_source", "needs_review", "largest_unclassified_suppliers"],
            "properties": {
                "lines": int, "spend_usd": num, "co2e_kg": num,
                "by_source": {"type": "array", "items": {"type": "object", "required": ["source", "lines", "spend_usd", "co2e_kg", "spend_share", "co2e_share"], "properties": {
                    "source": {"type": "string", "enum": ["given", "rule", "supplier_history", "organization_model", "builtin_model", "review"]},
                    "lines": int, "spend_usd": num, "co2e_kg": num, "spend_share": opt_n, "co2e_share": opt_n,
                }}},
                "needs_review": {"type": "object", "required": ["lines", "spend_usd", "co2e_kg"], "properties": {"lines": int, "spend_usd": num, "co2e_kg": num}},
                "largest_unclassified_suppliers": {"type": "array", "items": {"type": "object", "required": ["supplier_id", "lines", "spend_usd", "co2e_kg", "needs_review_lines"], "properties": {
                    "supplier_id": s, "lines": int, "spend_usd": num, "co2e_kg": num, "needs_review_lines": int,
                }}},
            },
        },
        "ClassificationTraining": {
            "type": "object", "required": ["lines_read", "examples", "reviews", "seconds", "generation"],
            "properties": {"lines_read": int, "examples": int, "reviews": {"type": "integer", "description": "reviewed inputs learned from (each counts twice in examples)"}, "seconds": num, "generation": int},
        },
        "SupplierMatches": {"type": "object", "required": ["matches"], "properties": {"matches": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "supplier_id", "supplier_name", "candidate_id", "candidate_name", "score", "status", "created_at", "decided_at", "decided_by"],
            "properties": {"id": int, "supplier_id": s, "supplier_name": s, "candidate_id": s, "candidate_name": s,
                "score": {"type": "number", "minimum": 0, "maximum": 1}, "status": {"type": "string", "enum": ["open", "merged", "dismissed"]},
                "created_at": s, "decided_at": opt_s, "decided_by": opt_s},
        }}}},
        "SupplierMergeInput": {
            "type": "object", "required": ["from", "into"],
            "properties": {"from": {"type": "string", "minLength": 1, "maxLength": 256, "description": "the supplier merged away"}, "into": {"type": "string", "minLength": 1, "maxLength": 256, "description": "the supplier that stays"}},
        },
        "SupplierMerge": {
            "type": "object", "required": ["merge_id", "from", "into", "lines_moved", "lines_changed", "intensity_years_moved", "footprints_moved"],
            "properties": {"merge_id": int, "from": s, "into": s, "lines_moved": int, "lines_changed": int, "intensity_years_moved": int, "footprints_moved": int},
        },
        "SupplierUnmerge": {
            "type": "object", "required": ["merge_id", "from", "into", "lines_moved", "lines_changed"],
            "properties": {"merge_id": int, "from": s, "into": s, "lines_moved": int, "lines_changed": int},
        },
        "SupplierMerges": {"type": "object", "required": ["merges"], "properties": {"merges": {"type": "array", "items": {
            "type": "object", "required": ["id", "from", "into", "lines", "merged_at", "merged_by", "unmerged_at", "unmerged_by"],
            "properties": {"id": int, "from": s, "into": s, "lines": int, "merged_at": s, "merged_by": s, "unmerged_at": opt_s, "unmerged_by": opt_s},
        }}}},
        "SupplierAliases": {"type": "object", "required": ["aliases"], "properties": {"aliases": {"type": "array", "items": {
            "type": "object", "required": ["kind", "alias", "supplier_id", "name", "source", "score", "merge_id", "created_at"],
            "properties": {"kind": {"type": "string", "enum": ["name", "id"]}, "alias": s, "supplier_id": s, "name": s,
                "source": {"type": "string", "enum": ["linked", "merged"]}, "score": num, "merge_id": {"type": ["integer", "null"]}, "created_at": s},
        }}}},
        "ClassificationReclassified": {
            "type": "object", "required": ["lines_read", "lines_changed", "lines_kept_closed", "errors", "errors_total"],
            "properties": {
                "lines_read": {"type": "integer", "description": "lines the machine classified (reviewed ones are not read)"},
                "lines_changed": int, "lines_kept_closed": int, "errors_total": int,
                "errors": {"type": "array", "maxItems": 100, "items": {"type": "object", "required": ["transaction_id", "code", "message"], "properties": {"transaction_id": s, "code": s, "message": s}}},
            },
        },
        "ReviewQueueSize": {
            "type": "object", "required": ["lines", "spend_usd", "co2e_kg"],
            "properties": {"lines": int, "spend_usd": num, "co2e_kg": num},
        },
        "ClassificationReviewItem": {
            "allOf": [{"$ref": "#/components/schemas/Transaction"}, {
                "type": "object", "required": ["spend_usd"], "properties": {"spend_usd": num},
            }],
        },
        "ClassificationReviewPage": {
            "type": "object",
            "required": ["data", "page_info", "queue"],
            "properties": {
                "data": {"type": "array", "items": {"$ref": "#/components/schemas/ClassificationReviewItem"}},
                "page_info": {"$ref": "#/components/schemas/PageInfo"},
                "queue": {"$ref": "#/components/schemas/ReviewQueueSize"},
            },
        },
        "ClassificationReviewInput": {
            "type": "object", "required": ["items"],
            "properties": {
                "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
                    "type": "object", "required": ["transaction_id"],
                    "properties": {
                        "transaction_id": s,
                        "naics_code": {"type": "string", "pattern": "^[1-9][0-9]{5}$", "description": "the right code (its category follows unless given)"},
                        "category": {"type": "integer", "minimum": 1, "maximum": 15},
                        "capex": {"type": "boolean", "description": "a capital purchase: category 2"},
                    },
                    "description": "no naics_code, category or capex: the classification is accepted",
                }},
                "rule": {
                    "type": "object", "required": ["kind"],
                    "description": "make a rule from the one reviewed line: its supplier, its ledger account, or a keyword pattern",
                    "properties": {
                        "kind": {"type": "string", "enum": ["gl_account", "supplier", "keyword"]},
                        "pattern": {"type": "string", "minLength": 1, "maxLength": 256, "description": "default: the line's supplier or ledger account; needed for a keyword"},
                    },
                },
            },
        },
        "ClassificationReviewResult": {
            "type": "object",
            "required": ["reviewed", "lines_changed", "lines_kept_closed", "rule", "queue"],
            "properties": {
                "reviewed": {"type": "array", "items": {"type": "object", "required": ["transaction_id", "verdict", "naics_code", "category", "capex"], "properties": {
                    "transaction_id": s, "verdict": {"type": "string", "enum": ["accepted", "corrected"]},
                    "naics_code": s, "category": int, "capex": {"type": "boolean"},
                }}},
                "lines_changed": {"type": "integer", "description": "lines calculated again: the reviewed ones and flagged lines of the same input"},
                "lines_kept_closed": {"type": "integer", "description": "flagged lines of the same input in closed years, left as they are"},
                "rule": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ClassificationRule"}]},
                "queue": {"$ref": "#/components/schemas/ReviewQueueSize"},
            },
        },
        "Periods": {"type": "object", "required": ["periods"], "properties": {"periods": {"type": "array", "items": {"$ref": "#/components/schemas/Period"}}}},
        "InventoryVersion": {
            "allOf": [{"$ref": "#/components/schemas/VersionInfo"}, {
                "type": "object",
                "required": ["year", "inventory"],
                "properties": {"year": int, "inventory": {"type": "object", "description": "the year's inventory (the inventory report's shape) as it was when the version was made"}},
            }],
        },
        "ReportingSettings": {
            "type": "object",
            "properties": {
                "base_year": {"type": ["integer", "null"], "minimum": 1990, "maximum": 2100},
                "significance_threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "a share: 0.05 is 5 %"},
            },
        },
        "Denominator": {
            "type": "object",
            "required": ["name", "year", "value", "unit"],
            "properties": {"name": s, "year": int, "value": num, "unit": s},
        },
        "DenominatorValue": {
            "type": "object",
            "required": ["value"],
            "properties": {"value": {"type": "number", "exclusiveMinimum": 0}, "unit": {"type": "string", "maxLength": 64}},
        },
        "Denominators": {"type": "object", "required": ["denominators"], "properties": {"denominators": {"type": "array", "items": {"$ref": "#/components/schemas/Denominator"}}}},
        "CompareRow": {
            "type": "object",
            "properties": {
                "category": {"type": ["integer", "null"]}, "name": s,
                "year_co2e_kg": opt_n, "previous_year_co2e_kg": opt_n, "base_year_co2e_kg": opt_n,
                "change_vs_previous_kg": opt_n, "change_vs_previous_pct": opt_n,
                "change_vs_base_kg": opt_n, "change_vs_base_pct": opt_n,
            },
        },
        "Comparison": {
            "type": "object",
            "required": ["year", "previous_year", "sources", "categories", "total"],
            "properties": {
                "year": int, "previous_year": int, "base_year": {"type": ["integer", "null"]},
                "sources": {"type": "object", "description": "per year: `live`, or `version N` of a closed year (what was disclosed)"},
                "categories": {"type": "array", "items": {"$ref": "#/components/schemas/CompareRow"}},
                "total": {"$ref": "#/components/schemas/CompareRow"},
                "intensity": {"type": "object", "description": "the total per unit of the denominator asked for"},
            },
        },
        "Target": {
            "type": "object",
            "required": ["id", "name", "categories", "base_year", "target_year", "reduction_pct"],
            "properties": {
                "id": int, "name": s, "categories": {"type": "array", "items": int, "description": "empty: all"},
                "base_year": int, "target_year": int, "reduction_pct": num, "created_at": s,
            },
        },
        "TargetInput": {
            "type": "object",
            "required": ["name", "base_year", "target_year", "reduction_pct"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "categories": {"type": "array", "maxItems": 15, "items": {"type": "integer", "minimum": 1, "maximum": 15}},
                "base_year": {"type": "integer", "minimum": 1990, "maximum": 2100},
                "target_year": {"type": "integer", "minimum": 1990, "maximum": 2100},
                "reduction_pct": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
            },
        },
        "Targets": {
            "type": "object",
            "required": ["targets"],
            "properties": {"targets": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/Target"}, {"type": "object", "properties": {
                "base_year_co2e_kg": opt_n, "target_co2e_kg": opt_n,
                "years": {"type": "array", "items": {"type": "object", "properties": {
                    "year": int, "co2e_kg": opt_n, "path_co2e_kg": num, "on_track": {"type": ["boolean", "null"]}, "reduction_pct": opt_n}}},
            }}]}}},
        },
        "Restatement": {
            "type": "object",
            "properties": {
                "epa_version": {"type": "string", "enum": ["1.3.0", "1.2"]},
                "default_currency": {"type": "string", "description": "ISO 4217"},
                "flights_radiative_forcing": {"type": "boolean"},
                "suppliers": {"type": "array", "maxItems": 10000, "items": {"$ref": "#/components/schemas/Supplier"},
                    "description": "corrected supplier data (as the supplier upsert takes it), written even where it changes a closed year"},
                "transactions": {"type": "array", "maxItems": 10000, "items": {"$ref": "#/components/schemas/LineInput"},
                    "description": "corrected lines (upserts by transaction_id: a changed amount, date, NAICS code or category), written even in a closed year"},
                "reason": {"type": "string", "maxLength": 2000, "description": "applying only: why (recorded with each new version)"},
            },
        },
        "RestatementPreview": {
            "type": "object",
            "required": ["cause", "significance_threshold", "years"],
            "properties": {
                "cause": s, "significance_threshold": num,
                "years": {"type": "array", "items": {"type": "object", "properties": {
                    "year": int, "version": int, "lines_affected": int, "lines_failing": int, "significant": {"type": "boolean"},
                    "categories": {"type": "array", "items": {"type": "object"}}, "total": {"type": "object"},
                }}},
            },
        },
        "RestatementResult": {
            "type": "object",
            "properties": {"cause": s, "versions": {"type": "array", "items": {"type": "object", "properties": {"year": int, "version": int}}}},
        },
        "ReopenPeriod": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 2000}}},
        "SupplierIntensity": {
            "type": "object",
            "required": ["year", "kg_per_usd", "boundary", "boundary_stated", "verified"],
            "properties": {
                "year": {"type": ["integer", "null"]}, "kg_per_usd": num,
                "boundary": {"type": "string", "enum": ["scope_1_2", "scope_1_2_3_upstream", "cradle_to_gate"]},
                "boundary_stated": {"type": "boolean"}, "verified": {"type": "boolean"}, "source": opt_s, "updated_at": s,
            },
        },
        "SupplierIntensities": {
            "type": "object",
            "required": ["supplier_id", "intensities"],
            "properties": {"supplier_id": s, "intensities": {"type": "array", "items": {"$ref": "#/components/schemas/SupplierIntensity"}}},
        },
        "RemovedIntensity": {
            "type": "object",
            "properties": {"supplier_id": s, "year": {"type": ["integer", "null"]}, "recalculated_lines": int},
        },
        "SupplierPage": page_of("Supplier"),
        "SupplierDetail": {
            "allOf": [{"$ref": "#/components/schemas/Supplier"}, {
                "type": "object",
                "properties": {"emissions": {"type": "object", "properties": {"co2e_kg": num, "transaction_count": int, "spend_usd": num}}},
            }],
        },
        "UpsertSuppliers": {
            "type": "object",
            "required": ["suppliers"],
            "properties": {"suppliers": {"type": "array", "maxItems": 10000, "items": {"$ref": "#/components/schemas/Supplier"}}},
        },
        "UpsertSuppliersResult": {"type": "object", "properties": {"upserted": int, "recalculated_lines": int,
            "rejected": {"type": "array", "description": "suppliers refused because their change would alter a closed reporting period (period_closed); the rest is stored",
                "items": {"type": "object", "properties": {"index": int, "supplier_id": s, "error": {"type": "object"}}}}}},
        "FactorPage": page_of("Factor"),
        "ReceiveFootprints": {
            "type": "object",
            "description": "PACT v3 ProductFootprint objects in `footprints`, or a PACT list response's `data` (one of the two)",
            "oneOf": [{"required": ["footprints"]}, {"required": ["data"]}],
            "properties": {
                "footprints": {"type": "array", "maxItems": 1000, "items": {"type": "object", "description": "a PACT v3 ProductFootprint"}},
                "data": {"type": "array", "maxItems": 1000, "items": {"type": "object", "description": "a PACT v3 ProductFootprint"}},
            },
        },
        "FootprintReceipt": {
            "type": "object",
            "required": ["received", "unchanged", "deprecated", "superseded", "rejected", "recalculated_lines"],
            "properties": {
                "received": {"type": "array", "items": s, "description": "ids new to the organization"},
                "unchanged": int,
                "deprecated": {"type": "array", "items": s, "description": "ids received before as Active, now Deprecated"},
                "superseded": {"type": "array", "items": s, "description": "ids a received footprint lists in precedingPfIds"},
                "rejected": {"type": "array", "items": {"type": "object", "required": ["index", "id", "errors"], "properties": {
                    "index": int, "id": opt_s,
                    "errors": {"type": "array", "items": {"type": "object", "required": ["path", "message"], "properties": {"path": {"type": "string", "description": "a JSON Pointer into the footprint"}, "message": s}}},
                }}},
                "recalculated_lines": int,
            },
        },
        "StoredFootprint": {
            "type": "object",
            "required": ["id", "supplier_id", "status", "in_use", "created", "company_name", "product_ids", "preceding_pf_ids"],
            "properties": {
                "id": s, "supplier_id": s, "status": {"type": "string", "enum": ["Active", "Deprecated"]},
                "superseded_by": opt_s, "in_use": {"type": "boolean", "description": "Active and not superseded: calculations use it"},
                "created": s, "company_name": s, "product_ids": {"type": "array", "items": s},
                "preceding_pf_ids": {"type": "array", "items": s}, "source": s, "received_at": s, "updated_at": s,
            },
        },
        "FootprintPage": page_of("StoredFootprint"),
        "Publication": {
            "type": "object",
            "required": ["published", "unchanged", "deprecated", "rejected"],
            "description": "`notices_queued`: customers' hosts to be told (PublishedEvent), on the API's answer only",
            "properties": {
                "published": {"type": "array", "items": s, "description": "ids newly published"},
                "notices_queued": int,
                "unchanged": int,
                "deprecated": {"type": "array", "items": s, "description": "ids superseded by a new version, now Deprecated"},
                "rejected": {"type": "array", "items": {"type": "object", "required": ["index", "id", "errors"], "properties": {
                    "index": int, "id": opt_s,
                    "errors": {"type": "array", "items": {"type": "object", "required": ["path", "message"], "properties": {"path": s, "message": s}}},
                }}},
            },
        },
        "PublishedFootprint": {
            "type": "object",
            "required": ["id", "status", "created", "product_ids", "preceding_pf_ids", "published_at", "updated_at"],
            "properties": {
                "id": s, "status": {"type": "string", "enum": ["Active", "Deprecated"]}, "created": s,
                "product_ids": {"type": "array", "items": s}, "preceding_pf_ids": {"type": "array", "items": s},
                "published_at": s, "updated_at": s,
            },
        },
        "PublishedPage": page_of("PublishedFootprint"),
        "NewPactClient": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 256, "description": "the customer"}}},
        "PactClient": {
            "type": "object",
            "required": ["client_id", "name", "created_at", "revoked_at"],
            "properties": {"client_id": s, "name": s, "created_at": s, "revoked_at": opt_s},
        },
        "PactClientCreated": {
            "allOf": [{"$ref": "#/components/schemas/PactClient"}, {
                "type": "object",
                "required": ["client_secret"],
                "properties": {"client_secret": {"type": "string", "description": "shown once: only its hash is kept"}},
            }],
        },
        "NewConnection": {
            "type": "object",
            "required": ["supplier_id", "base_url", "client_id", "client_secret"],
            "properties": {
                "supplier_id": {"type": "string", "minLength": 1, "maxLength": 128},
                "base_url": {"type": "string", "description": "the supplier's PACT host, https://"},
                "auth_base_url": {"type": "string", "description": "its auth server (https://; /auth/token under it); absent: discovered through /.well-known/openid-configuration"},
                "client_id": {"type": "string", "minLength": 1, "maxLength": 256},
                "client_secret": {"type": "string", "minLength": 1, "maxLength": 1024, "description": "stored encrypted at rest; never returned"},
                "notify_published": {"type": "boolean", "description": "a customer's host: told (PublishedEvent) of the footprints we publish; default false"},
            },
        },
        "Connection": {
            "type": "object",
            "required": ["id", "supplier_id", "base_url", "auth_base_url", "client_id", "created_at", "updated_at", "last_sync"],
            "properties": {
                "id": s, "supplier_id": s, "base_url": s, "auth_base_url": opt_s, "client_id": s,
                "created_at": s, "updated_at": s,
                "last_sync": {"type": ["object", "null"], "description": "status (succeeded, failed), at, job_id, report, reason"},
                "breaker": {"type": "string", "enum": ["closed", "open", "half_open"], "description": "the circuit breaker of the host on this node"},
                "notify_published": {"type": "boolean"},
            },
        },
        "Connections": {"type": "object", "required": ["connections"], "properties": {"connections": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}}}},
        "FootprintCoverage": {
            "type": "object",
            "required": ["lines", "lines_naming_product", "lines_from_footprints", "spend_usd", "spend_usd_from_footprints", "co2e_kg", "co2e_kg_from_footprints", "share_of_product_lines", "share_of_spend", "suppliers"],
            "properties": {
                "lines": int, "lines_naming_product": int, "lines_from_footprints": int,
                "spend_usd": num, "spend_usd_from_footprints": num, "co2e_kg": num, "co2e_kg_from_footprints": num,
                "share_of_product_lines": opt_n, "share_of_spend": opt_n,
                "suppliers": {"type": "array", "items": {"type": "object", "properties": {
                    "supplier_id": s, "lines_naming_product": int, "lines_from_footprints": int, "co2e_kg_from_footprints": num,
                }}},
            },
        },
        "FootprintRequest": {
            "type": "object",
            "required": ["productId"],
            "description": "The criteria of a PACT RequestCreatedEvent's data: productId (required), companyId, geography, classification, validOn, validAfter, validBefore, status, comment",
            "properties": {
                "productId": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "pattern": "^[uU][rR][nN]:"}},
                "comment": s,
            },
        },
        "PactRequest": {
            "type": "object",
            "required": ["id", "direction", "criteria", "status", "created_at", "updated_at"],
            "properties": {
                "id": s, "direction": {"type": "string", "enum": ["outgoing", "incoming"]},
                "connection_id": opt_s, "client_id": opt_s, "source": opt_s,
                "criteria": {"type": "object"},
                "status": {"type": "string", "enum": ["pending", "fulfilled", "rejected", "send_failed", "answer_failed"]},
                "answer": {"type": ["object", "null"]}, "created_at": s, "updated_at": s,
            },
        },
        "PactRequests": {"type": "object", "required": ["requests"], "properties": {"requests": {"type": "array", "items": {"$ref": "#/components/schemas/PactRequest"}}}},
        "DeletedConnection": {"type": "object", "required": ["id", "deleted"], "properties": {"id": s, "deleted": {"type": "boolean"}}},
        "PactClients": {"type": "object", "required": ["clients"], "properties": {"clients": {"type": "array", "items": {"$ref": "#/components/schemas/PactClient"}}}},
        "RevokedPactClient": {"type": "object", "required": ["client_id", "revoked"], "properties": {"client_id": s, "revoked": {"type": "boolean"}}},
        "FootprintDetail": {
            "allOf": [{"$ref": "#/components/schemas/StoredFootprint"}, {
                "type": "object",
                "required": ["document", "lines"],
                "properties": {"document": {"type": "object", "description": "the ProductFootprint as received"}, "lines": {"type": "integer", "description": "lines calculated with it"}},
            }],
        },
        "Calculate": {
            "type": "object",
            "required": ["lines"],
            "properties": {"lines": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/LineInput"}}},
        },
        "CalculateResult": {
            "type": "object",
            "properties": {
                "results": {"type": "array", "items": {"type": "object", "properties": {"index": int, "emission": {"$ref": "#/components/schemas/Emission"}, "error": {"type": "object"}}}},
                "total_co2e_kg": num,
            },
        },
        "Summary": {
            "type": "object",
            "properties": {
                "total_co2e_kg": num, "transaction_count": int, "spend_usd": num,
                "by_category": {"type": "array", "items": {"type": "object", "properties": {"category": int, "name": s, "co2e_kg": num, "transaction_count": int, "share": num,
                    "gases": {"$ref": "#/components/schemas/Gases"}}}},
                "categories_without_data": {"type": "array", "items": int},
                "by_method": {"type": "array", "items": {"type": "object", "properties": {"method": s, "co2e_kg": num, "transaction_count": int, "share": num}}},
                "by_data_quality": {"type": "array", "items": {"type": "object"}},
                "weighted_data_quality": opt_n,
                "scope_1_2_recorded_apart": {"$ref": "#/components/schemas/RecordedApart"},
                "by_gas": {"$ref": "#/components/schemas/Gases"},
                "biogenic_co2_kg": {"type": "number", "description": "biogenic CO2 of fuels and electricity, outside the scopes: not in total_co2e_kg"},
            },
        },
        "Gases": {
            "type": "object",
            "description": "kg CO2e by gas (AR5); radiative_forcing_kg is the flights' RF uplift (not a gas); unspecified_kg what the factor set does not split",
            "properties": {"co2_kg": num, "ch4_kg": num, "n2o_kg": num, "other_kg": num, "radiative_forcing_kg": num, "unspecified_kg": num},
        },
        "ByMonth": {
            "type": "object",
            "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
                "month": {"type": "string", "description": "YYYY-MM"}, "co2e_kg": num, "transaction_count": int,
                "by_category": {"type": "object", "additionalProperties": num},
                "by_gas": {"$ref": "#/components/schemas/Gases"},
            }}}},
        },
        "SupplierTotal": {
            "type": "object",
            "properties": {"supplier_id": opt_s, "name": opt_s, "co2e_kg": num, "transaction_count": int, "spend_usd": num},
        },
        "SupplierTotalPage": page_of("SupplierTotal"),
        "ReportRequest": {
            "type": "object",
            "required": ["report_type"],
            "properties": {
                "report_type": {"type": "string", "enum": ["inventory", "by_category", "by_month", "by_supplier"]},
                "date_from": {"type": "string", "format": "date"}, "date_to": {"type": "string", "format": "date"},
                "format": {"type": "string", "enum": ["csv", "json"], "default": "json"},
            },
        },
        "JobAccepted": {"type": "object", "required": ["job_id", "status_url"], "properties": {"job_id": s, "status_url": s}},
        "Job": {
            "type": "object",
            "required": ["job_id", "kind", "status", "progress"],
            "properties": {
                "job_id": s, "kind": {"type": "string", "enum": ["import", "report", "pact_sync", "pact_answer", "pact_notify"]},
                "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
                "progress": {"type": "object", "properties": {"processed": int, "total": int, "bytes_read": int, "bytes_total": int}, "description": "`total` and `bytes_total` are absent while unknown"},
                "result": {"type": "object"}, "errors": {"type": "array", "items": {"type": "object"}},
                "attempts": int, "created_at": s, "started_at": opt_s, "finished_at": opt_s,
            },
        },
        "Performance": {
            "type": "object",
            "properties": {
                "uptime_s": num,
                "windows": {"type": "object", "description": "`1m`, `5m`, `15m`: per route (`*` = all) requests, throughput_rps, error_rate, p50_ms, p95_ms, p99_ms", "additionalProperties": {"type": "array", "items": {"type": "object"}}},
                "cache": {"type": "object"}, "pool": {"type": "object"},
                "slow_query_threshold_ms": num,
                "slowest_queries": {"type": "array", "items": {"type": "object", "properties": {"query": s, "ms": num, "at_s": num}}},
            },
        },
        "Me": {
            "type": "object",
            "properties": {"organization": s, "role": {"type": "string", "enum": ["admin", "analyst", "viewer"]},
                "epa_version": {"type": "string", "description": "the EPA release of the organization's spend lines"},
                "default_currency": {"type": "string", "description": "ISO 4217 code of lines that name no currency"},
                "flights_radiative_forcing": {"type": "boolean", "description": "flights are reported with radiative forcing"}},
        },
        "Health": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}},
        "Ready": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["ready", "degraded", "warming"]}, "checks": {"type": "object", "additionalProperties": s}},
        },
    })
}
