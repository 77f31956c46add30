//! Reading a JSON request field by field with errors that name the field's path, and refusing
//! fields a translation does not know (a field nobody reads would be dropped silently).

use serde_json::{Map, Value};

/// An object being read, with its path for error messages (`messages[2].content`).
pub(crate) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

pub(crate) fn obj<'a>(v: &'a Value, path: &str) -> Result<Obj<'a>, String> {
    match v {
        Value::Object(map) => Ok(Obj {
            map,
            path: path.to_owned(),
        }),
        _ => Err(format!("`{path}` must be an object")),
    }
}

/// The whole body as an object.
pub(crate) fn body(bytes: &[u8]) -> Result<Value, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("the body must be a JSON object".to_owned());
    }
    Ok(v)
}

impl<'a> Obj<'a> {
    pub fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value, `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The first of several spellings present (Gemini accepts camelCase and snake_case).
    pub fn get_any(&self, keys: &[&str]) -> Option<&'a Value> {
        keys.iter().find_map(|k| self.get(k))
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{}` must be a string", self.at(key))),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, String> {
        self.str(key)?
            .ok_or_else(|| format!("`{}` is required", self.at(key)))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{}` must be a non-negative integer", self.at(key))),
        }
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("`{}` must be an integer", self.at(key))),
        }
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("`{}` must be a number", self.at(key))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("`{}` must be true or false", self.at(key))),
        }
    }

    pub fn arr(&self, key: &str) -> Result<&'a [Value], String> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(format!("`{}` must be an array", self.at(key))),
        }
    }

    pub fn child(&self, key: &str) -> Result<Option<Obj<'a>>, String> {
        self.get(key).map(|v| obj(v, &self.at(key))).transpose()
    }

    /// Refuses any field not in `known`: a translation must not drop what it does not read.
    pub fn only(&self, known: &[&str], target: &str) -> Result<(), String> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(format!(
                "`{}` cannot be expressed for {target} providers; remove it or choose a model served over the same protocol",
                self.at(k)
            )),
        }
    }
}

/// A string or an array of strings (OpenAI's `stop`).
pub(crate) fn strings(v: Option<&Value>, path: &str) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{path}` must hold strings"))
            })
            .collect(),
        Some(_) => Err(format!("`{path}` must be a string or an array of strings")),
    }
}

/// A message for what the target cannot express.
pub(crate) fn cannot(what: &str, target: &str) -> String {
    format!("{what} cannot be expressed for {target} providers")
}

/// Puts `key: value` into a JSON object when the value is present.
pub(crate) fn put<T: serde::Serialize>(map: &mut Map<String, Value>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        if let Ok(v) = serde_json::to_value(v) {
            map.insert(key.to_owned(), v);
        }
    }
}

/// A `data:` URL split into media type and base64 data.
pub(crate) fn data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media.to_owned(), data.to_owned()))
}

/// JSON text of a tool call's arguments as an object (Anthropic's `input`, Gemini's `args`).
pub(crate) fn arguments_object(arguments: &str, path: &str) -> Result<Value, String> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(format!(
            "`{path}` must be a JSON object to be passed to this provider"
        )),
    }
}

/// A turn's role in a protocol whose only roles are `user` and `assistant` (named
/// `assistant`): a system message in the middle of a conversation has no place there.
pub(crate) fn role_name(
    role: crate::canonical::Role,
    assistant: &'static str,
    i: usize,
    target: &str,
) -> Result<&'static str, String> {
    use crate::canonical::Role;
    match role {
        Role::User => Ok("user"),
        Role::Assistant => Ok(assistant),
        Role::System => Err(cannot(
            &format!("a system message after the conversation started (message {i})"),
            target,
        )),
    }
}

/// A tool definition as the three protocols write it: `name`, `description` when given, and
/// the arguments' JSON schema under `schema_key`.
pub(crate) fn tool_json(t: &crate::canonical::ToolDef, schema_key: &str) -> Value {
    let mut v = Map::new();
    v.insert("name".into(), t.name.clone().into());
    put(&mut v, "description", t.description.as_ref());
    v.insert(schema_key.into(), t.parameters.clone());
    Value::Object(v)
}
