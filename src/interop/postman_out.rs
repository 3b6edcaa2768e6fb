//! A postie collection → a Postman v2.1 collection (and environment files) that Postman and
//! Newman accept.
//!
//! What Postman says natively is written natively: `<<name>>` → `{{name}}`, `uuid()` →
//! `{{$guid}}`, auth, bodies, folders, scripts, examples; assertions become `pm.test`s and
//! captures `set`s in the idioms `import postman` reads back, so a Postman collection survives
//! import → export → import. What Postman has no word for is written as script, over a small
//! runtime (`postie_lib.js`, kept in the collection variable `postie_lib`): a template
//! expression (`<<find_contact.body.contacts | length>>`) is computed by a pre-request script
//! into a local variable; automatic chaining (top-level fields and a redirect's `Location`
//! query) and a request's last exchange by name are kept by test scripts; flows become folders,
//! `when:` a `skipRequest`, polling `until:` a `setNextRequest` loop with the same limit.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::machinery::ast;
use serde_json::{Map, Value, json};

use super::Report;
use crate::collection::{
    AssertSpec, Auth, CaptureSpec, Collection, Part, Request, StatusSpec, Step, VarDef,
};

const SCHEMA: &str = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json";
const LIB: &str = include_str!("postie_lib.js");
const LOAD_LIB: &str = "eval(pm.collectionVariables.get(\"postie_lib\"));";

/// An exported collection and the environment files asked for.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The collection.
    pub collection: Value,
    /// `(name, environment file)` for each `--env`.
    pub environments: Vec<(String, Value)>,
    /// What happened.
    pub report: Report,
}

/// Exports a collection, with the named environments as Postman environment files.
pub fn export(c: &Collection, envs: &[String]) -> Result<Exported, String> {
    for e in envs {
        if !c.environments.contains_key(e) {
            return Err(format!(
                "environment `{e}` is not defined in the collection{}",
                crate::collection::suggest(e, c.environments.keys())
            ));
        }
    }
    let mut x = Exporter::new(c);
    x.report.export = true;
    x.analyse();
    let collection = x.collection();
    let environments = envs.iter().map(|e| (e.clone(), x.environment(e))).collect();
    x.finish_report(envs);
    Ok(Exported {
        collection,
        environments,
        report: x.report,
    })
}

struct Exporter<'c> {
    c: &'c Collection,
    report: Report,
    /// Names automatic chaining must set: used by a template, declared nowhere.
    chained: BTreeSet<String>,
    /// Requests whose last exchange a template or condition reads by name.
    recorded: BTreeSet<String>,
    /// `env.X` references: Postman variables the user supplies.
    env_refs: BTreeSet<String>,
    /// Secret variables whose value was left out.
    blanked: BTreeSet<String>,
    /// Whether any script uses the runtime.
    needs_lib: bool,
    /// Expressions written as script.
    computed: usize,
    counter: usize,
}

/// Scripts generated for one request (or item of a flow).
#[derive(Default)]
struct Gen {
    pre: Vec<String>,
    post: Vec<String>,
    uses_lib: bool,
}

impl Gen {
    fn lib(&mut self) {
        self.uses_lib = true;
    }
}

fn declared(c: &Collection) -> BTreeSet<String> {
    c.variables
        .keys()
        .chain(c.environments.values().flat_map(|m| m.keys()))
        .cloned()
        .collect()
}

impl<'c> Exporter<'c> {
    fn new(c: &'c Collection) -> Exporter<'c> {
        Exporter {
            c,
            report: Report::default(),
            chained: BTreeSet::new(),
            recorded: BTreeSet::new(),
            env_refs: BTreeSet::new(),
            blanked: BTreeSet::new(),
            needs_lib: false,
            computed: 0,
            counter: 0,
        }
    }

    /// Finds what needs chaining and recording, from every template and condition.
    fn analyse(&mut self) {
        let declared = declared(self.c);
        let mut sources: Vec<String> = Vec::new();
        for r in self.c.requests.values() {
            sources.extend(r.template_sources().into_iter().map(|(_, s)| s.to_string()));
        }
        for v in self
            .c
            .variables
            .values()
            .chain(self.c.environments.values().flat_map(|m| m.values()))
        {
            let mut strs = Vec::new();
            crate::capture::json_str_refs(v.value(), &mut strs);
            sources.extend(strs.into_iter().map(String::from));
        }
        let mut conditions: Vec<String> = Vec::new();
        for f in self.c.flows.values() {
            for s in &f.steps {
                if let Step::Detailed(d) = s {
                    conditions.extend(d.when.clone());
                    conditions.extend(d.until.clone());
                }
            }
        }
        let mut roots = BTreeSet::new();
        for s in &sources {
            for e in expressions(s) {
                if let Ok(ast) = minijinja::machinery::parse_expr(e) {
                    collect_roots(&ast, &mut roots);
                }
            }
        }
        for cond in &conditions {
            if let Ok(ast) = minijinja::machinery::parse_expr(cond) {
                collect_roots(&ast, &mut roots);
            }
        }
        for r in roots {
            if self.c.requests.contains_key(&r) {
                self.recorded.insert(r);
            } else if r != "env"
                && r != "mock_url"
                && !declared.contains(&r)
                && !FUNCTIONS.contains(&r.as_str())
            {
                self.chained.insert(r);
            }
        }
        // Under `compat: newman` values come from captures and scripts only.
        if self.c.newman() {
            self.chained.clear();
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    /// Template text → Postman text; expressions Postman cannot say are computed into locals by
    /// lines added to `g.pre`.
    fn text(&mut self, src: &str, g: &mut Gen) -> String {
        let mut out = String::with_capacity(src.len());
        let mut rest = src;
        while let Some(i) = rest.find("<<") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = expression_end(after) else {
                out.push_str(&rest[i..]);
                return out;
            };
            let expr = after[..end].trim();
            out.push_str(&self.expr_text(expr, g));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// One `<<expr>>` as Postman text.
    fn expr_text(&mut self, expr: &str, g: &mut Gen) -> String {
        let ast = match minijinja::machinery::parse_expr(expr) {
            Ok(a) => a,
            Err(e) => {
                self.report.left_out.push(format!(
                    "`<<{expr}>>` does not parse ({e}); written as it is"
                ));
                return format!("<<{expr}>>");
            }
        };
        if let Some(simple) = self.simple(&ast) {
            return simple;
        }
        match self.js(&ast) {
            Ok(js) => {
                let var = self.next_id("postie");
                g.lib();
                g.pre
                    .push(format!("pm.variables.set(\"{var}\", P.s({js}));"));
                self.computed += 1;
                format!("{{{{{var}}}}}")
            }
            Err(e) => {
                self.report.left_out.push(format!(
                    "`<<{expr}>>` cannot be written for Postman ({e}); sent as it is"
                ));
                format!("<<{expr}>>")
            }
        }
    }

    /// What Postman says itself: a variable, `env.X`, a dynamic variable, a literal.
    fn simple(&mut self, e: &ast::Expr<'_>) -> Option<String> {
        match e {
            // Under `compat: newman` a name is a variable first (exchanges come last).
            ast::Expr::Var(v)
                if v.id != "env" && (self.c.newman() || !self.c.requests.contains_key(v.id)) =>
            {
                Some(format!("{{{{{}}}}}", v.id))
            }
            ast::Expr::GetAttr(a) => match &a.expr {
                ast::Expr::Var(v) if v.id == "env" => {
                    self.env_refs.insert(a.name.to_string());
                    Some(format!("{{{{{}}}}}", a.name))
                }
                _ => None,
            },
            ast::Expr::Const(k) => Some(k.value.to_string()),
            ast::Expr::Call(call) => {
                let ast::Expr::Var(f) = &call.expr else {
                    return None;
                };
                let args: Vec<String> = call
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        ast::CallArg::Pos(ast::Expr::Const(k)) => Some(k.value.to_string()),
                        _ => None,
                    })
                    .collect();
                if args.len() != call.args.len() {
                    return None;
                }
                match (f.id, args.as_slice()) {
                    ("uuid", []) => Some("{{$guid}}".into()),
                    ("now", [u]) if u == "unix" => Some("{{$timestamp}}".into()),
                    ("now", []) => Some("{{$isoTimestamp}}".into()),
                    ("random_int", []) => Some("{{$randomInt}}".into()),
                    ("random_int", [a, b]) if a == "0" && b == "1000" => {
                        Some("{{$randomInt}}".into())
                    }
                    ("fake", [k]) => Some(format!("{{{{${k}}}}}")),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// An expression as JavaScript over the runtime `P`.
    fn js(&mut self, e: &ast::Expr<'_>) -> Result<String, String> {
        Ok(match e {
            ast::Expr::Var(v) => {
                if self.c.requests.contains_key(v.id) {
                    self.recorded.insert(v.id.to_string());
                    format!("P.x({})", js_str(v.id))
                } else if v.id == "env" {
                    return Err("the whole process environment".into());
                } else {
                    format!("P.v({})", js_str(v.id))
                }
            }
            ast::Expr::Const(k) => serde_json::to_string(&k.value).map_err(|e| e.to_string())?,
            ast::Expr::GetAttr(a) => match &a.expr {
                ast::Expr::Var(v) if v.id == "env" => {
                    self.env_refs.insert(a.name.to_string());
                    format!("pm.variables.get({})", js_str(a.name))
                }
                inner => format!("P.get({}, {})", self.js(inner)?, js_str(a.name)),
            },
            ast::Expr::GetItem(g) => {
                format!(
                    "P.get({}, {})",
                    self.js(&g.expr)?,
                    self.js(&g.subscript_expr)?
                )
            }
            ast::Expr::Slice(s) => {
                let start = match &s.start {
                    Some(x) => self.js(x)?,
                    None => "undefined".into(),
                };
                let stop = match &s.stop {
                    Some(x) => self.js(x)?,
                    None => "undefined".into(),
                };
                format!("({}).slice({start}, {stop})", self.js(&s.expr)?)
            }
            ast::Expr::UnaryOp(u) => match u.op {
                ast::UnaryOpKind::Not => format!("!P.truthy({})", self.js(&u.expr)?),
                ast::UnaryOpKind::Neg => format!("(-({}))", self.js(&u.expr)?),
            },
            ast::Expr::BinOp(b) => {
                let l = self.js(&b.left)?;
                let r = self.js(&b.right)?;
                use ast::BinOpKind as K;
                match b.op {
                    K::Eq => format!("P.eq({l}, {r})"),
                    K::Ne => format!("!P.eq({l}, {r})"),
                    K::Lt => format!("({l} < {r})"),
                    K::Lte => format!("({l} <= {r})"),
                    K::Gt => format!("({l} > {r})"),
                    K::Gte => format!("({l} >= {r})"),
                    K::ScAnd => format!("(function (a) {{ return P.truthy(a) ? {r} : a; }})({l})"),
                    K::ScOr => format!("(function (a) {{ return P.truthy(a) ? a : {r}; }})({l})"),
                    K::Add => format!("P.add({l}, {r})"),
                    K::Sub => format!("({l} - {r})"),
                    K::Mul => format!("({l} * {r})"),
                    K::Div => format!("({l} / {r})"),
                    K::FloorDiv => format!("Math.floor({l} / {r})"),
                    K::Rem => format!("({l} % {r})"),
                    K::Pow => format!("Math.pow({l}, {r})"),
                    K::Concat => format!("(P.s({l}) + P.s({r}))"),
                    K::In => format!("P.isIn({l}, {r})"),
                }
            }
            ast::Expr::Compare(c) => {
                let mut parts = Vec::new();
                let mut left = self.js(&c.expr)?;
                for op in &c.ops {
                    let right = self.js(&op.expr)?;
                    use ast::CompareOpKind as K;
                    parts.push(match op.op {
                        K::Eq => format!("P.eq({left}, {right})"),
                        K::Ne => format!("!P.eq({left}, {right})"),
                        K::Lt => format!("({left} < {right})"),
                        K::Lte => format!("({left} <= {right})"),
                        K::Gt => format!("({left} > {right})"),
                        K::Gte => format!("({left} >= {right})"),
                        K::In => format!("P.isIn({left}, {right})"),
                        K::NotIn => format!("!P.isIn({left}, {right})"),
                    });
                    left = right;
                }
                format!("({})", parts.join(" && "))
            }
            ast::Expr::IfExpr(i) => {
                let t = self.js(&i.test_expr)?;
                let a = self.js(&i.true_expr)?;
                let b = match &i.false_expr {
                    Some(f) => self.js(f)?,
                    None => "undefined".into(),
                };
                format!("(P.truthy({t}) ? {a} : {b})")
            }
            ast::Expr::Filter(f) => {
                if !FILTERS.contains(&f.name) {
                    return Err(format!("the filter `{}`", f.name));
                }
                let mut args = Vec::new();
                if let Some(x) = &f.expr {
                    args.push(self.js(x)?);
                }
                for a in &f.args {
                    args.push(self.call_arg(a)?);
                }
                format!("P.f[{}]({})", js_str(f.name), args.join(", "))
            }
            ast::Expr::Test(t) => {
                if !TESTS.contains(&t.name) {
                    return Err(format!("the test `{}`", t.name));
                }
                format!("P.t[{}]({})", js_str(t.name), self.js(&t.expr)?)
            }
            ast::Expr::Call(call) => {
                let ast::Expr::Var(f) = &call.expr else {
                    return Err("a call of something other than a function".into());
                };
                if !FUNCTIONS.contains(&f.id) {
                    return Err(format!("the function `{}`", f.id));
                }
                let args: Result<Vec<String>, String> =
                    call.args.iter().map(|a| self.call_arg(a)).collect();
                format!("P.fn[{}]({})", js_str(f.id), args?.join(", "))
            }
            ast::Expr::List(l) => {
                let items: Result<Vec<String>, String> =
                    l.items.iter().map(|i| self.js(i)).collect();
                format!("[{}]", items?.join(", "))
            }
            ast::Expr::Map(m) => {
                let mut pairs = Vec::new();
                for (k, v) in m.keys.iter().zip(m.values.iter()) {
                    pairs.push(format!("[{}]: {}", self.js(k)?, self.js(v)?));
                }
                format!("{{{}}}", pairs.join(", "))
            }
        })
    }

    fn call_arg(&mut self, a: &ast::CallArg<'_>) -> Result<String, String> {
        match a {
            ast::CallArg::Pos(e) => self.js(e),
            _ => Err("keyword or splat arguments".into()),
        }
    }

    /// A JSON body: strings are templates; a string that is one `<<expr>>` is spliced as a value.
    fn json_body(&mut self, v: &Value, g: &mut Gen) -> String {
        let mut splices: Vec<(String, String)> = Vec::new();
        let marked = self.mark_json(v, g, &mut splices);
        let mut text = serde_json::to_string_pretty(&marked).unwrap_or_default();
        for (marker, var) in splices {
            let quoted = serde_json::to_string(&marker).unwrap_or_default();
            text = text.replace(&quoted, &format!("{{{{{var}}}}}"));
        }
        text
    }

    fn mark_json(&mut self, v: &Value, g: &mut Gen, splices: &mut Vec<(String, String)>) -> Value {
        match v {
            Value::String(s) => match crate::template::sole_expression(s) {
                Some(expr) => match minijinja::machinery::parse_expr(expr) {
                    Ok(ast) if self.simple(&ast).is_none() => match self.js(&ast) {
                        Ok(js) => {
                            let var = self.next_id("postie_json");
                            g.lib();
                            g.pre.push(format!(
                                "pm.variables.set(\"{var}\", JSON.stringify({js}));"
                            ));
                            self.computed += 1;
                            let marker = format!("\u{1}{var}\u{1}");
                            splices.push((marker.clone(), var));
                            Value::String(marker)
                        }
                        Err(e) => {
                            self.report.left_out.push(format!(
                                "`<<{expr}>>` cannot be written for Postman ({e}); sent as it is"
                            ));
                            Value::String(s.clone())
                        }
                    },
                    _ => Value::String(self.text(s, g)),
                },
                None => Value::String(self.text(s, g)),
            },
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| self.mark_json(x, g, splices)).collect())
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (self.text(k, g), self.mark_json(x, g, splices)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A condition (`when:`, `until:`) as JavaScript.
    fn condition(&mut self, cond: &str) -> Option<String> {
        match minijinja::machinery::parse_expr(cond)
            .map_err(|e| e.to_string())
            .and_then(|a| self.js(&a))
        {
            Ok(js) => Some(js),
            Err(e) => {
                self.report.left_out.push(format!(
                    "condition `{cond}` cannot be written for Postman ({e})"
                ));
                None
            }
        }
    }

    fn collection(&mut self) -> Value {
        let c = self.c;
        let mut items = Vec::new();
        if c.flows.is_empty() {
            items = self.tree();
        } else {
            let mut in_flow = BTreeSet::new();
            for (fname, flow) in &c.flows {
                let mut children = Vec::new();
                for (i, step) in flow.steps.iter().enumerate() {
                    in_flow.insert(step.request().to_string());
                    let id = stable_id(&format!("{}/{fname}/{i}", c.name));
                    if let Some(item) = self.item(step.request(), Some(step), &id) {
                        children.push(item);
                    }
                }
                let mut f = json!({"name": fname, "item": children});
                if let Some(d) = &flow.description {
                    f["description"] = json!(d);
                }
                items.push(f);
            }
            let rest: Vec<String> = c
                .requests
                .keys()
                .filter(|k| !in_flow.contains(*k))
                .cloned()
                .collect();
            if !rest.is_empty() {
                let children: Vec<Value> = rest
                    .iter()
                    .filter_map(|k| {
                        let id = stable_id(&format!("{}/{k}", c.name));
                        self.item(k, None, &id)
                    })
                    .collect();
                items.push(json!({"name": "other requests", "description": "Requests of the collection no flow sends.", "item": children}));
                self.report.notes.push(format!(
                    "{} requests no flow sends are in the folder \"other requests\"; `newman run` runs every folder, so pick one with --folder",
                    rest.len()
                ));
            }
        }
        // Collection-level scripts: computed variables, chaining, then the user's own.
        let mut coll = Gen::default();
        let mut computed_vars = Vec::new();
        let mut variables = Vec::new();
        for (k, def) in &c.variables {
            // A value read from the process environment: a Postman variable of that name, and a
            // hint that brings it back as it was on import.
            if let Value::String(s) = def.value()
                && let Some(name) = env_reference(s)
            {
                self.env_refs.insert(name.to_string());
                let hint = if def.declared_secret() {
                    format!("postie: {s} secret")
                } else {
                    format!("postie: {s}")
                };
                variables.push(
                    json!({"key": k, "value": format!("{{{{{name}}}}}"), "description": hint}),
                );
                continue;
            }
            let (value, computed) = self.var_value(k, def, &mut coll);
            if computed {
                computed_vars.push(k.clone());
            }
            let mut v = json!({"key": k, "value": value});
            if let VarDef::Detailed(d) = def
                && let Some(desc) = &d.description
            {
                v["description"] = json!(desc);
            }
            variables.push(v);
        }
        for k in &computed_vars {
            self.report.translated.push(format!(
                "variable `{k}` is an expression: the collection's pre-request script computes it"
            ));
        }
        let mut post = Gen::default();
        if !self.chained.is_empty() {
            post.lib();
            let names: Vec<String> = self.chained.iter().map(|n| js_str(n)).collect();
            post.post.push(format!(
                "// postie's automatic chaining: these names come from the response that has them.\nP.chain([{}]);",
                names.join(", ")
            ));
        }
        let mut events = Vec::new();
        let user_pre = c.script.as_ref().and_then(|s| s.pre.as_deref());
        let user_post = c.script.as_ref().and_then(|s| s.post.as_deref());
        push_event(
            &mut events,
            "prerequest",
            &coll.pre,
            coll.uses_lib,
            user_pre,
        );
        push_event(&mut events, "test", &post.post, post.uses_lib, user_post);
        self.needs_lib |= coll.uses_lib || post.uses_lib;
        if self.needs_lib {
            variables.push(json!({"key": "postie_lib", "value": LIB, "description": "postie's runtime for this collection's generated scripts (see `postie export postman`)"}));
        }
        let mut info = json!({
            "_postman_id": stable_id(&c.name),
            "name": c.name,
            "schema": SCHEMA,
        });
        if let Some(d) = &c.description {
            info["description"] = json!(d);
        }
        let mut out = Map::new();
        out.insert("info".into(), info);
        out.insert("item".into(), Value::Array(items));
        if !events.is_empty() {
            out.insert("event".into(), Value::Array(events));
        }
        if !variables.is_empty() {
            out.insert("variable".into(), Value::Array(variables));
        }
        Value::Object(out)
    }

    /// A variable's exported value, and whether a script computes it instead.
    fn var_value(&mut self, k: &str, def: &VarDef, g: &mut Gen) -> (String, bool) {
        let secret = def.declared_secret() || crate::redact::is_secret_name(k);
        match def.value() {
            Value::String(s) => {
                if let Some(expr) = crate::template::sole_expression(s)
                    && let Ok(ast) = minijinja::machinery::parse_expr(expr)
                    && self.simple(&ast).is_none()
                {
                    match self.js(&ast) {
                        Ok(js) => {
                            g.lib();
                            g.pre
                                .push(format!("pm.variables.set({}, P.s({js}));", js_str(k)));
                            return (String::new(), true);
                        }
                        Err(e) => {
                            self.report.left_out.push(format!(
                                "variable `{k}`: `{s}` cannot be written for Postman ({e})"
                            ));
                            return (String::new(), false);
                        }
                    }
                }
                if secret && !s.contains("<<") {
                    self.blanked.insert(k.to_string());
                    return (String::new(), false);
                }
                let mut scratch = Gen::default();
                let t = self.text(s, &mut scratch);
                if !scratch.pre.is_empty() {
                    // Mixed text and expressions: computed too.
                    g.lib();
                    g.pre.extend(scratch.pre);
                }
                (t, false)
            }
            other => (crate::capture::value_text(other), false),
        }
    }

    fn environment(&mut self, name: &str) -> Value {
        let mut values = Vec::new();
        let mut g = Gen::default();
        for (k, def) in &self.c.environments[name] {
            let secret = def.declared_secret() || crate::redact::is_secret_name(k);
            let (value, computed) = self.var_value(k, def, &mut g);
            if computed {
                self.report.left_out.push(format!(
                    "environment `{name}`: variable `{k}` is an expression; Postman environments hold values, so it is left empty"
                ));
            }
            values.push(json!({
                "key": k,
                "value": if secret { String::new() } else { value },
                "type": if secret { "secret" } else { "default" },
                "enabled": true,
            }));
            if secret {
                self.blanked.insert(k.clone());
            }
        }
        json!({
            "id": stable_id(&format!("{}/env/{name}", self.c.name)),
            "name": name,
            "values": values,
            "_postman_variable_scope": "environment",
            "_postman_exported_using": concat!("postie/", env!("CARGO_PKG_VERSION")),
        })
    }

    /// Items in the folder tree the requests' `folder:` fields describe, in file order.
    fn tree(&mut self) -> Vec<Value> {
        #[derive(Default)]
        struct Node {
            items: Vec<Value>,
            order: Vec<String>,
            children: BTreeMap<String, Node>,
        }
        let mut root = Node::default();
        let keys: Vec<String> = self.c.requests.keys().cloned().collect();
        for k in keys {
            let id = stable_id(&format!("{}/{k}", self.c.name));
            let Some(item) = self.item(&k, None, &id) else {
                continue;
            };
            let folder = self.c.requests[&k].folder.clone();
            let mut node = &mut root;
            if let Some(f) = folder {
                for part in f.split('/') {
                    if !node.children.contains_key(part) {
                        node.order.push(format!("\u{1}{part}"));
                    }
                    node = node.children.entry(part.to_string()).or_default();
                }
            }
            node.order.push(format!("\u{2}{}", node.items.len()));
            node.items.push(item);
        }
        fn build(n: Node, path: &str, c: &Collection) -> Vec<Value> {
            let mut n = n;
            let mut items: Vec<Option<Value>> = n.items.drain(..).map(Some).collect();
            let mut out = Vec::new();
            for o in &n.order {
                if let Some(name) = o.strip_prefix('\u{1}') {
                    let child = n.children.remove(name).unwrap_or_default();
                    let full = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}/{name}")
                    };
                    let mut f = json!({"name": name, "item": build(child, &full, c)});
                    if let Some(folder) = c.folders.get(&full) {
                        if let Some(d) = &folder.description {
                            f["description"] = json!(d);
                        }
                        let mut ev = Vec::new();
                        push_event(
                            &mut ev,
                            "prerequest",
                            &[],
                            false,
                            folder.script.as_ref().and_then(|s| s.pre.as_deref()),
                        );
                        push_event(
                            &mut ev,
                            "test",
                            &[],
                            false,
                            folder.script.as_ref().and_then(|s| s.post.as_deref()),
                        );
                        if !ev.is_empty() {
                            f["event"] = Value::Array(ev);
                        }
                    }
                    out.push(f);
                } else if let Some(i) = o
                    .strip_prefix('\u{2}')
                    .and_then(|i| i.parse::<usize>().ok())
                    && let Some(item) = items.get_mut(i).and_then(Option::take)
                {
                    out.push(item);
                }
            }
            out
        }
        let c = self.c;
        build(root, "", c)
    }

    /// One request as an item; `step` adds its flow behaviour (`when`, `until`).
    fn item(&mut self, key: &str, step: Option<&Step>, id: &str) -> Option<Value> {
        let c = self.c;
        let req = c.requests.get(key)?;
        let mut g = Gen::default();
        // `when:` first: a skipped request computes nothing.
        if let Some(w) = step.and_then(Step::when)
            && let Some(js) = self.condition(w)
        {
            g.lib();
            g.pre.push(format!(
                "// when: {w}\nif (!P.truthy({js})) {{ pm.execution.skipRequest(); }}"
            ));
        }
        let oauth = c.oauth2.as_ref();
        if let Some(o) = oauth
            && o.pkce
            && o.authorize == key
        {
            g.lib();
            g.pre
                .push("// PKCE: a fresh verifier and its S256 challenge.\nP.pkce();".into());
        }
        let request = self.request(key, req, &mut g);
        // After the response: record the exchange, captures, assertions, polling.
        if self.recorded.contains(key) {
            g.lib();
            g.post.push(format!("P.record({});", js_str(key)));
        }
        self.captures(req, &mut g);
        self.asserts(req, &mut g);
        if let Some(poll) = step.and_then(Step::poll)
            && let Some(js) = self.condition(poll.until)
        {
            g.lib();
            let counter = format!("postie_attempts_{}", id.replace('-', "_"));
            g.post.push(format!(
                "// until: {until} (every {ms} ms, at most {max} attempts)\n(function () {{\n  var n = Number(pm.collectionVariables.get({c}) || 0) + 1;\n  if (P.truthy({js})) {{ pm.collectionVariables.unset({c}); return; }}\n  if (n >= {max}) {{\n    pm.collectionVariables.unset({c});\n    pm.test({name}, function () {{ throw new Error('still false after ' + n + ' attempts'); }});\n    return;\n  }}\n  pm.collectionVariables.set({c}, n);\n  setTimeout(function () {{}}, {ms});\n  pm.execution.setNextRequest(pm.info.requestId);\n}})();",
                until = poll.until,
                ms = poll.interval.as_millis(),
                max = poll.max_attempts,
                c = js_str(&counter),
                name = js_str(&format!("until: {}", poll.until)),
            ));
        }
        let mut item = Map::new();
        item.insert("id".into(), json!(id));
        item.insert(
            "name".into(),
            json!(req.title.clone().unwrap_or_else(|| key.to_string())),
        );
        let mut events = Vec::new();
        push_event(
            &mut events,
            "prerequest",
            &g.pre,
            g.uses_lib,
            req.script.as_ref().and_then(|s| s.pre.as_deref()),
        );
        push_event(
            &mut events,
            "test",
            &g.post,
            g.uses_lib,
            req.script.as_ref().and_then(|s| s.post.as_deref()),
        );
        self.needs_lib |= g.uses_lib;
        if !events.is_empty() {
            item.insert("event".into(), Value::Array(events));
        }
        if req.follow_redirects.is_some() || !c.newman() {
            let follow = c.follows_redirects(req);
            item.insert(
                "protocolProfileBehavior".into(),
                json!({"followRedirects": follow}),
            );
        }
        item.insert("request".into(), request);
        let responses: Vec<Value> = req.examples.iter().map(|e| self.example(e)).collect();
        item.insert("response".into(), Value::Array(responses));
        Some(Value::Object(item))
    }

    fn request(&mut self, key: &str, req: &Request, g: &mut Gen) -> Value {
        let mut headers: Vec<Value> = Vec::new();
        for (k, v) in &req.headers {
            headers.push(json!({"key": k, "value": self.text(&v.0, g)}));
        }
        let url_text = self.text(&req.url, g);
        let mut query = Vec::new();
        for (k, v) in &req.query {
            query.push((k.clone(), self.text(&v.0, g)));
        }
        let mut out = Map::new();
        out.insert("method".into(), json!(req.method.to_ascii_uppercase()));
        // Auth: the request's own, and the client authentication the OAuth2 engine adds.
        let mut auth = match &req.auth {
            Some(Auth::Basic { user, password }) => Some(json!({"type": "basic", "basic": [
                {"key": "username", "value": self.text(user, g), "type": "string"},
                {"key": "password", "value": self.text(password, g), "type": "string"},
            ]})),
            Some(Auth::Bearer(t)) => Some(json!({"type": "bearer", "bearer": [
                {"key": "token", "value": self.text(t, g), "type": "string"},
            ]})),
            None => None,
        };
        let mut form_extra: Vec<(String, String)> = Vec::new();
        if let Some(o) = &self.c.oauth2
            && o.token_role(key).is_some()
            && let Some(ca) = o.client_auth
        {
            let id = format!("{{{{{}}}}}", o.client_id);
            let secret = format!("{{{{{}}}}}", o.client_secret);
            match ca {
                crate::state::ClientAuth::Basic => {
                    auth = Some(json!({"type": "basic", "basic": [
                        {"key": "username", "value": id, "type": "string"},
                        {"key": "password", "value": secret, "type": "string"},
                    ]}));
                }
                crate::state::ClientAuth::Post => {
                    form_extra.push(("client_id".into(), id));
                    form_extra.push(("client_secret".into(), secret));
                }
                crate::state::ClientAuth::None => form_extra.push(("client_id".into(), id)),
            }
        }
        if !headers.is_empty() {
            out.insert("header".into(), Value::Array(headers.clone()));
        } else {
            out.insert("header".into(), json!([]));
        }
        // Body.
        let content_type = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.0.to_ascii_lowercase());
        if let Some(j) = &req.json {
            let raw = self.json_body(j, g);
            out.insert(
                "body".into(),
                json!({"mode": "raw", "raw": raw, "options": {"raw": {"language": "json"}}}),
            );
            if content_type.is_none() {
                // postie implies it; Postman adds it only from the language in the app.
                if let Some(Value::Array(h)) = out.get_mut("header") {
                    h.push(json!({"key": "Content-Type", "value": "application/json"}));
                }
            }
        } else if req.form.is_some() || !form_extra.is_empty() {
            let mut fields: Vec<Value> = Vec::new();
            for (k, v) in req.form.iter().flatten() {
                fields.push(json!({"key": k, "value": self.text(&v.0, g), "type": "text"}));
            }
            for (k, v) in form_extra {
                fields.push(json!({"key": k, "value": v, "type": "text"}));
            }
            out.insert(
                "body".into(),
                json!({"mode": "urlencoded", "urlencoded": fields}),
            );
        } else if let Some(t) = &req.text {
            let language = match content_type.as_deref() {
                Some(ct) if ct.contains("json") => "json",
                Some(ct) if ct.contains("xml") => "xml",
                Some(ct) if ct.contains("html") => "html",
                Some(ct) if ct.contains("javascript") => "javascript",
                _ => "text",
            };
            out.insert("body".into(), json!({"mode": "raw", "raw": self.text(t, g), "options": {"raw": {"language": language}}}));
        } else if !req.multipart.is_empty() {
            let mut parts = Vec::new();
            for (k, p) in &req.multipart {
                match p {
                    Part::Text(v) => {
                        parts.push(json!({"key": k, "value": self.text(&v.0, g), "type": "text"}))
                    }
                    Part::File(f) => {
                        let mut part =
                            json!({"key": k, "src": self.text(&f.file, g), "type": "file"});
                        if let Some(ct) = &f.content_type {
                            part["contentType"] = json!(ct);
                        }
                        parts.push(part);
                    }
                }
            }
            out.insert(
                "body".into(),
                json!({"mode": "formdata", "formdata": parts}),
            );
        }
        if let Some(a) = auth {
            out.insert("auth".into(), a);
        }
        out.insert("url".into(), postman_url(&url_text, &query));
        if let Some(n) = &req.note {
            out.insert("description".into(), json!(n));
        }
        Value::Object(out)
    }

    fn captures(&mut self, req: &Request, g: &mut Gen) {
        let scope = if self.c.newman() {
            "pm.environment"
        } else {
            "pm.collectionVariables"
        };
        for (name, spec) in &req.capture {
            let (path, optional) = match spec {
                CaptureSpec::Path(p) => (Some(p.as_str()), false),
                CaptureSpec::Detailed(d) => (d.jsonpath.as_deref(), d.optional),
            };
            if let Some(p) = path {
                // The idiom `import postman` reads back, when the path is plain.
                if let Some(js) = plain_path(p)
                    && !optional
                {
                    g.post.push(format!(
                        "{scope}.set({}, pm.response.json(){js});",
                        js_str(name)
                    ));
                } else {
                    g.lib();
                    g.post.push(format!(
                        "(function (v) {{ if (v !== undefined) {scope}.set({n}, v);{missing} }})(P.path(P.body(), {steps}));",
                        n = js_str(name),
                        steps = path_steps(p),
                        missing = if optional {
                            String::new()
                        } else {
                            format!(" else pm.test({}, function () {{ throw new Error('{} matched nothing'); }});", js_str(&format!("capture {name}")), p.replace('\'', "\\'"))
                        }
                    ));
                }
                continue;
            }
            let CaptureSpec::Detailed(d) = spec else {
                continue;
            };
            if let Some(h) = &d.header {
                g.post.push(format!(
                    "(function (v) {{ if (v !== undefined) {scope}.set({n}, v); }})(pm.response.headers.get({h}));",
                    n = js_str(name),
                    h = js_str(h)
                ));
            } else if let Some(re) = &d.regex {
                let from = match d.from.as_deref().and_then(|f| f.strip_prefix("header:")) {
                    Some(h) => format!("(pm.response.headers.get({}) || '')", js_str(h.trim())),
                    None => "pm.response.text()".into(),
                };
                g.post.push(format!(
                    "(function (m) {{ if (m) {scope}.set({n}, m[1] !== undefined ? m[1] : m[0]); }})(new RegExp({re}).exec({from}));",
                    n = js_str(name),
                    re = js_str(re)
                ));
            }
        }
    }

    fn asserts(&mut self, req: &Request, g: &mut Gen) {
        for a in &req.assert {
            let probe = crate::assert::check(a, &empty_exchange());
            let name = a.name.clone().unwrap_or(probe.description);
            let n = js_str(&name);
            let body = assert_js(a, g, self);
            g.post
                .push(format!("pm.test({n}, function () {{\n    {body}\n}});"));
        }
    }

    fn example(&mut self, e: &crate::collection::Example) -> Value {
        let mut g = Gen::default();
        let reason = reqwest::StatusCode::from_u16(e.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let (body, lang) = match (&e.json, &e.text) {
            (Some(j), _) => (
                serde_json::to_string_pretty(&unescape_json(j)).unwrap_or_default(),
                "json",
            ),
            (None, Some(t)) => (unescape(t), "text"),
            _ => (String::new(), "text"),
        };
        let mut out = json!({
            "name": e.name.clone().unwrap_or_else(|| format!("{} {reason}", e.status)),
            "status": reason,
            "code": e.status,
            "_postman_previewlanguage": lang,
            "header": e.headers.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "cookie": [],
            "body": body,
        });
        if let Some(r) = &e.request {
            let url = r
                .url
                .as_deref()
                .map(|u| self.text(u, &mut g))
                .unwrap_or_default();
            let mut orig = json!({
                "method": r.method.clone().unwrap_or_else(|| "GET".into()),
                "header": r.headers.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                "url": postman_url(&url, &[]),
            });
            if let Some(j) = &r.json {
                orig["body"] = json!({"mode": "raw", "raw": serde_json::to_string_pretty(&unescape_json(j)).unwrap_or_default(), "options": {"raw": {"language": "json"}}});
            } else if let Some(t) = &r.text {
                orig["body"] = json!({"mode": "raw", "raw": unescape(t)});
            }
            out["originalRequest"] = orig;
        }
        out
    }

    fn finish_report(&mut self, envs: &[String]) {
        let c = self.c;
        self.report.imported.insert(
            0,
            format!(
                "{} requests{}, {} variables{} from \"{}\"",
                c.requests.len(),
                if c.flows.is_empty() {
                    String::new()
                } else {
                    format!(" in {} flow folders", c.flows.len())
                },
                c.variables.len(),
                if envs.is_empty() {
                    String::new()
                } else {
                    format!(", environments {}", envs.join(", "))
                },
                c.name
            ),
        );
        if self.computed > 0 {
            self.report.translated.push(format!(
                "{} template expressions Postman cannot say are computed by pre-request scripts over postie's runtime (the variable `postie_lib`)",
                self.computed
            ));
        }
        if !self.chained.is_empty() {
            self.report.translated.push(format!(
                "automatic chaining → a collection test script setting {} from the responses that carry them",
                self.chained.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.recorded.is_empty() {
            self.report.translated.push(format!(
                "the last exchanges of {} are kept for the expressions that read them",
                self.recorded
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.env_refs.is_empty() {
            self.report.notes.push(format!(
                "process environment variables became Postman variables; supply them (newman: --env-var NAME=value): {}",
                self.env_refs.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.blanked.is_empty() {
            self.report.notes.push(format!(
                "secret values are not exported (left empty); supply them (newman: --env-var NAME=value): {}",
                self.blanked.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
}

/// A Postman URL object from Postman text: `raw` and the parts Newman builds from.
fn postman_url(text: &str, query: &[(String, String)]) -> Value {
    let (base, inline_query) = match text.split_once('?') {
        Some((b, q)) => (b.to_string(), Some(q.to_string())),
        None => (text.to_string(), None),
    };
    let mut q: Vec<Value> = Vec::new();
    if let Some(iq) = &inline_query {
        for p in iq.split('&').filter(|p| !p.is_empty()) {
            match p.split_once('=') {
                Some((k, v)) => q.push(json!({"key": k, "value": v})),
                None => q.push(json!({"key": p, "value": null})),
            }
        }
    }
    for (k, v) in query {
        q.push(json!({"key": k, "value": v}));
    }
    let raw_query: Vec<String> = q
        .iter()
        .map(|p| match p["value"].as_str() {
            Some(v) => format!("{}={}", p["key"].as_str().unwrap_or(""), v),
            None => p["key"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    let raw = if raw_query.is_empty() {
        base.clone()
    } else {
        format!("{base}?{}", raw_query.join("&"))
    };
    let (protocol, rest) = match base.split_once("://") {
        Some((p, r)) if !p.contains('{') && !p.contains('/') => {
            (Some(p.to_string()), r.to_string())
        }
        _ => (None, base.clone()),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i + 1..].to_string()),
        None => (rest.clone(), String::new()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty()
                && (p.chars().all(|c| c.is_ascii_digit())
                    || (p.starts_with("{{") && p.ends_with("}}")))
                && !h.ends_with('{') =>
        {
            (h.to_string(), Some(p.to_string()))
        }
        _ => (hostport.clone(), None),
    };
    let host_parts: Vec<Value> = if host.contains("{{") {
        vec![json!(host)]
    } else {
        host.split('.').map(|s| json!(s)).collect()
    };
    let mut out = json!({"raw": raw, "host": host_parts, "path": if path.is_empty() { vec![] } else { path.split('/').map(|s| json!(s)).collect::<Vec<_>>() }});
    if let Some(p) = protocol {
        out["protocol"] = json!(p);
    }
    if let Some(p) = port {
        out["port"] = json!(p);
    }
    if !q.is_empty() {
        out["query"] = Value::Array(q);
    }
    out
}

/// Adds an event: generated code (after loading the runtime when it uses it) then the user's.
fn push_event(
    events: &mut Vec<Value>,
    listen: &str,
    generated: &[String],
    uses_lib: bool,
    user: Option<&str>,
) {
    let mut code = String::new();
    if !generated.is_empty() {
        if uses_lib {
            code.push_str(LOAD_LIB);
            code.push('\n');
        }
        code.push_str(&generated.join("\n"));
        code.push('\n');
    }
    if let Some(u) = user {
        code.push_str(u);
    }
    if code.trim().is_empty() {
        return;
    }
    let exec: Vec<Value> = code.trim_end().split('\n').map(|l| json!(l)).collect();
    events.push(json!({"listen": listen, "script": {"type": "text/javascript", "exec": exec}}));
}

/// The body of a `pm.test` for an assertion, in the idioms `import postman` reads back.
fn assert_js(a: &AssertSpec, g: &mut Gen, x: &mut Exporter<'_>) -> String {
    if let Some(s) = &a.status {
        return match s {
            StatusSpec::One(c) => format!("pm.response.to.have.status({c});"),
            StatusSpec::Any(list) => format!(
                "pm.expect(pm.response.code).to.be.oneOf([{}]);",
                list.iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    if let Some(ms) = a.max_ms {
        return format!("pm.expect(pm.response.responseTime).to.be.below({ms});");
    }
    let subject = if let Some(p) = &a.jsonpath {
        match plain_path(p) {
            Some(js) if a.equals.is_some() || a.exists == Some(true) => {
                format!("pm.response.json(){js}")
            }
            _ => {
                g.lib();
                format!("P.path(P.body(), {})", path_steps(p))
            }
        }
    } else if let Some(h) = &a.header {
        if a.exists == Some(true) && a.equals.is_none() && a.matches.is_none() {
            return format!("pm.response.to.have.header({});", js_str(h));
        }
        format!("pm.response.headers.get({})", js_str(h))
    } else {
        return "throw new Error('an empty assertion');".into();
    };
    if let Some(expected) = &a.equals {
        let has_template = crate::template::has_template(expected);
        let lit = if has_template {
            let mut dummy = Vec::new();
            let marked = x.mark_json(expected, g, &mut dummy);
            let mut t = serde_json::to_string(&marked).unwrap_or_default();
            for (marker, var) in dummy {
                let quoted = serde_json::to_string(&marker).unwrap_or_default();
                t = t.replace(
                    &quoted,
                    &format!("JSON.parse(pm.variables.get({}))", js_str(&var)),
                );
            }
            // Strings with `{{x}}` are resolved at run time.
            format!("JSON.parse(pm.variables.replaceIn({}))", js_str(&t))
        } else {
            serde_json::to_string(expected).unwrap_or_default()
        };
        return format!("pm.expect({subject}).to.eql({lit});");
    }
    if let Some(want) = a.exists {
        if let (Some(p), true) = (&a.jsonpath, want)
            && let Some((parent, prop)) = split_last(p)
        {
            return format!(
                "pm.expect(pm.response.json(){parent}).to.have.property({});",
                js_str(&prop)
            );
        }
        return if want {
            format!("pm.expect({subject}).to.not.equal(undefined);")
        } else {
            format!("pm.expect({subject}).to.equal(undefined);")
        };
    }
    if let Some(re) = &a.matches {
        let mut scratch = Gen::default();
        let t = x.text(re, &mut scratch);
        if !scratch.pre.is_empty() {
            g.lib();
            g.pre.extend(scratch.pre);
        }
        return format!(
            "pm.expect(P.s({subject})).to.match(new RegExp(pm.variables.replaceIn({})));",
            js_str(&t)
        );
    }
    "throw new Error('an assertion without a predicate');".into()
}

/// `$.a.b[0]` → `.a.b[0]` when every step is a plain name or index; else `None`.
fn plain_path(p: &str) -> Option<String> {
    let rest = p.trim().strip_prefix('$')?;
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(?:\.[A-Za-z_$][\w$]*|\[\d+\]|\['[^'\]]+'\])*$").expect("valid regex")
    });
    RE.is_match(rest).then(|| rest.to_string())
}

/// Splits `$.a.b` into (`.a`, `b`); `None` when the last step is not a plain name.
fn split_last(p: &str) -> Option<(String, String)> {
    let js = plain_path(p)?;
    let i = js.rfind('.')?;
    let name = &js[i + 1..];
    if name.is_empty() || name.contains('[') {
        return None;
    }
    Some((js[..i].to_string(), name.to_string()))
}

/// A JSONPath as the runtime's steps (see `P.path`).
fn path_steps(p: &str) -> String {
    let rest = p.trim().strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = rest.chars().collect();
    let mut steps: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                let start = i + 2;
                let mut j = start;
                while j < chars.len() && !matches!(chars[j], '.' | '[') {
                    j += 1;
                }
                steps.push(json!(["..", chars[start..j].iter().collect::<String>()]));
                i = j;
            }
            '.' if chars.get(i + 1) == Some(&'*') => {
                steps.push(json!(["*"]));
                i += 2;
            }
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && !matches!(chars[j], '.' | '[') {
                    j += 1;
                }
                steps.push(json!(["k", chars[start..j].iter().collect::<String>()]));
                i = j;
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|k| k + i)
                    .unwrap_or(chars.len() - 1);
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(json!(["*"]));
                } else if let Ok(n) = inner.parse::<i64>() {
                    steps.push(json!(["i", n]));
                } else if let Some(f) = inner.strip_prefix('?') {
                    // `(@.a.b == 'v')` or `!=`.
                    let f = f.trim().trim_start_matches('(').trim_end_matches(')');
                    let (lhs, negate, rhs) = match f.split_once("!=") {
                        Some((l, r)) => (l, true, r),
                        None => {
                            let (l, r) = f.split_once("==").unwrap_or((f, "null"));
                            (l, false, r)
                        }
                    };
                    let fields: Vec<String> = lhs
                        .trim()
                        .trim_start_matches('@')
                        .split('.')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    let r = rhs.trim();
                    let value: Value = if (r.starts_with('\'') && r.ends_with('\''))
                        || (r.starts_with('"') && r.ends_with('"'))
                    {
                        json!(r[1..r.len() - 1])
                    } else {
                        serde_json::from_str(r).unwrap_or(Value::Null)
                    };
                    steps.push(json!(["?", fields, negate, value]));
                } else {
                    steps.push(json!(["k", inner.trim_matches(['\'', '"'])]));
                }
                i = close + 1;
            }
            _ => i += 1,
        }
    }
    serde_json::to_string(&steps).unwrap_or_else(|_| "[]".into())
}

/// `X` of a value that is exactly `<<env.X>>`.
fn env_reference(s: &str) -> Option<&str> {
    let name = crate::template::sole_expression(s)?.strip_prefix("env.")?;
    super::names::is_ident(name).then_some(name)
}

fn js_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A stable UUID-shaped id from a name (the same collection exports the same ids).
fn stable_id(name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Every `<<…>>` expression of a template text.
fn expressions(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("<<") {
        let after = &rest[i + 2..];
        let Some(end) = expression_end(after) else {
            break;
        };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Where the `>>` closing an expression is (outside its string literals).
fn expression_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(_) if c == b'\\' => {
                i += 2;
                continue;
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'>' && bytes.get(i + 1) == Some(&b'>') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn collect_roots(e: &ast::Expr<'_>, out: &mut BTreeSet<String>) {
    match e {
        ast::Expr::Var(v) => {
            out.insert(v.id.to_string());
        }
        ast::Expr::Const(_) => {}
        ast::Expr::Slice(s) => {
            collect_roots(&s.expr, out);
            for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                collect_roots(x, out);
            }
        }
        ast::Expr::UnaryOp(u) => collect_roots(&u.expr, out),
        ast::Expr::BinOp(b) => {
            collect_roots(&b.left, out);
            collect_roots(&b.right, out);
        }
        ast::Expr::Compare(c) => {
            collect_roots(&c.expr, out);
            for op in &c.ops {
                collect_roots(&op.expr, out);
            }
        }
        ast::Expr::IfExpr(i) => {
            collect_roots(&i.test_expr, out);
            collect_roots(&i.true_expr, out);
            if let Some(f) = &i.false_expr {
                collect_roots(f, out);
            }
        }
        ast::Expr::Filter(f) => {
            if let Some(x) = &f.expr {
                collect_roots(x, out);
            }
            for a in &f.args {
                call_arg_roots(a, out);
            }
        }
        ast::Expr::Test(t) => {
            collect_roots(&t.expr, out);
            for a in &t.args {
                call_arg_roots(a, out);
            }
        }
        ast::Expr::GetAttr(g) => collect_roots(&g.expr, out),
        ast::Expr::GetItem(g) => {
            collect_roots(&g.expr, out);
            collect_roots(&g.subscript_expr, out);
        }
        ast::Expr::Call(c) => {
            if !matches!(&c.expr, ast::Expr::Var(_)) {
                collect_roots(&c.expr, out);
            }
            for a in &c.args {
                call_arg_roots(a, out);
            }
        }
        ast::Expr::List(l) => l.items.iter().for_each(|x| collect_roots(x, out)),
        ast::Expr::Map(m) => {
            m.keys.iter().for_each(|x| collect_roots(x, out));
            m.values.iter().for_each(|x| collect_roots(x, out));
        }
    }
}

fn call_arg_roots(a: &ast::CallArg<'_>, out: &mut BTreeSet<String>) {
    match a {
        ast::CallArg::Pos(e)
        | ast::CallArg::Kwarg(_, e)
        | ast::CallArg::PosSplat(e)
        | ast::CallArg::KwargSplat(e) => collect_roots(e, out),
    }
}

/// The filters, tests and functions the runtime implements.
const FILTERS: [&str; 20] = [
    "length",
    "count",
    "default",
    "d",
    "append",
    "lower",
    "upper",
    "trim",
    "join",
    "first",
    "last",
    "tojson",
    "string",
    "int",
    "float",
    "abs",
    "replace",
    "urlencode",
    "list",
    "keys",
];
const TESTS: [&str; 9] = [
    "defined",
    "undefined",
    "none",
    "number",
    "string",
    "mapping",
    "sequence",
    "true",
    "false",
];
const FUNCTIONS: [&str; 7] = [
    "merge",
    "uuid",
    "random_state",
    "nonce",
    "random_int",
    "fake",
    "now",
];

fn empty_exchange() -> crate::exchange::Exchange {
    let r = crate::exchange::Rendered {
        name: String::new(),
        method: "GET".into(),
        url: String::new(),
        headers: vec![],
        body: crate::exchange::Body::None,
        follow_redirects: false,
        timeout: std::time::Duration::from_secs(1),
    };
    crate::exchange::Exchange::new(r, 0, vec![], bytes::Bytes::new(), std::time::Duration::ZERO)
}

/// Literal text of an example: postie escaped `<<` as `<<'<<'>>`; Postman has no such escape.
fn unescape(s: &str) -> String {
    s.replace("<<'<<'>>", "<<")
        .replace("<<'<%'>>", "<%")
        .replace("<<'<#'>>", "<#")
}

fn unescape_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(unescape(s)),
        Value::Array(a) => Value::Array(a.iter().map(unescape_json).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (unescape(k), unescape_json(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}
